"""Excel workbooks (.xlsx) in: cells as text, dates exactly, formulas refused, sheet rows."""

from __future__ import annotations

import random
import re
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from etl.core.errors import UnreadableFile
from etl.core.models import MappedItem
from etl.deliver.client import ConnectClient
from etl.read.excel import number_text, read_sheet, serial_text
from etl.read.sheet_xml import DateCell, format_kind
from etl.report.files import read_errors
from etl.run.check import iter_validated, prepare
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import ExportFormat, Settings, load_mapping_file
from etl.settings.options import Conventions

from .conftest import RunCli, base_line, settings_for, write_rows
from .workbooks import Cell, write_xlsx


def mapped(path: Path, settings: Settings | None = None) -> list[MappedItem]:
    prepared = prepare(path, settings or Settings())
    return [item for chunk in iter_validated(prepared) for item in chunk]


def run_dir(outbox: Path) -> Path:
    (folder,) = (outbox / "runs").iterdir()
    return folder


def requested(outbox: Path, name: str) -> list[dict[str, Any]]:
    lines = (run_dir(outbox) / f"{name}.requests.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines]


def typed_line(order_id: str, line_id: str) -> dict[str, Cell]:
    """base_line as a person keeps it in Excel: numbers and booleans as Excel's own cells."""
    row: dict[str, Cell] = dict(base_line(order_id, line_id))
    row["order_lines.quantity"] = 2
    row["order_lines.price.amount"] = 19.99
    row["order_lines.total_shipping_price.amount"] = 0
    row["order_lines.can_cancel"] = False
    row["order_lines.can_refund"] = True
    return row


# --- the text of a cell --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("serial", "kind", "text"),
    [
        ("1", "date", "1900-01-01"),
        ("59", "date", "1900-02-28"),
        # Excel's 1900-02-29 (serial 60) never was: written so, it is refused as no date.
        ("60", "date", "1900-02-29"),
        ("61", "date", "1900-03-01"),
        ("46327", "date", "2026-11-01"),
        ("46327", "datetime", "2026-11-01T00:00:00"),  # a date-time cell at midnight
        ("46327.41666666666", "datetime", "2026-11-01T10:00:00"),
        ("46327.41666809028", "datetime", "2026-11-01T10:00:00.123"),
        ("46327.999999999", "datetime", "2026-11-02T00:00:00"),  # rounds to the next day
        ("0.5", "time", "12:00:00"),
        ("46327.25", "date", "2026-11-01T06:00:00"),  # a date cell holding a time keeps it
    ],
)
def test_serial_numbers_become_the_iso_text_a_csv_would_hold(
    serial: str, kind: str, text: str
) -> None:
    assert serial_text(DateCell(serial, kind), date1904=False) == text


def test_the_1904_date_system_counts_from_1904_without_the_leap_year_bug() -> None:
    assert serial_text(DateCell("0", "date"), date1904=True) == "1904-01-01"
    assert serial_text(DateCell("44865", "date"), date1904=True) == "2026-11-01"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("yyyy-mm-dd", "date"),
        ("dd/mm/yyyy hh:mm", "datetime"),
        ("hh:mm:ss", "time"),
        ("[h]:mm", "time"),
        ("mmm yyyy", "date"),
        ('#,##0.00 "days"', None),
        ("[Red]0.00", None),
        ("0.00%", None),
        ("General", None),
    ],
)
def test_number_formats_say_date_time_or_number(code: str, kind: str | None) -> None:
    assert format_kind(code) == kind


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (19.99, "19.99"),
        (0.1 + 0.2, "0.3"),
        (1e-05, "0.00001"),
        (1e16, "10000000000000000"),
    ],
)
def test_number_cells_read_as_excel_shows_them(value: float, text: str) -> None:
    assert number_text(value) == text


def test_number_text_agrees_with_its_exact_decimal_reading() -> None:
    """The fast path (a plain repr) against Decimal's reading of the same double."""
    rng = random.Random(19)
    values = [rng.uniform(-1e6, 1e6) for _ in range(2000)]
    values += [round(v, 2) for v in values] + [
        float(rng.randint(-(10**15), 10**15)) for _ in range(500)
    ]
    values += [-0.0, 0.5, 1e-7, 123456789012345.6, 0.1 + 0.2, 2.675]
    for value in values:
        exact = Decimal(repr(value))
        if len(exact.as_tuple().digits) > 15:
            exact = Decimal(format(value, ".15g"))
        expected = (
            str(int(exact))
            if exact == exact.to_integral_value()
            else format(exact.normalize(), "f")
        )
        assert number_text(value) == expected, value


