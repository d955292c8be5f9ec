"""The Python API: what the command line does, for notebooks, Airflow and Dagster (DESIGN.md 10).

    import etl

    settings = etl.Settings.load("etl.toml")        # or etl.Settings.load(inbox="drop", ...)
    result = etl.check(df)                          # a path, a pyarrow.Table or a DataFrame
    result.problems.to_pandas()                     # row, id, field (JSONPath), code, message...
    result.raise_for_problems()                     # one ProblemsFound carrying every problem
    sent = etl.send(result, settings)               # or etl.sync(df, settings): check and send
    summary = etl.run_inbox(settings).summary       # `etl run`

Nothing here prints, exits the process or changes anything global (environment, garbage
collector, switch interval); worker processes start only when ``workers=`` asks for them.
Results are Arrow tables (``.to_pandas()`` for pandas users). Errors are ``EtlError``s:
``UsageError`` (settings, arguments, the inbox taken by another run), ``UnreadableFile`` (a
source that cannot be read at all), ``ProblemsFound`` (from ``raise_for_problems``).

Sending goes through the inbox, as `etl run` does, so that the same rules hold: a source is
written into the inbox (a DataFrame or table as Parquet), claimed, sent with the ledger's
duplicate, unchanged and stale rules, reported in ``outbox/runs/<run_id>/`` and moved to
``archive/`` or ``failed/``; a run killed halfway is resumed by the next one.
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from etl.core.errors import EtlError, UnreadableFile, UsageError
from etl.core.kinds import KIND_GLOBS, KINDS, detect_kind
from etl.core.models import ItemResult, MappedItem, Outcome, Violation
from etl.core.schema import FileKind
from etl.core.summary import FileSummary, RunSummary
from etl.deliver.batch import Batch, Batcher
from etl.report.tables import count_table, item_table, problem_table
from etl.run.check import empty_reason, prepare, request_line, validated_chunks
from etl.run.inbox_run import InboxRun
from etl.run.inbox_run import run_inbox as run_inbox_once
from etl.run.parallel import Document, invalid_result, workers_for
from etl.run.sync import FileReport
from etl.settings.config import ExportFormat, MappingRule, Settings, load_mapping_file
from etl.transform.fast.stream import FileScan, scan_file

__all__ = [
    "CheckResult",
    "EtlError",
    "ProblemsFound",
    "Settings",
    "SyncResult",
    "UnreadableFile",
    "UsageError",
    "check",
    "run_inbox",
    "send",
    "sync",
]

if TYPE_CHECKING:
    import pandas

OpenedFile: TypeAlias = "str | os.PathLike[str] | pa.Table | pandas.DataFrame"

SHOWN_PROBLEMS = 5  # in the message of ProblemsFound; the table holds them all
NOT_DELIVERED = frozenset({Outcome.INVALID, Outcome.REJECTED, Outcome.UNKNOWN, Outcome.FAILED})


class ProblemsFound(EtlError):
    """Orders that are invalid, or were not delivered; ``problems`` holds every problem (the
    columns of errors.csv), ``result`` the whole result."""

    def __init__(self, message: str, problems: pa.Table, result: CheckResult | SyncResult):
        super().__init__(message)
        self.problems = problems
        self.result = result


@dataclass(frozen=True)
class _Data:
    """What a check read, kept so that ``send`` delivers exactly that: a file's path and
    fingerprint, or the Parquet bytes a table was written as."""

    name: str
    kind: FileKind
    sha256: str
    path: Path | None = None
    parquet: bytes | None = None
    export_format: ExportFormat | None = None


@dataclass(frozen=True)
class CheckResult:
    """What ``etl.check`` found, as `etl check` reports it: ``items`` (items.csv), ``problems``
    (errors.csv) and ``counts`` (items per outcome) as Arrow tables, and the would-be request
    bodies (``requests``: at most 100 orders of one origin each)."""

    summary: FileSummary
    counts: pa.Table
    problems: pa.Table
    items: pa.Table
    requests: list[dict[str, Any]]
    _data: _Data = field(repr=False)

    @property
    def valid(self) -> bool:
        """True when no item is invalid (warnings hold nothing back)."""
        return not self.summary.outcomes.get(Outcome.INVALID.value)

    def raise_for_problems(self) -> None:
        """Raise one ``ProblemsFound`` carrying every problem when an item is invalid."""
        if not self.valid:
            raise ProblemsFound(
                _problems_message([self.summary], self.problems), self.problems, self
            )


@dataclass(frozen=True)
class SyncResult:
    """What a run did (``etl.send``, ``etl.sync``, ``etl.run_inbox``): its ``summary``
    (summary.json), the folder of its reports and its ``html`` report, and the items, problems
    and counts of its files as Arrow tables. ``stopped``: why sending stopped (the API down, a
    wrong URL), else None."""

    summary: RunSummary
    run_dir: Path
    counts: pa.Table
    problems: pa.Table
    items: pa.Table
    stopped: str | None = None
    html: Path | None = None  # report.html, for people (None: no file processed)

    @property
    def exit_code(self) -> int:
        """`etl run`'s exit code for this run (0 everything delivered; README)."""
        return self.summary.exit_code

    def raise_for_problems(self) -> None:
        """Raise one ``ProblemsFound`` carrying every problem unless every item was delivered
        (accepted, unchanged, stale or queued) and the run finished."""
        if self.exit_code != 0:
            message = _problems_message(self.summary.files, self.problems)
            if self.stopped and self.stopped not in message:
                message += f"; sending stopped: {self.stopped}"
            raise ProblemsFound(message, self.problems, self)


