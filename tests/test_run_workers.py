"""Issue 16: `etl run` reads and validates a big file in the worker processes `etl check` uses,
and delivers exactly what it delivers alone."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest

from etl.deliver.client import ConnectClient
from etl.run.parallel import Workers
from etl.run.sync import Sync
from etl.sandbox import SandboxServer

from .conftest import SECRET, base_line, settings_for, write_rows
from .test_equivalence import messy_rows, write


def _run(
    tmp_path: Path, rows: list[dict[str, str]], workers: Workers | None
) -> tuple[dict[str, object], dict[str, str]]:
    """What the sandbox stored, and each order's outcome in the second run, after the file is
    run once (every valid order sent) and then again with a few orders changed (a re-run: it
    sends little, so the workers judge it)."""
    tmp_path.mkdir()
    again = [dict(row) for row in rows]
    for row in again[::40]:  # a few orders' city changes
        row["shipping_info.address.city"] = "Brest"
    with SandboxServer(db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET) as server:
        settings = settings_for(server, tmp_path)
        write(settings.inbox / "orders-messy.csv", rows)
        Sync(settings, lambda: ConnectClient(settings))()
        write(settings.inbox / "orders-messy-again.csv", again)
        run = Sync(settings, lambda: ConnectClient(settings), workers=workers)()
        stored = {o["channel_order_id"]: o["body"] for o in server.stored_orders()}
    (items_path,) = (settings.outbox / "runs" / run.run_id).glob("*.items.csv")
    with items_path.open(encoding="utf-8") as handle:
        outcomes = {row["id"]: row["outcome"] for row in csv.DictReader(handle)}
    return stored, outcomes


def test_a_rerun_with_workers_delivers_what_a_run_alone_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("etl.run.check.PARALLEL_MIN_ROWS", 0)  # a small file goes to them too
    monkeypatch.setattr("etl.run.parallel.CHUNK_SIZE", 20)
    rows = messy_rows(300, seed=16)
    alone = _run(tmp_path / "alone", rows, None)
    with Workers(2) as workers:
        parallel = _run(tmp_path / "parallel", rows, workers)
        assert workers._pool is not None  # the re-run's chunks went to the worker processes
    assert parallel == alone
    assert {"ACCEPTED", "UNCHANGED", "INVALID"} <= set(alone[1].values())


def test_a_file_whose_orders_are_sent_leaves_the_workers_unstarted(
    sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sent at the API's pace, a file waits for the pacing, not for judging: worker processes
    would only add memory, so they are not even started."""
    monkeypatch.setattr("etl.run.check.PARALLEL_MIN_ROWS", 0)
    monkeypatch.setattr("etl.run.parallel.CHUNK_SIZE", 20)
    settings = settings_for(sandbox, tmp_path)
    rows = [base_line(f"{n:04d}", f"L{n}") for n in range(200)]
    write_rows(settings.inbox / "orders-fresh.csv", rows)
    with Workers(2) as workers:
        run = Sync(settings, lambda: ConnectClient(settings), workers=workers)()
        assert workers._pool is None
    assert run.exit_code == 0 and run.files[0].outcomes == {"ACCEPTED": 200}


def test_a_worker_leaves_ctrl_c_and_sigterm_to_the_run() -> None:
    """Ctrl-C reaches every process of the terminal's group, and systemd's SIGTERM every process
    of the unit: the run stops gracefully (its batches in flight finish, the file waits for the
    next run), so its workers must not die under it first, which would break the pool and fail
    the file as an internal error."""
    with Workers(1) as workers:
        pool = workers.pool()
        (pid,) = {pool.submit(os.getpid).result()}
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.3)
        assert pool.submit(os.getpid).result(timeout=30) == pid
