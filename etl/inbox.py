"""The inbox life cycle, one rename per step: waiting -> claimed -> archive/ | failed/ | waiting.

A file is claimed by renaming it into ``<inbox>/.processing/`` (same file system, so the rename is
atomic and two processes can never both take it). A file left there by a killed run is resumed by
the next one. Finished files move to ``<outbox>/archive/<run_id>/`` or
``<outbox>/failed/<run_id>/``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from etl.kinds import is_ignored
from etl.report import atomic_writer, beside

PROCESSING = ".processing"
LOCK_NAME = ".etl.lock"


class InboxLock:
    """One process at a time works on an inbox: a watcher, or a run, never both.

    ``flock`` is released by the kernel when the process dies, so a kill -9 leaves no stale lock.
    """

    def __init__(self, inbox: Path, purpose: str = "etl watch") -> None:
        self.path = inbox / LOCK_NAME
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> str | None:
        """None when acquired; otherwise a sentence saying who holds the inbox."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            return (
                f"the inbox {self.path.parent} is already taken by {holder}; "
                "one watcher or run per inbox (stop it first, or use another inbox)"
            )
        os.ftruncate(fd, 0)
        os.write(fd, f"{self.purpose} (pid {os.getpid()})".encode())
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    size: int
    mtime_ns: int


def snapshot(path: Path) -> Snapshot | None:
    """Size and mtime of a file, or None when it is gone."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return Snapshot(stat.st_size, stat.st_mtime_ns)


def waiting_files(inbox: Path) -> list[Path]:
    """Files in the inbox that may be taken, oldest first (arrival order)."""
    if not inbox.is_dir():
        return []
    found = []
    for entry in os.scandir(inbox):
        path = Path(entry.path)
        if entry.is_file(follow_symlinks=False) and not is_ignored(path):
            found.append((entry.stat().st_mtime_ns, path.name, path))
    return [path for _, _, path in sorted(found)]


def claimed_files(inbox: Path) -> list[Path]:
    """Files a previous run claimed but did not finish (it was killed): resume them first."""
    folder = inbox / PROCESSING
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not is_ignored(p)),
        key=lambda p: (p.stat().st_mtime_ns, p.name),
    )


def stable_files(
    paths: list[Path],
    settle_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Path], list[Path]]:
    """(stable, still changing): a file is stable when size and mtime hold for the settle period."""
    if not paths or settle_seconds <= 0:
        return list(paths), []
    before = {path: snapshot(path) for path in paths}
    sleep(settle_seconds)
    stable: list[Path] = []
    changing: list[Path] = []
    for path in paths:
        now = snapshot(path)
        if now is None:
            continue  # deleted meanwhile: nothing to take
        (stable if now == before[path] else changing).append(path)
    return stable, changing


def claim(path: Path, inbox: Path) -> Path | None:
    """Rename the file into the processing folder; None if another process took it first."""
    folder = inbox / PROCESSING
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    if target.exists():
        return None  # a file of that name is already in progress; take it next time
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    return target


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    try:
        os.replace(path, target)
    except OSError:
        # Inbox and outbox on different file systems: copy, then remove (never lose the file).
        shutil.copy2(path, target)
        path.unlink()
    # Exports hold names and addresses: kept files are for their owner's eyes only.
    target.chmod(0o600)
    return target


def archive(path: Path, outbox: Path, run_id: str) -> Path:
    return _move(path, outbox / "archive" / run_id)


def quarantine(path: Path, outbox: Path, run_id: str, reason: str) -> Path:
    """Move to failed/ and write ``<name>.reason.txt`` beside it, so the file explains itself."""
    target = _move(path, outbox / "failed" / run_id)
    with atomic_writer(beside(target.parent, target.name, ".reason.txt")) as stream:
        stream.write(reason.rstrip() + "\n")
    return target


def release(path: Path, inbox: Path) -> Path:
    """Put a claimed file back in the inbox for the next run (the API could not be reached)."""
    target = inbox / path.name
    if target.exists():
        return path  # a newer file of the same name arrived; keep ours claimed for resumption
    os.replace(path, target)
    return target
