"""File -> chunks of whole items, streamed: an index pass over the key columns, then the data.

The index pass reads only the columns that group rows into items (the id and the origin): it
counts the rows, finds the reasons ``read.read_table`` would refuse the file (before anything is
built or sent), and notes where each item starts. An item whose rows are not contiguous makes the
file fall back to reading it whole and regrouping its rows in memory (what ``Mapper`` does), so
streaming in bounded memory is for files whose items are contiguous (e.g. sorted by id).
The data pass then hands out chunks of whole items, each with the line-id duplicates that
``Mapper`` would report for it.
"""

from __future__ import annotations

import codecs
import csv
import gc
import hashlib
import re
from array import array
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from etl.core.errors import UnreadableFile
from etl.core.models import Origin, Violation
from etl.core.process_setup import owns_process
from etl.core.schema import FileKind, Kind, Level
from etl.read.excel import EXCEL_SUFFIX, read_sheet
from etl.read.tables import (
    BLANK_CR_LINE,
    MAX_ROW_BYTES,
    UTF8_NAMES,
    check_quotes,
    csv_problem,
    encoding_problem,
    ends_in_cr,
    first_line_end,
    header_only,
    is_bytes,
    native_times,
    parquet_problem,
    ragged_rows,
    read_arrow,
    read_head,
    read_header,
    read_parquet,
    refuse_bytes_not_text,
    refuse_missing_or_empty,
    refuse_unflat_columns,
    sniff_delimiter,
    text_array,
    text_csv_options,
)
from etl.settings.options import ColumnMapping, ReadOptions
from etl.transform.fast.seen import SeenKeys, distinct_pairs, scope_hashes, text_hashes
from etl.transform.mapping import CHUNK_ITEMS, PlanColumn, resolve_columns, source_texts

PARQUET_BATCH_ROWS = 16 * 1024


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A DUPLICATE_LINE_ID violation for one item: its line at ``position``, the rows named."""

    position: int
    rows: tuple[int, int]
    line_id: str


@dataclass(slots=True)
class Chunk:
    """Whole items: item ``g`` spans rows ``starts[g]:starts[g+1]`` of ``batch``."""

    batch: pa.RecordBatch
    row_numbers: list[int]
    starts: list[int]
    first_item: int
    duplicates: dict[int, list[Duplicate]] = field(default_factory=dict)  # by item in chunk


@dataclass
class OpenedFile:
    """An opened file whose index pass is done: its rows, items and column plan."""

    path: Path
    name: str
    header: list[str]
    columns: list[PlanColumn]
    kind: FileKind
    default_origin: Origin | None
    rows: int
    starts: np.ndarray  # first row of each item, then the row count
    numbers: np.ndarray | None  # spreadsheet row of each row; None: row index + 2
    batches: Any  # () -> Iterator[pa.RecordBatch] of every column, in item order
    origins: int = 0  # how many distinct origins (channel, store) the rows name, at most
    warnings: tuple[Violation, ...] = ()  # the reader's (merged cells of a workbook...)

    @property
    def items(self) -> int:
        return len(self.starts) - 1

    def row_number(self, row: int) -> int:
        return int(self.numbers[row]) if self.numbers is not None else row + 2

    def chunks(self, size: int = 2500) -> Iterator[Chunk]:
        """Chunks of at most ``size`` items, none straddling Mapper's chunks of CHUNK_ITEMS, so
        that the line-id duplicates of each are known before any of its items is handed out."""
        duplicates = _Duplicates(self)
        # The first chunks are small, so that the first request can leave early (`etl run`).
        ramp = [size // 20, size // 5]
        for first_item, batch, numbers, starts in self._mapper_chunks():
            with paused_gc():
                found = duplicates.of(first_item, batch, starts)
            count = len(starts) - 1
            offset = 0
            while offset < count:
                step = max(1, ramp.pop(0)) if ramp else size
                last = min(offset + step, count)
                begin, end = starts[offset], starts[last]
                yield Chunk(
                    batch.slice(begin, end - begin),
                    numbers[begin:end],
                    [s - begin for s in starts[offset : last + 1]],
                    first_item + offset,
                    {g - offset: found[g] for g in range(offset, last) if g in found},
                )
                offset = last

    def _mapper_chunks(self) -> Iterator[tuple[int, pa.RecordBatch, list[int], list[int]]]:
        """Mapper's chunks of CHUNK_ITEMS items: first item, rows, row numbers, item starts."""
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        batches = self.batches()
        for first_item in range(0, self.items, CHUNK_ITEMS):
            last_item = min(first_item + CHUNK_ITEMS, self.items)
            begin, end = int(self.starts[first_item]), int(self.starts[last_item])
            while pending_rows < end - begin:
                batch = next(batches)
                pending.append(batch)
                pending_rows += batch.num_rows
            table = pa.Table.from_batches(pending)
            data = table.slice(0, end - begin).combine_chunks()
            rest = table.slice(end - begin)
            pending = rest.combine_chunks().to_batches() if rest.num_rows else []
            pending_rows = rest.num_rows
            numbers = (
                self.numbers[begin:end].tolist()
                if self.numbers is not None
                else list(range(begin + 2, end + 2))
            )
            starts = (self.starts[first_item : last_item + 1] - begin).tolist()
            del table  # its memory is reused by the next chunk (etl/core/process_setup.py)
            yield first_item, data.to_batches()[0], numbers, starts


