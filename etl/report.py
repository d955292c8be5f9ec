"""Outcomes -> outbox files (DESIGN.md section 5), each written to a temp name and renamed.

Files are created readable by their owner only: items, errors and requests hold personal data.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

from etl.models import ItemResult, Violation

PRIVATE_FILE = 0o600
ITEM_COLUMNS = [
    "file",
    "rows",
    "channel_id",
    "channel_store_id",
    "id",
    "outcome",
    "batch",
    "http_status",
    "code",
    "message",
]
ERROR_COLUMNS = ["file", "row", "id", "field", "code", "message", "value"]
# A 150,000-character cell helps nobody in a report (and breaks spreadsheet tools): clip it.
MAX_SHOWN = 300


def clip(text: str) -> str:
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


@contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a hidden temp file beside ``path``; rename over it only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        os.fchmod(handle, PRIVATE_FILE)
        if "b" in mode:
            stream: IO[Any] = os.fdopen(handle, mode)
        else:
            stream = os.fdopen(handle, mode, encoding="utf-8", newline="")
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    with atomic_writer(path, "wb") as stream:
        stream.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def rows_text(rows: Iterable[int]) -> str:
    return ",".join(str(r) for r in rows)


def write_items(path: Path, file_name: str, results: Iterable[ItemResult]) -> None:
    with atomic_writer(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(ITEM_COLUMNS)
        for result in results:
            origin = result.origin
            writer.writerow(
                [
                    file_name,
                    rows_text(result.rows),
                    origin.channel_id if origin else "",
                    origin.channel_store_id if origin else "",
                    result.item_id,
                    result.outcome.value,
                    result.batch_id,
                    "" if result.http_status is None else result.http_status,
                    result.code,
                    clip(result.message),
                ]
            )


def write_errors(path: Path, file_name: str, violations: Iterable[Violation]) -> None:
    with atomic_writer(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(ERROR_COLUMNS)
        for violation in violations:
            writer.writerow(
                [
                    file_name,
                    rows_text(violation.rows),
                    violation.item_id or "",
                    violation.path,
                    violation.code,
                    clip(violation.message),
                    "" if violation.value is None else clip(violation.value),
                ]
            )


def write_requests(path: Path, bodies: Iterable[dict[str, Any]]) -> None:
    with atomic_writer(path, "wb") as stream:
        for body in bodies:
            stream.write(orjson.dumps(body) + b"\n")


def read_errors(path: Path) -> list[dict[str, str]]:
    """The rows of an errors.csv (used by ``etl report`` and the tests)."""
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
