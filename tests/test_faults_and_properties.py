"""Fault storms and properties: every order arrives through a seeded storm of 429/5xx/timeouts/
drops, no retry comes before its Retry-After, and for any subset of bad orders exactly the good
ones are accepted and each bad one is reported once."""

from __future__ import annotations

import csv
import random
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import generate_rows, write_csv
from etl.core.models import MappedItem, Origin, Outcome
from etl.deliver.batch import Batcher
from etl.deliver.client import ConnectClient
from etl.deliver.submit import deliver
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.state.ledger import Ledger

from .conftest import REPO, SECRET, FakeTime, settings_for
from .test_client import order

ORDERS_PATH = "/api/channel-platform/v1/orders"
STORM = [
    {"status": 429, "retry_after": "1"},
    {"status": 429},
    {"status": 500},
    {"status": 503},
    {"delay": 0.7},  # past the client's timeout
    {"drop": True},
]


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_a_fault_storm_delays_but_loses_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, timeout=0.5, max_attempts=10)
    write_csv(settings.inbox / "orders-storm.csv", generate_rows(1500, seed=21, max_lines=2))
    sandbox.set_faults({"faults": STORM, "rate": 0.35, "seed": 5, "path_prefix": "/api/"})
    waited = FakeTime()  # the backoffs and Retry-After waits, recorded instead of slept
    client = ConnectClient(settings, rng=random.Random(3), sleep=waited.sleep)
    run = Sync(settings, lambda: client)()
    assert run.exit_code == 0
    assert len({o["channel_order_id"] for o in sandbox.stored_orders()}) == 1500
    # A delayed request is logged when its delay ends, after the client gave up on it.
    deadline = time.monotonic() + 10
    while True:
        log = sandbox.requests_log(path=ORDERS_PATH)
        faults = [entry for entry in log if entry["fault"]]
        if len(faults) >= run.files[0].retries or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # Seed 5 draws every kind of fault at least once (14 in all): check that it still does.
    assert {tuple(sorted(f["fault"].items())) for f in faults} == {
        tuple(sorted(fault.items())) for fault in STORM
    }
    assert run.files[0].retries == len(faults)
    # Each 429 with Retry-After: 1 was followed by a wait of at least that second.
    told = [e for e in log if e["status"] == 429 and (e["fault"] or {}).get("retry_after") == "1"]
    assert told and len([s for s in waited.sleeps if s >= 1.0]) >= len(told)
    assert client.stats.retries == len(faults)
    with (settings.outbox / "runs" / run.run_id / "orders-storm.csv.items.csv").open() as handle:
        outcomes = [row["outcome"] for row in csv.DictReader(handle)]
    assert outcomes == ["ACCEPTED"] * 1500


def test_an_api_that_stays_down_marks_nothing_done(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, max_attempts=3)
    write_csv(settings.inbox / "orders-down.csv", generate_rows(50, seed=2, max_lines=1))
    sandbox.set_faults({"faults": [{"status": 503}, {"drop": True}], "path_prefix": "/api/"})
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 3
    assert (settings.inbox / "orders-down.csv").exists()
    ledger = Ledger.open(settings.ledger_path)
    try:
        assert ledger.db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
        assert ledger.db.execute("SELECT count(*) FROM files").fetchone()[0] == 0
        assert ledger.db.execute("SELECT status FROM batches").fetchall() == [("failed",)]
    finally:
        ledger.close()


@pytest.fixture(scope="module")
def shared_sandbox(tmp_path_factory: pytest.TempPathFactory) -> SandboxServer:
    folder = tmp_path_factory.mktemp("sandbox")
    server = SandboxServer(db_path=folder / "s.sqlite3", client_secret=SECRET)
    server.start()
    yield server  # type: ignore[misc]
    server.close()


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    count=st.integers(min_value=1, max_value=230),
    bad_share=st.floats(min_value=0, max_value=1),
    omit_field=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_exactly_the_valid_orders_are_accepted_and_each_bad_one_reported_once(
    shared_sandbox: SandboxServer,
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    bad_share: float,
    omit_field: bool,
    seed: int,
) -> None:
    sandbox = shared_sandbox
    sandbox.reset()
    sandbox.configure(omit_field=omit_field)
    rng = random.Random(seed)
    bad = {n for n in range(count) if rng.random() < bad_share}
    origins = [Origin("CH", "S"), Origin("CH", "T")]
    items = [
        MappedItem(
            f"O-{n}",
            origins[n % 2],
            order(n, "SHIPPING" if n in bad else "SHIPPED"),
            (n + 2,),
            "orders.csv",
        )
        for n in range(count)
    ]
    folder = tmp_path_factory.mktemp("property")
    time = FakeTime()
    results = []
    with ConnectClient(settings_for(sandbox, folder), clock=time.clock, sleep=time.sleep) as api:
        batcher = Batcher("p", 100)
        for batch in [*batcher.add(items), *batcher.flush()]:
            assert len(batch.items) <= 100 and len({i.origin for i in batch.items}) == 1
            results.extend(
                deliver(
                    api.upsert_orders, batch.batch_id, batch.origin, list(batch.items), "orders"
                ).results
            )
    reported = [r.item.item_id for r in results]
    assert sorted(reported) == sorted(i.item_id for i in items), "each order reported once"
    rejected = {r.item.item_id for r in results if r.outcome is Outcome.REJECTED}
    assert rejected == {f"O-{n}" for n in bad}
    stored = {o["channel_order_id"] for o in sandbox.stored_orders()}
    assert stored == {f"O-{n}" for n in range(count) if n not in bad}


def test_tls_verification_stays_on_and_is_never_switched_off(tmp_path: Path) -> None:
    from etl.settings.config import Secret, Settings

    client = ConnectClient(Settings(client_id="a", client_secret=Secret("b")))
    assert client.session.verify is True
    client.close()
    sources = "\n".join(p.read_text() for p in (REPO / "etl").rglob("*.py"))
    assert "verify=False" not in sources and "verify = False" not in sources


def test_the_sandbox_binds_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    with SandboxServer(db_path=tmp_path / "s.sqlite3") as server:
        assert server.url.startswith("http://127.0.0.1:")


def test_outbox_files_holding_personal_data_are_private(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    from .conftest import SAMPLES

    for sample in ("orders-2026-11-22.csv", "orders-with-mistakes.csv"):
        (settings.inbox / sample).write_bytes((SAMPLES / sample).read_bytes())
    Sync(settings, lambda: ConnectClient(settings))()
    kept = [p for p in settings.outbox.rglob("*") if p.is_file() and ".sandbox" not in p.parts]
    assert any(p.name == "orders-with-mistakes.csv" for p in kept)
    for path in kept:
        if path.suffix in (".csv", ".parquet", ".txt", ".jsonl", ".html"):
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