def check(
    source: OpenedFile,
    kind: str | None = None,
    settings: Settings | None = None,
    *,
    mapping: str | os.PathLike[str] | None = None,
    name: str | None = None,
    workers: int | None = None,
) -> CheckResult:
    """Map and validate ``source`` offline, as `etl check` does; nothing is sent or written.

    ``source``: a CSV or Parquet file's path, a ``pyarrow.Table`` or a ``pandas.DataFrame``,
    its columns named as in the flat format (README) or as ``mapping`` (a mapping file) or the
    settings' ``[[mappings]]`` rename them. ``kind``: orders, action-status... (default: by
    the file's name; orders for a table). ``name``: the file name problems name (a table's
    default: ``orders-from-python.parquet``). ``settings``: read conventions and the default
    origin (default ``Settings()``; ``Settings.load()`` reads etl.toml and the environment).
    ``workers``: processes for big files (default none). A row is numbered as a spreadsheet
    shows it: the first row of data (of a DataFrame too) is row 2.

    Raises ``UnreadableFile`` for a source that cannot be read at all (an unknown column, a
    broken file), ``UsageError`` for wrong arguments."""
    settings = settings or Settings()
    with _readable(source, kind, name) as (path, file_kind, parquet):
        export_format = _source_format(settings, mapping)
        scanned = scan_file(path)
        data = _Data(
            path.name,
            file_kind,
            scanned.sha256,
            path.resolve() if parquet is None else None,
            parquet,
            export_format,
        )
        return _checked(path, settings, data, scanned, workers)


def send(
    result: CheckResult, settings: Settings, *, force: bool = False, create: bool = False
) -> SyncResult:
    """Send what ``result`` checked, as `etl run` sends a file dropped in the inbox: the
    source goes into ``settings.inbox`` (a table as Parquet), then through the ledger
    (duplicates, unchanged and stale orders are not sent; ``force`` sends them), the API, the
    reports and ``archive/``/``failed/``. A file changed since it was checked is refused
    (UsageError). ``create`` makes a missing inbox."""
    data = result._data
    name = _inbox_name(data, settings.inbox)
    try:
        done = run_inbox_once(
            _with_mapping(settings, data, name),
            force=force,
            create=create,
            drop=lambda: [_drop(data, settings.inbox, name)],
            keep_reports=True,
        )
    except UsageError:
        # Refused before the copy was claimed (a ledger the outbox does not know, say): it
        # must not wait in the inbox to be sent by a later run the caller did not ask for.
        if not _is_there(data, settings.inbox):
            (settings.inbox / name).unlink(missing_ok=True)
        raise
    return _result(done)


