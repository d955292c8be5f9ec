"""Formats people have (issue 14): dates in the ERP's own format, value maps for enums and
booleans, and a warning for a tax rate written as a percentage. Real files through `etl check`."""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.deliver.client import ConnectClient
from etl.report.files import read_errors
from etl.report.html import write_html_report
from etl.run.sync import Sync
from etl.sandbox import SandboxServer

from .conftest import RunCli, base_line, settings_for, write_rows


def only_run_dir(outbox: Path) -> Path:
    (run_dir,) = (outbox / "runs").iterdir()
    return run_dir


def orders_sent(outbox: Path, name: str) -> dict[str, dict[str, object]]:
    lines = (only_run_dir(outbox) / f"{name}.requests.jsonl").read_bytes().splitlines()
    return {
        order["channel_order_id"]: order for line in lines for order in orjson.loads(line)["orders"]
    }


def problems(outbox: Path, name: str) -> list[tuple[str, str, str, str]]:
    rows = read_errors(only_run_dir(outbox) / f"{name}.errors.csv")
    return [(r["id"], r["field"], r["code"], r["message"]) for r in rows]


def mapping_file(folder: Path, text: str) -> Path:
    path = folder / "erp.mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


BERLIN_MINUTES = '[read]\nassume_timezone = "Europe/Berlin"\ndate_format = "%d.%m.%Y %H:%M"\n'


# --- date formats ------------------------------------------------------------------------------


def test_the_files_date_format_reads_every_date_time_in_the_assumed_zone(
    tmp_path: Path, run_cli: RunCli
) -> None:
    dates = {
        "created_at": "20.11.2026 09:14",
        "channel_updated_at": "20.11.2026 10:00",
        "order_lines.created_at": "20.11.2026 09:14",
        "order_lines.updated_at": "01.07.2026 12:00",  # summer: UTC+2
    }
    path = write_rows(tmp_path / "orders-erp.csv", [{**base_line("A"), **dates}])
    mapping = mapping_file(tmp_path, BERLIN_MINUTES)
    code, out, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 0, out
    order = orders_sent(tmp_path / "out", "orders-erp.csv")["A"]
    assert (order["created_at"], order["channel_updated_at"]) == (
        "2026-11-20T08:14:00Z",
        "2026-11-20T09:00:00Z",
    )
    line = order["order_lines"][0]  # type: ignore[index]
    assert (line["created_at"], line["updated_at"]) == (
        "2026-11-20T08:14:00Z",
        "2026-07-01T10:00:00Z",
    )


def test_etl_toml_read_date_format_applies_to_files_without_a_mapping(
    tmp_path: Path, run_cli: RunCli
) -> None:
    config = tmp_path / "etl.toml"
    config.write_text(BERLIN_MINUTES, encoding="utf-8")
    row = {**base_line("A"), "created_at": "20.11.2026 09:14"}
    for column in ("channel_updated_at", "order_lines.created_at", "order_lines.updated_at"):
        row[column] = "21.11.2026 00:30"
    path = write_rows(tmp_path / "orders-erp.csv", [row])
    code, out, _ = run_cli("check", path, "--config", config, "--outbox", tmp_path / "out")
    assert code == 0, out
    order = orders_sent(tmp_path / "out", "orders-erp.csv")["A"]
    assert (order["created_at"], order["channel_updated_at"]) == (
        "2026-11-20T08:14:00Z",
        "2026-11-20T23:30:00Z",
    )


