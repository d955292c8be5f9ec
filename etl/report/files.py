"""Outcomes -> outbox files (DESIGN.md section 5), each written to a temp name and renamed.

Files are created readable by their owner only: items, errors and requests hold personal data.
"""

from __future__ import annotations

import csv
import io
import os
import queue
import re
import threading
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from etl.core.files import atomic_writer, beside
from etl.core.models import ItemResult, Violation

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
ERROR_COLUMNS = ["file", "row", "id", "field", "column", "code", "message", "value"]
# A 150,000-character cell helps nobody in a report (and breaks spreadsheet tools): clip it.
MAX_SHOWN = 300
# DESIGN.md section 9: a spreadsheet runs a cell starting with one of these as a formula, so a
# report cell echoing the data (an id, a value, an API message) gets a leading GUARD ...
FORMULA_STARTS = frozenset("=+-@\t\r")
GUARD = "'"
# ... unless it is a plain number (read as a number, never run; a decimal comma is one too) ...
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?")
# ... and a cell that starts with guards before a formula gets one more, so that ``restored``
# gives back exactly what the data held. The writers test this set's first character only.
GUARDED_STARTS = FORMULA_STARTS | {GUARD}


def clip(text: str) -> str:
    if len(text) <= MAX_SHOWN:
        return text
    return f"{text[:MAX_SHOWN]}... ({len(text)} characters)"


def neutral(text: str) -> str:
    """``text`` as a report cell that a spreadsheet shows and never runs."""
    if text[:1] not in GUARDED_STARTS or not _runs_as_formula(text.lstrip(GUARD)):
        return text
    return GUARD + text


def restored(text: str) -> str:
    """A report cell read back: the text ``neutral`` was given."""
    if text[:1] == GUARD and _runs_as_formula(text.lstrip(GUARD)):
        return text[1:]
    return text


def _runs_as_formula(text: str) -> bool:
    return text[:1] in FORMULA_STARTS and PLAIN_NUMBER.fullmatch(text) is None


def rows_text(rows: Iterable[int]) -> str:
    return ",".join(str(r) for r in rows)


def item_row(file_name: str, result: ItemResult) -> list[Any]:
    """One row of ``<input>.items.csv``; cells from the data or the API made ``neutral``."""
    origin = result.origin
    return [
        neutral(file_name),
        rows_text(result.rows),
        neutral(origin.channel_id) if origin else "",
        neutral(origin.channel_store_id) if origin else "",
        neutral(result.item_id),
        result.outcome.value,
        result.batch_id,
        "" if result.http_status is None else result.http_status,
        neutral(result.code),
        neutral(clip(result.message)),
    ]


def error_row(file_name: str, violation: Violation) -> list[Any]:
    """One row of ``<input>.errors.csv``; cells from the data or the API made ``neutral``."""
    return [
        neutral(file_name),
        rows_text(violation.rows),
        neutral(violation.item_id or ""),
        violation.path,  # ours: always starts with $
        neutral(clip(violation.column)),  # the user's header
        neutral(violation.code),
        neutral(clip(violation.message)),
        "" if violation.value is None else neutral(clip(violation.value)),
    ]


def write_items(path: Path, file_name: str, results: Iterable[ItemResult]) -> None:
    with atomic_writer(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(ITEM_COLUMNS)
        writer.writerows(item_row(file_name, result) for result in results)


def write_errors(path: Path, file_name: str, violations: Iterable[Violation]) -> None:
    with atomic_writer(path) as stream:
        writer = csv.writer(stream)
        writer.writerow(ERROR_COLUMNS)
        writer.writerows(error_row(file_name, violation) for violation in violations)


def csv_text(rows: Iterable[list[Any]]) -> str:
    """Rows as the report writers write them (csv.writer, excel dialect)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


class BackgroundWriter:
    """Writes to ``stream`` in a thread, so that the caller goes on while the kernel copies (the
    requests of a million order lines are 0.8 GB); ``close`` waits for the last byte. At most
    ``limit`` bytes wait, so memory stays bounded."""

    def __init__(self, stream: IO[bytes], limit: int = 64 << 20) -> None:
        self.stream = stream
        self.limit = limit
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._waiting = 0
        self._room = threading.Condition()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="etl-writer", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        with self._room:
            self._room.wait_for(lambda: self._waiting < self.limit or self._error is not None)
            if self._error is not None:
                raise self._error
            self._waiting += len(data)
        self._queue.put(data)

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                if self._error is None:
                    self.stream.write(data)
            except BaseException as error:  # raised in the caller at its next write or close
                self._error = error
            with self._room:
                self._waiting -= len(data)
                self._room.notify_all()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StreamingReports:
    """The reports of one file written while it is processed (bounded memory), each to its temp
    name, renamed into place by ``commit`` only: a failure leaves no partial report behind."""

    def __init__(self, run_dir: Path, file_name: str) -> None:
        self.file_name = file_name
        self._stack = ExitStack()
        requests = self._stack.enter_context(
            atomic_writer(beside(run_dir, file_name, ".requests.jsonl"), "wb")
        )
        self.requests = self._stack.enter_context(BackgroundWriter(requests))
        self._items = self._stack.enter_context(
            atomic_writer(beside(run_dir, file_name, ".items.csv"), "wb")
        )
        self.items_written = 0  # bytes
        self._errors = self._stack.enter_context(
            atomic_writer(beside(run_dir, file_name, ".errors.csv"))
        )
        self.item_text(csv_text([ITEM_COLUMNS]))
        self.errors = csv.writer(self._errors)
        self.errors.writerow(ERROR_COLUMNS)

    def item_text(self, text: str) -> None:
        """Lines already formatted by ``csv_text``."""
        data = text.encode("utf-8")
        self._items.write(data)
        self.items_written += len(data)

    def patch_item(self, offset: int, data: bytes) -> None:
        """Overwrite bytes already written to items.csv (a batch id left blank until known)."""
        self._items.flush()
        os.pwrite(self._items.fileno(), data, offset)

    def error(self, violation: Violation) -> None:
        self.errors.writerow(error_row(self.file_name, violation))

    def error_text(self, text: str) -> None:
        self._errors.write(text)

    def commit(self) -> None:
        self._stack.close()

    def abandon(self, error: BaseException) -> None:
        self._stack.__exit__(type(error), error, error.__traceback__)


def read_errors(path: Path) -> list[dict[str, str]]:
    """The rows of an errors.csv (used by ``etl report`` and the tests)."""
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