# --- whole files ---------------------------------------------------------------------------------


def test_an_xlsx_export_sends_exactly_what_its_csv_twin_sends(
    tmp_path: Path, run_cli: RunCli
) -> None:
    rows = [base_line("00123", "L1"), base_line("00123", "L2"), base_line("0002", "L3")]
    write_rows(tmp_path / "orders-twin.csv", rows)
    typed = [typed_line("00123", "L1"), typed_line("00123", "L2"), typed_line("0002", "L3")]
    write_xlsx(tmp_path / "orders-twin.xlsx", typed)
    outbox = tmp_path / "outbox"
    code, _, err = run_cli("check", tmp_path / "orders-twin.csv", "--outbox", outbox)
    assert code == 0, err
    code, _, err = run_cli("check", tmp_path / "orders-twin.xlsx", "--outbox", tmp_path / "o2")
    assert code == 0, err
    from_csv = requested(outbox, "orders-twin.csv")
    from_xlsx = requested(tmp_path / "o2", "orders-twin.xlsx")
    assert from_xlsx == from_csv
    assert [o["channel_order_id"] for o in from_xlsx[0]["orders"]] == ["00123", "0002"]
    assert from_xlsx[0]["orders"][0]["order_lines"][0]["quantity"] == 2


def test_date_cells_are_read_exactly_and_a_date_time_at_midnight_stays_one(tmp_path: Path) -> None:
    row = typed_line("A", "L1")
    row["created_at"] = datetime(2026, 11, 1, 0, 0, 0)  # a date-time cell, midnight
    row["order_lines.created_at"] = datetime(2026, 11, 1, 9, 30, 15)
    path = write_xlsx(tmp_path / "orders-dates.xlsx", [row])
    (item,) = mapped(path, _paris())
    assert item.violations == []
    assert item.body["created_at"] == "2026-10-31T23:00:00Z"
    assert item.body["order_lines"][0]["created_at"] == "2026-11-01T08:30:15Z"


def _paris() -> Settings:
    """Settings whose exports write times in Paris (Excel's date-times have no zone)."""
    conventions = Conventions(assume_timezone=ZoneInfo("Europe/Paris"))
    return Settings(default_source=ExportFormat(conventions=conventions))


def test_a_date_only_cell_in_a_date_time_column_is_refused_as_a_csv_would_be(
    tmp_path: Path,
) -> None:
    row = typed_line("A", "L1")
    row["created_at"] = date(2026, 11, 1)
    (item,) = mapped(write_xlsx(tmp_path / "orders-day.xlsx", [row]), _paris())
    (violation,) = item.violations
    assert (violation.code, violation.rows, violation.value) == (
        "NOT_A_DATE_TIME",
        (2,),
        "2026-11-01",
    )


def test_text_keeps_its_zeros_and_a_number_cell_is_its_number(tmp_path: Path) -> None:
    row = typed_line("00123", "L1")
    row["order_lines.product.id"] = 456  # typed as a number in Excel: no zeros to keep
    (item,) = mapped(write_xlsx(tmp_path / "orders-ids.xlsx", [row]))
    assert item.violations == []
    assert item.body["channel_order_id"] == "00123"
    assert item.body["order_lines"][0]["product"]["id"] == "456"
    assert item.body["order_lines"][0]["price"]["amount"] == 19.99


def test_a_formula_is_refused_naming_its_cells(tmp_path: Path, run_cli: RunCli) -> None:
    def formulas(workbook: Any, sheet: Any) -> None:
        sheet.write_formula("Q2", "=8+11.99", None, 19.99)
        sheet.write_formula("Q3", "=Q2", None, 19.99)

    path = write_xlsx(
        tmp_path / "orders-f.xlsx", [typed_line("A", "L1"), typed_line("A", "L2")], after=formulas
    )
    code, _, err = run_cli("check", path, "--outbox", tmp_path / "outbox")
    assert code == 2
    assert (
        "orders-f.xlsx: UNREADABLE: 2 cell(s) hold a formula: Q2 (=8+11.99), Q3 (=Q2). A "
        "formula's value in the file is the one Excel computed when it was last saved, which "
        "may be stale; replace the formulas by their values (copy, then Paste Special > "
        "Values) and drop the file again"
    ) in err