def test_formats_name_the_exports_column_and_leave_the_others_iso(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """[formats] is keyed by the column's name in the export; the format applies to every field
    the column fills; columns without one keep ISO 8601."""
    row = base_line("A")
    del row["created_at"], row["order_lines.created_at"]
    row["Bestelldatum"] = "20.11.2026 09:14"
    mapping = mapping_file(
        tmp_path,
        '[read]\nassume_timezone = "Europe/Berlin"\n'
        '[columns]\n"Bestelldatum" = ["created_at", "order_lines.created_at"]\n'
        '[formats]\n"Bestelldatum" = "%d.%m.%Y %H:%M"\n'
        '"order_lines.updated_at" = "%Y%m%d%H%M%S%z"\n',
    )
    row["order_lines.updated_at"] = "20261121101500+0100"
    path = write_rows(tmp_path / "orders-erp.csv", [row])
    code, out, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 0, out
    order = orders_sent(tmp_path / "out", "orders-erp.csv")["A"]
    line = order["order_lines"][0]  # type: ignore[index]
    assert order["created_at"] == line["created_at"] == "2026-11-20T08:14:00Z"
    assert line["updated_at"] == "2026-11-21T09:15:00Z"
    assert order["channel_updated_at"] == "2026-11-02T10:00:00Z"  # ISO, as before


def test_a_cell_that_does_not_match_the_format_names_it(tmp_path: Path, run_cli: RunCli) -> None:
    rows = [
        {**base_line("A"), "created_at": "2026-11-20T09:14:00+01:00"},  # ISO: not the format
        {**base_line("B", "L2"), "created_at": "31.11.2026 09:14"},  # no 31st of November
        {**base_line("C", "L3"), "created_at": "29.03.2026 02:30"},  # skipped in Berlin
        {**base_line("D", "L4"), "created_at": "\uff12\uff10.11.2026 09:14"},  # fullwidth digits
    ]
    mapping = mapping_file(
        tmp_path,
        '[read]\nassume_timezone = "Europe/Berlin"\n[formats]\n"created_at" = "%d.%m.%Y %H:%M"\n',
    )
    path = write_rows(tmp_path / "orders-erp.csv", rows)
    code, _, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 1
    expected = "does not match the date format %d.%m.%Y %H:%M (e.g. 20.11.2026 09:14)"
    assert problems(tmp_path / "out", "orders-erp.csv") == [
        (
            "A",
            "$.created_at",
            "NOT_A_DATE_TIME",
            f"created_at: '2026-11-20T09:14:00+01:00' {expected}",
        ),
        ("B", "$.created_at", "NOT_A_DATE_TIME", f"created_at: '31.11.2026 09:14' {expected}"),
        (
            "C",
            "$.created_at",
            "NONEXISTENT_LOCAL_TIME",
            "created_at: '29.03.2026 02:30' never happened in Europe/Berlin: the clocks skipped "
            "it, going from +01:00 to +02:00; the export should carry the offset it meant (%z "
            "in the date format)",
        ),
        (
            "D",
            "$.created_at",
            "NOT_A_DATE_TIME",
            f"created_at: '\uff12\uff10.11.2026 09:14' {expected}: it is written with "
            "FULLWIDTH DIGIT TWO, not the digits 0-9",
        ),
    ]


def test_a_native_parquet_timestamp_is_an_instant_whatever_the_format(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """The format reads text; a Parquet timestamp column already names its instant."""
    row = base_line("A")
    columns: dict[str, pa.Array] = {k: pa.array([v]) for k, v in row.items()}
    columns["created_at"] = pa.array(["20.11.2026 09:14"])  # text: read with the format
    columns["channel_updated_at"] = pa.array([1_795_000_000_000_000], pa.timestamp("us", tz="UTC"))
    path = tmp_path / "orders-erp.parquet"
    pq.write_table(pa.table(columns), path)
    mapping = mapping_file(
        tmp_path,
        '[read]\nassume_timezone = "Europe/Berlin"\n'
        '[formats]\n"created_at" = "%d.%m.%Y %H:%M"\n"channel_updated_at" = "%d.%m.%Y %H:%M"\n',
    )
    code, out, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 0, out
    order = orders_sent(tmp_path / "out", "orders-erp.parquet")["A"]
    assert order["created_at"] == "2026-11-20T08:14:00Z"
    assert order["channel_updated_at"] == "2026-11-18T11:06:40Z"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[read]\ndate_format = "%d.%m.%Y %H:%M"\n',
            "[read] date_format '%d.%m.%Y %H:%M' writes no offset (%z): set assume_timezone "
            "to the zone the export writes its times in (e.g. Europe/Berlin)",
        ),
        (
            '[read]\nassume_timezone = "UTC"\n[formats]\n"Datum" = "dd.mm.yyyy"\n',
            "[formats] \"Datum\" 'dd.mm.yyyy' does not name the year, month and day (a format "
            "like %d.%m.%Y %H:%M: %Y or %y the year, %m or %b the month, %d the day)",
        ),
        (
            '[read]\nassume_timezone = "UTC"\ndate_format = "%d.%m.%Y %H:%M %Z"\n',
            "[read] date_format '%d.%m.%Y %H:%M %Z' reads %Z, a zone's name, which gives no "
            "offset: use %z (+01:00, Z) or assume_timezone",
        ),
        (
            '[read]\nassume_timezone = "UTC"\n[formats]\n"Datum" = 5\n',
            '[formats] "Datum" must be a date format like "%d.%m.%Y %H:%M"',
        ),
        (
            '[read]\nassume_timezone = "UTC"\n[columns]\n"Datum" = "created_at"\n'
            '[formats]\n"created_at" = "%d.%m.%Y"\n',
            '[formats] "created_at": that field is filled by the column "Datum" ([columns]); '
            'name the column as the export does: [formats] "Datum" = ...',
        ),
    ],
)
def test_a_date_format_that_cannot_work_is_a_usage_error(
    tmp_path: Path, run_cli: RunCli, text: str, message: str
) -> None:
    mapping = mapping_file(tmp_path, text)
    path = write_rows(tmp_path / "orders-erp.csv", [base_line()])
    code, _, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 2
    assert err == f"etl: mapping file {mapping}: {message}\n"


