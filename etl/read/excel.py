"""Excel workbook (.xlsx) -> the text cells the CSV path would give, one sheet, sheet row numbers.

python-calamine reads the cells; it says nothing of formulas, and it turns Excel's serial dates
into Python dates without telling a date cell from a date-time one (a date-time at midnight comes
out as a date) and maps Excel's fictitious 1900-02-29 (serial 60) onto 1900-02-28. So the
sheet's XML is also scanned once (``sheet_xml.py``): for the cells holding a formula, which are
refused, and for each date cell its stored serial number and its number format, converted here.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import python_calamine

from etl.core.codes import Problem
from etl.core.errors import UnreadableFile
from etl.core.models import Violation
from etl.read.sheet_xml import DateCell, SheetXml, cell_name, column_letters, scan_workbook

EXCEL_SUFFIX = ".xlsx"
MAX_FORMULAS_NAMED = 10
# Excel holds 15 significant digits and shows no more: a double such as 0.30000000000000004
# is the 0.3 its user typed.
EXCEL_DIGITS = 15
MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class Sheet:
    """One sheet as text: the header, each column's cells, the sheet row of each record, the
    columns holding dates only (their text is ISO 8601, as Parquet's native ones), warnings."""

    header: list[str]
    cells: dict[str, list[str]]
    row_numbers: list[int]
    native: frozenset[str]
    warnings: tuple[Violation, ...]
    name: str = ""  # the sheet's

    def arrow(self) -> pa.Table:
        """The sheet as an Arrow table of strings, the way a Parquet file of text enters."""
        return pa.table({name: pa.array(self.cells[name], pa.string()) for name in self.header})


def read_sheet(
    path: Path, sheet: str | None = None, ignore: Collection[str] = (), name: str = ""
) -> Sheet:
    """The named sheet (else the first) of a workbook, or UnreadableFile saying why not.
    ``ignore``: columns a mapping drops (a formula there is not refused); ``name``: the file's
    name when ``path`` is not it."""
    name = name or path.name
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    except python_calamine.PasswordError:
        raise UnreadableFile(
            str(path), "the workbook is protected by a password: save a copy without one"
        ) from None
    except (python_calamine.CalamineError, OSError, ValueError) as error:
        raise UnreadableFile(str(path), f"not a readable Excel workbook (.xlsx): {error}") from None
    with workbook:
        sheets = workbook.sheets_metadata
        if not sheets:
            raise UnreadableFile(str(path), "the workbook has no sheet")
        chosen = _chosen(path, sheets, sheet)
        try:
            grid = workbook.get_sheet_by_name(chosen.name)
            rows = grid.to_python(skip_empty_area=False)
            merged = grid.merged_cell_ranges or []
        except python_calamine.CalamineError as error:
            raise UnreadableFile(
                str(path), f"the sheet '{chosen.name}' cannot be read: {error}"
            ) from None
    scanned = scan_workbook(path, chosen.name)
    warnings = [*_hidden_warnings(name, sheets, chosen), *_merged_warnings(name, merged)]
    return _sheet(path, name, chosen.name, rows, scanned, ignore, tuple(warnings))


def _chosen(path: Path, sheets: list[Any], wanted: str | None) -> Any:
    if wanted is None:  # the first sheet of cells (a chart sheet holds none)
        work = python_calamine.SheetTypeEnum.WorkSheet
        return next((meta for meta in sheets if meta.typ == work), sheets[0])
    for meta in sheets:
        if meta.name == wanted:
            return meta
    names = ", ".join(f"'{meta.name}'" for meta in sheets)
    raise UnreadableFile(
        str(path),
        f"the workbook has no sheet '{wanted}' (the mapping's [read] sheet); its sheets: {names}",
    )


def _hidden_warnings(name: str, sheets: list[Any], chosen: Any) -> list[Violation]:
    visible = python_calamine.SheetVisibleEnum.Visible
    warnings = []
    for meta in sheets:
        if meta.visible == visible:
            continue
        if meta is chosen:
            message = (
                f"the sheet read, '{meta.name}', is hidden in Excel: check that it is the one "
                "meant (name another with [read] sheet in a mapping file)"
            )
        else:
            message = (
                f"the workbook has a hidden sheet, '{meta.name}', which was not read (only "
                f"'{chosen.name}' was); name it with [read] sheet in a mapping file if it holds "
                "the orders"
            )
        warnings.append(Violation(name, (), None, "$", Problem.HIDDEN_SHEET, message))
    return warnings


def _merged_warnings(name: str, merged: list[Any]) -> list[Violation]:
    warnings = []
    for (top, left), (bottom, right) in merged:
        first, last = cell_name(top, left), cell_name(bottom, right)
        warnings.append(
            Violation(
                name,
                tuple(range(top + 1, bottom + 2)),
                None,
                "$",
                Problem.MERGED_CELLS,
                f"cells {first}:{last} are merged: only {first} holds the value, the other cells "
                "read as empty; unmerge them and fill every cell",
            )
        )
    return warnings


def _sheet(
    path: Path,
    name: str,
    sheet_name: str,
    rows: list[list[Any]],
    scanned: SheetXml,
    ignore: Collection[str],
    warnings: tuple[Violation, ...],
) -> Sheet:
    top = next((r for r, row in enumerate(rows) if any(_filled(v) for v in row)), None)
    if top is None:
        raise UnreadableFile(str(path), f"the sheet '{sheet_name}' is empty: it has no header row")
    header_cells = rows[top]
    width = max(len(row) for row in rows)
    header_cells = list(header_cells) + [""] * (width - len(header_cells))
    texts = [_header_text(value, top, c, scanned) for c, value in enumerate(header_cells)]
    used = [c for c, text in enumerate(texts) if text]
    left = min(used)  # columns before the header's first name, empty in the header, are not data
    last = max(used)
    body = list(enumerate(rows[top + 1 :], start=top + 1))
    _refuse_unnamed(path, texts, left, last, width, body)
    names = texts[left : last + 1]
    _refuse_duplicates(path, names)
    kept = [left + i for i, column in enumerate(names) if column not in ignore]
    _refuse_formulas(path, scanned, set(kept), top)
    # A blank row (as a blank line of a CSV) is skipped, and still counted. Column by column:
    # most cells are text, taken as they are; a row at a time cost twice as much.
    filled = [(r, row) for r, row in body if _holds_something(row[left : last + 1])]
    dates: dict[int, dict[int, DateCell]] = {}
    for (r, c), cell in scanned.dates.items():
        dates.setdefault(c, {})[r] = cell
    cells: dict[str, list[str]] = {}
    native = set()
    position = {r: index for index, (r, _) in enumerate(filled)}
    for offset, column in enumerate(names):
        c = left + offset
        values = [row[c] if c < len(row) else "" for _, row in filled]
        column_texts = [v if type(v) is str else _value_text(v) for v in values]
        dated = 0
        for r, date_cell in dates.get(c, {}).items():
            index = position.get(r)
            if index is not None:
                column_texts[index] = serial_text(date_cell, scanned.date1904)
                dated += 1
        # A column of dates only names its instants itself, as a Parquet date column does.
        if dated and dated == len(column_texts) - column_texts.count(""):
            native.add(column)
        cells[column] = column_texts
    numbers = [r + 1 for r, _ in filled]
    return Sheet(names, cells, numbers, frozenset(native), warnings, sheet_name)


def _filled(value: Any) -> bool:
    return not (value is None or value == "")


def _holds_something(values: list[Any]) -> bool:
    return len(values) > values.count("") + values.count(None)


def _refuse_unnamed(
    path: Path,
    texts: list[str],
    left: int,
    last: int,
    width: int,
    body: list[tuple[int, list[Any]]],
) -> None:
    """A value under no header name, inside the header or beyond its last name, has no
    column to go to: refused, as a CSV row longer than its header is."""
    unnamed = [c for c in range(width) if c < left or c > last or not texts[c]]
    for r, row in body:
        for c in unnamed:
            if c < len(row) and _filled(row[c]):
                where = (
                    "has no name in the header" if left <= c <= last else "is outside the header"
                )
                raise UnreadableFile(
                    str(path),
                    f"cell {cell_name(r, c)} holds a value but its column "
                    f"{column_letters(c)} {where}: name the column, or delete the value",
                )
    blank = [column_letters(c) for c in range(left, last + 1) if not texts[c]]
    if blank:
        raise UnreadableFile(str(path), f"header column(s) {', '.join(blank)} have no name")


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        raise UnreadableFile(
            str(path), f"the header names these columns more than once: {', '.join(duplicates)}"
        )


def _refuse_formulas(path: Path, scanned: SheetXml, columns: set[int], top: int) -> None:
    """A formula's value in the file is the one Excel computed when it was last saved: it may be
    stale (a workbook written by a program is often never recalculated), so none is sent."""
    found = [f for f in scanned.formulas if f.column in columns and f.row >= top]
    if not found:
        return
    shown = ", ".join(
        f"{cell_name(f.row, f.column)} (={f.text})" if f.text else cell_name(f.row, f.column)
        for f in found[:MAX_FORMULAS_NAMED]
    )
    more = f" and {len(found) - MAX_FORMULAS_NAMED} more" if len(found) > MAX_FORMULAS_NAMED else ""
    raise UnreadableFile(
        str(path),
        f"{len(found)} cell(s) hold a formula: {shown}{more}. A formula's value in the file is "
        "the one Excel computed when it was last saved, which may be stale; replace the formulas "
        "by their values (copy, then Paste Special > Values) and drop the file again",
    )


def _header_text(value: Any, row: int, column: int, scanned: SheetXml) -> str:
    date_cell = scanned.dates.get((row, column))
    if date_cell is not None:
        return serial_text(date_cell, scanned.date1904).strip()
    return (value if isinstance(value, str) else _value_text(value)).strip()


def _value_text(value: Any) -> str:
    """A cell that is not text as a CSV export of it would hold it, typed later by the schema
    (date cells are read from the sheet's XML instead: ``serial_text``)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()  # a date cell the scan did not see (not expected)
    return str(value)  # a duration


def number_text(value: float) -> str:
    """A number cell as Excel shows it at full precision: at most 15 significant digits, no
    exponent, no ``.0`` on a whole number (``3``, ``19.99``, ``0.3``)."""
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else repr(value)
    text = repr(value)
    # Most cells: a plain repr of at most 15 digits, written as it is (Decimal costs 3x more).
    if "e" not in text and len(text.lstrip("-").replace(".", "").lstrip("0")) <= EXCEL_DIGITS:
        return text.removesuffix(".0")
    exact = Decimal(text)
    if len(exact.as_tuple().digits) > EXCEL_DIGITS:
        exact = Decimal(format(value, f".{EXCEL_DIGITS}g"))
    if exact == exact.to_integral_value():
        return str(int(exact))
    return format(exact.normalize(), "f")


def serial_text(cell: DateCell, date1904: bool) -> str:
    """An Excel date cell (its stored serial number and the kind its number format shows) as
    ISO 8601 text: ``2026-11-01``, ``2026-11-01T10:00:00``, ``10:00:00``; to the millisecond,
    Excel's own precision. In the 1900 system serial 60 is Excel's 1900-02-29, a day that never
    was (kept for Lotus 1-2-3): written so, it is refused as no date, as in a CSV."""
    try:
        serial = Decimal(cell.serial)
    except ArithmeticError:
        return cell.serial
    if not serial.is_finite() or serial < 0:
        return cell.serial
    days = int(serial)
    millis = int((serial - days) * MS_PER_DAY + Decimal("0.5"))
    if millis >= MS_PER_DAY:
        days, millis = days + 1, millis - MS_PER_DAY
    clock = _clock(millis)
    if cell.kind == "time":
        return clock
    if date1904:
        day_text = (date(1904, 1, 1) + timedelta(days=days)).isoformat()
    elif days == 0:
        day_text = "1900-01-00"  # what Excel shows for serial 0: no day either
    elif days == 60:
        day_text = "1900-02-29"
    else:
        # Up to serial 59 Excel counts from 1899-12-31; after its fictitious 29 February, one
        # day less.
        day_text = (date(1899, 12, 31 if days < 60 else 30) + timedelta(days=days)).isoformat()
    if cell.kind == "date" and millis == 0:
        return day_text
    return f"{day_text}T{clock}"  # a date-time, or a date cell that holds a time too


def _clock(millis: int) -> str:
    seconds, fraction = divmod(millis, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    text = f"{hour:02d}:{minute:02d}:{second:02d}"
    return f"{text}.{fraction:03d}" if fraction else text
