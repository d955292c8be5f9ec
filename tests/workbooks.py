"""Real .xlsx files for the tests, written with XlsxWriter as a spreadsheet program would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import xlsxwriter

Cell = str | int | float | bool | date | datetime | None


def write_xlsx(
    path: Path,
    rows: list[dict[str, Cell]],
    sheet: str = "Orders",
    first_row: int = 0,
    before: Callable[[Any], None] | None = None,
    after: Callable[[Any, Any], None] | None = None,
) -> Path:
    """A workbook whose sheet ``sheet`` holds the rows (header: the union of their keys) from
    row ``first_row`` (0-based). Text stays text (``00123``); numbers, booleans and dates are
    Excel's own cells (dates with a date or date-time format). ``before(workbook)`` adds sheets
    in front; ``after(workbook, worksheet)`` changes the sheet (merges, formulas...)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    day = workbook.add_format({"num_format": "yyyy-mm-dd"})
    moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    if before is not None:
        before(workbook)
    worksheet = workbook.add_worksheet(sheet)
    worksheet.write_row(first_row, 0, columns)
    for r, row in enumerate(rows, start=first_row + 1):
        for c, column in enumerate(columns):
            value = row.get(column)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                worksheet.write_string(r, c, value)
            elif isinstance(value, bool):
                worksheet.write_boolean(r, c, value)
            elif isinstance(value, datetime):
                worksheet.write_datetime(r, c, value, moment)
            elif isinstance(value, date):
                worksheet.write_datetime(r, c, datetime(value.year, value.month, value.day), day)
            else:
                worksheet.write_number(r, c, value)
    if after is not None:
        after(workbook, worksheet)
    workbook.close()
    return path