def sync(
    source: OpenedFile,
    settings: Settings,
    kind: str | None = None,
    *,
    mapping: str | os.PathLike[str] | None = None,
    name: str | None = None,
    force: bool = False,
    create: bool = False,
) -> SyncResult:
    """``check`` then ``send``: ``source`` validated, its valid orders sent (see both)."""
    return send(
        check(source, kind, settings, mapping=mapping, name=name),
        settings,
        force=force,
        create=create,
    )


def run_inbox(settings: Settings, *, force: bool = False, create: bool = False) -> SyncResult:
    """`etl run`: every file waiting in the inbox processed once (its ``summary`` is the run's
    summary.json; an inbox with nothing to do gives a summary without files)."""
    return _result(run_inbox_once(settings, force=force, create=create, keep_reports=True))


# --- checking ------------------------------------------------------------------------------------


def _kind(kind: str | None, path: Path | None) -> FileKind:
    if kind is not None:
        if kind not in KINDS:
            raise UsageError(f"kind {kind!r} is not one of {', '.join(sorted(KINDS))}")
        return KINDS[kind]
    detected = detect_kind(path) if path is not None else KINDS["orders"]
    if detected is None:
        assert path is not None
        raise UsageError(
            f"the name {path.name} says no known kind: pass kind= (one of "
            f"{', '.join(sorted(KINDS))})"
        )
    return detected


def _prefix(kind: FileKind) -> str:
    """How names of the kind start (``orders``, ``action-status``...)."""
    return KIND_GLOBS[kind.name][0].split("*")[0]


def _is_table(source: object) -> bool:
    """A ``pyarrow.Table``, or a pandas DataFrame (pandas is never imported here: a caller
    holding a DataFrame has imported it)."""
    pandas = sys.modules.get("pandas")
    return isinstance(source, pa.Table) or (
        pandas is not None and isinstance(source, pandas.DataFrame)
    )


def _parquet(source: Any, name: str) -> bytes:
    """A table's bytes as a Parquet file, the format the reader takes typed columns in."""
    try:
        # A DataFrame's index is the caller's bookkeeping, not a column of the export.
        table = (
            source
            if isinstance(source, pa.Table)
            else pa.Table.from_pandas(source, preserve_index=False)
        )
        sink = io.BytesIO()
        pq.write_table(table, sink)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise UnreadableFile(
            name,
            f"cannot be read as a table of cells ({error}); give each field a column of "
            "text, numbers, booleans or date-times",
        ) from None
    return sink.getvalue()


@contextmanager
def _readable(
    source: OpenedFile, kind: str | None, name: str | None
) -> Iterator[tuple[Path, FileKind, bytes | None]]:
    """The file to read (a table written as Parquet to a private temporary folder), its kind,
    and the Parquet bytes of a table."""
    if not _is_table(source):
        if not isinstance(source, str | os.PathLike):
            raise UsageError(
                f"cannot check a {type(source).__name__}: give a file's path, a pyarrow.Table "
                "or a pandas.DataFrame"
            )
        path = Path(source)
        if not path.is_file():
            raise UsageError(f"no such file: {path}")
        yield path, _kind(kind, path), None
        return
    file_kind = _kind(kind, None)
    if not any(glob.endswith(".parquet") for glob in KIND_GLOBS[file_kind.name]):
        raise UsageError(
            f"{file_kind.plural} come as CSV files only ({', '.join(KIND_GLOBS[file_kind.name])}): "
            "give the file's path"
        )
    name = name or f"{_prefix(file_kind)}-from-python.parquet"
    if Path(name).name != name or not name.lower().endswith(".parquet"):
        raise UsageError(f"name {name!r} must be a file name ending in .parquet")
    if detect_kind(Path(name)) is not file_kind:
        raise UsageError(
            f"name {name!r} does not say {file_kind.name}: a name like "
            f"{_prefix(file_kind)}-2026-12-02.parquet does"
        )
    parquet = _parquet(source, name)
    with tempfile.TemporaryDirectory(prefix="etl-check-") as folder:  # private: mode 0700
        path = Path(folder) / name
        path.write_bytes(parquet)
        yield path, file_kind, parquet