def test_a_format_for_a_column_that_holds_no_date_is_refused(
    tmp_path: Path, run_cli: RunCli
) -> None:
    mapping = mapping_file(
        tmp_path, '[read]\nassume_timezone = "UTC"\n[formats]\n"status" = "%d.%m.%Y"\n'
    )
    path = write_rows(tmp_path / "orders-erp.csv", [base_line()])
    code, _, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 2
    assert (
        "orders-erp.csv: UNREADABLE: unknown or misplaced columns (fix the header, or "
        "rename/ignore them in a mapping file): [formats] 'status': status is not a date-time"
    ) in err


# --- value maps --------------------------------------------------------------------------------

GERMAN_VALUES = (
    '[columns]\n"Status" = ["status", "order_lines.status"]\n"Stornierbar" = '
    '"order_lines.can_cancel"\n'
    '[values."Status"]\nVersendet = "SHIPPED"\n"In Bearbeitung" = "AWAITING_ACCEPTANCE"\n'
    '[values."Stornierbar"]\nja = true\nnein = false\n'
    '[values."order_lines.quantity"]\n"ein" = 1\n'
)


def german(order_id: str, line_id: str, status: str, cancel: str, **extra: str) -> dict[str, str]:
    row = base_line(order_id, line_id, **extra)
    del row["status"], row["order_lines.status"], row["order_lines.can_cancel"]
    return {**row, "Status": status, "Stornierbar": cancel}


def test_value_maps_turn_the_exports_words_into_connects(tmp_path: Path, run_cli: RunCli) -> None:
    """Keyed by the export's column (every field it fills) or by a path that names a column;
    applied before typing, so a boolean column's words become true and false."""
    rows = [
        german("A", "L1", "Versendet", "ja", order_lines__quantity="ein"),
        german("A", "L2", "Versendet", "nein"),
        german("B", "L3", "SHIPPED", "false"),  # already Connect's words: left as they are
    ]
    path = write_rows(tmp_path / "orders-erp.csv", rows)
    mapping = mapping_file(tmp_path, GERMAN_VALUES)
    code, out, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 0, out
    orders = orders_sent(tmp_path / "out", "orders-erp.csv")
    lines = orders["A"]["order_lines"]
    assert orders["A"]["status"] == orders["B"]["status"] == "SHIPPED"
    assert [line["status"] for line in lines] == ["SHIPPED", "SHIPPED"]  # type: ignore[index]
    assert [line["can_cancel"] for line in lines] == [True, False]  # type: ignore[index]
    assert [line["quantity"] for line in lines] == [1, 2]  # type: ignore[index]


def test_an_unmapped_value_is_validated_as_usual_and_keys_match_exactly(
    tmp_path: Path, run_cli: RunCli
) -> None:
    rows = [
        german("A", "L1", "Unterwegs", "ja"),  # no entry: the schema's own message
        german("B", "L2", "versendet", "ja"),  # keys are case-sensitive
        german("C", "L3", "Versendet ", "ja"),  # and exact: the space is kept
        german("D", "L4", "Versendet", "Ja"),
    ]
    path = write_rows(tmp_path / "orders-erp.csv", rows)
    mapping = mapping_file(tmp_path, GERMAN_VALUES)
    code, _, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 1
    found = problems(tmp_path / "out", "orders-erp.csv")
    allowed = (
        "is not one of AWAITING_ACCEPTANCE, AWAITING_FRAUD_CHECK, AWAITING_PAYMENT, "
        "AWAITING_SHIPMENT, CHANNEL_SPECIFIC, CLOSED, DELIVERED, SHIPPED"
    )
    assert ("A", "$.status", "NOT_ALLOWED_VALUE", f"status: 'Unterwegs' {allowed}") in found
    assert ("B", "$.status", "NOT_ALLOWED_VALUE", f"status: 'versendet' {allowed}") in found
    assert ("C", "$.status", "NOT_ALLOWED_VALUE", f"status: 'Versendet ' {allowed}") in found
    assert (
        "D",
        "$.order_lines[0].can_cancel",
        "NOT_A_BOOLEAN",
        "order_lines[0].can_cancel: 'Ja' is not a boolean (true/false, 1/0, yes/no)",
    ) in found
    assert {order_id for order_id, *_ in found} == {"A", "B", "C", "D"}


