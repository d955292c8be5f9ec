"""``<input>.rejected.csv`` (``.xlsx`` for a workbook, ``.jsonl`` for JSON lines): the rows of
the orders that were not accepted, in the input's own columns, and one more saying what to fix.

Fixed and dropped back in the inbox, it is read as the input was (its name says the same kind,
a mapping's glob still matches it, the added column is skipped) and its orders are sent.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path, PurePath

import orjson
import xlsxwriter

from etl.core.files import atomic_writer
from etl.core.kinds import FIX_COLUMN, rejected_name
from etl.core.models import ItemResult, Outcome, Violation
from etl.read.excel import EXCEL_SUFFIX, read_sheet
from etl.read.jsonl import is_json_lines
from etl.read.tables import read_head, read_table, sniff_delimiter
from etl.settings.options import ReadOptions

TO_FIX = frozenset({Outcome.INVALID, Outcome.REJECTED})


def fixes_by_row(results: Iterable[ItemResult], violations: Iterable[Violation]) -> dict[int, str]:
    """The rows of the orders to fix (invalid or rejected), each with what to fix in it: the
    problems naming the row, the file's own problems (a column it lacks), else a pointer to
    the rows of the same order that hold its problems."""
    rows_of = [r.rows for r in results if r.outcome in TO_FIX and r.rows]
    if not rows_of:
        return {}
    whole_file = [v.message for v in violations if v.whole_file]
    own: dict[int, list[str]] = defaultdict(list)
    for violation in violations:
        for row in violation.rows:
            if violation.message not in own[row]:
                own[row].append(violation.message)
    fixes: dict[int, str] = {}
    for rows in rows_of:
        elsewhere = [row for row in rows if own.get(row)]
        for row in rows:
            messages = [*whole_file, *own.get(row, [])]
            if not messages:
                where = ", ".join(str(r) for r in elsewhere) or "the order"
                messages = [f"this row's order has problems on row(s) {where}; fix those"]
            fixes[row] = " | ".join(messages)
    return fixes


def write_rejected(
    data: Path,
    name: str,
    folder: Path,
    options: ReadOptions,
    ignore: Iterable[str],
    fixes: dict[int, str],
) -> Path | None:
    """Write the rejected file of the input ``name`` (read from ``data``) into ``folder``;
    None when no row is to fix. UnreadableFile or OSError when the input cannot be read again."""
    if not fixes:
        return None
    target = folder / rejected_name(name)
    number = 1
    while target.exists():  # never over another file, an input that failed above all
        number += 1
        target = folder / rejected_name(name, number)
    suffix = PurePath(name).suffix.lower()
    if is_json_lines(name):
        content = _json_lines(data, fixes)
    elif suffix == EXCEL_SUFFIX:
        content = _workbook(data, name, options, frozenset(ignore), fixes)
    else:
        content = _csv(data, name, options, frozenset(ignore), fixes)
    with atomic_writer(target, "wb") as stream:
        stream.write(content)
    return target


def _json_lines(data: Path, fixes: dict[int, str]) -> bytes:
    """The lines as written, each object with what to fix in one more key; a line that is not
    JSON is kept as it is (its problem is in errors.csv)."""
    out = []
    with data.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number not in fixes:
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                out.append(raw.rstrip(b"\r\n") + b"\n")
                continue
            if isinstance(value, dict):
                value[FIX_COLUMN] = fixes[number]
                out.append(orjson.dumps(value) + b"\n")
            else:
                out.append(raw.rstrip(b"\r\n") + b"\n")
    return b"".join(out)


def _csv(
    data: Path, name: str, options: ReadOptions, ignore: frozenset[str], fixes: dict[int, str]
) -> bytes:
    """A CSV in the input's separator and encoding (Parquet: comma, UTF-8), cells as read."""
    table = read_table(data, options, ignore, name=name)
    is_csv = PurePath(name).suffix.lower() not in (".parquet",)
    delimiter = ","
    encoding = "utf-8"
    if is_csv:
        encoding = options.encoding
        delimiter = options.delimiter or sniff_delimiter(read_head(data, options.encoding))
    text = io.StringIO(newline="")
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    columns = [c for c in table.columns if c != FIX_COLUMN]  # a rejected file's, fixed again
    writer.writerow([*columns, FIX_COLUMN])
    for index, row in enumerate(table.row_numbers):
        if row in fixes:
            writer.writerow([*(table.cells[c][index] for c in columns), fixes[row]])
    return text.getvalue().encode(encoding, errors="replace")


def _workbook(
    data: Path, name: str, options: ReadOptions, ignore: frozenset[str], fixes: dict[int, str]
) -> bytes:
    """A workbook with one sheet of the same name, every cell as text (so ``00123`` and the
    dates read back as they were read)."""
    sheet = read_sheet(data, options.sheet, ignore, name)
    output = io.BytesIO()
    workbook = xlsxwriter.Workbook(output, {"in_memory": True})
    worksheet = workbook.add_worksheet(sheet.name)
    columns = [c for c in sheet.header if c != FIX_COLUMN]  # a rejected file's, fixed again
    worksheet.write_row(0, 0, [*columns, FIX_COLUMN])
    at = 1
    for index, row in enumerate(sheet.row_numbers):
        if row not in fixes:
            continue
        for column, header in enumerate(columns):
            text = sheet.cells[header][index]
            if text:
                worksheet.write_string(at, column, text)
        worksheet.write_string(at, len(columns), fixes[row])
        at += 1
    workbook.close()
    return output.getvalue()
