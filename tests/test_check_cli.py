"""`etl check` and `etl template` end to end on real files: exit codes, messages, reports."""

from __future__ import annotations

import csv
import json
import stat
from pathlib import Path

import orjson
import pytest

from bench.generate import generate_rows, write_csv
from etl.report.files import read_errors

from .conftest import SAMPLES, RunCli, base_line, write_rows


def only_run_dir(outbox: Path) -> Path:
    (run_dir,) = (outbox / "runs").iterdir()
    return run_dir


def requests_of(run_dir: Path, name: str) -> list[dict[str, object]]:
    lines = (run_dir / f"{name}.requests.jsonl").read_bytes().splitlines()
    return [orjson.loads(line) for line in lines]


def test_valid_sample_exits_0_and_writes_every_report(tmp_path: Path, run_cli: RunCli) -> None:
    code, out, err = run_cli("check", SAMPLES / "orders-2026-11-22.csv", "--outbox", tmp_path)
    assert (code, err) == (0, "")
    assert (
        "orders-2026-11-22.csv: 24 orders from 90 rows: 24 valid; 0 problem(s); 2 request(s)" in out
    )
    run_dir = only_run_dir(tmp_path)
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "orders-2026-11-22.csv.errors.csv",
        "orders-2026-11-22.csv.items.csv",
        "orders-2026-11-22.csv.requests.jsonl",
        "report.html",
        "summary.json",
    ]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_code"] == 0
    assert summary["totals"]["outcomes"] == {"VALID": 24}
    assert summary["files"][0]["sha256"]
    for body in requests_of(run_dir, "orders-2026-11-22.csv"):
        assert set(body) == {"origin", "orders"}
    for path in run_dir.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path.name} is readable by others"


def test_mistakes_sample_exits_1_with_exactly_the_expected_errors(
    tmp_path: Path, run_cli: RunCli
) -> None:
    code, out, _ = run_cli("check", SAMPLES / "orders-with-mistakes.csv", "--outbox", tmp_path)
    assert code == 1
    assert "12 invalid, 8 valid; 13 problem(s)" in out
    run_dir = only_run_dir(tmp_path)
    actual = (run_dir / "orders-with-mistakes.csv.errors.csv").read_text(encoding="utf-8")
    expected = (SAMPLES / "expected" / "orders-with-mistakes.errors.csv").read_text(
        encoding="utf-8"
    )
    assert actual == expected
    items = list(csv.DictReader((run_dir / "orders-with-mistakes.csv.items.csv").open()))
    invalid = {row["id"] for row in items if row["outcome"] == "INVALID"}
    sent = {
        o["channel_order_id"]
        for b in requests_of(run_dir, "orders-with-mistakes.csv")
        for o in b["orders"]
    }  # type: ignore[union-attr]
    assert len(invalid) == 12 and not invalid & sent and len(sent) == 8


