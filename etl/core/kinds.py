"""Which file kind a file is, by its name (DESIGN.md section 2), and which names are never taken."""

from __future__ import annotations

import fnmatch
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


def rejected_name(name: str) -> str:
    """``orders-x.csv`` -> ``orders-x.rejected.csv`` (``.xlsx`` and JSON lines keep theirs,
    Parquet becomes CSV): its kind is read from its name as the input's was. A rejected file
    that fails again keeps its name."""
    path = PurePath(name)
    suffix = path.suffix.lower()
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return (
        f"{stem.removesuffix(REJECTED_MARK)}{REJECTED_MARK}{REJECTED_SUFFIXES.get(suffix, '.csv')}"
    )
