"""``outbox/actions/pending-<time>.csv``: the actions Connect waits for, for the ERP to read.

Written whole or not at all (temp file, fsync, rename, then the folder synced), so that a
message is deleted from the queue only once its row is on disk for good.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from etl.core.files import atomic_writer
from etl.report.files import neutral

PENDING_FOLDER = "actions"
UNREADABLE_SUFFIX = ".unreadable.jsonl"


def pending_name(now: float) -> str:
    """The pending file of a batch received at ``now`` (UTC, to the microsecond)."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"pending-{stamp}.csv"


def write_pending(
    outbox: Path, name: str, columns: Sequence[str], rows: list[dict[str, str]]
) -> Path:
    """Write the pending file ``name`` durably; the path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        # Ids and words come from the event: never a formula in a spreadsheet.
        writer.writerow([neutral(row.get(column, "")) for column in columns])
    path = outbox / PENDING_FOLDER / name
    with atomic_writer(path) as stream:
        stream.write(buffer.getvalue())
    sync_folder(path.parent)
    return path


def write_unreadable(outbox: Path, name: str, messages: list[dict[str, str]]) -> Path:
    """Keep the messages that hold no event (id, reason, body) beside the pending files."""
    path = outbox / PENDING_FOLDER / (name.removesuffix(".csv") + UNREADABLE_SUFFIX)
    with atomic_writer(path, "wb") as stream:
        for message in messages:
            stream.write(orjson.dumps(message) + b"\n")
    sync_folder(path.parent)
    return path


def sync_folder(folder: Path) -> None:
    """A rename is durable once its folder is synced (a power cut could undo it before)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