def _source_format(
    settings: Settings, mapping: str | os.PathLike[str] | None
) -> ExportFormat | None:
    if mapping is None:
        return None
    return load_mapping_file(Path(mapping), settings.default_source)


def _checked(
    path: Path, settings: Settings, data: _Data, scanned: FileScan, workers: int | None
) -> CheckResult:
    scan: Future[FileScan] = Future()
    scan.set_result(scanned)
    try:
        prepared = prepare(path, settings, data.export_format, scan, kind=data.kind)
    except UnreadableFile as error:
        raise UnreadableFile(data.name, error.reason) from None  # its name, never a temp path
    kind = prepared.kind
    batcher = Batcher(data.sha256[:12], kind.max_items)
    results: list[ItemResult] = []  # in file order
    # A valid item waits in the batcher for its batch id: by id(item) (alive while it waits;
    # an id is reused once an item is freed), its place in ``results`` and its JSON.
    waiting: dict[int, tuple[int, Document]] = {}
    problems: list[tuple[str, Violation, bool]] = [
        (data.name, v, False) for v in prepared.user_columns.problems
    ]
    warnings = 0
    requests: list[dict[str, Any]] = []

    def batched(batches: Iterable[Batch]) -> None:
        for batch in batches:
            places = [waiting.pop(id(item)) for item in batch.items]
            line = request_line(batch.origin, kind.items_property, [d for _, d in places])
            requests.append(orjson.loads(line))
            for place, _ in places:
                results[place] = replace(results[place], batch_id=batch.batch_id)

    pool = workers_for(workers)
    try:
        for done in validated_chunks(prepared, pool, keep_bodies=False):
            valid: list[MappedItem] = []
            for item, document in zip(done.items, done.documents, strict=True):
                problems += [(data.name, v, False) for v in item.violations if not v.whole_file]
                problems += [(data.name, v, True) for v in item.warnings]
                warnings += len(item.warnings)
                if item.violations:
                    results.append(invalid_result(item))
                else:
                    assert document is not None
                    waiting[id(item)] = (len(results), document)
                    results.append(ItemResult(item.item_id, item.origin, item.rows, Outcome.VALID))
                    valid.append(item)
            batched(batcher.add(valid))
        batched(batcher.flush())
    except UnreadableFile as error:
        raise UnreadableFile(data.name, error.reason) from None
    finally:
        if pool is not None:
            pool.close()
    outcomes = Counter(r.outcome.value for r in results)
    summary = FileSummary(
        name=data.name,
        kind=kind.name,
        sha256=data.sha256,
        rows=prepared.rows,
        items=len(results),
        outcomes=dict(outcomes),
        violations=len(problems) - warnings,
        warnings=warnings,
        requests=len(requests),
    )
    if not prepared.rows:
        summary.status, summary.reason = "empty", empty_reason(kind)
    return CheckResult(
        summary=summary,
        counts=count_table([summary]),
        problems=problem_table(problems),
        items=item_table((data.name, r) for r in results),
        requests=requests,
        _data=data,
    )


# --- sending -------------------------------------------------------------------------------------


def _with_mapping(settings: Settings, data: _Data, name: str) -> Settings:
    """The settings, with the check's own mapping file first for the name the source takes in
    the inbox."""
    if data.export_format is None:
        return settings
    rule = MappingRule(glob=glob.escape(name), source=data.export_format)
    return replace(settings, mapping_rules=(rule, *settings.mapping_rules))


def _inbox_name(data: _Data, inbox: Path) -> str:
    """The name the source takes in the inbox: its own, made to say its kind; a name already
    waiting or claimed there gets a unique tail (two files never share a name)."""
    name = data.name
    if detect_kind(Path(name)) is not data.kind:
        name = f"{_prefix(data.kind)}-{name}"
    taken = (inbox / name, inbox / ".processing" / name)
    if not any(os.path.lexists(p) for p in taken) or _is_there(data, inbox):
        return name
    stem, suffix = os.path.splitext(name)
    return f"{stem}-{uuid.uuid4().hex[:8]}{suffix}"


