"""Issue 16: `etl run` reads and validates a big file in the worker processes `etl check` uses,
and delivers exactly what it delivers alone."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from etl.deliver.client import ConnectClient
from etl.run.parallel import Workers
from etl.run.sync import Sync
from etl.sandbox import SandboxServer

from .conftest import SECRET, settings_for
from .test_equivalence import messy_rows, write


def _run(
    tmp_path: Path, rows: list[dict[str, str]], workers: Workers | None
) -> tuple[dict[str, object], dict[str, str]]:
    """What the sandbox stored, and each order's outcome, after one run of the file."""
    tmp_path.mkdir()
    with SandboxServer(db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET) as server:
        settings = settings_for(server, tmp_path)
        write(settings.inbox / "orders-messy.csv", rows)
        run = Sync(settings, lambda: ConnectClient(settings), workers=workers)()
        stored = {o["channel_order_id"]: o["body"] for o in server.stored_orders()}
    (items_path,) = (settings.outbox / "runs" / run.run_id).glob("*.items.csv")
    with items_path.open(encoding="utf-8") as handle:
        outcomes = {row["id"]: row["outcome"] for row in csv.DictReader(handle)}
    return stored, outcomes


def test_a_run_with_workers_delivers_what_a_run_alone_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("etl.run.check.PARALLEL_MIN_ROWS", 0)  # a small file goes to them too
    monkeypatch.setattr("etl.run.parallel.CHUNK_SIZE", 20)
    rows = messy_rows(300, seed=16)
    alone = _run(tmp_path / "alone", rows, None)
    with Workers(2) as workers:
        parallel = _run(tmp_path / "parallel", rows, workers)
        assert workers._pool is not None  # the chunks went to the worker processes
    assert parallel == alone
    assert {"ACCEPTED", "INVALID"} <= set(alone[1].values())