def test_value_maps_apply_to_the_columns_that_group_rows(tmp_path: Path, run_cli: RunCli) -> None:
    """The origin and the order id are read with their value maps wherever rows are grouped."""
    rows = [
        base_line("A", "L1", origin__channel_id="Amazon DE"),
        base_line("A", "L2", origin__channel_id="AMZ-DE"),
        base_line("Nr. 7", "L3", origin__channel_id="AMZ-DE"),
        base_line("B", "L4", origin__channel_id="AMZ-DE"),
        base_line("7", "L5", origin__channel_id="Amazon DE"),  # the same order as "Nr. 7"
    ]
    path = write_rows(tmp_path / "orders-erp.csv", rows)
    mapping = mapping_file(
        tmp_path,
        '[values."origin.channel_id"]\n"Amazon DE" = "AMZ-DE"\n'
        '[values."channel_order_id"]\n"Nr. 7" = "7"\n',
    )
    code, out, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 0, out
    lines = (only_run_dir(tmp_path / "out") / "orders-erp.csv.requests.jsonl").read_bytes()
    (request,) = [orjson.loads(line) for line in lines.splitlines()]
    assert request["origin"] == {"channel_id": "AMZ-DE", "channel_store_id": "S1"}
    orders = {o["channel_order_id"]: o for o in request["orders"]}
    assert sorted(orders) == ["7", "A", "B"]
    assert len(orders["A"]["order_lines"]) == len(orders["7"]["order_lines"]) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[values."Status"]\nVersendet = ["SHIPPED"]\n',
            '[values."Status"] Versendet must be a text, a number, true or false',
        ),
        (
            '[values]\n"Status" = "SHIPPED"\n',
            '[values."Status"] maps the column\'s values: Versendet = "SHIPPED"',
        ),
        (
            '[values."Status"]\n"" = "SHIPPED"\n',
            '[values."Status"]: an empty cell means the field is absent; it cannot be mapped',
        ),
        (
            '[columns]\n"Status" = "status"\n[values."status"]\nVersendet = "SHIPPED"\n',
            '[values] "status": that field is filled by the column "Status" ([columns]); name '
            'the column as the export does: [values] "Status" = ...',
        ),
    ],
)
def test_a_value_map_that_cannot_work_is_a_usage_error(
    tmp_path: Path, run_cli: RunCli, text: str, message: str
) -> None:
    mapping = mapping_file(tmp_path, text)
    path = write_rows(tmp_path / "orders-erp.csv", [base_line()])
    code, _, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 2
    assert err == f"etl: mapping file {mapping}: {message}\n"


# --- a tax rate that looks like a percentage ---------------------------------------------------

TAXED = {
    "order_lines.taxes[0].code": "VAT",
    "order_lines.taxes[0].amount.amount": "3.33",
    "order_lines.taxes[0].amount.currency": "EUR",
    "order_lines.shipping_taxes[0].code": "VAT",
    "order_lines.shipping_taxes[0].amount.amount": "0",
    "order_lines.shipping_taxes[0].amount.currency": "EUR",
}


def taxed(order_id: str, line_id: str, rate: str, shipping_rate: str = "0.2") -> dict[str, str]:
    return {
        **base_line(order_id, line_id),
        **TAXED,
        "order_lines.taxes[0].rate": rate,
        "order_lines.shipping_taxes[0].rate": shipping_rate,
    }


def percent_message(where: str, text: str) -> str:
    return (
        f"{where}: {text} looks like a percentage: Connect's tax rate is a decimal (0.20 for "
        f"20%); sent as it is (a warning: the order is not held back), check the export"
    )


