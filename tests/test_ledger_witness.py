"""Issue 13: a ledger deleted or restored from an old copy is noticed, not trusted: without it
every order delivered before would be sent again as new, with no warning."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from etl.cli.failures import describe_environment_error
from etl.sandbox import SandboxServer

from .conftest import RunCli, base_line, connect_env, write_rows

ORDERS_PATH = "/api/channel-platform/v1/orders"


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    return inbox, outbox


def _run(run_cli: RunCli, inbox: Path, outbox: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("run", "--inbox", inbox, "--outbox", outbox, "--settle", "0", *extra)


def test_a_deleted_ledger_stops_the_run_until_told_to_start_afresh(
    sandbox: SandboxServer,
    folders: tuple[Path, Path],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, outbox = folders
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    write_rows(inbox / "orders-a.csv", [base_line("A", "LA")])
    assert _run(run_cli, inbox, outbox)[0] == 0
    sent = len(sandbox.requests_log(path=ORDERS_PATH))
    (outbox / ".state" / "ledger.sqlite3").unlink()  # a clean-up script, a volume not mounted
    write_rows(inbox / "orders-b.csv", [base_line("A", "LA")], delimiter=";")
    code, _, err = _run(run_cli, inbox, outbox)
    assert code == 2
    assert "is not the one this outbox's runs used" in err and "--fresh-ledger" in err
    assert len(sandbox.requests_log(path=ORDERS_PATH)) == sent, "nothing was sent"
    assert (inbox / "orders-b.csv").exists()
    code, out, _ = _run(run_cli, inbox, outbox, "--fresh-ledger")
    assert code == 0 and "1 accepted" in out
    write_rows(inbox / "orders-c.csv", [base_line("C", "LC")])
    assert _run(run_cli, inbox, outbox)[0] == 0, "adopted: later runs go on as usual"


def test_a_ledger_restored_from_an_older_copy_is_refused(
    sandbox: SandboxServer,
    folders: tuple[Path, Path],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    inbox, outbox = folders
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    write_rows(inbox / "orders-a.csv", [base_line("A", "LA")])
    assert _run(run_cli, inbox, outbox)[0] == 0
    ledger = outbox / ".state" / "ledger.sqlite3"
    backup = tmp_path / "backup.sqlite3"
    source, copy = sqlite3.connect(ledger), sqlite3.connect(backup)
    source.backup(copy)  # a consistent copy, as a backup tool takes it
    source.close()
    copy.execute("PRAGMA journal_mode=DELETE")  # one file, whole
    copy.close()
    write_rows(inbox / "orders-b.csv", [base_line("B", "LB")])
    assert _run(run_cli, inbox, outbox)[0] == 0
    for suffix in ("-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, ledger)
    write_rows(inbox / "orders-c.csv", [base_line("B", "LB")], delimiter=";")
    code, _, err = _run(run_cli, inbox, outbox)
    assert code == 2 and "went back in time" in err, err


def test_a_damaged_ledger_is_not_blamed_on_a_full_disk() -> None:
    text = describe_environment_error(sqlite3.DatabaseError("database disk image is malformed"))
    assert "damaged" in text and "disk is full" not in text and "disk full" not in text


@pytest.mark.parametrize(("mode", "verb"), [(0o644, "read"), (0o620, "write")])
def test_a_config_file_holding_a_secret_that_others_can_use_is_refused(
    tmp_path: Path, run_cli: RunCli, mode: int, verb: str
) -> None:
    """Issue 13: a config file holding a secret that others can read or write is refused."""
    config = tmp_path / "etl.toml"
    config.write_text('[connect]\nclient_id = "c"\nclient_secret = "very-secret-value"\n')
    config.chmod(mode)
    (tmp_path / "inbox").mkdir()
    code, out, err = run_cli(
        "run", "--config", config, "--inbox", tmp_path / "inbox", "--outbox", tmp_path / "o"
    )
    assert code == 2
    assert f"others can {verb} it" in err and "chmod 600" in err
    assert "very-secret-value" not in out + err
    config.chmod(0o600)
    code, _, err = run_cli(
        "run", "--config", config, "--inbox", tmp_path / "inbox", "--outbox", tmp_path / "o"
    )
    assert "others can" not in err
