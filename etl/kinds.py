"""Which file kind a file is, by its name (DESIGN.md section 2), and which names are never taken."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from etl.schema import ORDERS, FileKind

KIND_GLOBS: dict[str, tuple[str, ...]] = {
    ORDERS.name: ("orders*.csv", "orders*.parquet"),
}
KINDS: dict[str, FileKind] = {ORDERS.name: ORDERS}
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
