"""JSON lines in: one nested order per line, validated, batched and reported like any input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from etl.deliver.client import ConnectClient
from etl.report.files import read_errors
from etl.run.check import iter_validated, prepare
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Settings

from .conftest import RunCli, base_line, settings_for, write_rows


def orders_of(rows: list[dict[str, str]], folder: Path) -> list[dict[str, Any]]:
    """The nested orders (with their origin) that these flat rows make."""
    path = write_rows(folder / "orders-flat.csv", rows)
    items = [i for chunk in iter_validated(prepare(path, Settings())) for i in chunk]
    assert all(not i.violations for i in items)
    return [{"origin": i.origin.as_json(), **i.body} for i in items if i.origin]


def write_lines(path: Path, lines: list[bytes | dict[str, Any]]) -> Path:
    path.write_bytes(
        b"".join(
            (line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines
        )
    )
    return path


def run_dir(outbox: Path) -> Path:
    (folder,) = (outbox / "runs").iterdir()
    return folder


def test_a_jsonl_export_sends_what_its_csv_twin_sends(tmp_path: Path, run_cli: RunCli) -> None:
    rows = [base_line("00123", "L1"), base_line("00123", "L2"), base_line("B", "L3")]
    write_rows(tmp_path / "orders-twin.csv", rows)
    write_lines(tmp_path / "orders-twin.jsonl", list(orders_of(rows, tmp_path)))
    for name, outbox in (("orders-twin.csv", "o1"), ("orders-twin.jsonl", "o2")):
        code, _, err = run_cli("check", tmp_path / name, "--outbox", tmp_path / outbox)
        assert code == 0, err
    requests = [
        (run_dir(tmp_path / o) / f"orders-twin.{s}.requests.jsonl").read_bytes()
        for o, s in (("o1", "csv"), ("o2", "jsonl"))
    ]
    assert requests[0] == requests[1]


def test_a_line_that_is_not_json_is_that_lines_problem_only(
    tmp_path: Path, run_cli: RunCli
) -> None:
    good, other = orders_of([base_line("A", "L1"), base_line("B", "L2")], tmp_path)
    wrong = {**orjson.loads(orjson.dumps(good)), "channel_order_id": "C", "status": "SHIPPING"}
    for order in (good, other, wrong):
        order["order_lines"][0]["channel_order_line_id"] = order["channel_order_id"] + "-1"
    path = write_lines(
        tmp_path / "orders-mixed.ndjson",
        [good, b'{"channel_order_id": "X", oops}', b"", other, wrong, b"[1, 2]"],
    )
    outbox = tmp_path / "outbox"
    code, out, err = run_cli("check", path, "--outbox", outbox)
    assert code == 1, out + err
    problems = [
        (p["row"], p["id"], p["field"], p["code"], p["message"])
        for p in read_errors(run_dir(outbox) / "orders-mixed.ndjson.errors.csv")
    ]
    assert problems == [
        (
            "2",
            "",
            "$",
            "INVALID_JSON",
            "line 2 is not valid JSON (unexpected character, expected a string key at column 27):"
            " each line must hold one whole item, on one line",
        ),
        (
            "5",
            "C",
            "$.status",
            "NOT_ALLOWED_VALUE",
            "status: 'SHIPPING' is not one of AWAITING_ACCEPTANCE, AWAITING_FRAUD_CHECK, "
            "AWAITING_PAYMENT, AWAITING_SHIPMENT, CHANNEL_SPECIFIC, CLOSED, DELIVERED, SHIPPED",
        ),
        (
            "6",
            "",
            "$",
            "INVALID_JSON",
            "line 6 holds a list, not an object ({...}): each line must be one whole item of the "
            "request, on one line",
        ),
    ]
    (request,) = [
        orjson.loads(line)
        for line in (run_dir(outbox) / "orders-mixed.ndjson.requests.jsonl").read_bytes().split()
    ]
    assert [o["channel_order_id"] for o in request["orders"]] == ["A", "B"]


def test_the_mapping_fills_constants_and_refuses_column_renames(
    tmp_path: Path, run_cli: RunCli
) -> None:
    (order,) = orders_of([base_line("A", "L1")], tmp_path)
    del order["origin"], order["order_lines"][0]["price"]["currency"]
    path = write_lines(tmp_path / "orders-m.jsonl", [order])
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[constants]\n"origin.channel_id" = "CH"\n"origin.channel_store_id" = "S9"\n'
        '"order_lines.price.currency" = "EUR"\n',
        encoding="utf-8",
    )
    outbox = tmp_path / "outbox"
    code, out, err = run_cli("check", path, "--mapping", mapping, "--outbox", outbox)
    assert code == 0, out + err
    (request,) = [
        orjson.loads(line)
        for line in (run_dir(outbox) / "orders-m.jsonl.requests.jsonl").read_bytes().split()
    ]
    assert request["origin"] == {"channel_id": "CH", "channel_store_id": "S9"}
    assert request["orders"][0]["order_lines"][0]["price"] == {"amount": 19.99, "currency": "EUR"}
    mapping.write_text('[columns]\n"Nr" = "channel_order_id"\n', encoding="utf-8")
    code, _, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "o2")
    assert code == 2
    assert (
        "the mapping's [columns] name an export's columns, and JSON lines have none: write the "
        "fields as the request names them (only [constants] and ignore apply)"
    ) in err


def test_etl_run_batches_jsonl_orders_and_the_sandbox_gets_each_as_written(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    rows = [base_line(f"O{n:03d}", f"L{n}") for n in range(150)]
    orders = orders_of(rows, tmp_path)
    write_lines(settings.inbox / "orders-many.jsonl", [*orders, b"not json"])
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 1  # the line that is not JSON
    (summary,) = run.files
    assert summary.outcomes == {"ACCEPTED": 150, "INVALID": 1}
    sizes = [r["orders"] for r in sandbox.requests_log(path="/api/channel-platform/v1/orders")]
    assert sizes == [100, 50]
    stored = {o["channel_order_id"]: o["body"] for o in sandbox.stored_orders()}
    assert stored == {
        o["channel_order_id"]: {k: v for k, v in o.items() if k != "origin"} for o in orders
    }
    assert (settings.outbox / "failed" / run.run_id / "orders-many.jsonl").is_file()


def test_control_characters_and_repeated_line_ids_are_refused_as_in_a_csv(
    tmp_path: Path, run_cli: RunCli
) -> None:
    first, second, third = orders_of(
        [base_line("A", "L1"), base_line("B", "L2"), base_line("C", "L3")], tmp_path
    )
    first["order_lines"][0]["product"]["title"] = "Mug\x00"
    third["order_lines"][0]["channel_order_line_id"] = "L2"  # B's
    path = write_lines(tmp_path / "orders-rules.jsonl", [first, second, third])
    outbox = tmp_path / "outbox"
    code, out, err = run_cli("check", path, "--outbox", outbox)
    assert code == 1, out + err
    problems = [
        (p["row"], p["id"], p["field"], p["code"], p["value"])
        for p in read_errors(run_dir(outbox) / "orders-rules.jsonl.errors.csv")
    ]
    assert problems == [
        ("1", "A", "$.order_lines[0].product.title", "CONTROL_CHARACTER", "Mug\\u0000"),
        ("2,3", "B", "$.order_lines[0].channel_order_line_id", "DUPLICATE_LINE_ID", "L2"),
        ("2,3", "C", "$.order_lines[0].channel_order_line_id", "DUPLICATE_LINE_ID", "L2"),
    ]
    assert not (run_dir(outbox) / "orders-rules.jsonl.requests.jsonl").read_bytes()
