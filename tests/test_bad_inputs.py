"""The bad-input corpus: each case through `etl run` against the sandbox, with the exact words a
person reads, and the input file explained in failed/ (or processed with its errors reported).
None may end in a traceback."""

from __future__ import annotations

import csv
import io
import resource
import signal
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.generate import generate_rows, write_csv
from etl.core.errors import UnreadableFile
from etl.deliver.client import ConnectClient
from etl.read.tables import read_table
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.state.inbox import stable_files

from .conftest import RunCli, base_line, connect_env, etl_run_command, settings_for

Rows = list[dict[str, str]]


def csv_bytes(rows: Rows, delimiter: str = ",") -> bytes:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, delimiter=delimiter, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def line(**changes: str) -> Rows:
    return [base_line("A", "L1", **changes)]


def with_columns(extra: dict[str, str], drop: tuple[str, ...] = ()) -> Rows:
    row = {k: v for k, v in base_line("A", "L1").items() if k not in drop}
    row.update(extra)
    return [row]


def parquet_bytes(truncate: int = 0) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"channel_order_id": ["A"] * 50}), buffer)
    data = buffer.getvalue()
    return data[:-truncate] if truncate else data


def custom(kind: str, value: str) -> Rows:
    return with_columns(
        {
            "custom_attributes[0].id": "x",
            "custom_attributes[0].type": kind,
            "custom_attributes[0].value": value,
        }
    )


@dataclass(frozen=True)
class Case:
    name: str
    data: Callable[[], bytes]
    reason: str = ""  # whole-file problem: the exact reason in failed/<name>.reason.txt
    code: str = ""  # per-order problem: the code and exact message in errors.csv
    message: str = ""


