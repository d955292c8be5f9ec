"""Input files opened once, as what they are: never through a symbolic link, never a pipe or a
device, never a file that has another name elsewhere (a hard link), never another user's.

Whatever a name leads to can change between a check and a read (someone swaps the file for a
link). So the checks are made on the open descriptor (``fstat``), and what was checked is what
is read: pyarrow opens files by path, so readers are handed ``/proc/self/fd/N``, which opens
that very file again whatever its name leads to now.

Owners: a file must belong to the user running the tool or to the owner of the inbox. A file
of any other user got there through someone who could not have read it (root's files, moved in
by a mistake or a trick); a person who drops files puts in their own.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

PROC_FDS = Path("/proc/self/fd")
# O_NONBLOCK: opening a FIFO for reading would wait for a writer, for ever. Cleared at once.
OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
NOT_REGULAR = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


class InputRefused(Exception):
    """The file may not be read; ``reason`` says why in a person's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def allowed_owners(folder: Path) -> frozenset[int]:
    """The user running the tool and the owner of ``folder`` (the inbox)."""
    return frozenset({os.geteuid(), folder.stat().st_uid})


def refusal(found: os.stat_result, owners: frozenset[int]) -> str | None:
    """Why a file with this stat may not be read; None when it may."""
    kind = stat.S_IFMT(found.st_mode)
    if kind != stat.S_IFREG:
        what = NOT_REGULAR.get(kind, "not a regular file")
        advice = (
            "the tool never reads what a link points to (it could be anywhere on this machine)"
            if kind == stat.S_IFLNK
            else "the tool reads only regular files"
        )
        return f"{what}, not a regular file; {advice}: copy the file itself into the inbox"
    if found.st_nlink != 1:
        return (
            f"the file has {found.st_nlink} names (hard links), and another of them may be "
            "anywhere on this machine: copy the file into the inbox instead of linking it"
        )
    if found.st_uid not in owners:
        mine = ", ".join(str(uid) for uid in sorted(owners))
        return (
            f"the file belongs to user {found.st_uid}, neither the user running the tool nor "
            f"the inbox's owner (user {mine}): copy it into the inbox as one of them"
        )
    return None


def open_no_follow(name: str | Path, dir_fd: int | None = None) -> int:
    """A read descriptor of the entry itself: ELOOP for a symbolic link, no wait on a FIFO."""
    fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd


def open_checked(
    name: str | Path, owners: frozenset[int], dir_fd: int | None = None
) -> tuple[int, os.stat_result]:
    """Open and check one entry (``refusal``), or raise InputRefused; FileNotFoundError if gone.

    What is not a regular file is refused from ``lstat`` before it is opened (opening a device
    can do things); the descriptor's own stat then decides, whatever came in between."""
    before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    reason = refusal(before, owners)
    if reason is not None and not stat.S_ISREG(before.st_mode):
        raise InputRefused(reason)
    try:
        fd = open_no_follow(name, dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:  # became a link since the lstat
            raise InputRefused(f"{NOT_REGULAR[stat.S_IFLNK]}, not a regular file") from None
        raise
    found = os.fstat(fd)
    reason = refusal(found, owners)
    if reason is not None:
        os.close(fd)
        raise InputRefused(reason)
    return fd, found


def open_inside(root: Path, parts: Sequence[str], owners: frozenset[int]) -> int:
    """Open ``root/parts...`` without following a link anywhere below ``root``: each folder is
    opened from the one before it, so no name can be swapped for a link on the way."""
    folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(
                    part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder
                )
            except NotADirectoryError:
                if stat.S_ISLNK(os.stat(part, dir_fd=folder, follow_symlinks=False).st_mode):
                    raise InputRefused(f"the folder '{part}' is a symbolic link") from None
                raise FileNotFoundError(errno.ENOENT, "not a folder", part) from None
            os.close(folder)
            folder = inner
        return open_checked(parts[-1], owners, dir_fd=folder)[0]
    finally:
        os.close(folder)


class InputFile:
    """A claimed input, open and checked: read it through ``data``, name it by ``path``."""

    def __init__(self, path: Path, fd: int, checked: os.stat_result) -> None:
        self.path = path
        self.fd = fd
        self.checked = checked

    @classmethod
    def open(cls, path: Path, owners: frozenset[int]) -> InputFile:
        """Raise InputRefused (with the reason for failed/) or OSError."""
        fd, found = open_checked(path, owners)
        return cls(path, fd, found)

    @property
    def data(self) -> Path:
        """The path readers open: this very file. Without /proc (not Linux), its name."""
        return PROC_FDS / str(self.fd) if PROC_FDS.is_dir() else self.path

    def changed(self) -> bool:
        """True when the file was written to since it was checked (a writer that kept it
        open), or its name now leads to another file: what was read may not be all it holds."""
        now = os.fstat(self.fd)
        if (now.st_size, now.st_mtime_ns) != (self.checked.st_size, self.checked.st_mtime_ns):
            return True
        try:
            named = self.path.lstat()
        except FileNotFoundError:
            return True
        return (named.st_dev, named.st_ino) != (self.checked.st_dev, self.checked.st_ino)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> InputFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()
