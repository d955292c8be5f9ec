"""The inbox life cycle, one rename per step: waiting -> claimed -> archive/ | failed/ | waiting.

A file is claimed by renaming it into ``<inbox>/.processing/`` (same file system, so the rename is
atomic and two processes can never both take it). A file left there by a killed run is resumed by
the next one. Finished files move to ``<outbox>/archive/<run_id>/`` or
``<outbox>/failed/<run_id>/``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from etl.core.errors import UsageError
from etl.core.files import atomic_writer, beside
from etl.core.inputs import open_no_follow
from etl.core.kinds import is_ignored

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
        fd = _open_lock(self.path)
        if fd is None:
            return (
                f"the inbox lock {self.path} is not a regular file of its own (a link, or "
                "another kind of file): remove it, and the next run makes a new one"
            )
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


@contextmanager
def locked_inbox(inbox: Path, purpose: str) -> Iterator[None]:
    """The inbox for this process alone for the ``with`` block (``InboxLock``); a UsageError
    naming the holder when another watcher or run has it."""
    lock = InboxLock(inbox, purpose=purpose)
    holder = lock.acquire()
    if holder is not None:
        raise UsageError(holder)
    try:
        yield
    finally:
        lock.release()


def require_inbox(inbox: Path, create: bool) -> None:
    """A typo in a folder must not pass for an empty inbox: cron would hear "nothing to do"
    forever. ``create`` makes a missing one."""
    if inbox.is_dir():
        return
    if inbox.exists():
        raise UsageError(f"the inbox {inbox} is not a folder")
    if not create:
        raise UsageError(
            f"the inbox {inbox} does not exist (a typo?); create it, or pass --create "
            "(create=True from Python) to let the tool make it"
        )
    inbox.mkdir(parents=True)


def _open_lock(path: Path) -> int | None:
    """The lock file, created if need be; None when a link or anything but a file of its own
    stands there: it is truncated and rewritten, and that must never happen to another file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return None
        raise
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode) or found.st_nlink != 1:
        os.close(fd)
        return None
    return fd


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What stands at a name: size and mtime, and which entry it is (inode, type), so that a
    file swapped for a link or a pipe with the same size and mtime is a change too."""

    size: int
    mtime_ns: int
    inode: int = 0
    kind: int = 0  # stat.S_IFMT


def snapshot(path: Path) -> Snapshot | None:
    """The entry itself (never what a link points to), or None when it is gone."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return None
    return Snapshot(found.st_size, found.st_mtime_ns, found.st_ino, stat.S_IFMT(found.st_mode))


def waiting_files(inbox: Path) -> list[Path]:
    """Entries in the inbox that may be taken, oldest first (arrival order). Links, pipes and
    the like are listed too, so that the run refuses them into failed/ with a reason instead
    of leaving them unexplained; folders are not (documents live in them)."""
    if not inbox.is_dir():
        return []
    found = []
    for entry in os.scandir(inbox):
        path = Path(entry.path)
        if is_ignored(path) or entry.is_dir(follow_symlinks=False):
            continue
        try:
            found.append((entry.stat(follow_symlinks=False).st_mtime_ns, path.name, path))
        except FileNotFoundError:
            continue
    return [path for _, _, path in sorted(found)]


def claimed_files(inbox: Path) -> list[Path]:
    """Entries a previous run claimed but did not finish (it was killed): resume them first.
    Whatever stands there is listed, a link or a pipe too: the run refuses those."""
    folder = inbox / PROCESSING
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if is_ignored(path):
            continue
        try:
            found.append((path.lstat().st_mtime_ns, path.name, path))
        except FileNotFoundError:
            continue
    return [path for _, _, path in sorted(found)]


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
    if os.path.lexists(target):
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
        _copy_entry(path, target)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    # Exports hold names and addresses: kept files are for their owner's eyes only.
    make_private(target)
    return target


def _copy_entry(path: Path, target: Path) -> None:
    """Copy what stands at ``path`` as it is: a link as a link, never what it points to."""
    found = path.lstat()
    if stat.S_ISLNK(found.st_mode):
        os.symlink(os.readlink(path), target)
    elif stat.S_ISDIR(found.st_mode):
        shutil.copytree(path, target, symlinks=True)
    elif stat.S_ISREG(found.st_mode):
        fd = open_no_follow(path)
        with os.fdopen(fd, "rb") as source, target.open("xb") as copy:
            shutil.copyfileobj(source, copy)
        os.utime(target, ns=(found.st_atime_ns, found.st_mtime_ns))
    # A pipe, a socket or a device holds nothing to keep: its reason file says what it was.


def make_private(path: Path) -> None:
    """chmod 0600 through a descriptor of the file itself: never through a link (its target
    could be /etc/passwd), never a file with other names (their mode is the same one)."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return
        fd = open_no_follow(path)
    except OSError:
        return  # swapped for a link, or gone, meanwhile
    try:
        found = os.fstat(fd)
        if stat.S_ISREG(found.st_mode) and found.st_nlink == 1:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


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
    if os.path.lexists(target):
        return path  # a newer file of the same name arrived; keep ours claimed for resumption
    os.replace(path, target)
    return target