def open_file(
    path: Path,
    kind: FileKind,
    read: ReadOptions,
    mapping: ColumnMapping,
    default_origin: Origin | None,
    scan: Future[FileScan] | None = None,
    name: str = "",
) -> OpenedFile:
    """Read the key columns of a CSV, Parquet or Excel file, or raise UnreadableFile as
    read_table does.

    ``name``: the file's name when ``path`` is not it (an open file's ``/proc/self/fd/N``)."""
    name = name or path.name
    refuse_missing_or_empty(path)
    suffix = PurePath(name).suffix.lower()
    if suffix == ".parquet":
        return _open_parquet(path, name, kind, read, mapping, default_origin)
    if suffix == EXCEL_SUFFIX:
        return _open_excel(path, name, kind, read, mapping, default_origin)
    return _open_csv(path, name, kind, read, mapping, default_origin, scan)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cycle collection while many small objects are made: they hold no cycles, and each
    collection walks every live object (it tripled the time of building a chunk). Only in the
    tool's own processes: where ``etl`` is a library, the collector is its user's."""
    if not owns_process():
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- CSV ---------------------------------------------------------------------------------------


def _open_csv(
    path: Path,
    name: str,
    kind: FileKind,
    options: ReadOptions,
    mapping: ColumnMapping,
    default_origin: Origin | None,
    scan: Future[FileScan] | None = None,
) -> OpenedFile:
    sample = read_head(path, options.encoding)
    delimiter = options.delimiter or sniff_delimiter(sample)
    names = read_header(path, sample, delimiter, configured=options.delimiter is not None)
    try:
        columns: list[PlanColumn] | None = resolve_columns(names, name, kind, mapping)
        problem: UnreadableFile | None = None
    except UnreadableFile as error:
        columns, problem = None, error
    keys = _key_columns(columns, kind) if columns is not None else []
    invalid: list[Any] = []

    def keep_invalid(row: Any) -> str:
        invalid.append(row)
        return "skip"

    def reader(include: list[str] | None) -> Iterator[pa.RecordBatch]:
        # The same blocks for both passes (read.MAX_ROW_BYTES): the data pass must read every
        # row the index pass did. (It holds every column of a block at once.)
        encoding = options.encoding
        settings = text_csv_options(
            names, delimiter, encoding, keep_invalid, MAX_ROW_BYTES, include
        )
        return iter(pacsv.open_csv(path, **settings))

    index = _Index(columns, kind, default_origin)
    quotes = 0
    try:
        for batch in _merged(reader(keys or names[:1]) if not header_only(sample) else ()):
            index.add(batch)
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:  # the latter: another encoding's
        raise csv_problem(path, options.encoding, error) from None
    scanned = scan.result() if scan is not None else scan_file(path)
    blank_lines, quotes = scanned.blank_lines, scanned.quotes
    if scanned.bad_utf8 >= 0 and codecs.lookup(options.encoding).name in UTF8_NAMES:
        raise UnreadableFile(str(path), _not_utf8(path, scanned.bad_utf8, options.encoding))
    if quotes % 2 == 1:
        check_quotes(path, path.read_bytes(), options.encoding, delimiter)
    if invalid:
        raise ragged_rows(path, invalid, delimiter)
    pa.default_memory_pool().release_unused()  # the key columns' buffers, back to the system
    if problem is not None:
        raise problem
    assert columns is not None
    numbers = (
        _spreadsheet_rows(path, options.encoding, delimiter, index.rows) if blank_lines else None
    )
    if not index.contiguous:
        table, all_numbers = read_arrow(path, options)
        return _regrouped(
            path, name, names, columns, kind, default_origin, table, np.asarray(all_numbers)
        )
    return OpenedFile(
        path,
        name,
        names,
        columns,
        kind,
        default_origin,
        index.rows,
        index.starts(),
        numbers,
        lambda: reader(None),
        len(index.origins),
    )


def _not_utf8(path: Path, offset: int, encoding: str) -> str:
    """read.encoding_problem's words for the byte at ``offset`` (read up to it: a rare path)."""
    with path.open("rb") as handle:
        raw = handle.read(offset + 4)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return encoding_problem(raw, error, encoding)
    raise AssertionError(f"byte {offset} was found not UTF-8")