HEADER = "unknown or misplaced columns (fix the header, or rename/ignore them in a mapping file): "
CASES = [
    Case("orders-empty.csv", lambda: b"", reason="the file is empty (0 bytes)"),
    Case(
        "customers.csv",
        lambda: csv_bytes(line()),
        reason="the file name says no known kind; understood names: orders: orders*.csv, "
        "orders*.parquet, orders*.xlsx, orders*.jsonl, orders*.ndjson; action-status: "
        "action-status*.csv, action-status*.parquet, action-status*.xlsx; order-actions: "
        "order-actions*.csv, order-actions*.parquet, order-actions*.xlsx; track-actions: "
        "track-actions*.csv, track-actions*.parquet, track-actions*.xlsx; documents: "
        "documents*.csv, documents*.xlsx; anonymize: anonymize*.csv, anonymize*.parquet, "
        "anonymize*.xlsx",
    ),
    Case(
        "orders-binary.csv",
        lambda: bytes(range(256)) * 8,
        reason="the file looks binary (it contains NUL bytes), not a CSV text export; if it is "
        "a UTF-16 export, set encoding = 'utf-16' in the configuration",
    ),
    Case(
        "orders-garbage.parquet",
        lambda: b"PAR1 this is not parquet",
        reason="not a readable Parquet file (Could not open Parquet input source "
        "'<Buffer>': Parquet magic bytes not found in footer. Either the file is corrupted or "
        "this is not a parquet file.)",
    ),
    Case(
        "orders-truncated.parquet",
        lambda: parquet_bytes(truncate=40),
        reason="not a readable Parquet file (Could not open Parquet input source "
        "'<Buffer>': Parquet magic bytes not found in footer. Either the file is corrupted or "
        "this is not a parquet file.)",
    ),
    Case(
        "orders-colon.csv",
        lambda: b"channel_order_id:status\nA:SHIPPED\n",
        reason="the header reads as one single column ('channel_order_id:status'): the file is "
        "not separated by , ; tab or |; export it with one of them, or set delimiter in the "
        "configuration",
    ),
    Case(
        "orders-open-quote.csv",
        lambda: csv_bytes(line()) + b'B,"unclosed\n',
        reason="a quoted field is never closed (opened at or before line 3): unexpected end of "
        "data",
    ),
    Case(
        "orders-latin1.csv",
        lambda: csv_bytes(line(order_lines__product__title="Caf\u00e9")).replace(
            "Café".encode(), "Café".encode("cp1252")
        ),
        reason="the file is not valid UTF-8 (byte 0xE9 on line 2); save it as UTF-8, or set "
        "encoding (e.g. 'cp1252') in the configuration",
    ),
    Case(
        "orders-dup-columns.csv",
        lambda: b"channel_order_id,status,status\nA,SHIPPED,SHIPPED\n",
        reason="the header names these columns more than once: status",
    ),
    Case(
        "orders-no-id.csv",
        lambda: csv_bytes(with_columns({}, drop=("channel_order_id",))),
        reason="there is no channel_order_id column, so rows cannot be grouped into orders; "
        "`etl template orders` prints the expected header",
    ),
    Case(
        "orders-unknown-column.csv",
        lambda: csv_bytes(with_columns({"colour": "red"})),
        reason=HEADER + "'colour': there is no field 'colour' under the top level",
    ),
    Case(
        "orders-typo.csv",
        lambda: csv_bytes(with_columns({"order_lines.prodcut.id": "1"})),
        reason=HEADER + "'order_lines.prodcut.id': there is no field 'prodcut' under "
        "order_lines (did you mean 'product'?)",
    ),
    Case(
        "orders-indexed-line.csv",
        lambda: csv_bytes(with_columns({"order_lines[0].status": "X"})),
        reason=HEADER + "'order_lines[0].status': order_lines is one row per element; drop the [0]",
    ),
    Case(
        "orders-unindexed-array.csv",
        lambda: csv_bytes(with_columns({"order_lines.taxes.code": "V"})),
        reason=HEADER + "'order_lines.taxes.code': taxes is a list; name the element: taxes[0]",
    ),
    Case(
        "orders-ragged.csv",
        lambda: b"channel_order_id,status\nA,SHIPPED,EXTRA\n",
        reason="1 row(s) do not have the header's 2 columns (the first, starting 'A', has 3); "
        "the file was read as comma-separated: check the delimiter and the quoting",
    ),
    Case(
        "orders-blank-header.csv",
        lambda: b"channel_order_id,,status\nA,x,SHIPPED\n",
        reason="header column(s) 2 have no name",
    ),
    Case("orders-blank-lines.csv", lambda: b"\n\n\n", reason="the header row is empty"),
    Case("orders-bom.csv", lambda: b"\xef\xbb\xbf" + csv_bytes(line())),
    Case("orders-semicolon.csv", lambda: csv_bytes(line(), delimiter=";")),
    Case(
        "orders-multiline.csv", lambda: csv_bytes(line(order_lines__product__title='Mug,\n"big"'))
    ),
    Case(
        "orders-no-title.csv",
        lambda: csv_bytes(with_columns({}, drop=("order_lines.product.title",))),
        code="MISSING_COLUMN",
        message="the file has no column order_lines.product.title, which every order needs "
        "(`etl template orders --required` lists them)",
    ),
    Case(
        "orders-quantity.csv",
        lambda: csv_bytes(line(order_lines__quantity="2.5")),
        code="NOT_AN_INTEGER",
        message="order_lines[0].quantity: '2.5' is not a whole number",
    ),
    Case(
        "orders-quantity-text.csv",
        lambda: csv_bytes(line(order_lines__quantity="two")),
        code="NOT_AN_INTEGER",
        message="order_lines[0].quantity: 'two' is not a whole number",
    ),
    Case(
        "orders-huge-quantity.csv",
        lambda: csv_bytes(line(order_lines__quantity="123456789012345678901")),
        code="NUMBER_TOO_LARGE",
        message="order_lines[0].quantity: '123456789012345678901' is too large for a whole "
        "number (the largest is 9223372036854775807)",
    ),
    Case(
        "orders-comma-money.csv",
        lambda: csv_bytes(line(order_lines__price__amount="12,50")),
        code="NOT_A_NUMBER",
        message="order_lines[0].price.amount: '12,50' is not a number (e.g. 19.99)",
    ),
    Case(
        "orders-exponent.csv",
        lambda: csv_bytes(line(order_lines__price__amount="1e3")),
        code="NOT_A_NUMBER",
        message="order_lines[0].price.amount: '1e3' is not a number (e.g. 19.99)",
    ),
    Case(
        "orders-bool.csv",
        lambda: csv_bytes(line(order_lines__can_cancel="maybe")),
        code="NOT_A_BOOLEAN",
        message="order_lines[0].can_cancel: 'maybe' is not a boolean (true/false, 1/0, yes/no)",
    ),
    Case(
        "orders-date-format.csv",
        lambda: csv_bytes(line(created_at="31/12/2026 10:00")),
        code="NOT_A_DATE_TIME",
        message="created_at: '31/12/2026 10:00' is not a date-time (ISO 8601, e.g. "
        "2024-05-01T09:30:00Z)",
    ),
    Case(
        "orders-impossible-date.csv",
        lambda: csv_bytes(line(created_at="2026-02-30T10:00:00Z")),
        code="NOT_A_DATE_TIME",
        message="created_at: '2026-02-30T10:00:00Z' is not a real date-time (check day, month "
        "and hour)",
    ),
    Case(
        "orders-naive-date.csv",
        lambda: csv_bytes(line(created_at="2026-11-01T10:00:00")),
        code="NAIVE_DATE_TIME",
        message="created_at: '2026-11-01T10:00:00' has no timezone offset; add one (e.g. "
        "+02:00 or Z) or set assume_timezone in the configuration",
    ),
    Case(
        "orders-status.csv",
        lambda: csv_bytes(line(order_lines__status="SHIPPING")),
        code="NOT_ALLOWED_VALUE",
        message="order_lines[0].status: 'SHIPPING' is not one of AWAITING_ACCEPTANCE, "
        "AWAITING_FRAUD_CHECK, AWAITING_PAYMENT, AWAITING_SHIPMENT, CHANNEL_SPECIFIC, CLOSED, "
        "DELIVERED, SHIPPED",
    ),
    Case(
        "orders-fulfillment.csv",
        lambda: csv_bytes(line(fulfillment__type="SELLER")),
        code="NOT_ALLOWED_VALUE",
        message="fulfillment.type: 'SELLER' is not one of FULFILLED_BY_SELLER, "
        "FULFILLED_BY_PARTNER",
    ),
    Case(
        "orders-reason.csv",
        lambda: csv_bytes(line(status_reason="LOST")),
        code="NOT_ALLOWED_VALUE",
        message="status_reason: 'LOST' is not one of ACCEPTANCE_TIMEOUT, AUTOMATICALLY_CLOSED, "
        "CANCELED, FRAUD_CHECK_FAILED, FRAUD_CHECK_TIMEOUT, PAYMENT_TIMEOUT, REFUNDED, REFUSED, "
        "REFUSED_PAYMENT",
    ),
    Case(
        "orders-negative.csv",
        lambda: csv_bytes(line(order_lines__price__amount="-5")),
        code="NEGATIVE_AMOUNT",
        message="order_lines[0].price.amount: -5 is negative; amounts must be zero or positive",
    ),
    Case(
        "orders-digits.csv",
        lambda: csv_bytes(line(order_lines__price__amount="1234567890123456.5")),
        code="TOO_MANY_DIGITS",
        message="order_lines[0].price.amount: '1234567890123456.5' has more than 15 "
        "significant digits and cannot be sent exactly",
    ),
    Case(
        "orders-disagree.csv",
        lambda: csv_bytes([base_line("A", "L1"), base_line("A", "L2", status="CLOSED")]),
        code="ROWS_DISAGREE",
        message="status must be the same on every row of channel_order_id 'A': row 2 has "
        "'SHIPPED' but row(s) 3 have 'CLOSED'",
    ),
    Case(
        "orders-dup-line.csv",
        lambda: csv_bytes([base_line("A", "L1"), base_line("B", "L1")]),
        code="DUPLICATE_LINE_ID",
        message="order_lines.channel_order_line_id 'L1' appears on rows 2 and 3; Connect needs "
        "it unique across all orders of the channel",
    ),
    Case(
        "orders-no-id-cell.csv",
        lambda: csv_bytes([base_line("", "L1")]),
        code="MISSING_ID",
        message="channel_order_id is empty, so these rows belong to no order",
    ),
    Case(
        "orders-no-origin.csv",
        lambda: csv_bytes(line(origin__channel_id="")),
        code="MISSING_ORIGIN",
        message="no origin: fill origin.channel_id and origin.channel_store_id, or set "
        "CONNECT_CHANNEL_ID and CONNECT_STORE_ID",
    ),
    Case(
        "orders-list.csv",
        lambda: csv_bytes(custom("LIST", "a,b")),
        code="NOT_A_LIST",
        message="custom_attributes[0].value: 'a,b' is not a list of texts written as JSON, e.g. "
        '["a","b"]',
    ),
    Case(
        "orders-numeric-attr.csv",
        lambda: csv_bytes(custom("NUMERIC", "lots")),
        code="NOT_A_NUMBER",
        message="custom_attributes[0].value: 'lots' is not a number (e.g. 19.99)",
    ),
    Case(
        "orders-attr-type.csv",
        lambda: csv_bytes(custom("COLOR", "red")),
        code="NOT_ALLOWED_VALUE",
        message="custom_attributes[0].type: 'COLOR' is not one of STRING, NUMERIC, BOOLEAN, "
        "DATE, LIST",
    ),
    Case(
        "orders-email.csv",
        lambda: csv_bytes(line(shipping_info__email="jane.doe")),
        code="INVALID_EMAIL",
        message="shipping_info.email: 'j***' is not a valid email",
    ),
    Case(
        "orders-url.csv",
        lambda: csv_bytes(line(order_lines__product__thumbnail_url="img 1.png")),
        code="INVALID_URI",
        message="order_lines[0].product.thumbnail_url: 'img 1.png' is not a valid uri",
    ),
    Case(
        "orders-huge-cell.csv",
        lambda: csv_bytes(custom("STRING", "x" * 150_000)),
        code="TOO_LONG",
        message="custom_attributes[0].value: is 150000 characters long; at most 100000",
    ),
    Case(
        "orders-half-window.csv",
        lambda: csv_bytes(line(shipping_info__delivery_date__earliest="2026-11-05T00:00:00Z")),
        code="REQUIRED_FIELD_MISSING",
        message="shipping_info.delivery_date.latest: is required but empty or missing (the "
        "file has no column shipping_info.delivery_date.latest)",
    ),
]


