"""Claims on input files in the shared database: one holder per file, leases that renew, and
a take-over of an expired claim by exactly one worker. Also: how the PostgreSQL tests behave
without a server, and `etl status` on a state URL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from etl.core.summary import RunSummary
from etl.run.shared_state import ClientFactory
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Secret
from etl.state.claims import Claims
from etl.state.ledger import Ledger

from .conftest import RunCli, base_line, postgres_base_url, settings_for, write_rows

ORDERS_PATH = "/api/channel-platform/v1/orders"


@pytest.fixture
def claims_of(postgres_url: str) -> Iterator[type[Claims]]:
    Ledger.open_url(postgres_url).close()  # the tables
    made: list[Claims] = []

    class Made(Claims):
        def __init__(self, holder: str, lease: float = 3.0) -> None:
            super().__init__(postgres_url, "default", "host:/inbox", lease, holder)
            made.append(self)

    yield Made
    for claims in made:
        claims.close()


def expire(url: str, name: str) -> None:
    """As if the holder had not renewed for a whole lease."""
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("UPDATE work SET lease_until = lease_until - 3600 WHERE name = %s", (name,))


def test_a_file_has_one_holder_until_it_is_done(claims_of: type[Claims]) -> None:
    first, second = claims_of("w1"), claims_of("w2")
    assert first.claim("orders.csv")
    assert not second.claim("orders.csv")
    assert second.take_over() == []  # the lease holds
    first.done("orders.csv")
    assert second.claim("orders.csv")


def test_an_expired_claim_is_taken_over_by_exactly_one_worker(
    claims_of: type[Claims], postgres_url: str
) -> None:
    dead = claims_of("dead")
    for n in range(20):
        assert dead.claim(f"orders-{n:02d}.csv")
        expire(postgres_url, f"orders-{n:02d}.csv")
    workers = [claims_of(f"w{n}") for n in range(4)]
    taken: dict[str, list[str]] = {}
    start = threading.Barrier(len(workers))

    def take(claims: Claims) -> None:
        start.wait()
        taken[claims.holder] = claims.take_over()

    threads = [threading.Thread(target=take, args=(claims,)) for claims in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = sorted(name for names in taken.values() for name in names)
    assert every == [f"orders-{n:02d}.csv" for n in range(20)]  # each once, none forgotten
    # The dead worker, back, learns that its files are someone else's now.
    dead.renew()
    assert dead.lost("orders-00.csv")


def test_a_renewed_lease_is_never_taken_over(claims_of: type[Claims]) -> None:
    holder, other = claims_of("w1", lease=3.0), claims_of("w2", lease=3.0)
    assert holder.claim("orders.csv")
    deadline = time.monotonic() + 4.5  # longer than the lease: it must be renewed meanwhile
    while time.monotonic() < deadline:
        assert other.take_over() == []
        time.sleep(0.5)
    assert not holder.lost("orders.csv")


def test_files_left_before_the_shared_state_are_taken_over(claims_of: type[Claims]) -> None:
    worker = claims_of("w1")
    worker.register_orphans(["left.csv"])
    assert worker.take_over() == ["left.csv"]
    assert not claims_of("w2").claim("left.csv")


def test_without_a_server_the_tests_skip_saying_why_but_fail_under_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ETL_TEST_POSTGRES", "postgresql://etl:pw@127.0.0.1:9/test")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL at postgresql://etl:\\*\\*\\*@"):
        postgres_base_url()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI=true"):
        postgres_base_url()


def test_etl_status_reads_the_actions_from_the_state_url(
    run_cli: RunCli, tmp_path: Path, postgres_url: str
) -> None:
    ledger = Ledger.open_url(postgres_url, target="T")
    try:
        ledger.queue_actions([("sha", 1, "O1", "{}")], 1.0)
        ledger.track(["A1"], "track-actions.csv", 1.0)
    finally:
        ledger.close()
    (tmp_path / "inbox").mkdir()
    code, out, err = run_cli(
        "status",
        "--json",
        "--inbox",
        tmp_path / "inbox",
        "--outbox",
        tmp_path / "outbox",
        "--state",
        postgres_url,
    )
    assert code == 0, err
    actions = json.loads(out)["pending_actions"]
    assert actions["queued_to_report"] == 1
    assert [a["action_id"] for a in actions["pending"]] == ["A1"]


def test_a_worker_whose_file_was_taken_over_stops_sending_and_leaves_it_to_the_new_holder(
    sandbox: SandboxServer, tmp_path: Path, postgres_url: str
) -> None:
    """A worker that hung past its lease (its file taken over meanwhile) must not go on: no
    more batches, no report of its own, no move; the new holder finishes the file."""
    settings = settings_for(sandbox, tmp_path, state_url=Secret(postgres_url), lease_seconds=3.0)
    rows = [base_line(f"{n:04d}", f"L{n}") for n in range(1000)]
    write_rows(settings.inbox / "orders-big.csv", rows)
    sandbox.set_faults({"faults": [{"delay": 0.4}], "path_prefix": "/api/channel-platform"})
    clients = ClientFactory(settings)
    sync = Sync(settings, clients)
    done: list[RunSummary] = []
    runner = threading.Thread(target=lambda: done.append(sync()))
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not sandbox.requests_log(path=ORDERS_PATH) and time.monotonic() < deadline:
            time.sleep(0.05)
        with psycopg.connect(postgres_url, autocommit=True) as db:  # another worker took it
            db.execute("UPDATE work SET holder = 'another:1:abc'")
    finally:
        runner.join(timeout=60)
        clients.close()
    (run,) = done
    (file,) = run.files
    assert file.unfinished and "taken over by another worker" in (file.reason or "")
    assert len(sandbox.requests_log(path=ORDERS_PATH)) < 10  # it stopped sending
    assert (settings.inbox / ".processing" / "orders-big.csv").exists()  # left for the holder
    assert not list(settings.outbox.glob("archive/*/*"))
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT holder FROM work").fetchall() == [("another:1:abc",)]