BLANK = re.compile(rb"\n\r?\n")  # with LF or CRLF line ends (read.BLANK_CR_LINE: CR alone)


@dataclass(frozen=True)
class FileScan:
    """What one pass over a file's bytes tells: its fingerprint, whether a blank line follows
    the header (as read.BLANK_LINE finds), the number of quotes, and where the first byte that
    is not UTF-8 is (-1: none; the index pass reads only the key columns, so only this finds
    one in the others before their orders are sent)."""

    sha256: str
    blank_lines: bool
    quotes: int
    bad_utf8: int = -1


class Utf8Check:
    """UTF-8 validity of a file fed block by block, in Arrow (a few ms per 8 MB): the offset
    of the first invalid byte, or -1."""

    def __init__(self) -> None:
        self.bad = -1
        self.offset = 0  # of the next block
        self.carry = b""  # a character cut by the end of the last block

    def feed(self, block: bytes) -> None:
        if self.bad >= 0:
            return
        data = self.carry + block if self.carry else block
        start = self.offset - len(self.carry)
        self.offset += len(block)
        whole = _whole_characters(data)
        self.carry = data[whole:]
        view = memoryview(data)[:whole]
        offsets = pa.py_buffer(np.array([0, whole], dtype=np.int32))
        text = pa.Array.from_buffers(pa.binary(), 1, [None, offsets, pa.py_buffer(view)])
        try:
            text.cast(pa.string())
        except pa.ArrowInvalid:
            try:
                bytes(view).decode("utf-8")
            except UnicodeDecodeError as error:
                self.bad = start + error.start

    def finish(self) -> int:
        if self.bad < 0 and self.carry:  # the file ends inside a character
            self.bad = self.offset - len(self.carry)
        return self.bad


