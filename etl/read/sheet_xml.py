"""What python-calamine does not say about an .xlsx sheet, from its XML: formulas, date cells.

An .xlsx file is a ZIP of XML parts. One pass over the chosen sheet's part finds every cell
holding a formula (``<f>``) and every number cell whose number format shows a date or a time,
with its serial number as stored; ``styles.xml`` says which formats those are, ``workbook.xml``
which part is the sheet and whether the workbook counts days from 1904.
"""

from __future__ import annotations

import html
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from etl.core.errors import UnreadableFile

RELATIONSHIP_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
# Built-in number formats (ECMA-376 part 1, 18.8.30) that show a date, a time, or both.
BUILTIN_KINDS = {
    **dict.fromkeys((14, 15, 16, 17, *range(27, 37), *range(50, 59)), "date"),
    **dict.fromkeys((18, 19, 20, 21, 45, 46, 47), "time"),
    22: "datetime",
}
# In a format code: quoted text, escaped characters and [colour]/[locale] sections show no date.
NOT_DATE_PARTS = re.compile(r'"[^"]*"|\\.|\[(?![hms]+\])[^\]]*\]|_.|\*.')
CELL = re.compile(rb"<(?:\w+:)?(row|c)\b([^>]*?)(/?)>")
ATTRIBUTE = re.compile(rb'\b(r|s|t)="([^"]*)"')
CELL_END = re.compile(rb"</(?:\w+:)?c>")
FORMULA = re.compile(rb"<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)")
VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
FORMULA_START = re.compile(rb"<f[\s>/]")
CELL_START = re.compile(rb"<c ([^>]*?)/?>")
REFERENCE_ATTRIBUTE = re.compile(rb'\br="([A-Za-z]+[0-9]+)"')
TYPE_ATTRIBUTE = re.compile(rb'\bt="(?!n")')  # a type other than a number
# Cells the fast scan cannot place: with a namespace prefix, or without their r="B2".
PREFIXED_CELL = re.compile(rb"<\w+:c[\s/>]")
UNNAMED_CELL = re.compile(rb'<c(?=[\s/>])(?![^>]*\br=")')
REFERENCE = re.compile(r"([A-Z]+)([0-9]+)")


@dataclass(frozen=True, slots=True)
class Formula:
    row: int  # 0-based, as the grid python-calamine gives
    column: int
    text: str  # "" for a cell sharing another cell's formula


@dataclass(frozen=True, slots=True)
class DateCell:
    serial: str  # as stored: "46327.41666666666"
    kind: str  # "date", "time" or "datetime", by the cell's number format


@dataclass(slots=True)
class SheetXml:
    formulas: list[Formula] = field(default_factory=list)
    dates: dict[tuple[int, int], DateCell] = field(default_factory=dict)
    date1904: bool = False


def column_letters(column: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_name(row: int, column: int) -> str:
    """A cell as Excel names it, from 0-based indexes: (1, 5) -> F2."""
    return f"{column_letters(column)}{row + 1}"


def _position(reference: str) -> tuple[int, int] | None:
    found = REFERENCE.fullmatch(reference.upper())
    if found is None:
        return None
    column = 0
    for letter in found.group(1):
        column = column * 26 + ord(letter) - 64
    return int(found.group(2)) - 1, column - 1


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def scan_workbook(path: Path, sheet: str) -> SheetXml:
    """Formulas and date cells of the sheet named ``sheet``; UnreadableFile if the ZIP cannot
    be read (python-calamine opened it already, so this is rare)."""
    try:
        with zipfile.ZipFile(path) as archive:
            part, date1904 = _sheet_part(archive, sheet)
            kinds = _date_styles(archive)
            data = archive.read(part)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError) as error:
        raise UnreadableFile(str(path), f"not a readable Excel workbook (.xlsx): {error}") from None
    scanned = _scan(data, kinds)
    scanned.date1904 = date1904
    return scanned


def _sheet_part(archive: zipfile.ZipFile, sheet: str) -> tuple[str, bool]:
    """The ZIP path of the sheet's XML, and whether the workbook uses the 1904 date system."""
    workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
    date1904 = False
    target_id = None
    for element in workbook.iter():
        tag = _local(element.tag)
        if tag == "workbookPr":
            date1904 = element.get("date1904", "").lower() in ("1", "true")
        elif tag == "sheet" and element.get("name") == sheet:
            target_id = element.get(RELATIONSHIP_ID)
    relationships = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    for element in relationships.iter():
        if _local(element.tag) == "Relationship" and element.get("Id") == target_id:
            target = element.get("Target", "")
            if target.startswith("/"):
                return target.lstrip("/"), date1904
            return posixpath.normpath(posixpath.join("xl", target)), date1904
    raise KeyError(f"no part for the sheet '{sheet}'")