def _is_there(data: _Data, inbox: Path) -> bool:
    """The checked file is itself in the inbox, named as its kind: it is taken where it is, as
    `etl run` would take it."""
    return (
        data.path is not None
        and data.path.parent == inbox.resolve()
        and detect_kind(data.path) is data.kind
    )


def _drop(data: _Data, inbox: Path, name: str) -> Path:
    """Put the checked source in the inbox as ``name`` (the lock is held): written to a hidden
    name, then renamed, readable by its owner only (it holds orders). Returns its place."""
    if _is_there(data, inbox):
        assert data.path is not None
        if scan_file(data.path).sha256 != data.sha256:
            raise UsageError(f"{data.name} changed since it was checked: check it again")
        return data.path
    target = inbox / name
    if os.path.lexists(target):  # between the choice of the name and the lock
        raise UsageError(f"a file named {name} appeared in the inbox {inbox}; send again")
    handle, temp_name = tempfile.mkstemp(dir=inbox, prefix=f".{target.name[:64]}.", suffix=".tmp")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as stream:
            if data.parquet is not None:
                stream.write(data.parquet)
                digest.update(data.parquet)
            else:
                assert data.path is not None
                with data.path.open("rb") as original:
                    while block := original.read(1 << 20):
                        stream.write(block)
                        digest.update(block)
        if digest.hexdigest() != data.sha256:
            raise UsageError(f"{data.name} changed since it was checked: check it again")
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target


def _result(done: InboxRun) -> SyncResult:
    problems: list[tuple[str, Violation, bool]] = []
    items: list[tuple[str, ItemResult]] = []
    reported = {report.name: report for report in done.reports}
    for file in done.summary.files:
        report: FileReport | None = reported.get(file.name)
        if report is not None:
            problems += [(file.name, v, False) for v in report.violations]
            problems += [(file.name, v, True) for v in report.warnings]
            items += [(file.name, r) for r in report.results]
        elif file.status in ("unreadable", "error"):
            # Said by summary.json and the .reason.txt beside the file in failed/.
            code = "UNREADABLE_FILE" if file.status == "unreadable" else "INTERNAL_ERROR"
            problem = Violation(file.name, (), None, "$", code, file.reason)
            problems.append((file.name, problem, False))
    return SyncResult(
        summary=done.summary,
        run_dir=done.run_dir,
        counts=count_table(done.summary.files),
        problems=problem_table(problems),
        items=item_table(items),
        stopped=None if done.api_down is None else str(done.api_down),
        html=done.html,
    )


# --- the exception's words ---------------------------------------------------------------------


def _problems_message(files: list[FileSummary], problems: pa.Table) -> str:
    """One paragraph a person can act on: counts per file and code, then the first problems."""
    parts = []
    for file in files:
        said = []
        bad = {o: n for o, n in file.outcomes.items() if Outcome(o) in NOT_DELIVERED}
        if bad:
            counts = ", ".join(f"{n} {o.lower()}" for o, n in sorted(bad.items()))
            said.append(f"{counts} of {file.items} {file.kind or 'items'}")
        if file.status in ("unreadable", "error"):
            said.append(f"{file.status}: {file.reason}")
        elif file.unfinished:
            said.append(file.reason)  # left in the inbox for the next run: why
        if said:
            parts.append(f"{file.name}: {'; '.join(said)}")
    shown = []
    for problem in problems.slice(0, SHOWN_PROBLEMS).to_pylist():
        where = f"row {problem['row']}" if problem["row"] is not None else "the file"
        order = f", order {problem['id']}" if problem["id"] else ""
        shown.append(f"{where}{order}, {problem['field']}: {problem['code']}: {problem['message']}")
    more = problems.num_rows - len(shown)
    text = "; ".join(parts) or "not every item was delivered"
    if shown:
        text += "\n  " + "\n  ".join(shown)
    if more > 0:
        text += f"\n  ... and {more} more (the exception's .problems has them all)"
    return text