def _whole_characters(data: bytes) -> int:
    """The length of ``data`` without a multi-byte character its end cuts in two."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # the first byte of a character of 2, 3 or 4 bytes
            size = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) - back if size > back else len(data)
    return len(data)


INDEX_ROWS = 1 << 16  # key cells the index pass takes at once: its cost is per batch, not row


def _merged(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The reader's blocks (about 2,000 rows of a wide export each) joined into batches of
    ``INDEX_ROWS`` or more: the index's dozen Arrow calls a batch then cost a quarter."""
    group: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        group.append(batch)
        rows += batch.num_rows
        if rows >= INDEX_ROWS:
            yield _joined(group)
            group, rows = [], 0
    if group:
        yield _joined(group)


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    # pa.concat_batches is pyarrow 19's; the project reads with pyarrow 14 and later.
    if len(batches) == 1:
        return batches[0]
    table = pa.Table.from_batches(batches).combine_chunks()
    return table.to_batches()[0] if table.num_rows else batches[0]


def scan_file(path: Path) -> FileScan:
    """One pass over the bytes for ``read.fingerprint`` and the checks of a streamed CSV."""
    digest = hashlib.sha256()
    quotes = 0
    blank = False
    tail = b""
    body = False
    pattern = BLANK
    utf8 = Utf8Check()
    with path.open("rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
            quotes += block.count(b'"')
            utf8.feed(block)
            if blank:
                continue
            text = tail + block
            start = 0
            if not body:
                newline = first_line_end(text)
                if newline < 0:
                    tail = text[-2:]
                    continue
                body, start = True, newline + 1
                pattern = BLANK_CR_LINE if ends_in_cr(text, newline) else BLANK
            blank = pattern.search(text, start) is not None
            tail = text[-2:]
    return FileScan(digest.hexdigest(), blank, quotes, utf8.finish())


def _spreadsheet_rows(path: Path, encoding: str, delimiter: str, count: int) -> np.ndarray:
    """Row numbers as read.py counts them when the file has blank lines (read from the file)."""
    numbers = array("q")
    with path.open(encoding=encoding, newline="") as handle:
        text = handle.read(1)
        if text != "\ufeff":
            handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        for number, row in enumerate(reader, start=2):
            if row:
                numbers.append(number)
                if len(numbers) == count:
                    break
    return np.frombuffer(numbers, dtype=np.int64).copy()


# --- Parquet -----------------------------------------------------------------------------------


def _open_parquet(
    path: Path,
    name: str,
    kind: FileKind,
    options: ReadOptions,
    mapping: ColumnMapping,
    default_origin: Origin | None,
) -> OpenedFile:
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError) as error:
        read_parquet(path, mapping.ignore, name=name)  # raises read_table's reason, word for word
        raise parquet_problem(path, name, error) from None
    originals = list(schema.names)
    names = [name.strip() for name in originals]
    if len(set(names)) != len(names):
        raise UnreadableFile(str(path), "the Parquet file names a column more than once")
    original = dict(zip(names, originals, strict=True))
    types = {n: schema.field(original[n]).type for n in names}
    columns = resolve_columns(names, name, kind, mapping, native_times(types))
    _refuse_unflat(path, parquet, schema, columns, original)

    def batches(include: list[str] | None) -> Iterator[pa.RecordBatch]:
        """The key columns as text; every column as stored (the workers make it text)."""
        wanted = None if include is None else [original[n] for n in include]
        try:
            for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
                if include is None:
                    yield pa.RecordBatch.from_arrays(list(batch.columns), names=names)
                else:
                    yield pa.RecordBatch.from_arrays(
                        [text_array(c) for c in batch.columns], names=include
                    )
        except (pa.ArrowException, OSError) as error:
            raise parquet_problem(path, name, error) from None

    index = _Index(columns, kind, default_origin)
    try:
        for batch in batches(_key_columns(columns, kind)):
            index.add(batch)
    except (pa.ArrowException, OSError) as error:
        raise parquet_problem(path, name, error) from None
    if not index.contiguous:
        table = pa.Table.from_batches(list(batches(None)))
        return _regrouped(path, name, names, columns, kind, default_origin, table, None)
    return OpenedFile(
        path,
        name,
        names,
        columns,
        kind,
        default_origin,
        index.rows,
        index.starts(),
        None,
        lambda: batches(None),
        len(index.origins),
    )


