"""Reports people open in spreadsheets never run a formula from the data (DESIGN.md section 9).

A cell of items.csv, errors.csv or outbox/actions/final-*.csv that starts with ``=``, ``+``,
``-``, ``@``, tab or carriage return gets a leading ``'``, unless it is a plain number; what
reaches the API (and requests.jsonl) keeps the original text.
"""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from etl.operations.actions import write_final_statuses
from etl.report import files as report
from etl.report.html import load_report
from etl.sandbox import SandboxServer

from .conftest import RunCli, base_line, connect_env, settings_for, write_rows

HYPERLINK = '=HYPERLINK("http://x","y")'
DDE = "+cmd|' /C calc'!A0"
NAME = "orders-hostile.csv"


def hostile_orders(folder: Path) -> Path:
    """Formula-like text where the reports echo it back; one valid order carries some too."""
    return write_rows(
        folder / NAME,
        [
            base_line("@SUM(1)", "L1", order_lines__quantity=HYPERLINK),
            base_line("B", "L2", order_lines__price__amount=DDE),
            base_line("C", "L3", order_lines__quantity="-5.00", status="\tSHIPPED"),
            base_line(
                "=1+1", "L4", origin__channel_store_id="-A1", order_lines__product__title=HYPERLINK
            ),
        ],
    )


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def only_run_dir(outbox: Path) -> Path:
    (run_dir,) = (outbox / "runs").iterdir()
    return run_dir


def assert_reports_neutralised(run_dir: Path, valid_outcome: str) -> None:
    errors = {(e["id"], e["field"]): e for e in csv_rows(run_dir / f"{NAME}.errors.csv")}
    assert set(errors) == {
        ("'@SUM(1)", "$.order_lines[0].quantity"),
        ("B", "$.order_lines[0].price.amount"),
        ("C", "$.order_lines[0].quantity"),
        ("C", "$.status"),
    }
    assert errors["'@SUM(1)", "$.order_lines[0].quantity"]["value"] == "'" + HYPERLINK
    assert errors["B", "$.order_lines[0].price.amount"]["value"] == "'" + DDE
    assert errors["C", "$.order_lines[0].quantity"]["value"] == "-5.00"  # a number, left alone
    assert errors["C", "$.status"]["value"] == "'\tSHIPPED"
    items = {i["id"]: i for i in csv_rows(run_dir / f"{NAME}.items.csv")}
    assert set(items) == {"'@SUM(1)", "B", "C", "'=1+1"}
    assert items["'=1+1"]["outcome"] == valid_outcome
    assert items["'=1+1"]["channel_store_id"] == "'-A1"
    assert items["'@SUM(1)"]["outcome"] == "INVALID"
    # The page for people shows what the file held, not the spreadsheet's guard.
    (view,) = load_report(run_dir).files
    shown = {(p.order_id, p.field): p.value for p in view.problems}
    assert shown["@SUM(1)", "$.order_lines[0].quantity"] == HYPERLINK
    assert shown["C", "$.status"] == "\tSHIPPED"


def test_check_neutralises_formulas_in_reports_not_in_requests(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = hostile_orders(tmp_path)
    code, _, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 1
    run_dir = only_run_dir(tmp_path / "out")
    assert_reports_neutralised(run_dir, "VALID")
    (request,) = [orjson.loads(line) for line in (run_dir / f"{NAME}.requests.jsonl").open("rb")]
    assert request["origin"] == {"channel_id": "CH", "channel_store_id": "-A1"}
    (order,) = request["orders"]
    assert order["channel_order_id"] == "=1+1"
    assert order["order_lines"][0]["product"]["title"] == HYPERLINK


def test_run_neutralises_formulas_in_reports_and_sends_the_original_text(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    hostile_orders(settings.inbox)
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    code, _, _ = run_cli(
        "run", "--inbox", settings.inbox, "--outbox", settings.outbox, "--settle", "0"
    )
    assert code == 1
    assert_reports_neutralised(only_run_dir(settings.outbox), "ACCEPTED")
    (stored,) = sandbox.stored_orders()
    assert (stored["channel_store_id"], stored["channel_order_id"]) == ("-A1", "=1+1")
    assert stored["body"]["order_lines"][0]["product"]["title"] == HYPERLINK
    (sent,) = sandbox.requests_log("/api/channel-platform/v1/orders")
    assert sent["body"]["origin"]["channel_store_id"] == "-A1"
    assert sent["body"]["orders"][0]["order_lines"][0]["product"]["title"] == HYPERLINK


def test_final_action_statuses_are_neutralised(tmp_path: Path) -> None:
    row: dict[str, object] = {
        "action_id": "@a1",
        "status": "FAILED",
        "source": "track-actions.csv",
        "entity_id": "-1+2",
        "created_at": "2026-11-22T10:00:00Z",
        "updated_at": "2026-11-22T10:05:00Z",
        "errors": orjson.dumps([{"code": "=X", "message": "m"}]).decode(),
    }
    path = write_final_statuses(tmp_path, [row], 1_800_000_000.0)
    (written,) = csv_rows(path)
    assert written["action_id"] == "'@a1"
    assert written["entity_id"] == "'-1+2"
    assert written["errors"] == "'=X: m"
    assert written["status"] == "FAILED"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-A1", "'-A1"),
        ("-1+2", "'-1+2"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-", "'-"),
        ("-5.00", "-5.00"),
        ("+3", "+3"),
        ("-1e5", "-1e5"),
        ("-2,5", "-2,5"),
        ("plain", "plain"),
        ("", ""),
        ("'=1", "''=1"),  # kept apart from a guard, so that reading back is exact
        ("'quoted", "'quoted"),
    ],
)
def test_neutral_cells_and_back(text: str, shown: str) -> None:
    assert report.neutral(text) == shown
    assert report.restored(shown) == text