def test_a_formula_in_an_ignored_column_is_not_read(tmp_path: Path) -> None:
    rows = [{**typed_line("A", "L1"), "Total": 39.98}]
    path = write_xlsx(
        tmp_path / "orders-f.xlsx",
        rows,
        after=lambda _, sheet: sheet.write_formula("U2", "=2*19.99", None, 39.98),
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text('ignore = ["Total"]\n', encoding="utf-8")
    source = load_mapping_file(mapping, Settings().source_for(path))
    prepared = prepare(path, Settings(), source)
    (item,) = [i for chunk in iter_validated(prepared) for i in chunk]
    assert item.violations == []


def test_rows_are_the_sheets_rows_blank_rows_and_a_lower_header_included(tmp_path: Path) -> None:
    bad = typed_line("B", "L2")
    bad["order_lines.quantity"] = "two"
    rows = [typed_line("A", "L1"), {}, bad]  # an empty row between them
    path = write_xlsx(tmp_path / "orders-rows.xlsx", rows, first_row=2)  # header on row 3
    items = mapped(path)
    assert [i.rows for i in items] == [(4,), (6,)]
    (violation,) = items[1].violations
    assert (violation.code, violation.rows) == ("NOT_AN_INTEGER", (6,))


def test_the_first_sheet_is_read_unless_the_mapping_names_one(
    tmp_path: Path, run_cli: RunCli
) -> None:
    def notes_first(workbook: Any) -> None:
        workbook.add_worksheet("Notes").write("A1", "read me")

    path = write_xlsx(tmp_path / "orders-s.xlsx", [typed_line("A", "L1")], before=notes_first)
    code, _, err = run_cli("check", path, "--outbox", tmp_path / "o1")
    assert code == 2 and "unknown or misplaced columns" in err
    mapping = tmp_path / "m.toml"
    mapping.write_text('[read]\nsheet = "Orders"\n', encoding="utf-8")
    code, out, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "o2")
    assert code == 0, out + err
    mapping.write_text('[read]\nsheet = "Bestellungen"\n', encoding="utf-8")
    code, _, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "o3")
    assert code == 2
    assert (
        "the workbook has no sheet 'Bestellungen' (the mapping's [read] sheet); its sheets: "
        "'Notes', 'Orders'"
    ) in err


def test_merged_cells_and_hidden_sheets_are_warnings(tmp_path: Path, run_cli: RunCli) -> None:
    rows = [typed_line("A", "L1"), typed_line("A", "L2")]
    mapping = tmp_path / "m.toml"
    # A notes column the mapping drops, merged over both rows of the order.
    path = write_xlsx(
        tmp_path / "orders-w.xlsx",
        [{**r, "Notiz": ""} for r in rows],
        after=lambda wb, ws: (ws.merge_range("U2:U3", "note"), wb.add_worksheet("Old").hide()),
    )
    mapping.write_text('ignore = ["Notiz"]\n', encoding="utf-8")
    outbox = tmp_path / "outbox"
    code, out, err = run_cli("check", path, "--mapping", mapping, "--outbox", outbox)
    assert code == 0, out + err
    warnings = [
        (r["row"], r["code"], r["message"])
        for r in read_errors(run_dir(outbox) / "orders-w.xlsx.errors.csv")
    ]
    assert warnings == [
        (
            "",
            "HIDDEN_SHEET",
            "the workbook has a hidden sheet, 'Old', which was not read (only 'Orders' was); "
            "name it with [read] sheet in a mapping file if it holds the orders",
        ),
        (
            "2,3",
            "MERGED_CELLS",
            "cells U2:U3 are merged: only U2 holds the value, the other cells read as empty; "
            "unmerge them and fill every cell",
        ),
    ]
    summary = orjson.loads((run_dir(outbox) / "summary.json").read_bytes())
    assert summary["totals"]["warnings"] == 2