def test_the_corpus_has_at_least_40_cases() -> None:
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_explained_and_kept(
    sandbox: SandboxServer, tmp_path: Path, case: Case
) -> None:
    settings = settings_for(sandbox, tmp_path)
    data = case.data()
    (settings.inbox / case.name).write_bytes(data)
    run = Sync(settings, lambda: ConnectClient(settings))()
    run_dir = settings.outbox / "runs" / run.run_id
    (summary,) = run.files
    failed = settings.outbox / "failed" / run.run_id / case.name
    archived = settings.outbox / "archive" / run.run_id / case.name
    if case.reason:
        assert summary.status == "unreadable"
        assert summary.reason.replace(
            str(settings.inbox / ".processing" / case.name), "<Buffer>"
        ).replace(case.name, "<Buffer>") == case.reason.replace(case.name, "<Buffer>")
        assert failed.read_bytes() == data
        reason_text = (failed.parent / f"{case.name}.reason.txt").read_text()
        assert reason_text.strip() == summary.reason
        assert run.exit_code == 1
    elif case.code:
        assert failed.read_bytes() == data
        with (run_dir / f"{case.name}.errors.csv").open(encoding="utf-8") as handle:
            problems = [(r["code"], r["message"]) for r in csv.DictReader(handle)]
        assert (case.code, case.message) in problems
        assert run.exit_code == 1
    else:
        assert archived.read_bytes() == data
        assert run.exit_code == 0
        assert {o["channel_order_id"] for o in sandbox.stored_orders()} == {"A"}


