"""Which file kind a file is, by its name (DESIGN.md section 2), and which names are never taken."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import Path, PurePath

from etl.core.schema import (
    ACTION_STATUSES,
    ANONYMIZATION,
    DOCUMENTS,
    ORDER_ACTIONS,
    ORDERS,
    TRACK_ACTIONS,
    FileKind,
)

# DESIGN.md section 2: the file name says what a file is.
# Every kind may come as an Excel workbook; orders also as JSON lines, one nested order each.
KIND_GLOBS: dict[str, tuple[str, ...]] = {
    ORDERS.name: (
        "orders*.csv",
        "orders*.parquet",
        "orders*.xlsx",
        "orders*.jsonl",
        "orders*.ndjson",
    ),
    ACTION_STATUSES.name: ("action-status*.csv", "action-status*.parquet", "action-status*.xlsx"),
    ORDER_ACTIONS.name: ("order-actions*.csv", "order-actions*.parquet", "order-actions*.xlsx"),
    TRACK_ACTIONS.name: ("track-actions*.csv", "track-actions*.parquet", "track-actions*.xlsx"),
    DOCUMENTS.name: ("documents*.csv", "documents*.xlsx"),
    ANONYMIZATION.name: ("anonymize*.csv", "anonymize*.parquet", "anonymize*.xlsx"),
}
KINDS: dict[str, FileKind] = {
    kind.name: kind
    for kind in (ORDERS, ACTION_STATUSES, ORDER_ACTIONS, TRACK_ACTIONS, DOCUMENTS, ANONYMIZATION)
}
IGNORED_GLOBS = (".*", "*.tmp", "*.part", "*.crdownload", "~$*")


def is_ignored(path: Path) -> bool:
    """Hidden and temporary names: files still being written by another program."""
    return any(fnmatch.fnmatch(path.name, glob) for glob in IGNORED_GLOBS)


def detect_kind(path: Path) -> FileKind | None:
    name = path.name.lower()
    for kind_name, globs in KIND_GLOBS.items():
        if any(fnmatch.fnmatch(name, glob) for glob in globs):
            return KINDS[kind_name]
    return None


def understood_names() -> str:
    """The file names the tool understands, for the message that explains a rejected file."""
    return "; ".join(f"{kind}: {', '.join(globs)}" for kind, globs in KIND_GLOBS.items())


# The column a rejected file (``<input>.rejected.csv``) adds to say what to fix in each row;
# skipped when the file comes back, fixed.
FIX_COLUMN = "etl: what to fix"
REJECTED_MARK = ".rejected"
# The format a rejected file is written in, by the input's: a table a person can edit.
REJECTED_SUFFIXES = {".xlsx": ".xlsx", ".jsonl": ".jsonl", ".ndjson": ".ndjson"}


def rejected_name(name: str, number: int = 1) -> str:
    """``orders-x.csv`` -> ``orders-x.rejected.csv`` (``.xlsx`` and JSON lines keep theirs,
    Parquet becomes CSV): its kind is read from its name as the input's was. ``number`` > 1
    names another when that one is taken (``orders-x.rejected-2.csv``)."""
    path = PurePath(name)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    suffix = REJECTED_SUFFIXES.get(path.suffix.lower(), ".csv")
    mark = REJECTED_MARK if number == 1 else f"{REJECTED_MARK}-{number}"
    return f"{stem}{mark}{suffix}"


REJECTED_FILE = re.compile(r"^(?P<stem>.+)\.rejected(?:-[0-9]+)?\.(?:csv|xlsx|jsonl|ndjson)$")


def rejected_companions(names: Iterable[str]) -> set[str]:
    """The rejected files among the names of one failed/<run_id>/ folder: named after another
    file there (its input), they are advice beside a failed input, not failed inputs."""
    present = set(names)
    stems = {name.rsplit(".", 1)[0]: name for name in present}
    companions = set()
    for name in present:
        found = REJECTED_FILE.match(name)
        if found is not None and stems.get(found.group("stem"), name) != name:
            companions.add(name)
    return companions
