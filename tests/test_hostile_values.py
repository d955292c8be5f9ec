"""Hostile files (issue 13): values and files built to break a reader. Each becomes a clear
problem in the user's words (file, row, column, what to do); the good orders of the same file are
still delivered, and nothing wrong is sent.

Per-order problems go through `etl check` (the CLI) and `etl run` (against the sandbox); whole-file
problems through both, with the file kept in failed/ and explained.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.core.errors import UnreadableFile
from etl.core.schema import ORDERS, Kind, UnknownColumn, flat_model
from etl.deliver.client import ConnectClient
from etl.read.tables import read_table, text_array
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import ExportFormat
from etl.settings.options import Conventions, ReadOptions
from etl.transform.convert import ConversionError, convert
from etl.transform.fast.stream import Utf8Check

from .conftest import RunCli, base_line, settings_for

Rows = list[dict[str, str]]
GOOD = ("G1", "G2")  # the good orders around the bad one, in every per-order case


def csv_bytes(rows: Rows, line_end: str = "\n") -> bytes:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator=line_end)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def around(bad: dict[str, str]) -> Rows:
    """A good order, the bad one (spreadsheet row 3), a good one: whatever the bad cell, the
    file's other orders must still go out."""
    return [base_line("G1", "L1"), bad, base_line("G2", "L3")]


def bad_line(**changes: str) -> dict[str, str]:
    return base_line("BAD", "L2", **changes)