def test_over_100_orders_are_sent_in_requests_of_at_most_100(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    write_csv(settings.inbox / "orders-many.csv", generate_rows(230, seed=9, max_lines=1))
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 0
    sizes = sorted(
        r["orders"] for r in sandbox.requests_log(path="/api/channel-platform/v1/orders")
    )
    assert sizes == [15, 15, 100, 100]


def test_a_file_still_growing_is_not_taken(tmp_path: Path) -> None:
    growing = tmp_path / "orders-growing.csv"
    growing.write_bytes(b"")  # appears at 0 bytes, then the writer goes on

    def writer_keeps_writing(seconds: float) -> None:
        growing.write_bytes(csv_bytes(line()))

    stable, changing = stable_files([growing], 0.1, writer_keeps_writing)
    assert (stable, changing) == ([], [growing])


def test_a_file_deleted_before_it_is_read_is_explained(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="the file disappeared before it could be read"):
        read_table(tmp_path / "orders-gone.csv")


def test_an_outbox_that_cannot_be_written_is_explained(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root, which ignores permissions: a file where the outbox folder should be
    # refuses writes the same way a read-only share does.
    settings = settings_for(sandbox, tmp_path)
    (settings.inbox / "orders-a.csv").write_bytes(csv_bytes(line()))
    blocked = tmp_path / "outbox-is-a-file"
    blocked.write_text("not a folder")
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli("run", "--inbox", settings.inbox, "--outbox", blocked, "--settle", "0")
    assert code == 5, "the machine's error has its own code"
    assert err.startswith("etl: cannot read or write a file (")
    assert "Traceback" not in err
    assert (settings.inbox / "orders-a.csv").exists()


def test_a_full_disk_stops_cleanly_and_the_next_run_finishes(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    write_csv(settings.inbox / "orders-a.csv", generate_rows(300, seed=4, max_lines=2))
    Sync(settings, lambda: ConnectClient(settings), paths=[])()  # the ledger exists already

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill, as ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    process = subprocess.run(
        etl_run_command(settings),
        env=connect_env(sandbox, process=True),
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=120,
    )
    assert process.returncode == 5, process.stderr
    assert "Traceback" not in process.stderr
    assert "the disk is full" in process.stderr or "is the disk full" in process.stderr
    assert list(settings.inbox.rglob("orders-a.csv")), "the input waits for the next run"
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 0
    assert len(sandbox.stored_orders()) == 300


def test_a_locked_ledger_is_explained(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    Sync(settings, lambda: ConnectClient(settings), paths=[])()
    (settings.inbox / "orders-a.csv").write_bytes(csv_bytes(line()))
    config = tmp_path / "etl.toml"
    config.write_text("[connect]\nledger_timeout = 0.2\n")
    holder = sqlite3.connect(settings.ledger_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    try:
        code, _, err = run_cli(
            "run",
            "--inbox",
            settings.inbox,
            "--outbox",
            settings.outbox,
            "--settle",
            "0",
            "--config",
            config,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2
    assert "database is locked (is another run holding it?)" in err
    assert "Traceback" not in err
    assert (settings.inbox / "orders-a.csv").exists()
