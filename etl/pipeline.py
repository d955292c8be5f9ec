"""The only place that knows the order of the stages: read -> map -> validate -> batch -> report.

``check_files`` is the offline path (`etl check`); ``run.py`` drives the online path with the same
``prepare`` and ``iter_validated``, so both see exactly the same items and violations.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from etl.batch import Batcher
from etl.config import Settings, SourceFormat
from etl.errors import UnreadableFile
from etl.events import Observer
from etl.kinds import detect_kind, understood_names
from etl.mapping import Mapper
from etl.models import ItemResult, MappedItem, Outcome, Violation
from etl.read import fingerprint, read_table
from etl.report import write_errors, write_items, write_json, write_requests
from etl.schema import FileKind
from etl.summary import FileSummary, RunSummary, new_run_id, now_text
from etl.validate import SchemaValidator, validate_items


@cache
def validator_for(kind: FileKind) -> SchemaValidator:
    return SchemaValidator(kind.item_schema)


@dataclass
class Prepared:
    """A file read and ready to map: everything decided before the first item is built."""

    path: Path
    kind: FileKind
    source: SourceFormat
    mapper: Mapper


def prepare(path: Path, settings: Settings, source: SourceFormat | None = None) -> Prepared:
    """Detect the kind, read the table, resolve the columns; raise UnreadableFile otherwise."""
    kind = detect_kind(path)
    if kind is None:
        raise UnreadableFile(
            path.name, f"the file name says no known kind; understood names: {understood_names()}"
        )
    source = source or settings.source_for(path)
    table = read_table(path, source.read)
    mapper = Mapper(
        table, path.name, kind, source.conventions, source.mapping, settings.default_origin
    )
    return Prepared(path, kind, source, mapper)


def iter_validated(prepared: Prepared) -> Iterator[list[MappedItem]]:
    """Chunks of items, each already checked against the schema (violations attached)."""
    validator = validator_for(prepared.kind)
    for chunk in prepared.mapper.chunks():
        validate_items(chunk, validator, prepared.kind.row_property)
        yield chunk


def check_file(
    path: Path,
    settings: Settings,
    run_dir: Path,
    source: SourceFormat | None = None,
    observer: Observer | None = None,
) -> FileSummary:
    """Map and validate one file offline; write its would-be requests and its reports."""
    started = time.perf_counter()
    summary = FileSummary(name=path.name)
    try:
        summary.sha256 = fingerprint(path)
        prepared = prepare(path, settings, source)
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
    summary.rows = prepared.mapper.table.num_rows
    observer.file_started(path.name, summary.rows)
    results: list[ItemResult] = []
    violations: list[Violation] = []
    bodies: list[dict[str, Any]] = []
    batcher = Batcher(prefix=summary.sha256[:12], max_items=kind.max_items)

    def take(batches: Iterator[Any]) -> None:
        for batch in batches:
            bodies.append(batch.body(kind.items_property))
            results.extend(
                ItemResult(i.item_id, i.origin, i.rows, Outcome.VALID, batch.batch_id)
                for i in batch.items
            )

    for chunk in iter_validated(prepared):
        observer.items_validated(path.name, len(chunk), sum(len(i.rows) for i in chunk))
        valid = []
        for item in chunk:
            if item.violations:
                violations.extend(item.violations)
                first = item.violations[0]
                results.append(
                    ItemResult(
                        item.item_id,
                        item.origin,
                        item.rows,
                        Outcome.INVALID,
                        code=first.code,
                        message=_invalid_message(item),
                    )
                )
            else:
                valid.append(item)
        take(batcher.add(valid))
    take(batcher.flush())
    results.sort(key=lambda r: r.rows[0] if r.rows else 0)
    write_requests(run_dir / f"{path.name}.requests.jsonl", bodies)
    write_items(run_dir / f"{path.name}.items.csv", path.name, results)
    write_errors(run_dir / f"{path.name}.errors.csv", path.name, violations)
    summary.items = len(results)
    summary.outcomes = dict(Counter(r.outcome.value for r in results))
    summary.violations = len(violations)
    summary.requests = len(bodies)
    summary.seconds = time.perf_counter() - started
    observer.file_finished(summary)
    return summary


def _invalid_message(item: MappedItem) -> str:
    count = len(item.violations)
    first = item.violations[0].message
    return first if count == 1 else f"{first} (and {count - 1} more problem(s))"


def check_files(
    paths: list[Path],
    settings: Settings,
    source: SourceFormat | None = None,
    observer: Observer | None = None,
) -> tuple[RunSummary, Path]:
    """`etl check`: every file mapped and validated, reports in outbox/runs/<run_id>/."""
    clock = time.perf_counter()
    run = RunSummary(run_id=new_run_id(), command="check", started_at=now_text())
    run_dir = settings.outbox / "runs" / run.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        run.files.append(check_file(path, settings, run_dir, source, observer))
    run.exit_code = check_exit_code(run.files)
    run.finished_at = now_text()
    run.seconds = time.perf_counter() - clock
    write_json(run_dir / "summary.json", run.as_json())
    return run, run_dir


def check_exit_code(files: list[FileSummary]) -> int:
    """0 every item valid; 1 some invalid; 2 a file that cannot be read at all."""
    if any(f.status != "processed" for f in files):
        return 2
    if any(f.outcomes.get(Outcome.INVALID.value) for f in files):
        return 1
    return 0
