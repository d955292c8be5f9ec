"""The only place that knows the order of the stages: read -> map -> validate -> batch -> report.

``check_files`` is the offline path (`etl check`); ``sync.py`` drives the online path with the same
``prepare`` and ``validated_chunks``, so both see exactly the same items and violations.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Full, Queue
from typing import TypeVar

import orjson

from etl.core.codes import Problem
from etl.core.errors import UnreadableFile
from etl.core.events import Observer
from etl.core.files import write_json
from etl.core.kinds import detect_kind, understood_names
from etl.core.models import MappedItem, Origin, Outcome, Violation
from etl.core.schema import FileKind, flat_model
from etl.core.summary import FileSummary, RunSummary, new_run_id, now_text
from etl.deliver.batch import Batch, Batcher, request_parts
from etl.read.jsonl import is_json_lines, read_json_lines
from etl.read.tables import read_table
from etl.report.files import StreamingReports
from etl.run.parallel import (
    PARALLEL_MIN_BYTES,
    PARALLEL_MIN_ROWS,
    Document,
    Done,
    FileJob,
    Workers,
    report_lines,
    validated,
    workers_for,
)
from etl.run.switch_interval import SHORT_SWITCHES
from etl.settings.config import ExportFormat, Settings
from etl.settings.options import ColumnMapping
from etl.transform.columns import UserColumns
from etl.transform.fast.stream import FileScan, OpenedFile, open_file, paused_gc, scan_file
from etl.transform.mapping import CHUNK_ITEMS, Mapper, resolve_columns
from etl.transform.nested import nested_items
from etl.transform.validate import refuse_dot_ids, validate_items, validator_for

__all__ = [
    "Prepared",
    "check_file",
    "check_files",
    "iter_encoded",
    "iter_validated",
    "paused_gc",
    "prefetched",
    "prepare",
    "validator_for",
]


@dataclass
class Prepared:
    """A file read and ready to map: everything decided before the first item is built.

    Orders are streamed (``stream``: only their key columns have been read); kinds the streamed
    path does not cover are read whole into ``mapper``.
    """

    path: Path
    kind: FileKind
    source: ExportFormat
    rows: int
    user_columns: UserColumns
    stream: OpenedFile | None = None
    mapper: Mapper | None = None
    # The reader's warnings about the file (a workbook's merged cells, its hidden sheets).
    warnings: tuple[Violation, ...] = ()
    nested: list[MappedItem] | None = None  # JSON lines: the items as the lines hold them


def empty_reason(kind: FileKind) -> str:
    """What summary.json says of a file with a header and no rows (status ``empty``): what an
    ERP exports on a day without orders, not a failure."""
    return f"no {kind.plural} in it (a header and no rows): nothing to send"


def streamable(kind: FileKind) -> bool:
    """Kinds whose rows group into items with an origin and row lines (orders)."""
    return bool(
        getattr(kind, "group_rows", True)
        and getattr(kind, "has_origin", True)
        and kind.row_property
        and kind.items_property
        and "." not in kind.item_id
    )


def prepare(
    path: Path,
    settings: Settings,
    source: ExportFormat | None = None,
    scan: Future[FileScan] | None = None,
    data: Path | None = None,
    kind: FileKind | None = None,
) -> Prepared:
    """Detect the kind (unless ``kind`` says it), read the table (or its key columns), resolve
    the columns; raise UnreadableFile otherwise. ``scan``: the file's bytes, being scanned
    elsewhere; ``data``: where to read them, when not at ``path`` (the claimed file's
    descriptor, etl/core/inputs.py)."""
    kind = kind or detect_kind(path)
    if kind is None:
        raise UnreadableFile(
            path.name, f"the file name says no known kind; understood names: {understood_names()}"
        )
    source = source or settings.source_for(path)
    if is_json_lines(path.name):
        return _prepare_json_lines(path, kind, source, settings, data)
    if streamable(kind):
        stream = open_file(
            data or path,
            kind,
            source.read,
            source.mapping,
            settings.default_origin,
            scan,
            name=path.name,
        )
        columns = UserColumns(
            kind, stream.columns, source.mapping, stream.default_origin, stream.name
        )
        return Prepared(
            path, kind, source, stream.rows, columns, stream=stream, warnings=stream.warnings
        )
    # No kind read whole has a column that means a list (only a custom attribute's value does).
    table = read_table(data or path, source.read, source.mapping.ignore, lists=(), name=path.name)
    mapper = Mapper(
        table, path.name, kind, source.conventions, source.mapping, settings.default_origin
    )
    columns = UserColumns(kind, mapper.plan, source.mapping, settings.default_origin, path.name)
    return Prepared(
        path, kind, source, table.num_rows, columns, mapper=mapper, warnings=table.warnings
    )


def _prepare_json_lines(
    path: Path, kind: FileKind, source: ExportFormat, settings: Settings, data: Path | None
) -> Prepared:
    """JSON lines: every line read now (an order each), named in problems by its JSON path."""
    lines = read_json_lines(data or path)
    items = nested_items(
        lines, path.name, kind, source.mapping, source.conventions, settings.default_origin
    )
    # Every field is a "column" of such a file: none is missing, each is named by its path.
    every = [column.name for column in flat_model(kind).described()]
    plan = resolve_columns(every, path.name, kind, ColumnMapping())
    columns = UserColumns(kind, plan, ColumnMapping(), settings.default_origin, path.name)
    return Prepared(path, kind, source, len(lines), columns, nested=items)


def _validated_nested(prepared: Prepared) -> Iterator[Done]:
    """JSON lines' items in chunks, each checked against the schema; a line that is not JSON
    has nothing to check."""
    assert prepared.nested is not None
    validator = validator_for(prepared.kind)
    items = prepared.nested
    for first in range(0, len(items), CHUNK_ITEMS):
        chunk = items[first : first + CHUNK_ITEMS]
        parsed = [i for i in chunk if not any(v.code == Problem.INVALID_JSON for v in i.violations)]
        validate_items(parsed, validator, prepared.kind.row_property)
        refuse_dot_ids(parsed, prepared.kind.url_ids)
        prepared.user_columns.restate(chunk)
        documents: list[Document | None] = [
            None if i.violations else orjson.dumps(i.body) for i in chunk
        ]
        yield Done(first, chunk, documents, len(chunk))


def validated_chunks(
    prepared: Prepared,
    workers: Workers | None = None,
    keep_bodies: bool = True,
    report_lines: bool = False,
    wanted: Callable[[], bool] | None = None,
) -> Iterator[Done]:
    """Chunks of items, each checked against the schema (violations attached), with the JSON
    of every valid item; big files use ``workers`` when given (and, with ``wanted``, while it
    says they are worth it)."""
    if prepared.nested is not None:
        yield from _validated_nested(prepared)
        return
    if prepared.stream is None:
        assert prepared.mapper is not None
        validator = validator_for(prepared.kind)
        first = 0
        for chunk in prepared.mapper.chunks():
            validate_items(chunk, validator, prepared.kind.row_property)
            refuse_dot_ids(chunk, prepared.kind.url_ids)
            prepared.user_columns.restate(chunk)
            documents: list[Document | None] = [
                None if i.violations else orjson.dumps(i.body) for i in chunk
            ]
            yield Done(first, chunk, documents, sum(len(i.rows) for i in chunk))
            first += len(chunk)
        return
    stream = prepared.stream
    job = FileJob(
        # Unique per opened file, for the life of the process: a path repeats (every claimed file
        # is inbox/.processing/<name>) and so does id() of a freed object, and a worker keeps
        # the column plan of the last token it saw.
        token=uuid.uuid4().hex,
        header=stream.header,
        columns=stream.columns,
        source=stream.name,
        kind=prepared.kind,
        conventions=prepared.source.conventions,
        mapping=prepared.source.mapping,
        default_origin=stream.default_origin,
        report_lines=report_lines,
    )
    big = workers is not None and prepared.rows >= PARALLEL_MIN_ROWS
    yield from validated(stream, job, workers if big else None, keep_bodies, wanted=wanted)


def iter_validated(
    prepared: Prepared, workers: Workers | None = None
) -> Iterator[list[MappedItem]]:
    """Chunks of items, each already checked against the schema (violations attached)."""
    for done in validated_chunks(prepared, workers):
        yield done.items


T = TypeVar("T")


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetched(values: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``values``, computed in a thread at most ``depth`` ahead of the caller (who sends one
    chunk while the next ones are read and validated). An error there is raised here; leaving
    early stops the thread at its next value."""
    queue: Queue[object] = Queue(depth)
    stop = threading.Event()
    end = object()

    def put(value: object) -> bool:
        while not stop.is_set():
            try:
                queue.put(value, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for value in values:
                if not put(value):
                    return
            put(end)
        except BaseException as error:  # handed to the consumer, who decides
            put(_Failed(error))

    thread = threading.Thread(target=produce, name="etl-prefetch", daemon=True)
    # The caller waits on the network and must get the GIL back at once when an answer comes
    # (5 ms by default): each request would start late, and the pacing could not keep up.
    with SHORT_SWITCHES.held(0.0005):
        thread.start()
        try:
            while True:
                value = queue.get()
                if value is end:
                    return
                if isinstance(value, _Failed):
                    raise value.error
                yield value  # type: ignore[misc]
        finally:
            stop.set()


def request_line(origin: Origin | None, items_property: str, documents: list[Document]) -> bytes:
    """``orjson.dumps(batch.body(...))`` + newline, from the items' JSON, copied once."""
    return b"".join(request_parts(origin, items_property, documents, end=b"]}\n"))


def iter_encoded(
    prepared: Prepared,
    workers: Workers | None = None,
    wanted: Callable[[], bool] | None = None,
) -> Iterator[list[MappedItem]]:
    """Chunks of items as ``iter_validated`` gives them, each valid one with its JSON as the
    assembler encoded it (``document``) and no body: it is hashed and sent as it is. A big
    file is read and validated by ``workers`` when given (and ``wanted``)."""
    for done in validated_chunks(prepared, workers, keep_bodies=False, wanted=wanted):
        for item, document in zip(done.items, done.documents, strict=True):
            item.document = document
        yield done.items


class _Report:
    """What check_file writes while it works: items.csv in the order of the items' first rows,
    errors.csv, requests.jsonl, the counts.

    A valid item's line names its batch, which is known only when the batch is full (or at the
    end, for the last one of each origin). The line is written in its place at once with the
    batch id left blank, and the id written over the blank when known, so that no line waits in
    memory: with two origins sorted apart, every line after the first origin's last orders would
    wait for the end. Only when batch ids could grow wider than the blank (more than 99,999
    batches) do lines wait in memory instead.
    """

    def __init__(
        self, reports: StreamingReports, kind: FileKind, prefix: str, blanks: bool
    ) -> None:
        self.reports = reports
        self.kind = kind
        self.batcher = Batcher(prefix=prefix, max_items=kind.max_items)
        self.blank = "?" * len(f"{prefix}-{0:05d}")
        self.blanks = blanks
        self.waiting: dict[int, tuple[int, Document, str]] = {}  # id(item) -> index, JSON, line
        self.known: dict[int, str] = {}  # id(item) -> batch id, for lines not yet written
        self.blanked: dict[int, int] = {}  # id(item) -> where its blank batch id was written
        self.ready: dict[int, str] = {}
        self.text: list[str] = []  # lines of items.csv ready to be written
        self.next_index = 0
        self.outcomes: Counter[str] = Counter()
        self.violations = 0
        self.warnings = 0
        self.requests = 0

    def chunk(self, done: Done) -> None:
        if done.item_lines is None or done.error_lines is None:
            done.item_lines, done.error_lines = report_lines(self.reports.file_name, done.items)
        valid: list[MappedItem] = []
        for offset, item in enumerate(done.items):
            index = done.first_item + offset
            if item.warnings:
                self.warnings += len(item.warnings)
            if item.violations or item.warnings:
                self.reports.error_text(done.error_lines[offset])
            if item.violations:
                # The file's own problems (a column it lacks) are written once, not per item.
                self.violations += sum(not v.whole_file for v in item.violations)
                self.outcomes[Outcome.INVALID.value] += 1
                if not self.blanks:
                    self._line(index, done.item_lines[offset])
            else:
                document = done.documents[offset]
                assert document is not None
                self.waiting[id(item)] = (index, document, done.item_lines[offset])
                valid.append(item)
        self._batches(self.batcher.add(valid))
        if self.blanks:
            self._write_lines(done)
        self._flush()

    def finish(self) -> None:
        self._batches(self.batcher.flush())
        self._flush()
        assert not self.ready and not self.waiting and not self.blanked, "every line is whole"

    def _write_lines(self, done: Done) -> None:
        """The chunk's lines, in order; a batch id not known yet is left blank."""
        assert done.item_lines is not None
        position = self.reports.items_written
        tail = ",,,\r\n"
        for item, line in zip(done.items, done.item_lines, strict=True):
            if item.violations:
                text = line
            else:
                batch_id = self.known.pop(id(item), None)
                if batch_id is None:
                    self.blanked[id(item)] = position + len(line.encode("utf-8"))
                    batch_id = self.blank
                text = line + batch_id + tail
            self.text.append(text)
            position += len(text.encode("utf-8"))
        self.next_index = done.first_item + len(done.items)

    def _batches(self, batches: Iterator[Batch]) -> None:
        for batch in batches:
            documents: list[Document] = []
            tail = f"{batch.batch_id},,,\r\n"
            for item in batch.items:
                index, document, line = self.waiting.pop(id(item))
                documents.append(document)
                if not self.blanks:
                    self._line(index, line + tail)
                elif id(item) in self.blanked:
                    self._flush()
                    assert len(batch.batch_id) == len(self.blank)
                    self.reports.patch_item(
                        self.blanked.pop(id(item)), batch.batch_id.encode("ascii")
                    )
                else:
                    self.known[id(item)] = batch.batch_id
            self.outcomes[Outcome.VALID.value] += len(batch.items)
            self.reports.requests.write(
                request_line(batch.origin, self.kind.items_property, documents)
            )
            self.requests += 1

    def _line(self, index: int, line: str) -> None:
        if index != self.next_index:
            self.ready[index] = line
            return
        self.text.append(line)
        self.next_index += 1
        while self.next_index in self.ready:
            self.text.append(self.ready.pop(self.next_index))
            self.next_index += 1

    def _flush(self) -> None:
        if self.text:
            self.reports.item_text("".join(self.text))
            self.text.clear()

    @property
    def items(self) -> int:
        return self.next_index


def check_file(
    path: Path,
    settings: Settings,
    run_dir: Path,
    source: ExportFormat | None = None,
    observer: Observer | None = None,
    workers: Workers | None = None,
    kind: FileKind | None = None,
) -> FileSummary:
    """Map and validate one file offline; write its would-be requests and its reports."""
    started = time.perf_counter()
    summary = FileSummary(name=path.name)
    big = workers is not None and _size(path) >= PARALLEL_MIN_BYTES
    try:
        # The fingerprint is read while the key columns are: by a worker process for a big file
        # (counting quotes holds the GIL, which the index pass needs), else by a thread.
        with ThreadPoolExecutor(1) as threads:
            pool = workers.pool() if big and workers is not None else threads
            scan = pool.submit(scan_file, path)
            try:
                prepared = prepare(path, settings, source, scan, kind=kind)
            finally:
                summary.sha256 = scan.result().sha256
    except UnreadableFile as error:
        summary.status = "unreadable"
        summary.reason = error.reason
        summary.seconds = time.perf_counter() - started
        return summary
    except OSError as error:
        summary.status = "unreadable"
        summary.reason = f"cannot open the file: {error.strerror or error}"
        return summary
    observer = observer or Observer()
    kind = prepared.kind
    summary.kind = kind.name
    summary.rows = prepared.rows
    observer.file_started(path.name, summary.rows)
    reports = StreamingReports(run_dir, path.name)
    # Batch ids are <prefix>-<sequence, 5 digits>: wider past 99,999 batches, which needs more
    # than that many full batches (100 orders) plus the last one of each origin.
    origins = prepared.stream.origins if prepared.stream is not None else prepared.rows
    most_batches = prepared.rows // kind.max_items + 1 + origins
    report = _Report(reports, kind, summary.sha256[:12], blanks=most_batches < 100_000)
    for problem in prepared.user_columns.problems:
        reports.error(problem)
    report.violations += len(prepared.user_columns.problems)
    for warning in prepared.warnings:
        reports.error(warning)
    report.warnings += len(prepared.warnings)
    try:
        # No cycle collection meanwhile: each one walks every live item (0.7 s per million lines).
        with paused_gc():
            for done in validated_chunks(prepared, workers, keep_bodies=False, report_lines=True):
                observer.items_validated(path.name, len(done.items), done.rows)
                report.chunk(done)
            report.finish()
    except UnreadableFile as error:
        reports.abandon(error)
        summary.status = "unreadable"
        summary.reason = error.reason
        summary.seconds = time.perf_counter() - started
        return summary
    except BaseException as error:
        reports.abandon(error)
        raise
    reports.commit()
    summary.items = report.items
    summary.outcomes = dict(report.outcomes)
    summary.violations = report.violations
    summary.warnings = report.warnings
    summary.requests = report.requests
    if prepared.rows == 0:
        summary.status, summary.reason = "empty", empty_reason(kind)
    summary.seconds = time.perf_counter() - started
    observer.file_finished(summary)
    return summary


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def check_files(
    paths: list[Path],
    settings: Settings,
    source: ExportFormat | None = None,
    observer: Observer | None = None,
    kind: FileKind | None = None,
    workers: int | None = None,
) -> tuple[RunSummary, Path]:
    """`etl check`: every file mapped and validated, reports in outbox/runs/<run_id>/; every
    file read as ``kind`` when given, whatever its name says. Big files are read with
    ``workers`` processes when given (never in a daemonic process: ``workers_for``)."""
    clock = time.perf_counter()
    run = RunSummary(
        run_id=new_run_id(settings.outbox),
        command="check",
        started_at=now_text(),
        tenant=settings.tenant,
    )
    run_dir = settings.outbox / "runs" / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    pool = workers_for(workers)
    try:
        for path in paths:
            run.files.append(check_file(path, settings, run_dir, source, observer, pool, kind))
    finally:
        if pool is not None:
            pool.close()
    run.exit_code = check_exit_code(run.files)
    run.finished_at = now_text()
    run.seconds = time.perf_counter() - clock
    write_json(run_dir / "summary.json", run.as_json())
    return run, run_dir


def check_exit_code(files: list[FileSummary]) -> int:
    """0 every item valid (an empty file has none to be invalid); 1 some invalid; 2 a file that
    cannot be read at all."""
    if any(f.status not in ("processed", "empty") for f in files):
        return 2
    if any(f.outcomes.get(Outcome.INVALID.value) for f in files):
        return 1
    return 0
