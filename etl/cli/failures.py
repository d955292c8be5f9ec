"""How an error that ends a command is said, and its exit code: a usage error (2), the machine
(5: a full disk, a read-only folder), or a bug (4: the traceback saved, inputs left in place)."""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import traceback

from etl.core.errors import UsageError

EXIT_USAGE = 2
EXIT_NOT_FINISHED = 3  # an object store away: the objects stay for the next run
EXIT_INTERNAL = 4  # a bug: the traceback is saved, inputs stay for the next run
EXIT_ENVIRONMENT = 5  # the machine: a full disk, a read-only folder, permissions


def describe_environment_error(error: OSError | sqlite3.Error) -> str:
    if isinstance(error, sqlite3.Error) and not isinstance(error, sqlite3.OperationalError):
        return (
            f"the ledger is damaged ({error}): put back a copy from a backup, or move it away "
            "and run once with --fresh-ledger (every order it does not know is sent once more)"
        )
    if isinstance(error, sqlite3.Error):
        return (
            f"the ledger cannot be written ({error}); is the disk full or another run holding it?"
        )
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EFBIG: "the disk is full (or a file size limit was reached)",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    reason = reasons.get(error.errno or 0, error.strerror or str(error))
    target = f" ({error.filename})" if error.filename else ""
    return f"cannot read or write a file{target}: {reason}"


def save_traceback(error: BaseException | None = None) -> str:
    """Write the traceback of ``error`` (default: the exception being handled) to a private
    temp file; return its path."""
    handle, name = tempfile.mkstemp(prefix="etl-crash-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        if error is None:
            stream.write(traceback.format_exc())
        else:
            stream.write("".join(traceback.format_exception(error)))
    return name


def failure(error: BaseException) -> tuple[int, str]:
    """The exit code and the line for an error that ended one tenant's command, as ``main``
    says them for the whole process."""
    if isinstance(error, UsageError):
        return EXIT_USAGE, str(error)
    if isinstance(error, OSError | sqlite3.Error):
        return EXIT_ENVIRONMENT, describe_environment_error(error)
    where = save_traceback(error)
    return EXIT_INTERNAL, (
        f"internal error ({type(error).__name__}: {error}); the traceback is in {where}; "
        "inputs are left in place for the next run"
    )