def errors_of(run_dir: Path, name: str) -> list[dict[str, str]]:
    with (run_dir / f"{name}.errors.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def only_run_dir(outbox: Path) -> Path:
    (run_dir,) = (outbox / "runs").iterdir()
    return run_dir


def requested_ids(run_dir: Path, name: str) -> set[str]:
    lines = (run_dir / f"{name}.requests.jsonl").read_bytes().splitlines()
    return {order["channel_order_id"] for line in lines for order in orjson.loads(line)["orders"]}


@dataclass(frozen=True)
class Problem:
    """What errors.csv must say about the bad order: its row, field, code and message."""

    row: str
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class OrderCase:
    name: str
    data: Callable[[], bytes]
    problem: Problem
    settings: dict[str, object] | None = None  # Settings fields, e.g. a default source


def check_case(case: OrderCase, tmp_path: Path, run_cli: RunCli) -> None:
    """`etl check`: exit 1, the problem in errors.csv, the good orders in requests.jsonl."""
    path = tmp_path / case.name
    path.write_bytes(case.data())
    args: list[str | Path] = ["check", path, "--outbox", tmp_path / "check-out"]
    if case.settings:
        config = tmp_path / "etl.toml"
        config.write_text(_toml(case.settings))
        args += ["--config", config]
    code, out, err = run_cli(*args)
    assert (code, err) == (1, ""), out
    run_dir = only_run_dir(tmp_path / "check-out")
    found = [
        Problem(e["row"], e["field"], e["code"], e["message"])
        for e in errors_of(run_dir, path.name)
    ]
    assert found == [case.problem]
    assert requested_ids(run_dir, path.name) == set(GOOD)


def run_case(case: OrderCase, sandbox: SandboxServer, tmp_path: Path) -> None:
    """`etl run`: exit 1, the same problem, the good orders delivered, the file in failed/."""
    settings = settings_for(sandbox, tmp_path, **(_settings(case.settings or {})))
    data = case.data()
    (settings.inbox / case.name).write_bytes(data)
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 1
    run_dir = settings.outbox / "runs" / run.run_id
    found = [
        Problem(e["row"], e["field"], e["code"], e["message"])
        for e in errors_of(run_dir, case.name)
    ]
    assert found == [case.problem]
    assert {o["channel_order_id"] for o in sandbox.stored_orders()} == set(GOOD)
    assert (settings.outbox / "failed" / run.run_id / case.name).read_bytes() == data


def _toml(settings: dict[str, object]) -> str:
    lines = ["[read]"]
    lines += [f'{key} = "{value}"' for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _settings(read: dict[str, object]) -> dict[str, object]:
    """The [read] settings of a case as Settings fields."""
    if not read:
        return {}
    zone = read.get("assume_timezone")
    conventions = Conventions(assume_timezone=ZoneInfo(str(zone)) if zone else None)
    return {"default_source": ExportFormat(conventions=conventions)}


ORDER_CASES: list[OrderCase] = [
    OrderCase(
        "orders-5000-digits.csv",
        lambda: csv_bytes(around(bad_line(order_lines__quantity="9" * 5000))),
        Problem(
            "3",
            "$.order_lines[0].quantity",
            "NUMBER_TOO_LARGE",
            f"order_lines[0].quantity: '{'9' * 40}...' (5000 digits) is too large for a whole "
            "number (the largest is 9223372036854775807)",
        ),
    ),
    OrderCase(
        "orders-arabic-digits.csv",
        lambda: csv_bytes(around(bad_line(order_lines__quantity="\u0661\u0662"))),
        Problem(
            "3",
            "$.order_lines[0].quantity",
            "NOT_AN_INTEGER",
            "order_lines[0].quantity: '\u0661\u0662' is not a whole number: it is written with "
            "ARABIC-INDIC DIGIT ONE, not the digits 0-9",
        ),
    ),
    OrderCase(
        "orders-fullwidth-digits.csv",
        lambda: csv_bytes(around(bad_line(order_lines__price__amount="\uff11\uff12.50"))),
        Problem(
            "3",
            "$.order_lines[0].price.amount",
            "NOT_A_NUMBER",
            "order_lines[0].price.amount: '\uff11\uff12.50' is not a number: it is written with "
            "FULLWIDTH DIGIT ONE, not the digits 0-9",
        ),
    ),
]


ORDER_CASES += [
    OrderCase(
        "orders-before-year-1.csv",
        lambda: csv_bytes(around(bad_line(created_at="0001-01-01T00:00:00+01:00"))),
        Problem(
            "3",
            "$.created_at",
            "INVALID_DATE_TIME",
            "created_at: '0001-01-01T00:00:00+01:00' falls before year 1 once converted to UTC "
            "(Connect's date-times are UTC): check the year",
        ),
    ),
    OrderCase(
        "orders-after-year-9999.csv",
        lambda: csv_bytes(around(bad_line(order_lines__updated_at="9999-12-31T23:59:59-01:00"))),
        Problem(
            "3",
            "$.order_lines[0].updated_at",
            "INVALID_DATE_TIME",
            "order_lines[0].updated_at: '9999-12-31T23:59:59-01:00' falls after year 9999 once "
            "converted to UTC (Connect's date-times are UTC): check the year",
        ),
    ),
]


PARIS = {"assume_timezone": "Europe/Paris"}
ORDER_CASES += [
    OrderCase(
        "orders-dst-gap.csv",
        lambda: csv_bytes(around(bad_line(created_at="2026-03-29T02:30:00"))),
        Problem(
            "3",
            "$.created_at",
            "NONEXISTENT_LOCAL_TIME",
            "created_at: '2026-03-29T02:30:00' never happened in Europe/Paris: the clocks "
            "skipped it, going from +01:00 to +02:00; the export should carry the offset it "
            "meant (e.g. 2026-03-29T02:30:00+01:00)",
        ),
        PARIS,
    ),
    OrderCase(
        "orders-dst-overlap.csv",
        lambda: csv_bytes(around(bad_line(order_lines__created_at="2026-10-25 02:30:00"))),
        Problem(
            "3",
            "$.order_lines[0].created_at",
            "AMBIGUOUS_LOCAL_TIME",
            "order_lines[0].created_at: '2026-10-25 02:30:00' happened twice in Europe/Paris "
            "(the clocks went back from +02:00 to +01:00): it is 2026-10-25T00:30:00Z or "
            "2026-10-25T01:30:00Z; the export should carry the offset (+02:00 or +01:00)",
        ),
        PARIS,
    ),
]


def parquet_bytes(rows: Rows) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


def far_into_the_file(rows: Rows) -> Rows:
    """The first order made long (a 70,000-character title), so that the bad row starts past
    the first 64 KiB, which the reader samples for the dialect and binary content."""
    rows[0] = {**rows[0], "order_lines.product.title": "x" * 70_000}
    return rows


CONTROL = "an invisible control character"
ORDER_CASES += [
    OrderCase(
        "orders-nul-channel.csv",
        lambda: csv_bytes(far_into_the_file(around(bad_line(origin__channel_id="\0SHOP-FR")))),
        Problem(
            "3",
            "$.origin.channel_id",
            "CONTROL_CHARACTER",
            f"origin.channel_id: holds NUL (U+0000), {CONTROL}, at character 1; remove it from "
            "the export",
        ),
    ),
    OrderCase(
        "orders-nul-line-id.parquet",
        lambda: parquet_bytes(around(bad_line(order_lines__channel_order_line_id="L\x002"))),
        Problem(
            "3",
            "$.order_lines[0].channel_order_line_id",
            "CONTROL_CHARACTER",
            f"order_lines[0].channel_order_line_id: holds NUL (U+0000), {CONTROL}, at "
            "character 2; remove it from the export",
        ),
    ),
    OrderCase(
        "orders-nul-order-id.parquet",
        lambda: parquet_bytes(around(base_line("B\x00AD", "L2"))),
        Problem(
            "3",
            "$.channel_order_id",
            "CONTROL_CHARACTER",
            f"channel_order_id: holds NUL (U+0000), {CONTROL}, at character 2; remove it from "
            "the export",
        ),
    ),
    OrderCase(
        "orders-sub-title.csv",
        lambda: csv_bytes(around(bad_line(order_lines__product__title="Mug\x1a"))),
        Problem(
            "3",
            "$.order_lines[0].product.title",
            "CONTROL_CHARACTER",
            f"order_lines[0].product.title: holds SUB (U+001A), {CONTROL}, at character 4; "
            "remove it from the export",
        ),
    ),
    OrderCase(
        "orders-vt-email.csv",
        lambda: csv_bytes(around(bad_line(shipping_info__email="jane\x0b.doe@example.com"))),
        Problem(
            "3",
            "$.shipping_info.email",
            "CONTROL_CHARACTER",
            f"shipping_info.email: holds VT (U+000B, vertical tab), {CONTROL}, at character 5; "
            "remove it from the export",
        ),
    ),
    OrderCase(
        "orders-nul-in-a-list.csv",
        lambda: csv_bytes(
            around(
                bad_line(
                    **{
                        "custom_attributes[0].id": "tags",
                        "custom_attributes[0].type": "LIST",
                        "custom_attributes[0].value": '["a","b\\u0000"]',
                    }
                )
            )
        ),
        Problem(
            "3",
            "$.custom_attributes[0].value",
            "CONTROL_CHARACTER",
            f"custom_attributes[0].value: holds NUL (U+0000), {CONTROL}, at character 2 of "
            "its element 2; remove it from the export",
        ),
    ),
]


def attribute(index: int, type_: str, value: str, prefix: str = "") -> dict[str, str]:
    return {
        f"{prefix}custom_attributes[{index}].id": "x",
        f"{prefix}custom_attributes[{index}].type": type_,
        f"{prefix}custom_attributes[{index}].value": value,
    }


ORDER_CASES += [
    OrderCase(
        "orders-sparse-attribute.csv",
        lambda: csv_bytes(around(bad_line(**attribute(7, "NUMERIC", "lots")))),
        Problem(
            "3",
            "$.custom_attributes[7].value",
            "NOT_A_NUMBER",
            "custom_attributes[7].value: 'lots' is not a number (e.g. 19.99)",
        ),
    ),
    OrderCase(
        "orders-sparse-attribute-type.csv",
        lambda: csv_bytes(around(bad_line(**attribute(3, "COLOR", "red")))),
        Problem(
            "3",
            "$.custom_attributes[3].type",
            "NOT_ALLOWED_VALUE",
            "custom_attributes[3].type: 'COLOR' is not one of STRING, NUMERIC, BOOLEAN, DATE, LIST",
        ),
    ),
    OrderCase(
        "orders-sparse-tax.csv",
        lambda: csv_bytes(
            around(
                bad_line(
                    **{
                        "order_lines.taxes[2].code": "VAT",
                        "order_lines.taxes[2].amount.amount": "-1",
                        "order_lines.taxes[2].amount.currency": "EUR",
                    }
                )
            )
        ),
        Problem(
            "3",
            "$.order_lines[0].taxes[2].amount.amount",
            "NEGATIVE_AMOUNT",
            "order_lines[0].taxes[2].amount.amount: -1 is negative; amounts must be zero or "
            "positive",
        ),
    ),
]


def old_mac_export() -> bytes:
    """CR-only line ends (classic Mac OS, some POS exports), a blank line before the bad order,
    and a line break inside a quoted cell."""
    rows = [
        base_line("G1", "L1", order_lines__product__title="Mug\rlarge"),
        bad_line(order_lines__quantity="x"),
        base_line("G2", "L3"),
    ]
    text = csv_bytes(rows, line_end="\r")
    first_order_ends = text.index(b"\r", text.index(b"large")) + 1
    return text[:first_order_ends] + b"\r" + text[first_order_ends:]


def wide_header() -> bytes:
    """A header of about 80,000 characters (3,000 custom attribute columns, all empty), whose
    last column, past the first 64 KiB, is the quantity."""
    rows = around(bad_line(order_lines__quantity="x"))
    wide = [{f"custom_attributes[{i}].id": "" for i in range(3000)} | row for row in rows]
    for row in wide:
        row["order_lines.quantity"] = row.pop("order_lines.quantity")
    return csv_bytes(wide)


ORDER_CASES += [
    OrderCase(
        "orders-cr-line-ends.csv",
        old_mac_export,
        Problem(
            "4",
            "$.order_lines[0].quantity",
            "NOT_AN_INTEGER",
            "order_lines[0].quantity: 'x' is not a whole number",
        ),
    ),
    OrderCase(
        "orders-wide-header.csv",
        wide_header,
        Problem(
            "3",
            "$.order_lines[0].quantity",
            "NOT_AN_INTEGER",
            "order_lines[0].quantity: 'x' is not a whole number",
        ),
    ),
]


@pytest.mark.parametrize("case", ORDER_CASES, ids=[c.name for c in ORDER_CASES])
def test_a_hostile_cell_is_one_orders_problem_in_check(
    case: OrderCase, tmp_path: Path, run_cli: RunCli
) -> None:
    check_case(case, tmp_path, run_cli)


@pytest.mark.parametrize("case", ORDER_CASES, ids=[c.name for c in ORDER_CASES])
def test_a_hostile_cell_is_one_orders_problem_in_run(
    case: OrderCase, sandbox: SandboxServer, tmp_path: Path
) -> None:
    run_case(case, sandbox, tmp_path)


# --- numbers (items 4 and 7) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "code"),
    [
        ("9" * 5000, Kind.INTEGER, "NUMBER_TOO_LARGE"),
        ("-" + "9" * 4301, Kind.INTEGER, "NUMBER_TOO_LARGE"),
        ("0" * 5000 + "7", Kind.NUMBER, None),  # leading zeros: the number 7
        ("0" * 5000 + "7", Kind.INTEGER, None),
        ("9" * 5000 + ".5", Kind.NUMBER, "TOO_MANY_DIGITS"),
        ("\u0661\u0662", Kind.INTEGER, "NOT_AN_INTEGER"),  # Arabic-Indic 12
        ("\uff11\uff12", Kind.INTEGER, "NOT_AN_INTEGER"),  # fullwidth 12
        ("\u0967\u0968.5", Kind.NUMBER, "NOT_A_NUMBER"),  # Devanagari 12.5
        ("1\u06f2,5", Kind.NUMBER, "NOT_A_NUMBER"),  # an Extended Arabic-Indic 2 in the middle
    ],
)
def test_only_ascii_digits_of_any_length_are_numbers(
    text: str, kind: Kind, code: str | None
) -> None:
    conventions = Conventions(decimal_comma=text.endswith(",5"))
    if code is None:
        assert convert(text, kind, conventions) == 7
        return
    with pytest.raises(ConversionError) as raised:
        convert(text, kind, conventions)
    assert raised.value.code == code
    assert len(raised.value.message) < 200


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        (
            "custom_attributes[" + "9" * 5000 + "].id",
            "'custom_attributes[99999999999999999999...].id': an index of 5000 digits; "
            "number the elements 0, 1, 2...",
        ),
        (
            "custom_attributes[\u0661].id",
            "'custom_attributes[\u0661].id': '[\u0661]' is not an index: write it with the "
            "digits 0-9",
        ),
    ],
)
def test_a_column_index_is_ascii_digits_of_a_sane_length(column: str, reason: str) -> None:
    with pytest.raises(UnknownColumn) as raised:
        flat_model(ORDERS).leaf(column)
    assert str(raised.value) == reason