def _refuse_unflat(
    path: Path,
    parquet: pq.ParquetFile,
    schema: pa.Schema,
    columns: list[PlanColumn],
    original: dict[str, str],
) -> None:
    """The checks of read.read_parquet, before anything is built or sent: no column the plan
    reads holds values without a flat meaning (a list only for a custom attribute's value, whose
    type may be LIST), and bytes are UTF-8 text."""
    used = {c.source for c in columns if c.constant is None}
    lists = [
        name
        for name in used
        if all(c.leaf.kind is Kind.CUSTOM_VALUE for c in columns if c.source == name)
    ]
    types = {name: schema.field(original[name]).type for name in used}
    refuse_unflat_columns(path, types, lists)
    for name, kind in types.items():
        if is_bytes(kind):  # read whole, but only such a column (rare: older writers)
            refuse_bytes_not_text(path, name, parquet.read(columns=[original[name]]).column(0))


# --- Excel ------------------------------------------------------------------------------------


def _open_excel(
    path: Path,
    name: str,
    kind: FileKind,
    options: ReadOptions,
    mapping: ColumnMapping,
    default_origin: Origin | None,
) -> OpenedFile:
    """A workbook's sheet, read whole (a workbook is a ZIP: no reading it row by row), enters
    as a Parquet file of text columns does; its rows keep the sheet's numbers."""
    sheet = read_sheet(path, options.sheet, mapping.ignore, name)
    columns = resolve_columns(sheet.header, name, kind, mapping, sheet.native)
    table = sheet.arrow()
    numbers = np.asarray(sheet.row_numbers, dtype=np.int64)
    index = _Index(columns, kind, default_origin)
    for batch in table.to_batches(max_chunksize=PARQUET_BATCH_ROWS):
        index.add(batch)
    if not index.contiguous:
        regrouped = _regrouped(
            path, name, sheet.header, columns, kind, default_origin, table, numbers
        )
        regrouped.warnings = sheet.warnings
        return regrouped
    return OpenedFile(
        path,
        name,
        sheet.header,
        columns,
        kind,
        default_origin,
        index.rows,
        index.starts(),
        numbers,
        lambda: iter(table.to_batches(max_chunksize=PARQUET_BATCH_ROWS)),
        len(index.origins),
        sheet.warnings,
    )


# --- the index ---------------------------------------------------------------------------------


def _key_columns(columns: list[PlanColumn] | None, kind: FileKind) -> list[str]:
    """The source columns that decide which item a row belongs to."""
    wanted: list[str] = []
    for column in columns or []:
        keys = column.leaf.keys
        is_key = keys == (kind.item_id,) or (
            column.leaf.level is Level.REQUEST and keys[0] == "origin"
        )
        if is_key and column.constant is None and column.source not in wanted:
            wanted.append(column.source)
    return wanted


class _Keys:
    """The (channel, store, id) key of each row, as Mapper groups them; ("", "") = no origin."""

    def __init__(
        self, columns: list[PlanColumn], kind: FileKind, default_origin: Origin | None
    ) -> None:
        self.id = next(c for c in columns if c.leaf.keys == (kind.item_id,))
        self.origin = {
            str(c.leaf.keys[-1]): c
            for c in columns
            if c.leaf.level is Level.REQUEST and c.leaf.keys[0] == "origin"
        }
        self.default = default_origin

    def of(self, batch: pa.RecordBatch) -> tuple[pa.Array, pa.Array, pa.Array]:
        rows = batch.num_rows

        def cells(column: PlanColumn | None) -> pa.Array:
            if column is None:
                return pa.array([""] * rows, pa.string())
            if column.constant is not None:
                return pa.array([column.constant] * rows, pa.string())
            return source_texts(column, text_array(batch.column(column.source)))

        channel = cells(self.origin.get("channel_id"))
        store = cells(self.origin.get("channel_store_id"))
        if self.default is not None:
            channel = pc.if_else(pc.equal(channel, ""), self.default.channel_id, channel)
            store = pc.if_else(pc.equal(store, ""), self.default.channel_store_id, store)
        known = pc.and_(pc.not_equal(channel, ""), pc.not_equal(store, ""))
        channel = pc.if_else(known, channel, "")
        store = pc.if_else(known, store, "")
        return channel, store, cells(self.id)


