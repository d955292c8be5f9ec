"""Issue 14 item 1: `etl template` says which columns are required, per line, indexed."""

from __future__ import annotations

import csv
import io

from .conftest import RunCli, base_line


def test_required_columns_are_the_ones_every_order_needs(run_cli: RunCli) -> None:
    code, out, _ = run_cli("template", "orders", "--required")
    assert code == 0
    # base_line is a minimal valid order: exactly the required columns.
    assert sorted(out.strip().split(",")) == sorted(base_line())


def test_describe_says_required_level_and_indexed_for_every_column(run_cli: RunCli) -> None:
    _, header, _ = run_cli("template", "orders")
    code, out, _ = run_cli("template", "orders", "--describe")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["column"] for r in rows] == header.strip().split(",")
    by_name = {r["column"]: r for r in rows}
    assert by_name["channel_order_id"] == {
        "column": "channel_order_id",
        "required": "yes",
        "level": "order",
        "indexed": "no",
    }
    assert by_name["order_lines.quantity"]["level"] == "line"
    assert by_name["order_lines.taxes[0].code"]["indexed"] == "yes"
    assert by_name["order_lines.taxes[0].code"]["required"] == "no"
    assert by_name["origin.channel_id"]["level"] == "request"


def test_other_kinds_describe_themselves_too(run_cli: RunCli) -> None:
    code, out, _ = run_cli("template", "action-status", "--required")
    assert (code, out.strip()) == (0, "action_id,status")
