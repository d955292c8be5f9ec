"""`etl run` end to end against the sandbox over loopback: outcomes, ledger, inbox life cycle."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.generate import generate_rows, write_csv
from etl.deliver.client import ConnectClient
from etl.deliver.sending import SENDERS
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Secret, Settings
from etl.state.ledger import Ledger

from .conftest import (
    SAMPLES,
    SECRET,
    RunCli,
    base_line,
    connect_env,
    etl_run_command,
    settings_for,
    write_rows,
)

ORDERS_PATH = "/api/channel-platform/v1/orders"


def run_once(settings: Settings, force: bool = False) -> Sync:
    sync = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None), force=force)
    sync()
    return sync


def items_of(sync: Sync, name: str) -> dict[str, str]:
    with (sync.run_dir / f"{name}.items.csv").open(encoding="utf-8") as handle:
        return {row["id"]: row["outcome"] for row in csv.DictReader(handle)}


def stored(sandbox: SandboxServer) -> dict[str, str]:
    return {o["channel_order_id"]: o["channel_updated_at"] for o in sandbox.stored_orders()}


def test_samples_are_delivered_and_every_file_ends_in_one_place(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    for sample in ("orders-2026-11-22.csv", "orders-with-mistakes.csv"):
        shutil.copy(SAMPLES / sample, settings.inbox / sample)
    sync = run_once(settings)
    assert sync.run.exit_code == 1
    good = items_of(sync, "orders-2026-11-22.csv")
    mistakes = items_of(sync, "orders-with-mistakes.csv")
    assert set(good.values()) == {"ACCEPTED"} and len(good) == 24
    assert sorted(mistakes.values()).count("INVALID") == 12
    accepted = {i for i, o in (good | mistakes).items() if o == "ACCEPTED"}
    assert set(stored(sandbox)) == accepted
    run_id = sync.run.run_id
    outbox = settings.outbox
    assert (outbox / "archive" / run_id / "orders-2026-11-22.csv").exists()
    assert (outbox / "failed" / run_id / "orders-with-mistakes.csv").exists()
    reason = (outbox / "failed" / run_id / "orders-with-mistakes.csv.reason.txt").read_text()
    assert "12 of 20 orders were not accepted" in reason
    assert list(settings.inbox.iterdir()) == [settings.inbox / ".processing"]
    assert list((settings.inbox / ".processing").iterdir()) == []
    summary = json.loads((sync.run_dir / "summary.json").read_text())
    assert summary["totals"]["outcomes"] == {"ACCEPTED": 32, "INVALID": 12}
    assert summary["exit_code"] == 1


def test_a_redropped_file_is_a_duplicate_and_nothing_is_resent(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-a.csv")
    assert run_once(settings).run.exit_code == 0
    before = len(sandbox.requests_log(path=ORDERS_PATH))
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-b.csv")
    sync = run_once(settings)
    assert sync.run.exit_code == 0
    assert [f.status for f in sync.run.files] == ["duplicate"]
    assert len(sandbox.requests_log(path=ORDERS_PATH)) == before
    assert (settings.outbox / "archive" / sync.run.run_id / "orders-b.csv").exists()
    forced = run_once_after_drop(settings, "orders-c.csv", force=True)
    assert set(items_of(forced, "orders-c.csv").values()) == {"ACCEPTED"}


def run_once_after_drop(settings: Settings, name: str, force: bool = False) -> Sync:
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / name)
    return run_once(settings, force=force)


def test_unchanged_stale_and_newer_versions(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path)
    v1 = {"channel_updated_at": "2026-11-02T10:00:00Z"}
    write_rows(
        settings.inbox / "orders-1.csv", [base_line("A", "LA", **v1), base_line("B", "LB", **v1)]
    )
    assert run_once(settings).run.exit_code == 0
    rows = [
        base_line("A", "LA", **v1, order_lines__quantity="2"),  # same content, other file bytes
        base_line("B", "LB", channel_updated_at="2026-11-01T10:00:00Z", status="CLOSED"),
        base_line("C", "LC", **v1),
    ]
    write_rows(settings.inbox / "orders-2.csv", rows, delimiter=";")
    sync = run_once(settings)
    assert sync.run.exit_code == 0
    assert items_of(sync, "orders-2.csv") == {"A": "UNCHANGED", "B": "STALE", "C": "ACCEPTED"}
    newer = [base_line("B", "LB", channel_updated_at="2026-11-03T10:00:00Z", status="CLOSED")]
    write_rows(settings.inbox / "orders-3.csv", newer)
    sync = run_once(settings)
    assert items_of(sync, "orders-3.csv") == {"B": "ACCEPTED"}
    assert stored(sandbox) == {
        "A": "2026-11-02T10:00:00Z",
        "B": "2026-11-03T10:00:00Z",
        "C": "2026-11-02T10:00:00Z",
    }
    (order_b,) = [o for o in sandbox.stored_orders() if o["channel_order_id"] == "B"]
    assert order_b["body"]["status"] == "CLOSED"


def test_an_api_that_stays_down_leaves_the_input_for_the_next_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, max_attempts=3)
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-a.csv")
    shutil.copy(SAMPLES / "orders-eu-erp.csv", settings.inbox / "orders-b.csv")
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    sync = run_once(settings)
    assert sync.run.exit_code == 3
    assert set(items_of(sync, "orders-a.csv").values()) == {"FAILED"}
    assert sorted(p.name for p in settings.inbox.glob("orders-*")) == [
        "orders-a.csv",
        "orders-b.csv",
    ]
    assert len(sandbox.requests_log(path=ORDERS_PATH)) == 3  # one batch tried, then stop
    assert stored(sandbox) == {}
    ledger = Ledger.open(settings.ledger_path)
    assert ledger.db.execute("SELECT count(*) FROM files").fetchone()[0] == 0
    ledger.close()
    sandbox.clear_faults()
    sync = run_once(settings)
    assert set(items_of(sync, "orders-a.csv").values()) == {"ACCEPTED"}
    assert len(stored(sandbox)) == 24


def test_refused_credentials_stop_the_run_with_exit_3(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-a.csv")
    for name, value in connect_env(sandbox, "not-the-secret").items():
        monkeypatch.setenv(name, value)
    code, _, err = run_cli(
        "run", "--inbox", settings.inbox, "--outbox", settings.outbox, "--settle", "0"
    )
    assert code == 3
    assert "refused the client credentials" in err
    assert (settings.inbox / "orders-a.csv").exists()


def test_no_credentials_is_a_usage_error(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CONNECT_CLIENT_ID", "CONNECT_CLIENT_SECRET", "CONNECT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    code, _, err = run_cli("run", "--inbox", tmp_path, "--outbox", tmp_path / "out")
    assert code == 2
    assert "no Connect credentials" in err


def test_no_secret_or_token_in_any_output(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    for sample in ("orders-2026-11-22.csv", "orders-with-mistakes.csv"):
        shutil.copy(SAMPLES / sample, settings.inbox / sample)
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    sandbox.set_faults({"faults": [{"status": 429, "retry_after": "0"}, {"drop": True}], "next": 2})
    code, out, err = run_cli(
        "run", "--inbox", settings.inbox, "--outbox", settings.outbox, "--settle", "0", "-v"
    )
    assert code == 1
    tokens = [
        r["response"]["access_token"]
        for r in sandbox.requests_log(path="/oauth/token")
        if isinstance(r["response"], dict) and "access_token" in r["response"]
    ]
    outputs = [out, err]
    for path in settings.outbox.rglob("*"):
        if path.is_file() and ".sandbox" not in path.parts:
            outputs.append(path.read_bytes().decode("utf-8", "replace"))
    for text in outputs:
        assert SECRET not in text
        for token in tokens:
            if token != "<redacted>":
                assert token not in text


def test_a_run_killed_mid_way_resumes_without_losing_or_duplicating(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, requests_per_second=0.0)
    export = settings.inbox / "orders-big.csv"
    write_csv(export, generate_rows(600, seed=11, max_lines=2))
    sandbox.set_faults({"faults": [{"delay": 0.25}], "path_prefix": "/api/"})
    env = connect_env(sandbox, process=True)
    process = subprocess.Popen(
        etl_run_command(settings),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(sandbox.requests_log(path=ORDERS_PATH)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    sandbox.clear_faults()
    partial = set(stored(sandbox))
    assert 0 < len(partial) < 600, "the kill must land mid-way"
    assert (settings.inbox / ".processing" / "orders-big.csv").exists()
    sync = run_once(settings)
    assert sync.run.exit_code == 0
    outcomes = items_of(sync, "orders-big.csv")
    # The resumed run reports what it delivered, and what the killed one had as delivered
    # before: no order is counted as delivered twice over the two runs.
    delivered_before = [o for o in outcomes.values() if o == "UNCHANGED"]
    assert len(outcomes) == 600 and set(outcomes.values()) <= {"ACCEPTED", "UNCHANGED"}
    assert len(delivered_before) <= len(partial)
    assert len(stored(sandbox)) == 600
    assert (settings.outbox / "archive" / sync.run.run_id / "orders-big.csv").exists()
    assert not export.exists() and not (settings.inbox / ".processing" / "orders-big.csv").exists()
    resent = len(sandbox.requests_log(path=ORDERS_PATH))
    # 6 batches in all: only those on the wire at the kill (one per sender at most) may be
    # sent twice.
    assert resent <= 6 + SENDERS


def test_secret_is_not_in_help(
    run_cli: RunCli, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECT_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("CONNECT_TOKEN", "token-value-xyz")
    for command in (["--help"], ["run", "--help"], ["check", "--help"]):
        with pytest.raises(SystemExit):
            run_cli(*command)
        text = capsys.readouterr().out
        assert "usage: etl" in text
        assert SECRET not in text and "token-value-xyz" not in text


def test_settings_never_print_secrets() -> None:
    settings = Settings(client_secret=Secret(SECRET), token=Secret("tok"))
    assert SECRET not in repr(settings) and "tok'" not in repr(settings)


def test_an_empty_inbox_leaves_no_run_folder_behind(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    code, out, _ = run_cli("run", "--inbox", settings.inbox, "--outbox", settings.outbox)
    assert (code, out) == (0, f"inbox {settings.inbox}: nothing to do\n")
    assert not (settings.outbox / "runs").exists() or not any((settings.outbox / "runs").iterdir())


def test_etl_sandbox_passes_its_own_flags_through(
    run_cli: RunCli, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        run_cli("sandbox", "--help")
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: etl sandbox") and "--known-store" in text


def test_a_day_without_orders_is_archived_as_empty(sandbox: SandboxServer, tmp_path: Path) -> None:
    """A header without rows, and a Parquet file with columns and no rows: archived, exit 0,
    nothing sent; a 0-byte file beside them is still unreadable (it is not an export)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = settings_for(sandbox, tmp_path)
    header = ",".join(base_line()) + "\n"
    (settings.inbox / "orders-sunday.csv").write_text(header, encoding="utf-8")
    columns = {name: pa.array([], pa.string()) for name in base_line()}
    pq.write_table(pa.table(columns), settings.inbox / "orders-sunday.parquet")
    sync = run_once(settings)
    assert sync.run.exit_code == 0
    reason = "no orders in it (a header and no rows): nothing to send"
    by_name = {f.name: f for f in sync.run.files}
    for name in ("orders-sunday.csv", "orders-sunday.parquet"):
        summary = by_name[name]
        assert (summary.status, summary.reason, summary.items, summary.rows) == (
            "empty",
            reason,
            0,
            0,
        )
        assert (settings.outbox / "archive" / sync.run.run_id / name).is_file()
        assert items_of(sync, name) == {}
    assert sandbox.stored_orders() == []
    written = json.loads((sync.run_dir / "summary.json").read_text())
    assert {f["name"]: f["status"] for f in written["files"]} == {
        "orders-sunday.csv": "empty",
        "orders-sunday.parquet": "empty",
    }
    (settings.inbox / "orders-nothing.csv").write_bytes(b"")
    sync = run_once(settings)
    (summary,) = sync.run.files
    assert (summary.status, summary.reason) == ("unreadable", "the file is empty (0 bytes)")
    assert sync.run.exit_code == 1


def test_etl_run_says_an_empty_file_is_empty(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    header = ",".join(base_line()) + "\n"
    (settings.inbox / "orders-sunday.csv").write_text(header, encoding="utf-8")
    args = ("run", "--inbox", settings.inbox, "--outbox", settings.outbox, "--settle", "0")
    code, out, err = run_cli(*args)
    assert (code, err) == (0, "")
    assert (
        "orders-sunday.csv: EMPTY: no orders in it (a header and no rows): nothing to send" in out
    )
    (settings.inbox / "orders-monday.csv").write_text(header + "\n", encoding="utf-8")
    code, out, err = run_cli(*args, "-q")  # nothing went wrong: nothing to say under cron
    assert (code, err) == (0, "")
    assert "orders-monday.csv" not in out
