"""Chunks of whole items -> validated items and their JSON, on every core, in file order.

One function, ``work``, turns a chunk into items: build (``assemble``), add the line-id
duplicates, validate, and write the JSON of the valid ones. ``validated`` runs it in this process
for small files and in worker processes for big ones, a few chunks ahead, handing the results out
in order; the reading and the writing stay in the calling process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import re
import signal
import threading
from array import array
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import orjson
import pyarrow as pa

from etl.core.codes import Problem
from etl.core.models import ItemResult, MappedItem, Origin, Outcome, Violation
from etl.core.process_setup import own_process, skip_pandas_probe
from etl.core.schema import FileKind
from etl.report.files import GUARDED_STARTS, csv_text, error_row, item_row, neutral
from etl.settings.options import ColumnMapping, Conventions
from etl.transform.columns import UserColumns
from etl.transform.fast.assemble import Assembler
from etl.transform.fast.stream import Chunk, OpenedFile, paused_gc
from etl.transform.mapping import PlanColumn
from etl.transform.validate import validate_items, validator_for

PARALLEL_MIN_ROWS = 50_000  # below this, starting worker processes costs more than it saves
PARALLEL_MIN_BYTES = 16 << 20  # a file this big may have that many rows: start them early
CHUNK_SIZE = 1250  # items per chunk handed to a worker (never straddling Mapper's chunks)


Document = bytes | memoryview  # an item's JSON


@dataclass(frozen=True)
class FileJob:
    """What a worker needs to build one file's items (picklable, sent with every chunk)."""

    token: str
    header: list[str]
    columns: list[PlanColumn]
    source: str
    kind: FileKind
    conventions: Conventions
    mapping: ColumnMapping
    default_origin: Origin | None
    report_lines: bool = False  # also write each item's lines of items.csv and errors.csv


@dataclass
class Done:
    """One chunk, validated: its items and, for each valid one, its JSON (else None).

    With ``report_lines``: each item's line of items.csv (for a valid item, the line up to its
    batch id, which only the batching knows) and its lines of errors.csv.
    """

    first_item: int
    items: list[MappedItem]
    documents: list[Document | None]
    rows: int
    item_lines: list[str] | None = None
    error_lines: list[str] | None = None
    blob: bytes = b""  # from a worker process: the documents, end to end ...
    sizes: list[int] | None = None  # ... and the size of each (-1: None)
    packed: PackedItems | None = None  # ... and the items, as columns


@dataclass
class PackedItems:
    """A worker's items as a few columns: pickling a list of objects field by field cost each
    worker about 0.7 s per million lines, and unpickling it twice that in the main process.
    Items with violations or warnings travel whole (they are few, and carry their body)."""

    source: str
    ids: list[str]
    origins: list[Origin | None]  # the distinct origins ...
    origin_codes: array[int]  # ... and each item's, by index
    row_counts: array[int]
    rows: array[int]  # every item's row numbers, end to end
    invalid: dict[int, MappedItem]  # by position

    @classmethod
    def of(cls, items: list[MappedItem]) -> PackedItems:
        codes: dict[Origin | None, int] = {}
        origin_codes, row_counts, rows = array("l"), array("l"), array("q")
        invalid: dict[int, MappedItem] = {}
        for position, item in enumerate(items):
            origin_codes.append(codes.setdefault(item.origin, len(codes)))
            row_counts.append(len(item.rows))
            rows.extend(item.rows)
            if item.violations or item.warnings or item.body:
                invalid[position] = item
        source = items[0].source if items else ""
        assert all(item.source == source for item in items)
        return cls(
            source, [i.item_id for i in items], list(codes), origin_codes, row_counts, rows, invalid
        )

    def unpacked(self) -> list[MappedItem]:
        origins, source, invalid = self.origins, self.source, self.invalid
        rows = self.rows.tolist()
        items: list[MappedItem] = []
        at = 0
        for position, (item_id, code, count) in enumerate(
            zip(self.ids, self.origin_codes, self.row_counts, strict=True)
        ):
            whole = invalid.get(position)
            if whole is not None:
                items.append(whole)
            else:
                items.append(
                    MappedItem(item_id, origins[code], {}, tuple(rows[at : at + count]), source)
                )
            at += count
        return items


class _FileCache(threading.local):
    """The assembler of the file a thread (or worker process) is on, and its user columns.

    Per thread: one process serving several tenants reads their files at once, and a shared
    cache would let one file's job evict the other's between two chunks."""

    def __init__(self) -> None:
        self.assemblers: dict[str, Assembler] = {}
        self.user_columns: dict[str, UserColumns] = {}  # beside the assembler of the token


_cache = _FileCache()


