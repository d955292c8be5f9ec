"""File -> table of text cells: CSV (dialect sniffed, encodings) and Parquet (native types).

Every cell comes out as text, the way a person would have typed it, so one strict conversion path
(``convert.py``) serves both formats. Rows are numbered as a spreadsheet shows them: header = row 1.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import math
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from etl.core.errors import UnreadableFile
from etl.core.models import Violation
from etl.read.excel import EXCEL_SUFFIX, read_sheet
from etl.settings.options import DELIMITER_NAMES, DELIMITERS, ReadOptions

UTF8_NAMES = ("utf-8", "utf-8-sig")  # codecs.lookup(...).name of the UTF-8 encodings
SNIFF_BYTES = 64 * 1024
# pyarrow reads a CSV in blocks and refuses a row that spans more than two ("straddling
# object"). Every reader of a CSV (read_arrow, the index and data passes of stream.py) uses
# blocks of this size, so that a row one of them reads, all read: with 8 MB blocks for the index
# pass and 1 MB for the data pass, a 3 MB row was found unreadable midway through the data
# pass, once orders before it were sent. 1 MB: 8 MB blocks for both cost 6% more time, and no
# order line comes near (Connect's longest field takes 100,000 characters).
MAX_ROW_BYTES = 1 << 20
# A blank line after the header, with LF or CRLF line ends; in a file whose lines end in CR
# alone (old Mac exports), two CRs. Two patterns: one with both alternatives is tried at every
# byte, seven times slower.
BLANK_LINE = re.compile(rb"(?:^|\n)\r?\n")
BLANK_CR_LINE = re.compile(rb"\r\r")
LINE_END = re.compile(r"[\r\n]")


@dataclass(slots=True)
class Table:
    """Column-major text cells with the spreadsheet row number of each record; ``native``: the
    columns stored as dates or timestamps (Parquet), whose text is ISO 8601."""

    columns: list[str]
    cells: dict[str, list[str]]
    row_numbers: list[int]
    native: frozenset[str] = frozenset()
    # What the reader noticed that holds nothing back (merged cells, hidden sheets of a workbook).
    warnings: tuple[Violation, ...] = ()

    @property
    def num_rows(self) -> int:
        return len(self.row_numbers)


def fingerprint(path: Path) -> str:
    """SHA-256 of the file's bytes: the identity of a file across names and runs."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def refuse_missing_or_empty(path: Path) -> None:
    """Raise UnreadableFile for a file gone or empty: the first reasons every reader gives."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnreadableFile(str(path), "the file disappeared before it could be read") from None
    if size == 0:
        raise UnreadableFile(str(path), "the file is empty (0 bytes)")


def read_table(
    path: Path,
    options: ReadOptions | None = None,
    ignore: Collection[str] = (),
    lists: Collection[str] | None = None,
    name: str = "",
) -> Table:
    """Read a CSV, Parquet or Excel file, or raise UnreadableFile with a reason a person can act on.
    Parquet: ``ignore``, columns the mapping drops, may hold anything; ``lists``, the columns
    whose path means a list (None: any column), hold them as JSON text (``["a","b"]``).
    ``name``: the file's name when ``path`` is not it (an open file's ``/proc/self/fd/N``)."""
    options = options or ReadOptions()
    refuse_missing_or_empty(path)
    suffix = PurePath(name or path.name).suffix.lower()
    if suffix == ".parquet":
        return read_parquet(path, ignore, lists, name)
    if suffix == EXCEL_SUFFIX:
        sheet = read_sheet(path, options.sheet, ignore, name)
        return Table(sheet.header, sheet.cells, sheet.row_numbers, sheet.native, sheet.warnings)
    return _read_csv(path, options)


# --- CSV ---------------------------------------------------------------------------------------


def sniff_delimiter(sample: str) -> str:
    """The delimiter among , ; tab | that splits the header into the most columns consistently."""
    lines = sample.splitlines()
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines[:50])), delimiter=delimiter))
        except csv.Error:
            continue
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        # Drop the last row: the sample may cut it in half.
        body = rows[1:-1] if len(rows) > 2 else rows[1:]
        consistent = sum(1 for row in body if len(row) == width)
        score = (consistent, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _decode_sample(path: Path, raw: bytes, encoding: str) -> str:
    if b"\x00" in raw and not encoding.lower().startswith("utf-16"):
        raise UnreadableFile(
            str(path),
            "the file looks binary (it contains NUL bytes), not a CSV text export; if it is a "
            "UTF-16 export, set encoding = 'utf-16' in the configuration",
        )
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        if error.start >= len(raw) - 4:  # a multi-byte character cut by the sample's end
            text = raw[: error.start].decode(encoding)
        else:
            raise UnreadableFile(str(path), encoding_problem(raw, error, encoding)) from None
    except LookupError:
        raise UnreadableFile(str(path), f"unknown encoding '{encoding}'") from None
    return text.removeprefix("\ufeff")


def read_head(path: Path, encoding: str, raw: bytes | None = None) -> str:
    """The start of a CSV as text: SNIFF_BYTES for the dialect and the binary check, or more,
    up to the end of the header row, however long it is (thousands of columns)."""
    size = SNIFF_BYTES
    while True:
        if raw is not None:
            head = raw[:size]
        else:
            with path.open("rb") as handle:
                head = handle.read(size)
        text = _decode_sample(path, head, encoding)
        if len(head) < size or _header_end(text) >= 0:
            return text
        size *= 4


def header_only(head: str) -> bool:
    """The start of a file (``read_head``) is all of it, and no line end follows the header:
    a header without rows (pyarrow refuses to skip a header that does not end a line)."""
    return _header_end(head) < 0


def _header_end(text: str) -> int:
    """Where the header row ends: its first line end outside quotes (-1: not in ``text``)."""
    for found in LINE_END.finditer(text):
        if text.count('"', 0, found.start()) % 2 == 0:
            return found.start()
    return -1


def line_number(raw: bytes, position: int) -> int:
    """The line ``position`` is on, counting LF line ends (CRLF too), or CR ones in a file
    that has no LF."""
    ends = raw.count(b"\n", 0, position)
    if not ends and b"\n" not in raw:
        ends = raw.count(b"\r", 0, position)
    return ends + 1


def encoding_problem(raw: bytes, error: UnicodeDecodeError, encoding: str) -> str:
    line = line_number(raw, error.start)
    problem = (
        f"the file is not valid {encoding.upper()} (byte 0x{raw[error.start]:02X} on line {line})"
    )
    if codecs.lookup(encoding).name in UTF8_NAMES:
        return f"{problem}; save it as UTF-8, or set encoding (e.g. 'cp1252') in the configuration"
    return (
        f"{problem}, the encoding the configuration names; set the one the export is written "
        "in, or save it as UTF-8"
    )


def csv_problem(
    path: Path, encoding: str, error: Exception, raw: bytes | None = None
) -> UnreadableFile:
    """Why pyarrow could not read a CSV, in the user's words: bytes the encoding cannot read
    (pyarrow says where in its own blocks only: the file is decoded whole to find them), a row
    longer than its blocks, or pyarrow's own words. ``raw``: the file's bytes, if at hand."""
    if isinstance(error, UnicodeDecodeError) or "utf8" in str(error).lower():
        raw = path.read_bytes() if raw is None else raw
        try:
            raw.decode(encoding)
        except UnicodeDecodeError as decode_error:
            return UnreadableFile(str(path), encoding_problem(raw, decode_error, encoding))
    if "straddling object" in str(error):  # its advice, "increase block size", no one can take
        return UnreadableFile(str(path), _row_too_long(path))
    return UnreadableFile(str(path), f"the CSV cannot be parsed: {error}")


def _row_too_long(path: Path) -> str:
    row, size, unclosed = longest_row(path)
    limit = f"more than the {MAX_ROW_BYTES >> 20} MB a row may hold"
    if unclosed:
        return (
            f"a quoted cell opened on row {row} is never closed, so the rest of the file "
            f"({_megabytes(size)}) reads as one cell, {limit}; close the quote (a quote inside a "
            'quoted cell is written twice: "")'
        )
    return (
        f"row {row} is {_megabytes(size)} long, {limit} (no order's cell is that large); the "
        f"likely cause is a quote opened on row {row} and closed only much later: check the "
        "quoting there"
    )


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def longest_row(path: Path) -> tuple[int, int, bool]:
    """The longest row of a CSV, as (spreadsheet row, bytes, whether it is a quote never
    closed that runs to the end of the file). A line end after an even number of quotes ends a
    row (a quote inside a quoted cell is doubled, so it keeps the count even). Every byte goes
    through numpy: for explaining a file that could not be read, not for each file."""
    line_end = 0
    quotes = ends_seen = row_start = offset = 0
    best_row, best_size = 1, 0
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            if not line_end:  # LF (and CRLF); CR alone in a file without LF (old Mac)
                line_end = 13 if b"\n" not in block and b"\r" in block else 10
            data = np.frombuffer(block, dtype=np.uint8)
            ends, marks = np.flatnonzero(data == line_end), np.flatnonzero(data == ord('"'))
            ends = ends[(quotes + np.searchsorted(marks, ends)) % 2 == 0] + offset
            if ends.size:
                sizes = ends + 1 - np.concatenate(([row_start], ends[:-1] + 1))
                longest = int(np.argmax(sizes))
                if sizes[longest] > best_size:
                    best_row, best_size = ends_seen + longest + 1, int(sizes[longest])
                ends_seen += ends.size
                row_start = int(ends[-1]) + 1
            quotes += marks.size
            offset += len(block)
    unclosed = quotes % 2 == 1
    if unclosed or offset - row_start > best_size:  # the last row, without a line end
        return ends_seen + 1, offset - row_start, unclosed
    return best_row, best_size, False


def read_header(path: Path, sample: str, delimiter: str, configured: bool = False) -> list[str]:
    """The header's column names, or UnreadableFile saying why there are none to read.
    ``configured``: the delimiter comes from the settings, not from sniffing."""
    try:
        # newline="": line ends as csv reads them, CR alone included (old Mac exports).
        header = next(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
    except (StopIteration, csv.Error):
        raise UnreadableFile(str(path), "the file has no header row") from None
    names = [name.strip() for name in header]
    if not any(names):
        raise UnreadableFile(str(path), "the header row is empty")
    if len(names) == 1 and re.search(r"[^\w.\[\] -]", names[0]):
        one_column = f"the header reads as one single column ('{names[0][:60]}')"
        if configured:
            raise UnreadableFile(str(path), f"{one_column}: {_other_delimiter(sample, delimiter)}")
        raise UnreadableFile(
            str(path),
            f"{one_column}: the file is not separated by , ; tab or |; export it with one of "
            "them, or set delimiter in the configuration",
        )
    seen: set[str] = set()
    duplicates = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if duplicates:
        raise UnreadableFile(
            str(path), f"the header names these columns more than once: {', '.join(duplicates)}"
        )
    blank = [str(i + 1) for i, n in enumerate(names) if not n]
    if blank:
        raise UnreadableFile(str(path), f"header column(s) {', '.join(blank)} have no name")
    return names


def _other_delimiter(sample: str, configured: str) -> str:
    """Why a header does not split on the configured delimiter: the one it does split on, if
    any. (Otherwise every such file was said to use none of them, a comma file set to ';'
    included, and the setting to fix went unnamed.)"""
    said = f"the settings say the file is separated by {_delimiter_text(configured)}"
    found = sniff_delimiter(sample)
    header = next(csv.reader(io.StringIO(sample, newline=""), delimiter=found), [])
    if found != configured and len(header) > 1:
        return (
            f"{said}, but its header is separated by {_delimiter_text(found)}; fix delimiter in "
            "[read] (etl.toml or the mapping file), or remove it to have the separator detected"
        )
    return (
        f"{said}, but its header holds none of , ; tab or |; export it separated by "
        f"{_delimiter_text(configured)}, as the settings say"
    )


def _delimiter_text(delimiter: str) -> str:
    name = DELIMITER_NAMES[delimiter]
    return name if delimiter == "\t" else f"'{delimiter}' ({name})"


def _read_csv(path: Path, options: ReadOptions) -> Table:
    table, row_numbers = read_arrow(path, options)
    names = table.column_names
    cells = {name: table.column(name).to_pylist() for name in names}
    return Table(columns=names, cells=cells, row_numbers=row_numbers)


def read_arrow(path: Path, options: ReadOptions) -> tuple[pa.Table, list[int]]:
    """A whole CSV file as an Arrow table of text columns, and the spreadsheet row numbers."""
    raw = path.read_bytes()
    sample = read_head(path, options.encoding, raw)
    delimiter = options.delimiter or sniff_delimiter(sample)
    names = read_header(path, sample, delimiter, configured=options.delimiter is not None)
    invalid: list[Any] = []

    def keep_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    if header_only(sample):
        return pa.table({name: pa.array([], pa.string()) for name in names}), []
    try:
        settings = text_csv_options(names, delimiter, options.encoding, keep_invalid, MAX_ROW_BYTES)
        table = pacsv.read_csv(io.BytesIO(raw), **settings)
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise csv_problem(path, options.encoding, error, raw) from None
    if raw.count(b'"') % 2 == 1:
        check_quotes(path, raw, options.encoding, delimiter)
    if invalid:
        raise ragged_rows(path, invalid, delimiter)
    # A header without rows is read (a day without orders): the pipeline reports it as empty.
    row_numbers = _spreadsheet_rows(raw, options.encoding, delimiter, table.num_rows)
    return table, row_numbers


def text_csv_options(
    names: list[str],
    delimiter: str,
    encoding: str,
    keep_invalid: Callable[[Any], str],
    block_size: int | None = None,
    include: list[str] | None = None,
) -> dict[str, Any]:
    """pyarrow CSV options that read every cell as the text it is: no nulls, no type guessing
    (``NA`` stays ``NA``, ``00123`` keeps its zeros), rows of the wrong width collected."""
    read_options = pacsv.ReadOptions(encoding=encoding, column_names=names, skip_rows=1)
    if block_size is not None:
        read_options.block_size = block_size
    return {
        "read_options": read_options,
        "parse_options": pacsv.ParseOptions(
            delimiter=delimiter, newlines_in_values=True, invalid_row_handler=keep_invalid
        ),
        "convert_options": pacsv.ConvertOptions(
            column_types={name: pa.string() for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
            null_values=[],
            include_columns=include or [],
        ),
    }


def ragged_rows(path: Path, invalid: list[Any], delimiter: str) -> UnreadableFile:
    """The error for rows whose field count is not the header's (pyarrow's InvalidRow list)."""
    first = invalid[0]
    starts = first.text.split(delimiter, 1)[0][:40]
    return UnreadableFile(
        str(path),
        f"{len(invalid)} row(s) do not have the header's {first.expected_columns} columns "
        f"(the first, starting '{starts}', has {first.actual_columns}); "
        f"the file was read as {DELIMITER_NAMES[delimiter]}-separated: check the delimiter "
        "and the quoting",
    )


def check_quotes(path: Path, raw: bytes, encoding: str, delimiter: str) -> None:
    """An odd number of quotes may be a quote left open, which swallows every row after it."""
    text = raw.decode(encoding).removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        for _ in reader:
            pass
    except csv.Error as error:
        raise UnreadableFile(
            str(path),
            f"a quoted field is never closed (opened at or before line {reader.line_num}): {error}",
        ) from None


def first_line_end(data: bytes) -> int:
    """Where the first line ends (its CR, or its LF), -1 if it does not in ``data``."""
    found = [at for at in (data.find(b"\n"), data.find(b"\r")) if at >= 0]
    return min(found, default=-1)


def ends_in_cr(data: bytes, line_end: int) -> bool:
    """The line ending at ``line_end`` (first_line_end) ends in CR alone: an old Mac file."""
    return data[line_end : line_end + 1] == b"\r" and data[line_end + 1 : line_end + 2] != b"\n"


def _spreadsheet_rows(raw: bytes, encoding: str, delimiter: str, count: int) -> list[int]:
    """Row numbers as a spreadsheet shows them; blank lines count, multi-line cells do not."""
    header_end = first_line_end(raw)
    blank = BLANK_CR_LINE if ends_in_cr(raw, header_end) else BLANK_LINE
    if not blank.search(raw, header_end + 1):
        return list(range(2, count + 2))
    text = raw.decode(encoding).removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    next(reader, None)
    numbers = [number for number, row in enumerate(reader, start=2) if row]
    return numbers[:count]


# --- Parquet -----------------------------------------------------------------------------------


def parquet_problem(path: Path, name: str, error: Exception) -> UnreadableFile:
    """pyarrow's reason, with the file's name where it names the path it opened (an open
    file's ``/proc/self/fd/N`` tells a person nothing)."""
    first = str(error).splitlines()[0].replace(str(path), name or path.name)
    return UnreadableFile(str(path), f"not a readable Parquet file ({first})")


def read_parquet(
    path: Path,
    ignore: Collection[str] = (),
    lists: Collection[str] | None = None,
    name: str = "",
) -> Table:
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise parquet_problem(path, name, error) from None
    names = [name.strip() for name in table.column_names]
    if len(set(names)) != len(names):
        raise UnreadableFile(str(path), "the Parquet file names a column more than once")
    used = {name: table.column(i) for i, name in enumerate(names) if name not in ignore}
    types = {name: column.type for name, column in used.items()}
    refuse_unflat_columns(path, types, types if lists is None else lists)
    for name, column in used.items():
        refuse_bytes_not_text(path, name, column)
    # The same text as the streamed path's, column by column; an ignored column may hold
    # anything, and nothing reads it.
    cells = {
        name: text_array(used[name]).to_pylist() if name in used else [""] * table.num_rows
        for name in names
    }
    rows = list(range(2, table.num_rows + 2))
    return Table(columns=names, cells=cells, row_numbers=rows, native=native_times(types))


def native_times(types: dict[str, pa.DataType]) -> frozenset[str]:
    """The columns (name -> Arrow type) stored as dates or timestamps: their text names the
    instant in ISO 8601, which no date format of the settings is for."""
    return frozenset(name for name, kind in types.items() if _is_time(kind))


def _is_time(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_time(kind.value_type)
    return bool(pa.types.is_timestamp(kind) or pa.types.is_date(kind))


def _unflat(kind: pa.DataType) -> str | None:
    """What a column of this type holds that one cell cannot (None: it has a flat meaning)."""
    if pa.types.is_dictionary(kind):
        return _unflat(kind.value_type)
    if isinstance(kind, pa.ExtensionType):
        return _unflat(kind.storage_type)
    if pa.types.is_struct(kind):
        return "a group of fields"
    if pa.types.is_map(kind):
        return "key-value pairs"
    if _is_list(kind):
        return "a list"
    if pa.types.is_union(kind):
        return "one of several types"
    if pa.types.is_duration(kind):
        return "a duration"
    if pa.types.is_interval(kind):
        return "an interval"
    return None


def _is_list(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)
    )


def refuse_unflat_columns(path: Path, types: dict[str, pa.DataType], lists: Iterable[str]) -> None:
    """Raise UnreadableFile naming every column (name -> Arrow type) whose values have no flat
    meaning: a struct, a map, a list (but in ``lists``, the columns whose path means a list)...
    Their Python text (``{'a': 1}``) would otherwise be sent as if it were the field's value."""
    allowed = set(lists)
    problems = []
    for name, kind in types.items():
        words = _unflat(kind)
        if words is not None and not (words == "a list" and name in allowed):
            problems.append(f"'{name}' ({_type_name(kind)}: {words})")
    if problems:
        raise UnreadableFile(
            str(path),
            "Parquet columns with no place in a flat row: "
            + "; ".join(sorted(problems))
            + ". Give each field or element a column of its own, named by its path (e.g. "
            "order_lines.taxes[0].code), or ignore the column in a mapping file",
        )


def _type_name(kind: pa.DataType) -> str:
    """A Parquet column's type as a person reads it (Arrow's own names its list items and map
    entries after the writer's internals)."""
    if pa.types.is_dictionary(kind):
        return _type_name(kind.value_type)
    if pa.types.is_map(kind):
        return f"map of {_type_name(kind.key_type)} to {_type_name(kind.item_type)}"
    if _is_list(kind):
        return f"list of {_type_name(kind.value_type)}"
    if pa.types.is_struct(kind):
        fields = ", ".join(f"{field.name}: {_type_name(field.type)}" for field in kind)
        return f"struct<{fields}>"
    return str(kind)


def is_bytes(kind: pa.DataType) -> bool:
    """A BINARY column (of any width)."""
    return bool(
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def refuse_bytes_not_text(path: Path, name: str, column: pa.Array | pa.ChunkedArray) -> None:
    """A column of bytes is text when they are UTF-8 (older writers, Hive and Impala among them,
    store strings as plain BINARY); raise UnreadableFile, naming the first row, when not."""
    if not is_bytes(column.type):
        return
    try:
        column.cast(pa.binary()).cast(pa.string())
        return
    except pa.ArrowInvalid:
        pass
    values = column.to_pylist()
    row = next(i for i, value in enumerate(values) if value is not None and not _utf8(value))
    raise UnreadableFile(
        str(path),
        f"the Parquet column '{name}' holds bytes that are not UTF-8 text (row {row + 2} is the "
        "first): write it as a text (UTF-8 string) column",
    )


def _utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def text_array(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column as the text cells the CSV path gives: strings, no nulls (see ``_parquet_text``)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if is_bytes(array.type):  # UTF-8, checked when the file was opened (refuse_bytes_not_text)
        array = array.cast(pa.binary()).cast(pa.string())
    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        if array.null_count:
            array = pc.fill_null(array, "")
        return array.cast(pa.string())
    plain = _plain_text(array)
    if plain is not None:
        return plain
    if (
        pa.types.is_list(array.type)
        or pa.types.is_large_list(array.type)
        or array.null_count == len(array)
    ):
        return pa.array([_parquet_text(v) for v in array.to_pylist()], type=pa.string())
    try:
        encoded = array.dictionary_encode()
    except pa.ArrowNotImplementedError:
        return pa.array([_parquet_text(v) for v in array.to_pylist()], type=pa.string())
    texts = pa.array([_parquet_text(v) for v in encoded.dictionary.to_pylist()], type=pa.string())
    taken = texts.take(encoded.indices)
    return pc.fill_null(taken, "") if taken.null_count else taken


# Seconds since 1970 of 1000-01-01 and of 10000-01-01 (proleptic Gregorian, as Arrow counts).
_FOUR_DIGIT_YEARS = (-30_610_224_000, 253_402_300_800)


def _plain_text(array: pa.Array) -> pa.Array | None:
    """``_parquet_text`` of the common native types, computed in Arrow (None: not one of them).
    Each case is held to ``_parquet_text`` by a test."""
    kind = array.type
    if array.null_count == len(array):
        return None
    if pa.types.is_integer(kind) or (pa.types.is_decimal(kind) and kind.scale >= 0):
        texts = array.cast(pa.string())
    elif pa.types.is_boolean(kind):
        texts = pc.if_else(array, "true", "false")
    elif pa.types.is_timestamp(kind):
        texts = _timestamp_text(array)
        if texts is None:
            return None
    else:
        return None
    return pc.fill_null(texts, "") if texts.null_count else texts


def _timestamp_text(array: pa.Array) -> pa.Array | None:
    """``isoformat()`` of each timestamp in years 1000-9999 (None: one is outside), computed in
    Arrow: to the nanosecond (a Python datetime stops at microseconds, and without pandas
    pyarrow refuses to make one of a timestamp with nanoseconds), a zoned column as its UTC
    wall clock and ``+00:00`` (the same instant)."""
    kind = array.type
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[kind.unit]
    ticks = array.cast(pa.int64())
    low, high = (max(-(2**63), min(per_second * s, 2**63 - 1)) for s in _FOUR_DIGIT_YEARS)
    inside = pc.and_(pc.greater_equal(ticks, low), pc.less(ticks, high))
    if not pc.all(pc.fill_null(inside, True)).as_py():
        return None
    whole = pc.equal(pc.subtract(ticks, pc.multiply(pc.divide(ticks, per_second), per_second)), 0)
    # Arrow's own cast writes "YYYY-MM-DD HH:MM:SS[.fff]", 15 times faster than strftime; whole
    # seconds (the common case) are cast to seconds, and need no fraction trimmed.
    unit = "s" if pc.all(pc.fill_null(whole, True)).as_py() else kind.unit
    wall = array.cast(pa.timestamp(unit), safe=False)  # a zone dropped: the UTC wall clock
    texts = pc.replace_substring(wall.cast(pa.string()), " ", "T", max_replacements=1)
    if unit != "s":
        # Arrow writes as many digits as the unit has (3, 6 or 9); isoformat none for a whole
        # second, 6 for microseconds, 9 only when there are nanoseconds.
        texts = pc.replace_substring_regex(texts, r"\.0+$", "")
        if unit == "ms":
            texts = pc.replace_substring_regex(texts, r"(\.[0-9]{3})$", r"\1000")
        elif unit == "ns":
            texts = pc.replace_substring_regex(texts, r"(\.[0-9]{6})000$", r"\1")
    if kind.tz is not None:
        texts = pc.binary_join_element_wise(texts, "+00:00", "")
    return texts


def _parquet_text(value: Any) -> str:
    """A native Parquet value written as the text the CSV path expects."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        # pandas stores integer columns with gaps as float64: 3.0 is the integer 3.
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return str(value)