# --- date-times (items 2 and 3) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-01T10:00:00.123456789+01:00", "2026-11-01T09:00:00.123456789Z"),
        ("2026-11-01T10:00:00.000000001Z", "2026-11-01T10:00:00.000000001Z"),
        ("2026-11-01T10:00:00.123000000Z", "2026-11-01T10:00:00.123Z"),
        ("2026-11-01T10:00:00.123456789000Z", "2026-11-01T10:00:00.123456789Z"),
        ("2026-11-01 10:00:00.100000009", "2026-11-01T09:00:00.100000009Z"),  # Paris, winter
    ],
)
def test_nanoseconds_are_sent_exactly(text: str, expected: str) -> None:
    paris = Conventions(assume_timezone=ZoneInfo("Europe/Paris"))
    assert convert(text, Kind.DATE_TIME, paris) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2026-11-01T10:00:00.1234567891Z",
            "'2026-11-01T10:00:00.1234567891Z' has 10 digits after the seconds' point; "
            "Connect's date-times keep at most 9 (nanoseconds)",
        ),
        (
            "0001-01-01T00:05:00",  # Paris before 1911: 9 minutes 21 seconds ahead of UTC
            "'0001-01-01T00:05:00' falls before year 1 once converted to UTC (Connect's "
            "date-times are UTC): check the year",
        ),
        (
            "9999-12-31T23:59:59.5-00:01",
            "'9999-12-31T23:59:59.5-00:01' falls after year 9999 once converted to UTC "
            "(Connect's date-times are UTC): check the year",
        ),
    ],
)
def test_date_times_that_cannot_be_sent_are_refused(text: str, message: str) -> None:
    paris = Conventions(assume_timezone=ZoneInfo("Europe/Paris"))
    with pytest.raises(ConversionError) as raised:
        convert(text, Kind.DATE_TIME, paris)
    assert (raised.value.code, raised.value.message) == ("INVALID_DATE_TIME", message)