def test_a_mapping_file_works_for_an_xlsx_as_for_a_csv(tmp_path: Path, run_cli: RunCli) -> None:
    rows = []
    for order_id, line_id in (("A", "L1"), ("A", "L2")):
        row = typed_line(order_id, line_id)
        row["Bestellnummer"] = row.pop("channel_order_id")
        row["Status"] = "Versendet"
        del row["status"], row["order_lines.price.currency"]
        rows.append(row)
    mapping = tmp_path / "erp.mapping.toml"
    mapping.write_text(
        '[columns]\n"Bestellnummer" = "channel_order_id"\n"Status" = "status"\n'
        '[constants]\n"order_lines.price.currency" = "EUR"\n'
        '[values."Status"]\nVersendet = "SHIPPED"\n',
        encoding="utf-8",
    )
    outbox = tmp_path / "outbox"
    path = write_xlsx(tmp_path / "orders-erp.xlsx", rows)
    code, out, err = run_cli("check", path, "--mapping", mapping, "--outbox", outbox)
    assert code == 0, out + err
    (request,) = requested(outbox, "orders-erp.xlsx")
    (order,) = request["orders"]
    assert order["channel_order_id"] == "A" and order["status"] == "SHIPPED"
    assert [line["price"] for line in order["order_lines"]] == [
        {"amount": 19.99, "currency": "EUR"}
    ] * 2


def test_another_kind_as_xlsx_is_read_the_same_way(tmp_path: Path, run_cli: RunCli) -> None:
    path = write_xlsx(
        tmp_path / "anonymize-x.xlsx",
        [
            {
                "channel_id": "CH",
                "channel_order_id": "00123",
                "anonymize_after": datetime(2099, 1, 1),
            }
        ],
        sheet="Sheet1",
    )
    outbox = tmp_path / "outbox"
    code, out, err = run_cli("check", path, "--outbox", outbox)
    assert code == 1, out + err  # a naive date-time needs a zone, as in a CSV
    (problem,) = read_errors(run_dir(outbox) / "anonymize-x.xlsx.errors.csv")
    assert (problem["row"], problem["id"], problem["code"], problem["value"]) == (
        "2",
        "00123",
        "NAIVE_DATE_TIME",
        "2099-01-01T00:00:00",
    )


def test_a_file_that_is_no_workbook_says_so(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "orders-broken.xlsx"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    code, _, err = run_cli("check", path, "--outbox", tmp_path / "outbox")
    assert code == 2
    assert "orders-broken.xlsx: UNREADABLE: not a readable Excel workbook (.xlsx)" in err


def test_etl_run_sends_every_order_of_a_workbook_and_the_sandbox_stores_them(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    rows = [typed_line("00123", "L1"), typed_line("00123", "L2"), typed_line("B", "L3")]
    write_xlsx(settings.inbox / "orders-run.xlsx", rows)
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 0
    stored = {o["channel_order_id"]: o["body"] for o in sandbox.stored_orders()}
    expected_csv = write_rows(
        tmp_path / "orders-run.csv",
        [base_line("00123", "L1"), base_line("00123", "L2"), base_line("B", "L3")],
    )
    expected = {i.item_id: i.body for i in mapped(expected_csv)}
    assert stored == expected
    assert (settings.outbox / "archive" / run.run_id / "orders-run.xlsx").is_file()


def _without_cell_names(source: Path, target: Path) -> Path:
    """The same workbook with its cells' r="B2" removed, as some writers leave them out."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for entry in old.infolist():
            data = old.read(entry)
            if entry.filename.startswith("xl/worksheets/"):
                data = re.sub(rb'(<c) r="[A-Z]+[0-9]+"', rb"\1", data)
            new.writestr(entry, data)
    return target


def test_cells_without_their_names_are_placed_by_counting(tmp_path: Path) -> None:
    rows = [typed_line("A", "L1"), typed_line("B", "L2")]
    rows[1]["created_at"] = datetime(2026, 11, 1, 0, 0, 0)
    named = write_xlsx(tmp_path / "orders-named.xlsx", rows)
    unnamed = _without_cell_names(named, tmp_path / "orders-unnamed.xlsx")
    assert b' r="A2"' not in zipfile.ZipFile(unnamed).read("xl/worksheets/sheet1.xml")
    assert read_sheet(unnamed) == read_sheet(named)
    assert read_sheet(unnamed).cells["created_at"] == [
        "2026-11-01T10:00:00+01:00",
        "2026-11-01T00:00:00",
    ]
    with_formula = write_xlsx(
        tmp_path / "orders-f.xlsx",
        rows,
        after=lambda _, sheet: sheet.write_formula("Q3", "=1+1", None, 2),
    )
    with pytest.raises(UnreadableFile, match=r"1 cell\(s\) hold a formula: Q3 \(=1\+1\)"):
        read_sheet(_without_cell_names(with_formula, tmp_path / "orders-f2.xlsx"))
