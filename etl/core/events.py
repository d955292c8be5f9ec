"""What a run tells its observers while it works: progress bars, log lines, the watcher's heartbeat.

The pipeline calls these hooks and knows nothing of how they are shown; ``Observer`` does nothing,
so a caller overrides only what it needs.
"""

from __future__ import annotations

from etl.core.summary import FileSummary


class Observer:
    """Hooks called by ``pipeline.check_files`` and ``sync.Sync``; every default does nothing."""

    def file_started(self, name: str, rows: int) -> None:
        """A file was read: ``rows`` data rows are about to be mapped and validated."""

    def items_validated(self, name: str, items: int, rows: int) -> None:
        """One more chunk of ``items`` items (built from ``rows`` rows) is mapped and validated."""

    def batch_finished(
        self, name: str, batch_id: str, items: int, accepted: int, requests: int
    ) -> None:
        """A batch got the API's final word (``requests`` includes isolation resends)."""

    def file_finished(self, summary: FileSummary) -> None:
        """The file's reports are written and the file has moved to its final place."""


class Observers(Observer):
    """Several observers as one (progress bars and log lines, say), called in order."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def file_started(self, name: str, rows: int) -> None:
        for observer in self.observers:
            observer.file_started(name, rows)

    def items_validated(self, name: str, items: int, rows: int) -> None:
        for observer in self.observers:
            observer.items_validated(name, items, rows)

    def batch_finished(
        self, name: str, batch_id: str, items: int, accepted: int, requests: int
    ) -> None:
        for observer in self.observers:
            observer.batch_finished(name, batch_id, items, accepted, requests)

    def file_finished(self, summary: FileSummary) -> None:
        for observer in self.observers:
            observer.file_finished(summary)
