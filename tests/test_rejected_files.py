"""<input>.rejected.csv/.xlsx/.jsonl: the rows to fix, beside the failed input; fixed and dropped
back, their orders are sent, and orders accepted before are skipped as unchanged."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import python_calamine

from etl.core.kinds import FIX_COLUMN, detect_kind, rejected_companions, rejected_name
from etl.core.models import ItemResult, Outcome, Violation
from etl.core.schema import ORDERS
from etl.deliver.client import ConnectClient
from etl.monitor.metrics import count_failed
from etl.monitor.status import failed_files
from etl.run.check import iter_validated, prepare
from etl.run.rejected import fixes_by_row
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Settings

from .conftest import SECRET, base_line, settings_for, write_rows
from .workbooks import write_xlsx


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[SandboxServer]:
    """A sandbox that knows one store only: an order for another is REJECTED by the API."""
    with SandboxServer(
        db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET, known_stores={("CH", "S1")}
    ) as server:
        yield server


def run(settings: Settings) -> Sync:
    sync = Sync(settings, lambda: ConnectClient(settings))
    sync()
    return sync


def bodies(rows: list[dict[str, str]], folder: Path) -> dict[str, dict[str, Any]]:
    """The orders these flat rows make, as Connect should receive them."""
    path = write_rows(folder / "orders-expected.csv", rows)
    items = [i for chunk in iter_validated(prepare(path, Settings())) for i in chunk]
    assert all(not i.violations for i in items)
    return {i.item_id: i.body for i in items}


def stored(server: SandboxServer) -> dict[str, dict[str, Any]]:
    return {o["channel_order_id"]: o["body"] for o in server.stored_orders()}


MIXED = [
    base_line("A", "LA1"),
    base_line("A", "LA2"),
    base_line("B", "LB1"),
    base_line("B", "LB2", order_lines__quantity="two"),
    base_line("C", "LC1", origin__channel_store_id="NOPE"),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("orders-x.csv", "orders-x.rejected.csv"),
        ("orders-x.rejected.csv", "orders-x.rejected.rejected.csv"),
        ("orders-x.parquet", "orders-x.rejected.csv"),
        ("orders-x.xlsx", "orders-x.rejected.xlsx"),
        ("orders-x.jsonl", "orders-x.rejected.jsonl"),
    ],
)
def test_a_rejected_file_is_named_so_that_its_kind_is_still_read_from_it(
    name: str, expected: str
) -> None:
    assert rejected_name(name) == expected
    assert detect_kind(Path(expected)) is ORDERS


def test_rejected_files_beside_their_inputs_are_advice_not_failed_inputs() -> None:
    names = [
        "orders-x.csv",
        "orders-x.rejected.csv",
        "orders-x.rejected-2.csv",
        "orders-y.rejected.csv",  # dropped back, failed again: an input
        "orders-y.rejected.rejected.csv",
        "orders-z.parquet",
        "orders-z.rejected.csv",
    ]
    assert rejected_companions(names) == {
        "orders-x.rejected.csv",
        "orders-x.rejected-2.csv",
        "orders-y.rejected.rejected.csv",
        "orders-z.rejected.csv",
    }


def test_each_row_says_what_to_fix_in_it_or_where() -> None:
    results = [
        ItemResult("A", None, (2, 3), Outcome.ACCEPTED),
        ItemResult("B", None, (4, 5), Outcome.INVALID),
        ItemResult("C", None, (6,), Outcome.REJECTED),
    ]
    violations = [
        Violation("f", (5,), "B", "$.order_lines[1].quantity", "NOT_AN_INTEGER", "quantity: no"),
        Violation("f", (6,), "C", "$", "NOT_FOUND", "rejected by Connect: no store"),
    ]
    assert fixes_by_row(results, violations) == {
        4: "this row's order has problems on row(s) 5; fix those",
        5: "quantity: no",
        6: "rejected by Connect: no store",
    }


def test_a_csv_round_trip_sends_the_fixed_orders_and_skips_the_accepted(
    shop: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(shop, tmp_path)
    write_rows(settings.inbox / "orders-mix.csv", MIXED, delimiter=";")
    first = run(settings)
    assert first.run.exit_code == 1
    failed = settings.outbox / "failed" / first.run.run_id
    rejected = failed / "orders-mix.rejected.csv"
    assert (failed / "orders-mix.csv").is_file()
    assert "orders-mix.rejected.csv, beside this file" in (
        failed / "orders-mix.csv.reason.txt"
    ).read_text(encoding="utf-8")
    text = rejected.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ";".join([*MIXED[0], FIX_COLUMN])  # the input's separator
    rows = list(csv.DictReader(text.splitlines(), delimiter=";"))
    assert [{k: v for k, v in r.items() if k != FIX_COLUMN} for r in rows] == MIXED[2:]
    assert [r[FIX_COLUMN] for r in rows] == [
        "this row's order has problems on row(s) 5; fix those",
        "order_lines[1].quantity: 'two' is not a whole number",
        rows[2][FIX_COLUMN],
    ]
    assert rows[2][FIX_COLUMN].startswith("rejected by Connect: ")
    assert set(stored(shop)) == {"A"}
    # One file waits for a person: the input; the rejected file is its advice.
    assert count_failed(settings.outbox) == 1
    assert [f["name"] for f in failed_files(settings.outbox)] == ["orders-mix.csv"]

    fixed = [{k: v for k, v in r.items() if k != FIX_COLUMN} for r in rows]
    fixed[1]["order_lines.quantity"] = "2"
    fixed[2]["origin.channel_store_id"] = "S1"
    with (settings.inbox / rejected.name).open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, [*fixed[0], FIX_COLUMN], delimiter=";")
        writer.writeheader()  # the advice column is left in, as a person would
        writer.writerows({**r, FIX_COLUMN: "done"} for r in fixed)
    second = run(settings)
    assert second.run.exit_code == 0
    (summary,) = second.run.files
    assert summary.outcomes == {"ACCEPTED": 2}
    expected = bodies([*MIXED[:2], *fixed], tmp_path)
    assert stored(shop) == expected

    # The whole export, fixed, dropped again: nothing new to send.
    write_rows(settings.inbox / "orders-mix-all.csv", [*MIXED[:2], *fixed])
    third = run(settings)
    assert third.run.exit_code == 0
    assert third.run.files[0].outcomes == {"UNCHANGED": 3}
    assert stored(shop) == expected


def sheet_rows(path: Path) -> tuple[str, list[list[Any]]]:
    with python_calamine.CalamineWorkbook.from_path(str(path)) as workbook:
        name = workbook.sheet_names[0]
        return name, workbook.get_sheet_by_name(name).to_python()


def test_an_xlsx_round_trip_keeps_the_sheet_its_text_and_sends_the_fixes(
    shop: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(shop, tmp_path)
    rows: list[dict[str, Any]] = [dict(r) for r in MIXED]
    rows[0]["order_lines.quantity"] = 2  # a number cell
    write_xlsx(settings.inbox / "orders-book.xlsx", rows, sheet="Export", first_row=1)
    first = run(settings)
    assert first.run.exit_code == 1
    rejected = settings.outbox / "failed" / first.run.run_id / "orders-book.rejected.xlsx"
    name, cells = sheet_rows(rejected)
    assert name == "Export"
    header, *lines = cells
    assert header == [*MIXED[0], FIX_COLUMN]
    assert [dict(zip(header[:-1], line[:-1], strict=True)) for line in lines] == MIXED[2:]
    assert lines[1][-1] == "order_lines[1].quantity: 'two' is not a whole number"
    assert lines[0][-1] == "this row's order has problems on row(s) 6; fix those"  # sheet rows

    fixed = [dict(zip(header, line, strict=True)) for line in lines]
    fixed[1]["order_lines.quantity"] = "2"
    fixed[2]["origin.channel_store_id"] = "S1"
    write_xlsx(settings.inbox / rejected.name, fixed, sheet="Export")
    second = run(settings)
    assert second.run.exit_code == 0, second.run.files[0].reason
    assert second.run.files[0].outcomes == {"ACCEPTED": 2}
    plain = [{k: v for k, v in r.items() if k != FIX_COLUMN} for r in fixed]
    assert stored(shop) == bodies([*MIXED[:2], *plain], tmp_path)


def test_a_jsonl_round_trip_sends_the_fixed_lines(shop: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(shop, tmp_path)
    good = bodies(MIXED[:2], tmp_path)["A"]
    wrong = {**good, "channel_order_id": "W", "status": "SHIPPING"}
    wrong["order_lines"] = [{**good["order_lines"][0], "channel_order_line_id": "LW"}]
    elsewhere = {**good, "channel_order_id": "E"}
    elsewhere["order_lines"] = [{**good["order_lines"][0], "channel_order_line_id": "LE"}]
    origin = {"channel_id": "CH", "channel_store_id": "S1"}
    unknown = {"channel_id": "CH", "channel_store_id": "NOPE"}
    lines = [
        {"origin": origin, **good},
        {"origin": origin, **wrong},
        {"origin": unknown, **elsewhere},  # isolated and REJECTED by the API
    ]
    (settings.inbox / "orders-feed.jsonl").write_bytes(
        b"".join(orjson.dumps(line) + b"\n" for line in lines) + b"{broken\n"
    )
    first = run(settings)
    assert first.run.exit_code == 1
    assert first.run.files[0].outcomes == {"ACCEPTED": 1, "INVALID": 2, "REJECTED": 1}
    rejected = settings.outbox / "failed" / first.run.run_id / "orders-feed.rejected.jsonl"
    kept = rejected.read_bytes().splitlines()
    assert len(kept) == 3 and kept[2] == b"{broken"
    advice = orjson.loads(kept[0])
    assert advice.pop(FIX_COLUMN).startswith("status: 'SHIPPING' is not one of")
    assert advice == {"origin": origin, **wrong}
    other = orjson.loads(kept[1])
    assert other.pop(FIX_COLUMN).startswith("rejected by Connect: ")
    assert other == {"origin": unknown, **elsewhere}
    advice["status"] = "SHIPPED"
    other["origin"] = origin
    (settings.inbox / rejected.name).write_bytes(
        orjson.dumps(advice) + b"\n" + orjson.dumps(other) + b"\n"
    )
    second = run(settings)
    assert second.run.exit_code == 0
    assert stored(shop) == {"A": good, "W": {**wrong, "status": "SHIPPED"}, "E": elsewhere}