def test_the_run_that_crashed_at_order_2700_delivers_the_other_2999(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Issue 13: 2,700 of 3,000 orders were sent, then OverflowError ended the run."""
    settings = settings_for(sandbox, tmp_path)
    rows = [base_line(f"O{i:04d}", f"L{i}") for i in range(3000)]
    rows[2700] = base_line("O2700", "L2700", created_at="9999-12-31T23:59:59-01:00")
    (settings.inbox / "orders-3000.csv").write_bytes(csv_bytes(rows))
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert (run.exit_code, run.files[0].outcomes) == (1, {"ACCEPTED": 2999, "INVALID": 1})
    (error,) = errors_of(settings.outbox / "runs" / run.run_id, "orders-3000.csv")
    assert (error["row"], error["id"], error["field"]) == ("2702", "O2700", "$.created_at")
    assert len(sandbox.stored_orders()) == 2999


NANOS = 1_793_523_600_123_456_789  # 2026-11-01T09:00:00.123456789Z


def nanosecond_orders(path: Path) -> Path:
    """Three orders whose created_at is a Parquet timestamp[ns]: nanoseconds, microseconds,
    whole seconds."""
    table = pa.Table.from_pylist([base_line(i, f"L{i}") for i in ("N1", "N2", "N3")])
    stamps = [NANOS, NANOS - 789, NANOS - 123_456_789]
    table = table.set_column(
        table.column_names.index("created_at"),
        "created_at",
        pa.array(stamps, pa.timestamp("ns", tz="UTC")),
    )
    pq.write_table(table, path)
    return path


NANOSECOND_TEXTS = {
    "N1": "2026-11-01T09:00:00.123456789Z",
    "N2": "2026-11-01T09:00:00.123456Z",
    "N3": "2026-11-01T09:00:00Z",
}


def test_parquet_nanoseconds_are_sent_exactly_by_check(tmp_path: Path, run_cli: RunCli) -> None:
    path = nanosecond_orders(tmp_path / "orders-ns.parquet")
    code, out, err = run_cli("check", path, "--outbox", tmp_path / "out")
    assert (code, err) == (0, ""), out
    lines = (only_run_dir(tmp_path / "out") / f"{path.name}.requests.jsonl").read_bytes()
    orders = [o for line in lines.splitlines() for o in orjson.loads(line)["orders"]]
    assert {o["channel_order_id"]: o["created_at"] for o in orders} == NANOSECOND_TEXTS


def test_parquet_nanoseconds_are_sent_exactly_by_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    nanosecond_orders(settings.inbox / "orders-ns.parquet")
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 0
    stored = {o["channel_order_id"]: o["body"]["created_at"] for o in sandbox.stored_orders()}
    assert stored == NANOSECOND_TEXTS


@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Paris"])
def test_parquet_timestamps_of_every_unit_become_exact_text(tz: str | None) -> None:
    """In Arrow, without Python datetimes (which stop at microseconds, and without pandas
    refuse nanoseconds): what ``read_table`` and the streamed path both read."""
    array = pa.array([NANOS, NANOS - 789, NANOS - 123_456_789, None], pa.timestamp("ns", tz=tz))
    suffix = "" if tz is None else "+00:00"
    assert text_array(array).to_pylist() == [
        f"2026-11-01T09:00:00.123456789{suffix}",
        f"2026-11-01T09:00:00.123456{suffix}",
        f"2026-11-01T09:00:00{suffix}",
        "",
    ]
    millis = pa.array([NANOS // 10**6], pa.timestamp("ms", tz=tz))
    assert text_array(millis).to_pylist() == [f"2026-11-01T09:00:00.123000{suffix}"]


# --- daylight-saving time (item 8) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-29T01:59:59", "2026-03-29T00:59:59Z"),  # the last second before the gap
        ("2026-03-29T03:00:00", "2026-03-29T01:00:00Z"),  # the first after it
        ("2026-10-25T01:59:59", "2026-10-24T23:59:59Z"),  # before the hour that repeats
        ("2026-10-25T03:00:00", "2026-10-25T02:00:00Z"),  # after it
        ("2026-10-25T02:30:00+01:00", "2026-10-25T01:30:00Z"),  # an offset settles it
    ],
)
def test_local_times_next_to_a_clock_change_are_converted(text: str, expected: str) -> None:
    paris = Conventions(assume_timezone=ZoneInfo("Europe/Paris"))
    assert convert(text, Kind.DATE_TIME, paris) == expected


@pytest.mark.parametrize(
    ("text", "zone", "code"),
    [
        ("2026-03-29T02:00:00", "Europe/Paris", "NONEXISTENT_LOCAL_TIME"),
        ("2026-03-29T02:59:59.5", "Europe/Paris", "NONEXISTENT_LOCAL_TIME"),
        ("2026-10-25T02:00:00", "Europe/Paris", "AMBIGUOUS_LOCAL_TIME"),
        ("2026-11-01T01:30:00", "America/New_York", "AMBIGUOUS_LOCAL_TIME"),
        ("2026-10-04T02:15:00", "Australia/Lord_Howe", "NONEXISTENT_LOCAL_TIME"),  # 30 minutes
    ],
)
def test_local_times_a_clock_change_skips_or_repeats_are_refused(
    text: str, zone: str, code: str
) -> None:
    with pytest.raises(ConversionError) as raised:
        convert(text, Kind.DATE_TIME, Conventions(assume_timezone=ZoneInfo(zone)))
    assert raised.value.code == code
    assert f"'{text}'" in raised.value.message and zone in raised.value.message


# --- control characters (item 5) ----------------------------------------------------------------


def test_tabs_and_line_breaks_in_text_are_kept(tmp_path: Path, run_cli: RunCli) -> None:
    """Text may hold the three controls a person types (tab, line feed, carriage return)."""
    title = "Mug\tbig\r\nsecond line"
    path = tmp_path / "orders-tab.csv"
    path.write_bytes(csv_bytes([base_line("G1", "L1", order_lines__product__title=title)]))
    code, out, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 0, out
    lines = (only_run_dir(tmp_path / "out") / f"{path.name}.requests.jsonl").read_bytes()
    (order,) = orjson.loads(lines)["orders"]
    assert order["order_lines"][0]["product"]["title"] == title


def test_a_control_character_is_shown_visibly_in_errors_csv(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = tmp_path / "orders-nul.csv"
    rows = far_into_the_file(around(bad_line(order_lines__product__id="00\x00123")))
    path.write_bytes(csv_bytes(rows))
    assert run_cli("check", path, "--outbox", tmp_path / "out")[0] == 1
    (error,) = errors_of(only_run_dir(tmp_path / "out"), path.name)
    assert error["value"] == "00\\u0000123"


# --- whole files: unreadable, kept and explained --------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    name: str
    data: Callable[[Path], bytes]  # given a folder for scratch work (big files)
    reason: str


def check_file_case(case: FileCase, tmp_path: Path, run_cli: RunCli) -> None:
    """`etl check`: exit 2 and the reason, for the file as a whole."""
    path = tmp_path / case.name
    path.write_bytes(case.data(tmp_path))
    code, _, err = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 2
    assert f"{case.name}: UNREADABLE: {case.reason}\n" in err
    assert "Traceback" not in err


def run_file_case(case: FileCase, sandbox: SandboxServer, tmp_path: Path) -> None:
    """`etl run`: nothing sent, the file in failed/ with the reason beside it."""
    settings = settings_for(sandbox, tmp_path)
    data = case.data(tmp_path)
    (settings.inbox / case.name).write_bytes(data)
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 1
    (summary,) = run.files
    assert (summary.status, summary.reason) == ("unreadable", case.reason)
    failed = settings.outbox / "failed" / run.run_id / case.name
    assert failed.read_bytes() == data
    assert (failed.parent / f"{case.name}.reason.txt").read_text().strip() == case.reason
    assert sandbox.stored_orders() == []


def with_column(
    name: str, values: pa.Array, also: dict[str, pa.Array] | None = None
) -> Callable[[Path], bytes]:
    """Two good orders whose column ``name`` is ``values`` (native Parquet types), and ``also``."""

    def data(_: Path) -> bytes:
        table = pa.Table.from_pylist([base_line("G1", "L1"), base_line("G2", "L2")])
        for column, array in {name: values, **(also or {})}.items():
            if column in table.column_names:
                table = table.set_column(table.column_names.index(column), column, array)
            else:
                table = table.append_column(column, array)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        return buffer.getvalue()

    return data


UNFLAT = "Parquet columns with no place in a flat row: "
UNFLAT_ADVICE = (
    ". Give each field or element a column of its own, named by its path (e.g. "
    "order_lines.taxes[0].code), or ignore the column in a mapping file"
)
FILE_CASES = [
    FileCase(
        "orders-struct.parquet",
        with_column("order_lines.product.title", pa.array([{"a": 1, "b": "x"}] * 2)),
        UNFLAT + "'order_lines.product.title' (struct<a: int64, b: string>: a group of "
        "fields)" + UNFLAT_ADVICE,
    ),
    FileCase(
        "orders-map-and-list.parquet",
        lambda tmp: with_column(
            "order_lines.product.title",
            pa.array([[("a", 1)]] * 2, pa.map_(pa.string(), pa.int64())),
            also={"order_lines.product.id": pa.array([["a", "b"]] * 2)},
        )(tmp),
        UNFLAT + "'order_lines.product.id' (list of string: a list); "
        "'order_lines.product.title' (map of string to int64: key-value pairs)" + UNFLAT_ADVICE,
    ),
    FileCase(
        "orders-duration.parquet",
        with_column("order_lines.quantity", pa.array([5, 6], pa.duration("s"))),
        UNFLAT + "'order_lines.quantity' (duration[s]: a duration)" + UNFLAT_ADVICE,
    ),
    FileCase(
        "orders-bytes.parquet",
        with_column("order_lines.product.title", pa.array([b"Mug", b"\xff\xfe\x00x"])),
        "the Parquet column 'order_lines.product.title' holds bytes that are not UTF-8 text "
        "(row 3 is the first): write it as a text (UTF-8 string) column",
    ),
]


def latin1_late(_: Path) -> bytes:
    """A cp1252 "é" in a title on line 3, past the first 64 KiB (which the reader samples),
    in a column the index pass does not read."""
    rows = far_into_the_file(around(bad_line(order_lines__product__title="Caf\u00e9")))
    return csv_bytes(rows).replace("Caf\u00e9".encode(), "Caf\u00e9".encode("cp1252"))


FILE_CASES += [
    FileCase(
        "orders-latin1-late.csv",
        latin1_late,
        "the file is not valid UTF-8 (byte 0xE9 on line 3); save it as UTF-8, or set encoding "
        "(e.g. 'cp1252') in the configuration",
    ),
]


HUGE = 3 << 20  # 3 MB: past two of the reader's 1 MB blocks, never readable wherever it starts


def huge_cell(closed: bool) -> bytes:
    """Row 3 holds a 3 MB quoted cell; ``closed`` or not (then the rest of the file is in it)."""
    rows = around(bad_line(order_lines__product__title="PLACEHOLDER"))
    cell = b'"' + b"x" * HUGE + (b'"' if closed else b"")
    return csv_bytes(rows).replace(b"PLACEHOLDER", cell)


def megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def row_3(data: bytes) -> tuple[int, int]:
    start = data.rindex(b"\n", 0, data.index(b",BAD,")) + 1
    return start, data.index(b"\n", start) + 1


FILE_CASES += [
    FileCase(
        "orders-huge-cell.csv",
        lambda _: huge_cell(closed=True),
        f"row 3 is {megabytes(HUGE + 176)} long, more than the 1 MB a row may hold (no "
        "order's cell is that large); the likely cause is a quote opened on row 3 and closed "
        "only much later: check the quoting there",
    ),
    FileCase(
        "orders-unclosed-quote-huge.csv",
        lambda _: huge_cell(closed=False),
        "a quoted cell opened on row 3 is never closed, so the rest of the file "
        f"({megabytes(HUGE + 351)}) reads as one cell, more than the 1 MB a row may hold; close "
        'the quote (a quote inside a quoted cell is written twice: "")',
    ),
]


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.name for c in FILE_CASES])
def test_a_hostile_file_is_explained_by_check(
    case: FileCase, tmp_path: Path, run_cli: RunCli
) -> None:
    check_file_case(case, tmp_path, run_cli)


@pytest.mark.parametrize("case", FILE_CASES, ids=[c.name for c in FILE_CASES])
def test_a_hostile_file_is_kept_and_explained_by_run(
    case: FileCase, sandbox: SandboxServer, tmp_path: Path
) -> None:
    run_file_case(case, sandbox, tmp_path)


# --- Parquet column types (item 6) ----------------------------------------------------------------


def test_parquet_text_stored_as_bytes_is_read_as_text(tmp_path: Path, run_cli: RunCli) -> None:
    """Older writers (Hive, Impala) store strings as plain BINARY: UTF-8 bytes are text."""
    path = tmp_path / "orders-binary-text.parquet"
    path.write_bytes(
        with_column("order_lines.product.title", pa.array([b"Mug", b"Caf\xc3\xa9"]))(path)
    )
    code, out, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 0, out
    lines = (only_run_dir(tmp_path / "out") / f"{path.name}.requests.jsonl").read_bytes()
    titles = [o["order_lines"][0]["product"]["title"] for o in orjson.loads(lines)["orders"]]
    assert titles == ["Mug", "Caf\u00e9"]


def test_a_list_column_for_a_list_value_and_an_ignored_struct_are_fine(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = tmp_path / "orders-lists.parquet"
    path.write_bytes(
        with_column(
            "custom_attributes[0].value",
            pa.array([["a", "b"], ["c"]]),
            also={
                "custom_attributes[0].id": pa.array(["tags", "tags"]),
                "custom_attributes[0].type": pa.array(["LIST", "LIST"]),
                "Internal": pa.array([{"a": 1}, {"a": 2}]),
            },
        )(path)
    )
    mapping = tmp_path / "m.toml"
    mapping.write_text('ignore = ["Internal"]\n')
    code, out, _ = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 0, out
    lines = (only_run_dir(tmp_path / "out") / f"{path.name}.requests.jsonl").read_bytes()
    values = [o["custom_attributes"][0]["value"] for o in orjson.loads(lines)["orders"]]
    assert values == [["a", "b"], ["c"]]


def test_read_table_refuses_the_same_columns(tmp_path: Path) -> None:
    """The whole-file reader (every kind but orders) says what the streamed one says."""
    path = tmp_path / "action-status-struct.parquet"
    table = pa.table({"action_id": ["a1"], "status": [{"x": 1}]})
    pq.write_table(table, path)
    with pytest.raises(UnreadableFile) as raised:
        read_table(path)
    assert raised.value.reason == (
        UNFLAT + "'status' (struct<x: int64>: a group of fields)" + UNFLAT_ADVICE
    )
    pq.write_table(pa.table({"action_id": ["a1"], "status": [["SUCCESS"]]}), path)
    assert read_table(path).cells["status"] == ['["SUCCESS"]']  # a reader of any columns
    with pytest.raises(UnreadableFile, match="'status' \\(list of string: a list\\)"):
        read_table(path, lists=())  # prepare's: no kind read whole has a list column


# --- sparse indexes (item 9) ---------------------------------------------------------------------

ADJUSTMENT = {
    "channel_adjustment_id": "A1",
    "created_at": "2026-11-01T09:00:00Z",
    "price.amount": "1",
    "price.currency": "EUR",
    "quantity": "1",
    "reason": "RETURN",
    "shipping_price.amount": "0",
    "shipping_price.currency": "EUR",
    "type": "REFUND",
}


def test_nested_sparse_indexes_are_reported_as_the_user_wrote_them(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """adjustments[1].taxes[4] alone is sent as adjustments[0].taxes[0] (the API wants arrays
    without gaps), but every problem names the columns the user has."""
    line = base_line("BAD", "L1", **attribute(5, "NUMERIC", "lots", "order_lines."))
    line.update({f"order_lines.adjustments[1].{k}": v for k, v in ADJUSTMENT.items()})
    line["order_lines.adjustments[1].quantity"] = "x"
    line["order_lines.adjustments[1].taxes[4].code"] = "VAT"  # and no amount
    line["order_lines.taxes[9].code"] = "VAT"
    second = base_line("BAD", "L2", **attribute(2, "COLOR", "red", "order_lines."))
    path = tmp_path / "orders-sparse.csv"
    path.write_bytes(csv_bytes([line, second]))
    code, out, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 1, out
    errors = errors_of(only_run_dir(tmp_path / "out"), path.name)
    assert sorted((e["row"], e["field"], e["code"]) for e in errors) == [
        ("2", "$.order_lines[0].adjustments[1].quantity", "NOT_AN_INTEGER"),
        ("2", "$.order_lines[0].adjustments[1].taxes[4].amount", "REQUIRED_FIELD_MISSING"),
        ("2", "$.order_lines[0].custom_attributes[5].value", "NOT_A_NUMBER"),
        ("2", "$.order_lines[0].taxes[9].amount", "REQUIRED_FIELD_MISSING"),
        ("3", "$.order_lines[1].custom_attributes[2].type", "NOT_ALLOWED_VALUE"),
    ]
    for error in errors:
        assert error["message"].startswith(error["field"][2:] + ":"), error


def test_sparse_indexes_are_sent_without_gaps(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "orders-sparse-ok.csv"
    path.write_bytes(csv_bytes([base_line("G1", "L1", **attribute(7, "STRING", "blue"))]))
    code, out, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 0, out
    lines = (only_run_dir(tmp_path / "out") / f"{path.name}.requests.jsonl").read_bytes()
    (order,) = orjson.loads(lines)["orders"]
    assert order["custom_attributes"] == [{"id": "x", "type": "STRING", "value": "blue"}]


# --- line ends and long headers (items 10 and 12) -------------------------------------------------


def test_a_header_longer_than_the_sample_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "orders-wide.csv"
    path.write_bytes(wide_header())
    assert len(path.read_bytes().split(b"\n", 1)[0]) > 64 * 1024
    table = read_table(path)
    assert len(table.columns) == 3000 + len(base_line())
    assert table.columns[-1] == "order_lines.quantity"
    assert table.cells["order_lines.quantity"] == ["2", "x", "2"]


def test_cr_line_ends_are_read_as_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "orders-mac.csv"
    path.write_bytes(old_mac_export())
    table = read_table(path)
    assert table.cells["channel_order_id"] == ["G1", "BAD", "G2"]
    assert table.cells["order_lines.product.title"][0] == "Mug\rlarge"
    assert table.row_numbers == [2, 4, 5]  # the blank line is row 3, as a spreadsheet shows


# --- UTF-8 past the sample (item 1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        "a\u00e9\u20ac\U0001f600b".encode() * 5,  # valid: 2, 3 and 4-byte characters
        "a\u00e9\u20ac".encode() * 3 + b"\xe9x" + "\u20ac".encode(),  # a cp1252 byte
        "\u20ac".encode() * 4 + b"\xe2\x82",  # the file ends inside a character
        b"ok" + b"\xf0\x9f\x98" + b"x",  # a 4-byte character missing its last byte
        b"\xed\xa0\x80",  # a surrogate: not UTF-8
    ],
)
def test_utf8_is_checked_across_block_boundaries(data: bytes) -> None:
    try:
        data.decode("utf-8")
        expected = -1
    except UnicodeDecodeError as error:
        expected = error.start
    for cut in range(len(data) + 1):
        for second in range(cut, len(data) + 1):
            check = Utf8Check()
            for block in (data[:cut], data[cut:second], data[second:]):
                if block:
                    check.feed(block)
            assert check.finish() == expected, (cut, second)


def late_byte(byte: bytes) -> bytes:
    rows = far_into_the_file(around(bad_line(order_lines__product__title="CafX")))
    return csv_bytes(rows).replace(b"CafX", b"Caf" + byte)


@pytest.mark.parametrize(
    ("encoding", "data", "reason"),
    [
        (
            "cp1252",
            late_byte(b"\x81"),  # one of the five bytes cp1252 leaves undefined
            "the file is not valid CP1252 (byte 0x81 on line 3), the encoding the configuration "
            "names; set the one the export is written in, or save it as UTF-8",
        ),
        (
            "ascii",
            late_byte(b"\xe9"),
            "the file is not valid ASCII (byte 0xE9 on line 3), the encoding the configuration "
            "names; set the one the export is written in, or save it as UTF-8",
        ),
    ],
)
def test_a_byte_the_configured_encoding_cannot_read_is_explained(
    encoding: str,
    data: bytes,
    reason: str,
    tmp_path: Path,
    run_cli: RunCli,
    sandbox: SandboxServer,
) -> None:
    name = "orders-late-byte.csv"
    (tmp_path / name).write_bytes(data)
    config = tmp_path / "etl.toml"
    config.write_text(f'[read]\nencoding = "{encoding}"\n')
    code, _, err = run_cli("check", tmp_path / name, "--config", config, "--outbox", tmp_path)
    assert (code, err) == (2, f"{name}: UNREADABLE: {reason}\n")
    source = ExportFormat(read=ReadOptions(encoding=encoding))
    settings = settings_for(sandbox, tmp_path, default_source=source)
    (settings.inbox / name).write_bytes(data)
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert (run.exit_code, run.files[0].reason) == (1, reason)
    assert sandbox.stored_orders() == []


# --- huge cells (item 11) -------------------------------------------------------------------------


def test_the_sizes_the_huge_cell_messages_give(tmp_path: Path) -> None:
    """The sizes the reasons above expect: row 3 and the rest of the file, exactly."""
    closed, unclosed = huge_cell(closed=True), huge_cell(closed=False)
    start, end = row_3(closed)
    assert end - start == HUGE + 176
    assert len(unclosed) - row_3(unclosed)[0] == HUGE + 351


def test_a_row_of_a_few_megabytes_is_refused_before_anything_is_sent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """3 MB: the index pass (8 MB blocks) read it, the data pass (1 MB blocks) did not, and
    crashed after the orders before it were sent. Every pass now reads the same rows."""
    settings = settings_for(sandbox, tmp_path)
    rows = [base_line(f"G{i}", f"L{i}") for i in range(200)]
    rows[100] = base_line("BIG", "LB", order_lines__product__title="x" * 3_000_000)
    (settings.inbox / "orders-big-title.csv").write_bytes(csv_bytes(rows))
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 1
    assert run.files[0].reason.startswith(
        "row 102 is 2.9 MB long, more than the 1 MB a row may hold"
    )
    assert sandbox.stored_orders() == []


def test_a_row_just_under_the_limit_is_read_by_every_pass(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    rows = [base_line(f"G{i}", f"L{i}") for i in range(3000)]
    rows[2500] = base_line("BIG", "LB", order_lines__product__title="x" * 1_000_000)
    (settings.inbox / "orders-big-title.csv").write_bytes(csv_bytes(rows))
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 0
    assert len(sandbox.stored_orders()) == 3000
