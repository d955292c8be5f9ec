"""`etl retry RUN_ID`: what a run could not deliver (API down) is sent now, nobody moving a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.deliver.client import ConnectClient
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Settings

from .conftest import RunCli, base_line, connect_env, settings_for, write_rows
from .test_rejected_files import bodies, stored


def failed_run(sandbox: SandboxServer, settings: Settings) -> Sync:
    """A run against an API that answers 503 to everything: its orders end FAILED."""
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    sync = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))
    sync()
    sandbox.clear_faults()
    return sync


def test_retry_sends_the_failed_orders_of_that_run_only(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    rows = [base_line("A", "L1"), base_line("A", "L2"), base_line("B", "L3")]
    write_rows(settings.inbox / "orders-down.csv", rows)
    first = failed_run(sandbox, settings)
    assert first.run.exit_code == 3
    assert first.run.files[0].outcomes == {"FAILED": 2}
    assert (settings.inbox / "orders-down.csv").is_file()  # put back, as `etl run` does
    assert stored(sandbox) == {}
    # A file dropped since is not that run's: retry leaves it for the next `etl run`.
    write_rows(settings.inbox / "orders-later.csv", [base_line("C", "L9")])

    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    folders = ("--inbox", settings.inbox, "--outbox", settings.outbox)
    code, out, err = run_cli("retry", first.run.run_id, *folders)
    assert code == 0, out + err
    assert stored(sandbox) == bodies(rows, tmp_path)
    assert (settings.inbox / "orders-later.csv").is_file()
    archived = list((settings.outbox / "archive").glob("*/orders-down.csv"))
    assert len(archived) == 1

    code, out, err = run_cli("retry", first.run.run_id, *folders)
    assert code == 0, out + err
    retried = archived[0].parent.name
    assert out == f"orders-down.csv: delivered since, by run {retried}: nothing to retry\n"


def test_a_run_without_failed_orders_has_nothing_to_retry(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    write_rows(settings.inbox / "orders-ok.csv", [base_line("A", "L1")])
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 0
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    folders = ("--inbox", settings.inbox, "--outbox", settings.outbox)
    code, out, _ = run_cli("retry", run.run_id[:18], *folders)
    assert (code, out) == (0, f"run {run.run_id} left no order undelivered: nothing to retry\n")
    code, _, err = run_cli("retry", "nope", *folders)
    assert code == 2 and "no run 'nope'" in err
