"""Crash campaign: an export killed with SIGKILL at 20 seeded moments, then run to completion.

After each: every valid order is in the sandbox once, in its latest version; no order is reported
twice; the ledger and the outbox are consistent; the input file is in exactly one place.
Marked slow: CI runs it as its own step (`pytest -m slow`).
"""

from __future__ import annotations

import csv
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.generate import generate_rows, write_csv
from etl.deliver.client import ConnectClient
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.state.ledger import Ledger

from .conftest import SECRET, connect_env, etl_run_command, settings_for

# 1,500 orders (15 batches of 100): the kills land in the same places of the run as with the
# 5,000 the campaign first had (reading, the nth batch pending or sent, the report, the move),
# and the external kills (0.2 s to 2 s in) still fall inside a run of about 2 s; each iteration
# runs a third of the orders (the campaign was 130 s of CI's slow step).
ORDERS = 1500
OLD_VERSIONS = ORDERS // 5
BATCHES = ORDERS // 100
KILLS = 20
FAILPOINTS = ["read", "batch.pending", "batch.sent", "report", "move"]


def build_exports(folder: Path) -> tuple[Path, Path, set[str], dict[str, str]]:
    """The big export (about 1% invalid orders) and an older version of a fifth of its orders."""
    rows = list(generate_rows(ORDERS, seed=5, max_lines=3, id_prefix="C-"))
    rng = random.Random(5)
    ids = sorted({row["channel_order_id"] for row in rows})
    invalid = set(rng.sample(ids, ORDERS // 100))
    for row in rows:
        if row["channel_order_id"] in invalid:
            row["order_lines.status"] = "SHIPPING"
    big = folder / "orders-big.csv"
    write_csv(big, iter(rows))
    latest = {r["channel_order_id"]: r["channel_updated_at"] for r in rows}
    old_ids = set(ids[:OLD_VERSIONS]) - invalid
    old_rows = [
        dict(r, channel_updated_at="2026-10-01T00:00:00Z")
        for r in rows
        if r["channel_order_id"] in old_ids
    ]
    old = folder / "orders-old.csv"
    write_csv(old, iter(old_rows))
    valid = set(ids) - invalid
    return big, old, valid, latest


@pytest.fixture(scope="module")
def exports(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, set[str], dict[str, str]]:
    return build_exports(tmp_path_factory.mktemp("exports"))


def plan(iteration: int) -> tuple[str, float]:
    """(failpoint spec, or "" for a kill from outside after a seeded delay)."""
    rng = random.Random(1000 + iteration)
    if iteration < 15:
        point = FAILPOINTS[iteration % len(FAILPOINTS)]
        count = rng.randint(1, BATCHES * 9 // 10) if point.startswith("batch") else 1
        return f"{point}={count}", 0.0
    return "", rng.uniform(0.2, 2.0)


@pytest.mark.slow
@pytest.mark.parametrize("iteration", range(KILLS))
def test_killed_run_then_completion_loses_and_duplicates_nothing(
    tmp_path: Path, exports: tuple[Path, Path, set[str], dict[str, str]], iteration: int
) -> None:
    big, old, valid, latest = exports
    with SandboxServer(db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET) as sandbox:
        settings = settings_for(sandbox, tmp_path)
        (settings.inbox / old.name).write_bytes(old.read_bytes())
        Sync(settings, lambda: ConnectClient(settings))()
        (settings.inbox / big.name).write_bytes(big.read_bytes())
        failpoints, delay = plan(iteration)
        env = {**connect_env(sandbox, process=True), "ETL_FAILPOINTS": failpoints}
        process = subprocess.Popen(
            etl_run_command(settings),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if not failpoints:
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=120)
        if failpoints:
            assert process.returncode == -signal.SIGKILL, err.decode()
        completion = Sync(settings, lambda: ConnectClient(settings))()
        assert completion.exit_code in (1, 0)

        stored = {o["channel_order_id"]: o for o in sandbox.stored_orders()}
        assert set(stored) == valid, "every valid order arrives, nothing else"
        for order_id, order in stored.items():
            assert order["channel_updated_at"] == latest[order_id], "the latest version wins"

        reported: dict[str, int] = {}
        for items in settings.outbox.glob("runs/*/orders-big.csv.items.csv"):
            with items.open(encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    reported[row["id"]] = reported.get(row["id"], 0) + 1
        assert set(reported) == set(latest)
        assert max(reported.values()) == 1, "no order reported twice"

        places = [*settings.outbox.rglob(big.name), *settings.inbox.rglob(big.name)]
        assert len(places) == 1, places
        assert places[0].parent.parent == settings.outbox / "failed", "it has invalid orders"
        assert not list(settings.outbox.rglob(".*.tmp")), "no temp files left"
        for run_dir in (settings.outbox / "runs").iterdir():
            assert (run_dir / "summary.json").exists()
        ledger = Ledger.open(settings.ledger_path, target=settings.target)
        try:
            assert ledger.db.execute("SELECT count(*) FROM orders").fetchone()[0] == len(valid)
            statuses = dict(ledger.db.execute("SELECT name, status FROM files").fetchall())
            assert statuses == {old.name: "delivered", big.name: "failed"}
            assert ledger.pending_batches() == []
        finally:
            ledger.close()
