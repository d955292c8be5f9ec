"""What a run did, file by file: the content of summary.json and of the printed summary."""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl import __version__


@dataclass
class FileSummary:
    """What happened to one input file; one entry of summary.json's ``files``."""

    name: str
    kind: str = ""
    sha256: str = ""
    status: str = "processed"  # processed | unreadable | duplicate | resumed | error (a bug)
    reason: str = ""
    rows: int = 0
    items: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    violations: int = 0
    requests: int = 0
    extra_requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    unfinished: bool = False  # put back in the inbox with items not sent (stopped, API down)


@dataclass
class RunSummary:
    run_id: str
    command: str
    started_at: str
    target: str = ""  # the API this run talked to (DESIGN.md section 9); '' for `etl check`
    files: list[FileSummary] = field(default_factory=list)
    # Work due whatever the inbox held: the order action log flushed, tracked actions polled.
    due_work: dict[str, int] = field(default_factory=dict)
    left_in_inbox: list[str] = field(default_factory=list)  # claimed, then not started
    finished_at: str = ""
    seconds: float = 0.0
    exit_code: int = 0

    def as_json(self) -> dict[str, Any]:
        totals: Counter[str] = Counter()
        for file in self.files:
            totals.update(file.outcomes)
        return {
            "run_id": self.run_id,
            "command": self.command,
            "target": self.target,
            "tool_version": __version__,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "totals": {
                "files": len(self.files),
                "items": sum(f.items for f in self.files),
                "outcomes": dict(sorted(totals.items())),
                "violations": sum(f.violations for f in self.files),
                "requests": sum(f.requests for f in self.files),
                "extra_requests": sum(f.extra_requests for f in self.files),
                "retries": sum(f.retries for f in self.files),
            },
            "files": [asdict(f) for f in self.files],
            "due_work": self.due_work,
            "left_in_inbox": self.left_in_inbox,
        }


def new_run_id(now: datetime | None = None) -> str:
    """Sortable by time, unique across processes: ``20261122T190512Z-3fa9``."""
    moment = now or datetime.now(UTC)
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