def test_a_rate_above_1_is_a_warning_and_the_order_is_still_valid(
    tmp_path: Path, run_cli: RunCli
) -> None:
    rows = [
        taxed("A", "L1", "20"),
        taxed("A", "L2", "0.2", shipping_rate="19.6"),
        taxed("B", "L3", "1"),  # 100%: a decimal, if an odd one
        taxed("C", "L4", "0.055"),
    ]
    path = write_rows(tmp_path / "orders-rates.csv", rows)
    code, out, err = run_cli("check", path, "--outbox", tmp_path / "out")
    assert (code, err) == (0, "")
    assert "orders-rates.csv: 3 orders from 4 rows: 3 valid; 0 problem(s); 2 warning(s)" in out
    assert problems(tmp_path / "out", "orders-rates.csv") == [
        (
            "A",
            "$.order_lines[0].taxes[0].rate",
            "RATE_LOOKS_LIKE_PERCENT",
            percent_message("order_lines[0].taxes[0].rate", "20"),
        ),
        (
            "A",
            "$.order_lines[1].shipping_taxes[0].rate",
            "RATE_LOOKS_LIKE_PERCENT",
            percent_message("order_lines[1].shipping_taxes[0].rate", "19.6"),
        ),
    ]
    rows_of = read_errors(only_run_dir(tmp_path / "out") / "orders-rates.csv.errors.csv")
    assert [(r["row"], r["value"]) for r in rows_of] == [("2", "20"), ("3", "19.6")]
    orders = orders_sent(tmp_path / "out", "orders-rates.csv")
    assert orders["A"]["order_lines"][0]["taxes"][0]["rate"] == 20  # type: ignore[index]
    summary = orjson.loads((only_run_dir(tmp_path / "out") / "summary.json").read_bytes())
    assert summary["totals"]["warnings"] == 2 and summary["totals"]["violations"] == 0
    assert (summary["files"][0]["warnings"], summary["files"][0]["violations"]) == (2, 0)


def test_an_invalid_order_reports_its_warnings_after_its_problems(
    tmp_path: Path, run_cli: RunCli
) -> None:
    row = {**taxed("A", "L1", "7,7", shipping_rate="0,2"), "order_lines.quantity": "x"}
    row["order_lines.price.amount"] = "19,99"
    row["order_lines.taxes[0].amount.amount"] = "1,43"
    path = write_rows(tmp_path / "orders-rates.csv", [row])
    config = tmp_path / "etl.toml"
    config.write_text("[read]\ndecimal_comma = true\n", encoding="utf-8")
    code, _, _ = run_cli("check", path, "--config", config, "--outbox", tmp_path / "out")
    assert code == 1
    assert [p[2] for p in problems(tmp_path / "out", "orders-rates.csv")] == [
        "NOT_AN_INTEGER",
        "RATE_LOOKS_LIKE_PERCENT",
    ]
    items = (only_run_dir(tmp_path / "out") / "orders-rates.csv.items.csv").read_text()
    assert "(and " not in items  # the warning is no second problem of the order


def test_etl_run_sends_the_order_archives_the_file_and_reports_the_warning(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    write_rows(
        settings.inbox / "orders-rates.csv", [taxed("A", "L1", "20"), taxed("B", "L2", "0.2")]
    )
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 0
    (summary,) = run.files
    assert (summary.status, summary.outcomes, summary.violations, summary.warnings) == (
        "processed",
        {"ACCEPTED": 2},
        0,
        1,
    )
    assert (settings.outbox / "archive" / run.run_id / "orders-rates.csv").is_file()
    stored = {o["channel_order_id"]: o for o in sandbox.stored_orders()}
    assert stored["A"]["body"]["order_lines"][0]["taxes"][0]["rate"] == 20
    run_dir = settings.outbox / "runs" / run.run_id
    (warning,) = read_errors(run_dir / "orders-rates.csv.errors.csv")
    assert (warning["id"], warning["code"], warning["message"]) == (
        "A",
        "RATE_LOOKS_LIKE_PERCENT",
        percent_message("order_lines[0].taxes[0].rate", "20"),
    )
    written = orjson.loads((run_dir / "summary.json").read_bytes())
    assert written["totals"]["warnings"] == 1
    page = write_html_report(run_dir).read_text(encoding="utf-8")
    assert "RATE_LOOKS_LIKE_PERCENT" in page and "A warning, not an error" in page