def test_parquet_sample_gives_the_same_requests_as_the_csv(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, _ = run_cli(
        "check",
        SAMPLES / "orders-2026-11-22.csv",
        SAMPLES / "orders-2026-11-22.parquet",
        "--outbox",
        tmp_path,
    )
    assert code == 0
    run_dir = only_run_dir(tmp_path)
    assert requests_of(run_dir, "orders-2026-11-22.csv") == requests_of(
        run_dir, "orders-2026-11-22.parquet"
    )


def test_european_erp_sample_through_its_mapping(tmp_path: Path, run_cli: RunCli) -> None:
    code, out, _ = run_cli(
        "check",
        SAMPLES / "orders-eu-erp.csv",
        "--config",
        SAMPLES / "etl.toml",
        "--outbox",
        tmp_path,
    )
    assert code == 0, out
    (body,) = requests_of(only_run_dir(tmp_path), "orders-eu-erp.csv")
    assert body["origin"] == {"channel_id": "ERP-EU", "channel_store_id": "berlin-01"}
    first = body["orders"][0]  # type: ignore[index]
    # Row 2 of the file: 799,78 and 0,19 in Berlin wall-clock time (UTC+1 in November).
    assert first["created_at"] == "2026-11-01T07:00:00Z"
    line = first["order_lines"][0]
    assert line["price"] == {"amount": 799.78, "currency": "EUR"}
    assert line["taxes"] == [
        {"rate": 0.19, "amount": {"amount": 151.96, "currency": "EUR"}, "code": "VAT"}
    ]
    assert line["can_cancel"] is True


def test_the_european_file_without_its_mapping_is_explained(
    tmp_path: Path, run_cli: RunCli
) -> None:
    code, _, err = run_cli("check", SAMPLES / "orders-eu-erp.csv", "--outbox", tmp_path)
    assert code == 2
    assert "orders-eu-erp.csv: UNREADABLE: unknown or misplaced columns" in err
    assert "there is no field 'Bestellnummer' under the top level" in err


def test_batches_hold_at_most_100_orders_of_one_origin(tmp_path: Path, run_cli: RunCli) -> None:
    path = tmp_path / "orders-big.csv"
    write_csv(path, generate_rows(250, seed=3, max_lines=2))
    code, out, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 0
    bodies = requests_of(only_run_dir(tmp_path / "out"), path.name)
    sizes = sorted(len(b["orders"]) for b in bodies)  # type: ignore[arg-type]
    assert sizes == [25, 25, 100, 100]
    for body in bodies:
        origins = {(body["origin"]["channel_id"])}  # type: ignore[index]
        assert len(origins) == 1
    assert "4 request(s)" in out


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("orders-empty.csv", b"", "the file is empty (0 bytes)"),
        (
            "orders-header.csv",
            b"channel_order_id,statuss\n",  # no rows, but a header that would refuse any
            "unknown or misplaced columns",
        ),
        ("orders-binary.parquet", b"\x00\x01garbage", "not a readable Parquet file"),
        ("export.csv", b"a,b\n1,2\n", "the file name says no known kind; understood names: orders"),
    ],
)
def test_unreadable_files_exit_2_with_the_reason(
    tmp_path: Path, run_cli: RunCli, name: str, data: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    code, _, err = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 2
    assert f"{name}: UNREADABLE: {reason}" in err
    summary = json.loads((only_run_dir(tmp_path / "out") / "summary.json").read_text())
    assert summary["files"][0]["status"] == "unreadable"
    assert reason in summary["files"][0]["reason"]


def test_missing_file_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli("check", tmp_path / "orders-nope.csv", "--outbox", tmp_path)
    assert code == 2
    assert err == f"etl: no such file or folder: {tmp_path / 'orders-nope.csv'}\n"


def test_bad_config_is_a_usage_error(tmp_path: Path, run_cli: RunCli) -> None:
    config = tmp_path / "etl.toml"
    config.write_text("[read]\nassume_timezone = 'Mars/Olympus'\n")
    path = write_rows(tmp_path / "orders.csv", [base_line()])
    code, _, err = run_cli("check", path, "--config", config)
    assert code == 2
    assert "assume_timezone 'Mars/Olympus' is not a known timezone" in err


def test_money_ids_and_integers_keep_their_exact_text(tmp_path: Path, run_cli: RunCli) -> None:
    path = write_rows(tmp_path / "orders-x.csv", [base_line("000123", order_lines__quantity="3")])
    code, _, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 0
    text = (only_run_dir(tmp_path / "out") / "orders-x.csv.requests.jsonl").read_text()
    assert '"channel_order_id":"000123"' in text
    assert '"amount":19.99,' in text
    assert '"quantity":3,' in text
    assert '"id":"00123"' in text


def test_template_prints_the_canonical_header(run_cli: RunCli) -> None:
    code, out, _ = run_cli("template", "orders")
    assert code == 0
    header = out.strip().split(",")
    assert header[:3] == ["origin.channel_id", "origin.channel_store_id", "channel_order_id"]
    assert "order_lines.taxes[0].amount.amount" in header
    assert len(header) == 104


def test_the_template_header_is_accepted_by_check(tmp_path: Path, run_cli: RunCli) -> None:
    _, out, _ = run_cli("template", "orders")
    path = tmp_path / "orders-template.csv"
    path.write_text(out + ",".join(base_line().get(c, "") for c in out.strip().split(",")) + "\n")
    code, _, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 0
    errors = read_errors(only_run_dir(tmp_path / "out") / "orders-template.csv.errors.csv")
    assert errors == []


@pytest.mark.parametrize(
    ("delimiter", "data", "reason"),
    [
        (
            ";",
            b"channel_order_id,status\nA,SHIPPED\n",
            "the header reads as one single column ('channel_order_id,status'): the settings "
            "say the file is separated by ';' (semicolon), but its header is separated by ',' "
            "(comma); fix delimiter in [read] (etl.toml or the mapping file), or remove it to "
            "have the separator detected",
        ),
        (
            "|",
            b"channel_order_id;status\nA;SHIPPED\n",
            "the header reads as one single column ('channel_order_id;status'): the settings "
            "say the file is separated by '|' (pipe), but its header is separated by ';' "
            "(semicolon); fix delimiter in [read] (etl.toml or the mapping file), or remove it "
            "to have the separator detected",
        ),
        (
            ",",
            b"channel_order_id:status\nA:SHIPPED\n",
            "the header reads as one single column ('channel_order_id:status'): the settings "
            "say the file is separated by ',' (comma), but its header holds none of , ; tab "
            "or |; export it separated by ',' (comma), as the settings say",
        ),
    ],
)
def test_a_configured_delimiter_the_file_does_not_use_is_named(
    tmp_path: Path, run_cli: RunCli, delimiter: str, data: bytes, reason: str
) -> None:
    """The reason says what the settings say and what the header looks like, not that the file
    uses none of the separators (it may use one the settings do not name)."""
    mapping = tmp_path / "erp.toml"
    mapping.write_text(f'[read]\ndelimiter = "{delimiter}"\n', encoding="utf-8")
    path = tmp_path / "orders-x.csv"
    path.write_bytes(data)
    code, _, err = run_cli("check", path, "--mapping", mapping, "--outbox", tmp_path / "out")
    assert code == 2
    assert err.splitlines()[0] == f"orders-x.csv: UNREADABLE: {reason}"


def _empty_parquet(path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {name: pa.array([], pa.string()) for name in base_line()}
    pq.write_table(pa.table(columns), path)
    return path


def test_a_day_without_orders_is_empty_not_unreadable(tmp_path: Path, run_cli: RunCli) -> None:
    """A header without rows (a Parquet file with columns and no rows) is what an ERP exports
    on a day without orders: exit 0, reported as empty with 0 orders; a 0-byte file is not an
    export at all and stays unreadable (test_unreadable_files_exit_2_with_the_reason)."""
    csv_path = tmp_path / "orders-sunday.csv"
    csv_path.write_text(",".join(base_line()) + "\r\n", encoding="utf-8")
    parquet_path = _empty_parquet(tmp_path / "orders-sunday.parquet")
    code, out, err = run_cli("check", csv_path, parquet_path, "--outbox", tmp_path / "out")
    assert (code, err) == (0, "")
    reason = "no orders in it (a header and no rows): nothing to send"
    assert f"orders-sunday.csv: EMPTY: {reason}" in out
    assert f"orders-sunday.parquet: EMPTY: {reason}" in out
    run_dir = only_run_dir(tmp_path / "out")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exit_code"] == 0
    assert summary["totals"]["items"] == 0
    for entry in summary["files"]:
        assert (entry["status"], entry["reason"], entry["items"], entry["rows"]) == (
            "empty",
            reason,
            0,
            0,
        )
        assert entry["kind"] == "orders"
    for name in ("orders-sunday.csv", "orders-sunday.parquet"):
        items = (run_dir / f"{name}.items.csv").read_text().splitlines()
        assert items == [
            ",".join(
                [
                    "file",
                    "rows",
                    "channel_id",
                    "channel_store_id",
                    "id",
                    "outcome",
                    "batch",
                    "http_status",
                    "code",
                    "message",
                ]
            )
        ]
        assert read_errors(run_dir / f"{name}.errors.csv") == []
        assert (run_dir / f"{name}.requests.jsonl").read_bytes() == b""