def work(job: FileJob, chunk: Chunk, keep_bodies: bool = True) -> Done:
    """Build, check and encode one chunk; without ``keep_bodies`` valid items keep only JSON."""
    with paused_gc():
        return _work(job, chunk, keep_bodies)


def _work(job: FileJob, chunk: Chunk, keep_bodies: bool) -> Done:
    _assemblers, _user_columns = _cache.assemblers, _cache.user_columns
    assembler = _assemblers.get(job.token)
    validator = validator_for(job.kind)
    if assembler is None:
        _assemblers.clear()
        _user_columns.clear()
        _user_columns[job.token] = UserColumns(
            job.kind, job.columns, job.mapping, job.default_origin, job.source
        )
        assembler = _assemblers[job.token] = Assembler(
            job.header,
            job.columns,
            job.source,
            job.kind,
            job.conventions,
            job.mapping,
            job.default_origin,
            validator.vouch_date_time,
            {name: memo.__getitem__ for name, memo in validator.memos.items()},
        )
    items, built, known_valid = assembler.items(chunk.batch, chunk.row_numbers, chunk.starts)
    documents: list[Document | None] = list(built)
    row_property = job.kind.row_property
    field = f"channel_{job.kind.name[:-1]}_line_id"
    for index, duplicates in chunk.duplicates.items():
        item = items[index]
        if known_valid[index]:
            item.body = orjson.loads(documents[index])  # type: ignore[arg-type]
            known_valid[index] = False
        for duplicate in duplicates:
            first_row, this_row = duplicate.rows
            item.violations.append(
                Violation(
                    file=item.source,
                    rows=duplicate.rows,
                    item_id=item.item_id or None,
                    path=f"$.{row_property}[{duplicate.position}].{field}",
                    code=Problem.DUPLICATE_LINE_ID,
                    message=(
                        f"{row_property}.{field} '{duplicate.line_id}' appears on rows "
                        f"{first_row} and {this_row}; Connect needs it unique across all orders "
                        "of the channel"
                    ),
                    value=duplicate.line_id,
                )
            )
    unknown = [item for item, known in zip(items, known_valid, strict=True) if not known]
    validate_items(unknown, validator, row_property)
    _user_columns[job.token].restate(items)
    for index, item in enumerate(items):
        if item.violations:
            documents[index] = None
        elif known_valid[index]:
            if keep_bodies:
                item.body = orjson.loads(documents[index])  # type: ignore[arg-type]
        else:
            if documents[index] is None:
                documents[index] = orjson.dumps(item.body)
            if not keep_bodies:
                item.body = {}
    done = Done(chunk.first_item, items, documents, chunk.batch.num_rows)
    if job.report_lines:
        done.item_lines, done.error_lines = report_lines(job.source, items)
    return done


def invalid_result(item: MappedItem) -> ItemResult:
    """The items.csv word on an item with violations: the first, and how many more."""
    first, more = item.violations[0], len(item.violations) - 1
    message = first.message + (f" (and {more} more problem(s))" if more else "")
    return ItemResult(
        item.item_id, item.origin, item.rows, Outcome.INVALID, code=first.code, message=message
    )


def report_lines(source: str, items: list[MappedItem]) -> tuple[list[str], list[str]]:
    """Each item's line of items.csv (a valid one's up to its batch id) and of errors.csv (its
    violations, then its warnings)."""
    item_lines: list[str] = []
    error_lines: list[str] = []
    for item in items:
        # The file's own problems, which every item carries, are written once by the caller.
        own = [v for v in item.violations if not v.whole_file]
        problems = own + item.warnings if item.warnings else own
        error_lines.append(csv_text(error_row(source, v) for v in problems) if problems else "")
        if item.violations:
            item_lines.append(csv_text([item_row(source, invalid_result(item))]))
        else:
            origin = item.origin
            fields = (
                source,
                ",".join(map(str, item.rows)),
                origin.channel_id if origin else "",
                origin.channel_store_id if origin else "",
                item.item_id,
            )
            # item_row spelled out for speed: csv.writer's minimal quoting (quote a field holding
            # a comma, a quote or a line break, doubling its quotes) and ``neutral`` cells (the
            # tests hold it to csv and to item_row).
            item_lines.append(",".join(map(_csv_field, fields)) + ",VALID,")
    return item_lines, error_lines


_CSV_SPECIAL = re.compile(r'[",\r\n]')


def _csv_field(text: str) -> str:
    if text[:1] in GUARDED_STARTS:  # rare: the call only then
        text = neutral(text)
    if _CSV_SPECIAL.search(text) is None:
        return text
    return '"' + text.replace('"', '""') + '"'