class _Index:
    """Rows, item starts and contiguity, from the key columns, batch by batch."""

    def __init__(
        self, columns: list[PlanColumn] | None, kind: FileKind, default_origin: Origin | None
    ) -> None:
        self.keys = _Keys(columns, kind, default_origin) if columns is not None else None
        self.rows = 0
        self.contiguous = True
        self._starts = array("q")
        self.origins: set[str] = set()
        self._last: tuple[str, str, str] | None = None
        self._seen = SeenKeys()

    def add(self, batch: pa.RecordBatch) -> None:
        rows = batch.num_rows
        if self.keys is None or rows == 0:
            self.rows += rows
            return
        channel, store, ids = self.keys.of(batch)
        change = np.zeros(rows, dtype=bool)
        if rows > 1:
            for array_ in (channel, store, ids):
                change[1:] |= pc.not_equal(array_.slice(1), array_.slice(0, rows - 1)).to_numpy(
                    zero_copy_only=False
                )
        head = (channel[0].as_py(), store[0].as_py(), ids[0].as_py())
        change[0] = head != self._last
        starts = np.flatnonzero(change)
        self._last = (channel[-1].as_py(), store[-1].as_py(), ids[-1].as_py())
        if len(self.origins) < 1_000_000:
            self.origins.update(
                pc.unique(pc.binary_join_element_wise(channel, store, "\x1f")).to_pylist()
            )
        if self.contiguous:
            # A key met twice (two equal hash pairs) means scattered rows; a false match could
            # only send a file to the slower whole-file path, never change a result.
            at = pa.array(starts)
            origins = pc.binary_join_element_wise(
                channel.take(at), store.take(at), "\x1f"
            ).dictionary_encode()
            scope = scope_hashes(origins.dictionary.to_pylist())
            first, second = text_hashes(
                ids.take(at).to_pylist(), scope[origins.indices.to_numpy(zero_copy_only=False)]
            )
            where, _ = distinct_pairs(first, second)  # in hash order: SeenKeys sorts nothing
            if (
                len(where) != len(starts)
                or (self._seen.find(first[where], second[where]) >= 0).any()
            ):
                self.contiguous = False
            else:
                self._seen.add(first[where], second[where], (starts + self.rows)[where])
        self._starts.extend((starts + self.rows).tolist())
        self.rows += rows

    def starts(self) -> np.ndarray:
        starts = np.frombuffer(self._starts, dtype=np.int64).copy()
        return np.append(starts, self.rows)


def _regrouped(
    path: Path,
    name: str,
    names: list[str],
    columns: list[PlanColumn],
    kind: FileKind,
    default_origin: Origin | None,
    table: pa.Table,
    numbers: np.ndarray | None,
) -> OpenedFile:
    """A file whose items are scattered: read whole, rows regrouped by item in first-row order."""
    batch = table.combine_chunks().to_batches()[0] if table.num_rows else None
    assert batch is not None
    channel, store, ids = _Keys(columns, kind, default_origin).of(batch)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for row, key in enumerate(
        zip(channel.to_pylist(), store.to_pylist(), ids.to_pylist(), strict=True)
    ):
        groups.setdefault(key, []).append(row)
    order = np.fromiter((r for rows in groups.values() for r in rows), dtype=np.int64)
    sizes = np.fromiter((len(rows) for rows in groups.values()), dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(sizes)))
    regrouped = table.take(pa.array(order))
    own_numbers = numbers if numbers is not None else np.arange(2, table.num_rows + 2)
    return OpenedFile(
        path,
        name,
        names,
        columns,
        kind,
        default_origin,
        table.num_rows,
        starts,
        own_numbers[order],
        lambda: iter(regrouped.to_batches(max_chunksize=PARQUET_BATCH_ROWS)),
        len(set(zip(channel.to_pylist(), store.to_pylist(), strict=True))),
    )