def _date_styles(archive: zipfile.ZipFile) -> dict[int, str]:
    """Cell style index -> "date", "time" or "datetime", for the styles whose format shows one."""
    try:
        styles = ElementTree.fromstring(archive.read("xl/styles.xml"))
    except KeyError:
        return {}
    custom: dict[int, str] = {}
    kinds: dict[int, str] = {}
    for element in styles.iter():
        if _local(element.tag) == "numFmt":
            kind = format_kind(element.get("formatCode", ""))
            if kind:
                custom[int(element.get("numFmtId", "0"))] = kind
    for element in styles.iter():
        if _local(element.tag) == "cellXfs":
            for index, xf in enumerate(x for x in element if _local(x.tag) == "xf"):
                number_format = int(xf.get("numFmtId", "0"))
                kind = custom.get(number_format) or BUILTIN_KINDS.get(number_format)
                if kind:
                    kinds[index] = kind
    return kinds


def format_kind(code: str) -> str | None:
    """What a number format code shows: "date", "time", "datetime", or None (a number)."""
    bare = NOT_DATE_PARTS.sub("", code.split(";")[0]).lower()
    has_time = "h" in bare or "s" in bare
    has_date = "y" in bare or "d" in bare or ("m" in bare and not has_time)
    if has_date and has_time:
        return "datetime"
    return "date" if has_date else "time" if has_time else None


def _scan(data: bytes, kinds: dict[int, str]) -> SheetXml:
    """Formulas and date cells of a sheet's XML. Excel names every cell (``r="B2"``): then
    only the cells that matter are looked at, by pattern, in C (the whole sheet cell by cell in
    Python took five times as long as reading it); otherwise cells are counted in order."""
    if PREFIXED_CELL.search(data) or UNNAMED_CELL.search(data):
        return _scan_in_order(data, kinds)
    scanned = SheetXml()
    for found in FORMULA_START.finditer(data):
        start = data.rfind(b"<c ", 0, found.start())
        cell = CELL_START.match(data, start) if start >= 0 else None
        where = _reference(cell.group(1)) if cell is not None else None
        if where is not None:
            formula = FORMULA.match(data, found.start())
            text = formula.group(1) if formula is not None and formula.group(1) else b""
            scanned.formulas.append(Formula(*where, _formula_text(text)))
    if kinds:
        styles = b"|".join(str(index).encode() for index in sorted(kinds))
        # From each cell's style attribute, the fastest thing to find, back to its tag.
        for found in re.finditer(rb' s="(' + styles + rb')"', data):
            start = data.rfind(b"<c ", 0, found.start())
            end = data.find(b">", found.end())
            if start < 0 or end < 0 or data.find(b">", start, found.start()) >= 0:
                continue  # the style of a row or a column, not of a cell
            tag = data[start + 3 : end]
            if tag.endswith(b"/"):
                continue  # <c .../>: no value
            where = _reference(tag)
            cell_type = TYPE_ATTRIBUTE.search(tag)
            close = data.find(b"</c>", end)
            value = VALUE.search(data, end, close if close >= 0 else len(data))
            if where and cell_type is None and value is not None:
                kind = kinds[int(found.group(1))]
                scanned.dates[where] = DateCell(value.group(1).decode(), kind)
    return scanned


def _attributes(raw: bytes) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in ATTRIBUTE.findall(raw)}


def _reference(raw: bytes) -> tuple[int, int] | None:
    found = REFERENCE_ATTRIBUTE.search(raw)
    return _position(found.group(1).decode()) if found is not None else None


def _formula_text(raw: bytes) -> str:
    return html.unescape(raw.decode("utf-8", "replace"))


def _scan_in_order(data: bytes, kinds: dict[int, str]) -> SheetXml:
    """``_scan`` for XML whose cells are not all named, or carry a namespace prefix: each cell
    in turn, its place counted from the row's and the cell before it."""
    scanned = SheetXml()
    row, column = -1, -1
    position = 0
    while (found := CELL.search(data, position)) is not None:
        tag, attributes, closed = found.group(1), found.group(2), found.group(3)
        position = found.end()
        values = _attributes(attributes)
        if tag == b"row":
            row = int(values["r"]) - 1 if "r" in values else row + 1
            column = -1
            continue
        where = _position(values["r"]) if "r" in values else None
        row, column = where if where is not None else (row, column + 1)
        if closed:
            continue
        end = CELL_END.search(data, position)
        body = data[position : end.start() if end else len(data)]
        position = end.end() if end else len(data)
        formula = FORMULA.search(body)
        if formula is not None:
            scanned.formulas.append(Formula(row, column, _formula_text(formula.group(1) or b"")))
        kind = kinds.get(int(values.get("s", "0") or 0))
        value = VALUE.search(body)
        if kind and values.get("t", "n") == "n" and value is not None:
            scanned.dates[(row, column)] = DateCell(value.group(1).decode(), kind)
    return scanned