def _work_remote(job: FileJob, payload: bytes, chunk: Chunk) -> Done:
    chunk.batch = pa.ipc.open_stream(payload).read_next_batch()
    global _chunks_done
    _chunks_done += 1
    if _chunks_done % 50 == 0:
        gc.collect()  # the rare cycle (an exception's traceback) still goes, now and then
    done = _work(job, chunk, keep_bodies=False)
    # The chunk's memory is kept for the next one (etl/core/process_setup.py): giving it back
    # after each chunk made the next fault it in again.
    chunk.batch = pa.RecordBatch.from_pylist([])
    # One block of JSON rather than thousands of small ones: cheaper to send, and the receiving
    # process's heap does not fragment (its peak memory was twice as high).
    documents = done.documents
    done.documents = []
    done.blob = b"".join(d for d in documents if d is not None)
    done.sizes = [-1 if d is None else len(d) for d in documents]
    done.packed = PackedItems.of(done.items)
    done.items = []
    return done


def _start_worker() -> None:
    own_process()  # a worker is the tool's: its allocator tuned, its collector ours
    # Ctrl-C reaches the terminal's whole process group, systemd's SIGTERM the whole unit: the
    # run decides how to stop (its batches in flight finish), and its workers end with it
    # (their queue closes). Dying first would break the pool and fail the file.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    gc.disable()  # see paused_gc; a worker keeps nothing from one chunk to the next
    skip_pandas_probe()


_chunks_done = 0


def _payload(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return bytes(sink.getvalue())


def default_workers() -> int:
    """How many worker processes the command line uses for big files (``ETL_WORKERS``, else
    the cores, at most 4)."""
    return int(os.environ.get("ETL_WORKERS", 0)) or max(1, min(os.cpu_count() or 1, 4))


def run_workers() -> int:
    """How many worker processes `etl run` may use for a file it mostly does not send
    (``ETL_WORKERS``, else one fewer than `etl check`: the run's own process keeps a core for
    screening, recording and sending)."""
    return int(os.environ.get("ETL_WORKERS", 0)) or max(1, default_workers() - 1)


def workers_for(processes: int | None) -> Workers | None:
    """A pool of ``processes`` workers, or None: when none are asked for (the Python API's
    default), and inside a daemonic process (an Airflow or Celery task, a multiprocessing
    worker), which may not start children: the work is then done in this process."""
    if not processes or processes < 1 or multiprocessing.current_process().daemon:
        return None
    return Workers(processes)


class Workers:
    """A pool of worker processes, started on first use and reused for every big file."""

    def __init__(self, processes: int | None = None) -> None:
        self.processes = processes or default_workers()
        self._pool: ProcessPoolExecutor | None = None

    def pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # Forked from a clean server process that imported the modules once: a worker
            # starts in milliseconds, and never inherits this process's threads.
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["etl.run.parallel"])
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=_start_worker
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validated(
    source: OpenedFile,
    job: FileJob,
    workers: Workers | None = None,
    keep_bodies: bool = True,
    chunk_size: int | None = None,
    wanted: Callable[[], bool] | None = None,
) -> Iterator[Done]:
    """Every chunk of the file, validated, in order; in worker processes when given some
    (then valid items hold only their JSON unless ``keep_bodies``: it is parsed back here).
    ``wanted``: asked before each chunk, whether the workers are worth it now (else the chunk
    is done here); the workers start only once it first says so."""
    chunk_size = chunk_size or CHUNK_SIZE
    if workers is None:
        for chunk in source.chunks(chunk_size):
            yield work(job, chunk, keep_bodies)
        return
    ahead: deque[Future[Done]] = deque()
    limit = 2 * workers.processes + 1
    try:
        for chunk in source.chunks(chunk_size):
            if wanted is not None and not wanted():
                here: Future[Done] = Future()
                here.set_result(work(job, chunk, keep_bodies))
                ahead.append(here)
            else:
                payload = _payload(chunk.batch)
                chunk.batch = pa.RecordBatch.from_pylist([])
                ahead.append(workers.pool().submit(_work_remote, job, payload, chunk))
            if len(ahead) >= limit or (wanted is not None and ahead[0].done()):
                yield _finish(ahead.popleft().result(), keep_bodies)
        while ahead:
            yield _finish(ahead.popleft().result(), keep_bodies)
    finally:
        for future in ahead:
            future.cancel()


def _finish(done: Done, keep_bodies: bool) -> Done:
    if done.packed is not None:
        done.items, done.packed = done.packed.unpacked(), None
    if done.sizes is not None:
        view = memoryview(done.blob)
        documents: list[Document | None] = []
        at = 0
        for size in done.sizes:
            if size < 0:
                documents.append(None)
            else:
                documents.append(view[at : at + size])
                at += size
        done.documents, done.sizes = documents, None
    if keep_bodies:
        for item, document in zip(done.items, done.documents, strict=True):
            if document is not None:
                item.body = orjson.loads(document)
    return done