# --- duplicated line ids -----------------------------------------------------------------------


class _Duplicates:
    """DUPLICATE_LINE_ID as Mapper reports it, chunk by chunk, in bounded memory.

    Mapper remembers the first row of every (channel, line id) of the file and, on a repeat,
    adds a violation to the repeating item and to the first one; the first item only keeps it
    when both are in the same chunk of CHUNK_ITEMS items (an earlier chunk was already judged).
    """

    def __init__(self, source: OpenedFile) -> None:
        self.source = source
        self.keys = _Keys(source.columns, source.kind, source.default_origin)
        self.line_column = next(
            (
                c
                for c in source.columns
                if c.leaf.level is Level.ROW
                and c.leaf.keys == (f"channel_{source.kind.name[:-1]}_line_id",)
            ),
            None,
        )
        self.seen = SeenKeys()

    def of(
        self, first_item: int, batch: pa.RecordBatch, starts: list[int]
    ) -> dict[int, list[Duplicate]]:
        """The duplicates of one of Mapper's chunks, by item index within it, in Mapper's order."""
        if self.line_column is None or not self.source.kind.row_property:
            return {}
        column = self.line_column
        rows = batch.num_rows
        line_ids = (
            pa.array([column.constant] * rows, pa.string())
            if column.constant is not None
            else source_texts(column, text_array(batch.column(column.source)))
        )
        wanted = np.flatnonzero(pc.not_equal(line_ids, "").to_numpy(zero_copy_only=False))
        if not wanted.size:
            return {}
        texts = line_ids.take(pa.array(wanted)).to_pylist()
        channels = self.keys.of(batch)[0].take(pa.array(wanted)).dictionary_encode()
        scope = scope_hashes(channels.dictionary.to_pylist())
        first, second = text_hashes(texts, scope[channels.indices.to_numpy(zero_copy_only=False)])
        where, inverse = distinct_pairs(first, second)
        begin = int(self.source.starts[first_item])
        # Rows of earlier chunks are only named: the item they are in was judged already.
        earlier = self.seen.find(first[where], second[where]) - begin
        own_first = where[inverse]  # the first row (of this chunk) with the same key
        origin = np.where(earlier[inverse] >= -begin, earlier[inverse], own_first)
        repeats = np.flatnonzero(origin != np.arange(len(wanted)))
        fresh = earlier < -begin
        self.seen.add(first[where[fresh]], second[where[fresh]], wanted[where[fresh]] + begin)
        found: dict[int, list[Duplicate]] = {}
        item_starts = np.asarray(starts)
        for position in repeats.tolist():
            row = int(wanted[position])
            origin_row = int(origin[position])
            if origin_row >= 0:
                origin_row = int(wanted[origin_row])
            line_id = texts[position]
            numbers = (
                self.source.row_number(origin_row + begin),
                self.source.row_number(row + begin),
            )
            item = int(np.searchsorted(item_starts, row, side="right")) - 1
            found.setdefault(item, []).append(Duplicate(row - starts[item], numbers, line_id))
            if origin_row >= 0:
                origin_item = int(np.searchsorted(item_starts, origin_row, side="right")) - 1
                found.setdefault(origin_item, []).append(
                    Duplicate(origin_row - starts[origin_item], numbers, line_id)
                )
        return found
