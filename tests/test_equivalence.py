"""The fast path (streamed, columnar, parallel) writes exactly what the slow, obvious one writes.

The slow path is the original `etl check`: the whole table read into Python lists, ``Mapper``
building each order with a loop per cell, every order validated by jsonschema-rs and explained by
jsonschema, every batch serialised whole. Both run on the same files, full of mistakes of every
kind, and their reports are compared byte for byte.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import etl.transform.fast.stream
from bench.generate import COLUMNS, generate_rows
from bench.shapes import SHAPES
from etl.core.models import ItemResult, MappedItem, Outcome, Violation
from etl.core.schema import ORDERS, Kind, flat_model
from etl.deliver.batch import Batcher
from etl.read.tables import fingerprint, read_table
from etl.report.files import write_errors, write_items
from etl.run.check import check_file, prepare
from etl.run.parallel import Workers
from etl.settings.config import ExportFormat, Settings, load_mapping_file
from etl.settings.options import ColumnMapping, Conventions
from etl.transform.mapping import Mapper
from etl.transform.validate import validate_items, validator_for

from .conftest import write_rows

REFERENCE_CHUNK = 60  # Mapper's chunk, small so that a small file has many (set in both paths)


def write_requests(path: Path, bodies: Iterable[dict[str, Any]]) -> None:
    """The would-be requests, one JSON document a line: what both paths are compared on."""
    path.write_bytes(b"".join(orjson.dumps(body) + b"\n" for body in bodies))


def reference_check(path: Path, settings: Settings, out: Path) -> None:
    """The original check_file, step for step (kept here as the oracle)."""
    prepared = prepare(path, settings)
    table = read_table(path, prepared.source.read)
    kind = prepared.kind
    mapper = Mapper(
        table,
        path.name,
        kind,
        prepared.source.conventions,
        prepared.source.mapping,
        settings.default_origin,
    )
    validator = validator_for(kind)
    results: list[ItemResult] = []
    violations: list[Violation] = list(prepared.user_columns.problems)  # once, not per order
    bodies: list[dict[str, Any]] = []
    batcher = Batcher(prefix=fingerprint(path)[:12], max_items=kind.max_items)

    def take(batches: Iterator[Any]) -> None:
        for batch in batches:
            bodies.append(batch.body(kind.items_property))
            results.extend(
                ItemResult(i.item_id, i.origin, i.rows, Outcome.VALID, batch.batch_id)
                for i in batch.items
            )

    for chunk in mapper.chunks(REFERENCE_CHUNK):
        validate_items(chunk, validator, kind.row_property)
        prepared.user_columns.restate(chunk)
        valid: list[MappedItem] = []
        for item in chunk:
            if item.violations:
                violations.extend(v for v in item.violations if not v.whole_file)
                count = len(item.violations)
                first = item.violations[0]
                message = first.message
                if count > 1:
                    message += f" (and {count - 1} more problem(s))"
                results.append(
                    ItemResult(
                        item.item_id,
                        item.origin,
                        item.rows,
                        Outcome.INVALID,
                        code=first.code,
                        message=message,
                    )
                )
            else:
                valid.append(item)
            violations.extend(item.warnings)  # after its violations; never a reason to refuse
        take(batcher.add(valid))
    take(batcher.flush())
    results.sort(key=lambda r: r.rows[0] if r.rows else 0)
    write_requests(out / f"{path.name}.requests.jsonl", bodies)
    write_items(out / f"{path.name}.items.csv", path.name, results)
    write_errors(out / f"{path.name}.errors.csv", path.name, violations)


MISTAKES: list[tuple[str, str]] = [
    ("created_at", "2026-02-30T10:00:00Z"),  # not a real day
    ("created_at", "2026-11-01 10:00:00"),  # no offset
    ("channel_updated_at", "0999-01-01T00:00:00Z"),  # year before 1000: format_utc's edge
    ("order_lines.quantity", "2.5"),
    ("order_lines.quantity", "007"),  # leading zeros: a plain integer all the same
    ("order_lines.price.amount", "-3.10"),
    ("order_lines.price.amount", "19,99"),
    ("order_lines.price.amount", "0.0000001"),  # an exponent in JSON
    ("order_lines.price.amount", "1234567890123.5"),
    ("order_lines.price.amount", "12345678901234567"),
    ("order_lines.taxes[0].rate", "abc"),
    ("order_lines.can_cancel", "maybe"),
    ("order_lines.can_refund", "YES"),
    ("order_lines.status", "SHIPPING"),
    ("status", "NOPE"),
    ("shipping_info.email", "not an email"),
    ("shipping_info.address.last_name", ""),
    ("order_lines.product.thumbnail_url", "x y"),
    ("order_lines.product.title", 'say "hi"\\ \t\x01 ünï\ncode'),
    ("custom_attributes[0].value", "perhaps"),  # BOOLEAN custom value
    ("custom_attributes[1].value", "[1,2]"),  # LIST of numbers
    ("custom_attributes[1].type", "COLOUR"),
    ("order_lines.custom_attributes[0].type", "DATE"),
    ("order_lines.adjustments[0].type", "REFUND"),  # an adjustment missing its other fields
    ("fulfillment.type", ""),
    ("origin.channel_store_id", ""),
    ("channel_order_id", ""),
    ("order_lines.channel_order_line_id", "L000000003"),  # a duplicate of an early line
    ("order_lines.taxes[1].amount.amount", "0.5"),  # a gap: taxes[1] without taxes[0]
]


def messy_rows(orders: int, seed: int) -> list[dict[str, str]]:
    """A realistic export with every kind of mistake sprinkled over it, deterministically."""
    rng = random.Random(seed)
    rows = list(generate_rows(orders, seed=seed, max_lines=4))
    missing_id = False
    for row in rows:
        if rng.random() < 0.08:
            column, value = rng.choice(MISTAKES)
            if column == "channel_order_id":
                if missing_id:  # two orders without an id would be one scattered order
                    continue
                missing_id = True
            if column in ("origin.channel_store_id", "channel_order_id") or not column.startswith(
                "order_lines."
            ):  # an order-level mistake is on every row of the order, as an ERP writes it
                for other in rows:
                    if other["channel_order_id"] == row["channel_order_id"] and other is not row:
                        other[column] = value
            if column == "order_lines.taxes[1].amount.amount":
                row["order_lines.taxes[0].code"] = ""
                row["order_lines.taxes[0].rate"] = ""
                row["order_lines.taxes[0].amount.amount"] = ""
                row["order_lines.taxes[0].amount.currency"] = ""
            if column == "order_lines.channel_order_line_id":
                value = rows[rng.randrange(len(rows))][column]
            row[column] = value
        if rng.random() < 0.02:  # order-level cells that disagree between rows
            row["shipping_info.address.city"] = "Lyon"
    return rows


def write(path: Path, rows: list[dict[str, str]], blank_lines: bool = False) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for number, row in enumerate(rows):
            writer.writerow(row)
            if blank_lines and number % 97 == 5:
                handle.write("\r\n")
    return path


def reports(folder: Path, name: str) -> dict[str, bytes]:
    return {
        suffix: (folder / f"{name}.{suffix}").read_bytes()
        for suffix in ("requests.jsonl", "items.csv", "errors.csv")
    }


def compare(
    path: Path,
    tmp_path: Path,
    workers: Workers | None,
    source: ExportFormat | None = None,
    settings: Settings | None = None,
) -> None:
    if settings is None:
        settings = Settings(outbox=tmp_path / "out", default_source=source or ExportFormat())
    slow, fast = tmp_path / "slow", tmp_path / "fast"
    slow.mkdir(exist_ok=True)
    fast.mkdir(exist_ok=True)
    reference_check(path, settings, slow)
    summary = check_file(path, settings, fast, workers=workers)
    expected, actual = reports(slow, path.name), reports(fast, path.name)
    for suffix in expected:
        assert actual[suffix] == expected[suffix], f"{path.name}.{suffix} differs"
    items = list(csv.DictReader(expected["items.csv"].decode().splitlines()))
    assert summary.items == len(items)
    assert summary.requests == len(expected["requests.jsonl"].splitlines())
    outcomes = {o: sum(1 for i in items if i["outcome"] == o) for o in ("VALID", "INVALID")}
    assert summary.outcomes == {k: v for k, v in outcomes.items() if v}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mapper's chunk (which decides which duplicate line ids both orders hear about) is small
    in both paths, so a small file crosses many chunk boundaries."""
    monkeypatch.setattr(etl.transform.fast.stream, "CHUNK_ITEMS", REFERENCE_CHUNK)
    monkeypatch.setattr("etl.run.parallel.CHUNK_SIZE", 20)
    monkeypatch.setattr("etl.run.check.PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr("etl.run.check.PARALLEL_MIN_BYTES", 0)  # the fingerprint by a worker too


def test_a_messy_export_gives_the_same_reports(tmp_path: Path) -> None:
    rows = messy_rows(700, seed=3)
    path = write(tmp_path / "orders-messy.csv", rows)
    stream = prepare(path, Settings()).stream
    assert stream is not None and stream.numbers is None  # streamed, not regrouped
    compare(path, tmp_path, workers=None)
    problems = (tmp_path / "fast" / "orders-messy.csv.errors.csv").read_text()
    codes = {row["code"] for row in csv.DictReader(problems.splitlines())}
    assert {"DUPLICATE_LINE_ID", "ROWS_DISAGREE", "NOT_A_DATE_TIME", "NEGATIVE_AMOUNT"} <= codes
    assert {"MISSING_ID", "MISSING_ORIGIN", "NOT_ALLOWED_VALUE", "INVALID_EMAIL"} <= codes


def test_worker_processes_give_the_same_reports(tmp_path: Path) -> None:
    path = write(tmp_path / "orders-messy.csv", messy_rows(400, seed=4))
    with Workers(2) as workers:
        compare(path, tmp_path, workers)


def test_a_file_lacking_required_columns_gives_the_same_reports(tmp_path: Path) -> None:
    """Issue 14: each column the file lacks is said once, before the orders' own problems, by
    worker processes as by the oracle; the orders say nothing more about those columns."""
    lacking = ("fulfillment.type", "order_lines.quantity")
    rows = [{k: v for k, v in r.items() if k not in lacking} for r in messy_rows(300, seed=8)]
    path = write_rows(tmp_path / "orders-lacking.csv", rows)
    with Workers(2) as workers:
        compare(path, tmp_path, workers)
    errors = list(csv.DictReader((tmp_path / "fast" / f"{path.name}.errors.csv").open()))
    assert [(e["row"], e["column"]) for e in errors[:2]] == [
        ("", "fulfillment.type"),
        ("", "order_lines.quantity"),
    ]
    assert sum(e["code"] == "MISSING_COLUMN" for e in errors) == 2
    assert not {e["column"] for e in errors[2:]} & set(lacking)
    assert {e["code"] for e in errors[2:]} >= {"NEGATIVE_AMOUNT", "ROWS_DISAGREE"}


def test_scattered_orders_and_blank_lines_give_the_same_reports(tmp_path: Path) -> None:
    rows = messy_rows(300, seed=5)
    random.Random(5).shuffle(rows)  # an order's rows anywhere in the file
    path = write(tmp_path / "orders-scattered.csv", rows, blank_lines=True)
    stream = prepare(path, Settings()).stream
    assert stream is not None and stream.numbers is not None  # regrouped, rows renumbered
    compare(path, tmp_path, workers=None)


def test_cells_a_spreadsheet_would_run_are_guarded_alike(tmp_path: Path) -> None:
    """The fast path's own items.csv lines for valid orders guard ids and origins as item_row."""
    rows = messy_rows(200, seed=7)
    ids = sorted({row["channel_order_id"] for row in rows} - {""})
    for row in rows:
        position = ids.index(row["channel_order_id"]) if row["channel_order_id"] else 1
        if position % 4 == 0:
            row["origin.channel_store_id"] = "-S1"
        if position % 6 == 0:
            row["channel_order_id"] = "@" + row["channel_order_id"]
        if position % 9 == 0:
            row["order_lines.quantity"] = '=HYPERLINK("x")'
    path = write(tmp_path / "orders-formulas.csv", rows)
    compare(path, tmp_path, workers=None)
    items = (tmp_path / "fast" / "orders-formulas.csv.items.csv").read_text()
    assert ",'-S1,'@" in items and ",VALID," in items


def test_parquet_gives_the_same_reports(tmp_path: Path) -> None:
    path = tmp_path / "orders-messy.parquet"
    rows = [
        {**row, "order_lines.quantity": row["order_lines.quantity"].replace("2.5", "")}
        for row in messy_rows(300, seed=6)
    ]
    _parquet(path, rows)
    compare(path, tmp_path, workers=None)


def _parquet(path: Path, rows: list[dict[str, str]]) -> None:
    """Native types where they convert, text elsewhere (a mistake stays a string column)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.generate import _arrow_column
    from etl.core.schema import ORDERS, flat_model

    model = flat_model(ORDERS)
    arrays = []
    for column in COLUMNS:
        values = [row[column] for row in rows]
        try:
            arrays.append(_arrow_column(model.leaf(column).kind, column, values))
        except (ValueError, ArithmeticError, pa.ArrowException):
            arrays.append(pa.array([v or None for v in values], type=pa.string()))
    pq.write_table(pa.Table.from_arrays(arrays, names=COLUMNS), path)


def test_every_order_found_valid_by_parts_is_valid_whole(tmp_path: Path) -> None:
    """The split verdict (etl.transform.fast.verdict) never calls an invalid order valid."""
    path = write(tmp_path / "orders-messy.csv", messy_rows(500, seed=7))
    prepared = prepare(path, Settings())
    assert prepared.stream is not None
    from etl.run.parallel import FileJob, _cache, _work

    job = FileJob(
        "verdict",
        prepared.stream.header,
        prepared.stream.columns,
        path.name,
        prepared.kind,
        prepared.source.conventions,
        prepared.source.mapping,
        None,
    )
    validator = validator_for(prepared.kind)
    judged = 0
    for chunk in prepared.stream.chunks(20):
        _work(job, chunk, keep_bodies=True)
        assembler = _cache.assemblers["verdict"]
        items, documents, known = assembler.items(chunk.batch, chunk.row_numbers, chunk.starts)
        for item, document, valid in zip(items, documents, known, strict=True):
            if valid:
                judged += 1
                assert validator.is_valid(orjson.loads(document or b"{}")), item.item_id
    assert judged > 300


def test_request_lines_equal_orjson_of_the_whole_body() -> None:
    from etl.core.models import Origin
    from etl.run.check import request_line

    documents = [orjson.dumps({"a": 1.5, "b": 'é"x'}), orjson.dumps({"c": [1, 2]})]
    body = {"origin": Origin("C", "S").as_json(), "orders": [json.loads(d) for d in documents]}
    assert request_line(Origin("C", "S"), "orders", documents) == orjson.dumps(body) + b"\n"
    views = [memoryview(b"..." + d)[3:] for d in documents]  # as they come from a worker
    assert request_line(Origin("C", "S"), "orders", views) == orjson.dumps(body) + b"\n"
    for some in ([], documents[:1]):
        body = {"orders": [json.loads(d) for d in some]}
        assert request_line(None, "orders", some) == orjson.dumps(body) + b"\n"


BERLIN = ZoneInfo("Europe/Berlin")
FILE_FORMAT = "%d.%m.%Y %H:%M:%S"  # the file's ([read] date_format), in Berlin time
OWN_FORMATS = {
    "channel_updated_at": "%Y%m%d%H%M%S%z",  # with its offset
    "custom_attributes[1].value": "%Y/%m/%d %H:%M",  # a DATE custom value
}


def in_formats(rows: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    """The messy export with its date-times written as an ERP does: in the file's format or a
    column's own, with wall-clock times a daylight-saving change skipped or repeated."""
    rng = random.Random(seed)
    odd = ["29.03.2026 02:30:00", "25.10.2026 02:30:00", "2026-11-01T10:00:00Z", "1.2.2026 3:4:5"]
    for row in rows:
        for column in COLUMNS:
            if flat_model(ORDERS).leaf(column).kind is not Kind.DATE_TIME or not row[column]:
                continue
            try:
                moment = datetime.fromisoformat(row[column]).astimezone(BERLIN)
            except ValueError:
                continue  # a mistake already: it stays as it is
            if column in OWN_FORMATS:
                row[column] = moment.strftime(OWN_FORMATS[column])
            elif rng.random() < 0.03:
                row[column] = rng.choice(odd)
            else:
                row[column] = moment.strftime(FILE_FORMAT)
        if row["custom_attributes[1].type"] == "NUMERIC" and rng.random() < 0.3:
            row["custom_attributes[1].type"] = "DATE"
            row["custom_attributes[1].value"] = rng.choice(["2026/11/20 09:14", "20.11.2026"])
    return rows


DATED_SOURCE = ExportFormat(
    conventions=Conventions(assume_timezone=BERLIN, date_format=FILE_FORMAT),
    mapping=ColumnMapping(formats=OWN_FORMATS),
)


def test_date_formats_give_the_same_reports(tmp_path: Path) -> None:
    """The file's date format, columns' own formats and the assumed zone, with cells that do
    not match and times that never happened or happened twice; a custom DATE value too."""
    path = write(tmp_path / "orders-dated.csv", in_formats(messy_rows(400, seed=8), seed=8))
    compare(path, tmp_path, workers=None, source=DATED_SOURCE)
    problems = (tmp_path / "fast" / "orders-dated.csv.errors.csv").read_text()
    codes = {row["code"] for row in csv.DictReader(problems.splitlines())}
    assert {"NOT_A_DATE_TIME", "NONEXISTENT_LOCAL_TIME", "AMBIGUOUS_LOCAL_TIME"} <= codes
    requests = (tmp_path / "fast" / "orders-dated.csv.requests.jsonl").read_text()
    assert '"value":"2026-11-20T08:14:00Z"' in requests  # the DATE custom value, in its format


def test_date_formats_leave_native_parquet_timestamps_alone_in_both_paths(tmp_path: Path) -> None:
    rows = in_formats(messy_rows(200, seed=9), seed=9)
    originals = messy_rows(200, seed=9)  # the same orders, in ISO 8601
    for row, original in zip(rows, originals, strict=True):
        try:  # a native timestamp column: the instants, whatever the formats say
            valid = datetime.fromisoformat(original["created_at"]).tzinfo is not None
        except ValueError:
            valid = False
        row["created_at"] = original["created_at"] if valid else "2026-11-01T10:00:00Z"
    path = tmp_path / "orders-dated.parquet"
    _parquet(path, rows)
    assert pa.types.is_timestamp(pq.read_schema(path).field("created_at").type)
    compare(path, tmp_path, workers=None, source=DATED_SOURCE)
    problems = (tmp_path / "fast" / "orders-dated.parquet.errors.csv").read_text()
    found = {(row["field"], row["code"]) for row in csv.DictReader(problems.splitlines())}
    assert not {field for field, _ in found} & {"$.created_at"}  # read as instants, in both
    assert {code for _, code in found} >= {"NONEXISTENT_LOCAL_TIME", "AMBIGUOUS_LOCAL_TIME"}


WORDS = {
    # Two words for one value, and values swapped: a map applied twice would show.
    "status": (("Geliefert", "SHIPPED"), ("DELIVERED", "SHIPPED"), ("SHIPPED", "DELIVERED")),
    "order_lines.status": (("Geliefert", "DELIVERED"),),
    "order_lines.can_cancel": (("ja", "true"), ("nein", "false"), ("false", "true")),
    "origin.channel_id": (("Shop Frankreich", "SHOP-FR"),),  # a key of the grouping
    "order_lines.channel_order_line_id": (("Zeile drei", "L000000003"),),  # a duplicate
}


def in_words(rows: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    """The messy export as an ERP writes it, with its own words for Connect's values."""
    rng = random.Random(seed)
    for row in rows:
        if rng.random() < 0.3:
            row["status"] = rng.choice(["Geliefert", "DELIVERED", row["status"]])
        if rng.random() < 0.3:
            row["order_lines.status"] = "Geliefert"
        if rng.random() < 0.5:
            row["order_lines.can_cancel"] = rng.choice(["ja", "nein", "Ja"])
        if row["origin.channel_id"] == "SHOP-FR" and rng.random() < 0.5:
            row["origin.channel_id"] = "Shop Frankreich"
        if rng.random() < 0.01:
            row["order_lines.channel_order_line_id"] = "Zeile drei"
    return rows


def test_value_maps_give_the_same_reports(tmp_path: Path) -> None:
    rows = in_words(messy_rows(400, seed=10), seed=10)
    path = write(tmp_path / "orders-words.csv", rows)
    source = ExportFormat(mapping=ColumnMapping(values=WORDS))
    compare(path, tmp_path, workers=None, source=source)
    problems = (tmp_path / "fast" / "orders-words.csv.errors.csv").read_text()
    found = [row for row in csv.DictReader(problems.splitlines())]
    assert any(row["value"] == "Ja" for row in found)  # no word for it: reported as written
    assert any(row["code"] == "DUPLICATE_LINE_ID" and row["value"] == "L000000003" for row in found)
    requests = (tmp_path / "fast" / "orders-words.csv.requests.jsonl").read_text()
    assert "Geliefert" not in requests and "Shop Frankreich" not in requests


def test_value_maps_give_the_same_reports_with_scattered_orders(tmp_path: Path) -> None:
    rows = in_words(messy_rows(300, seed=11), seed=11)
    random.Random(11).shuffle(rows)
    path = write(tmp_path / "orders-words.csv", rows)
    source = ExportFormat(mapping=ColumnMapping(values=WORDS))
    assert prepare(path, Settings(default_source=source)).stream.numbers is not None  # type: ignore[union-attr]
    compare(path, tmp_path, workers=None, source=source)


def in_percentages(rows: list[dict[str, str]], seed: int) -> list[dict[str, str]]:
    """The messy export with some tax rates written as percentages (20 for 0.2)."""
    rng = random.Random(seed)
    for row in rows:
        for column in ("order_lines.taxes[0].rate", "order_lines.shipping_taxes[0].rate"):
            if row[column] and rng.random() < 0.1:
                row[column] = rng.choice(["20", "5.5", "1", "1.0001", "100"])
    return rows


def test_percent_rates_give_the_same_reports(tmp_path: Path) -> None:
    path = write(tmp_path / "orders-rates.csv", in_percentages(messy_rows(400, seed=12), 12))
    compare(path, tmp_path, workers=None)
    problems = (tmp_path / "fast" / "orders-rates.csv.errors.csv").read_text()
    found = list(csv.DictReader(problems.splitlines()))
    warned = {row["id"] for row in found if row["code"] == "RATE_LOOKS_LIKE_PERCENT"}
    refused = {row["id"] for row in found if row["code"] != "RATE_LOOKS_LIKE_PERCENT"}
    assert warned - refused and warned & refused  # on valid orders and on invalid ones
    assert {row["value"] for row in found if row["id"] in warned} >= {"20", "5.5", "1.0001"}
    items = (tmp_path / "fast" / "orders-rates.csv.items.csv").read_text()
    valid = {row["id"] for row in csv.DictReader(items.splitlines()) if row["outcome"] == "VALID"}
    assert warned - refused <= valid


def test_percent_rates_in_worker_processes_give_the_same_reports(tmp_path: Path) -> None:
    path = write(tmp_path / "orders-rates.csv", in_percentages(messy_rows(300, seed=13), 13))
    with Workers(2) as workers:
        compare(path, tmp_path, workers)


# --- issue 16: the bench's shapes of export, each on the fast path ------------------------------


def shape_settings(shape: str, path: Path, tmp_path: Path) -> Settings:
    """A small export of one of the bench's shapes at ``path``, and what `etl check FILE
    --mapping FILE.mapping.toml` reads it with in the environment the bench gives it (the
    default origin from CONNECT_CHANNEL_ID/CONNECT_STORE_ID)."""
    if shape == "bench":
        write(path, list(generate_rows(150, seed=16)))
        return Settings(outbox=tmp_path / "out")
    written = SHAPES[shape].write(path, 150, seed=16)
    env = SHAPES[shape].env
    return Settings(
        outbox=tmp_path / "out",
        channel_id=env.get("CONNECT_CHANNEL_ID", ""),
        store_id=env.get("CONNECT_STORE_ID", ""),
        default_source=load_mapping_file(written, ExportFormat()) if written else ExportFormat(),
    )


def judged_slowly(path: Path, settings: Settings) -> list[str]:
    """The ids of the orders the fast path did not find valid by parts (built by Mapper, or
    validated whole): on a valid export, none should be."""
    from etl.run.parallel import FileJob, _cache, _work

    prepared = prepare(path, settings)
    assert prepared.stream is not None and prepared.stream.numbers is None
    token = f"shape {path}"  # a worker keeps the assembler of the last token it saw
    job = FileJob(
        token,
        prepared.stream.header,
        prepared.stream.columns,
        path.name,
        prepared.kind,
        prepared.source.conventions,
        prepared.source.mapping,
        prepared.stream.default_origin,
    )
    slow: list[str] = []
    for chunk in prepared.stream.chunks(20):
        _work(job, chunk, keep_bodies=False)
        items, documents, known = _cache.assemblers[token].items(
            chunk.batch, chunk.row_numbers, chunk.starts
        )
        slow += [i.item_id for i, d, k in zip(items, documents, known, strict=True) if not k]
    return slow


@pytest.mark.parametrize("shape", ["bench", "wide", "minimal"])
def test_every_shape_gives_the_same_reports_on_the_fast_path(
    shape: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: every shape of the bench, read as the bench reads it (TZ=Europe/Paris, worker
    processes), gives the oracle's reports, and every order of it is judged valid by parts:
    a shape that fell off the fast path would be slow without a word."""
    path = tmp_path / f"orders-{shape}.csv"
    settings = shape_settings(shape, path, tmp_path)
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()  # here and in the worker processes, started after this
    try:
        with Workers(2) as workers:
            compare(path, tmp_path, workers, settings=settings)
        assert judged_slowly(path, settings) == []
    finally:
        monkeypatch.undo()
        time.tzset()
    items = (tmp_path / "fast" / f"{path.name}.items.csv").read_text()
    outcomes = [row["outcome"] for row in csv.DictReader(items.splitlines())]
    assert len(outcomes) == 150 and set(outcomes) == {"VALID"}
