"""Each seller's rate budget, proved from the server's side: the sandbox answers 429 past 30
requests per second per client (a sliding 1-second window) and logs when each request came.

Wall-clock tests (a few seconds each): the budget is a rate, so only real time can show it."""

from __future__ import annotations

import itertools
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from etl.deliver.client import WINDOW_GUARD_SECONDS, ConnectClient, Pacer
from etl.run.sandbox_process import started_sandbox
from etl.run.sync import Sync
from etl.sandbox import SandboxServer

from .conftest import SECRET, FakeTime, RunCli, base_line, settings_for, write_rows
from .test_tenants import ACME_SECRET, BOLT_SECRET, UPSERT, write_config

pytestmark = pytest.mark.usefixtures("secrets_set")


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", ACME_SECRET)
    monkeypatch.setenv("BOLT_SECRET", BOLT_SECRET)


@dataclass(frozen=True)
class SandboxProcess:
    """The sandbox in a process of its own, as in production: its clock reads when requests
    arrive without waiting for the senders' threads (one interpreter lock would skew it)."""

    url: str
    db_path: Path

    @property
    def api_url(self) -> str:
        return self.url + "/api"

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    def arrivals(self, client: str) -> list[tuple[float, int]]:
        """(seconds since the epoch, status) of each upsert ``client`` sent, by the sandbox."""
        db = sqlite3.connect(self.db_path)
        try:
            rows = db.execute(
                "SELECT time, status FROM requests WHERE path = ? AND client_id = ? ORDER BY seq",
                (UPSERT, client),
            ).fetchall()
        finally:
            db.close()
        return [(datetime.fromisoformat(at).timestamp(), status) for at, status in rows]


@pytest.fixture
def sellers(tmp_path: Path) -> Iterator[SandboxProcess]:
    db_path = tmp_path / "sandbox.sqlite3"
    options = (
        *("--client-id", "acme-client", "--client-secret", ACME_SECRET),
        *("--client", f"bolt-client:{BOLT_SECRET}", "--rate-limit", "30"),
    )
    with started_sandbox(db_path, options=options) as process:
        yield SandboxProcess(process.url, db_path)


def one_request_per_order(inbox: Path, prefix: str, count: int) -> None:
    """``count`` orders, each of its own store: a batch, so a request, each."""
    rows = [
        base_line(f"{prefix}-{n}", f"{prefix}-{n}-L1", origin__channel_store_id=f"S{n}")
        for n in range(count)
    ]
    write_rows(inbox / "orders-1.csv", rows)


def arrivals(server: SandboxServer, client: str) -> list[tuple[float, int]]:
    """(seconds since the epoch, status) of each upsert ``client`` sent, as the sandbox saw it."""
    return [
        (datetime.fromisoformat(entry["time"]).timestamp(), entry["status"])
        for entry in server.requests_log(path=UPSERT)
        if entry["client_id"] == client
    ]


def busiest_second(times: list[float]) -> int:
    """The most requests in any window of one second (t - 1, t]."""
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_two_sellers_sent_at_once_each_reach_their_budget_and_30_is_never_refused(
    tmp_path: Path, sellers: SandboxProcess, run_cli: RunCli
) -> None:
    config = write_config(
        tmp_path,
        sellers,  # type: ignore[arg-type]  # the URLs are all it reads
        acme="requests_per_second = 30",
        bolt="requests_per_second = 15",
    )
    one_request_per_order(tmp_path / "acme-inbox", "A", 90)
    one_request_per_order(tmp_path / "bolt-inbox", "B", 45)
    code, out, err = run_cli("run", "--config", config)
    assert code == 0, out + err
    acme, bolt = sellers.arrivals("acme-client"), sellers.arrivals("bolt-client")
    assert [status for _, status in acme] == [204] * 90  # never a 429 at 30/s
    assert [status for _, status in bolt] == [204] * 45
    acme_busiest = busiest_second([at for at, _ in acme])
    bolt_busiest = busiest_second([at for at, _ in bolt])
    rates = {
        name: (len(sent) - 1) / (sent[-1][0] - sent[0][0])
        for name, sent in (("acme", acme), ("bolt", bolt))
    }
    print(
        f"\nbusiest second: acme {acme_busiest} (budget 30), bolt {bolt_busiest} (budget 15); "
        f"sustained: acme {rates['acme']:.1f}/s, bolt {rates['bolt']:.1f}/s, at once"
    )
    # Each reaches its budget (a loaded machine may lose a few), never above it.
    assert 24 <= acme_busiest <= 30
    assert 12 <= bolt_busiest <= 15
    # At once, not one after the other: each began before the other ended.
    assert acme[0][0] < bolt[-1][0] and bolt[0][0] < acme[-1][0]


def test_a_client_sending_faster_than_30_a_second_waits_as_told_and_delivers(
    tmp_path: Path,
) -> None:
    with SandboxServer(
        db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET, rate_limit=30
    ) as server:
        settings = settings_for(server, tmp_path)  # requests_per_second 0: no pacing at all
        one_request_per_order(settings.inbox, "F", 45)
        clients: list[ConnectClient] = []

        def client() -> ConnectClient:
            clients.append(ConnectClient(settings))
            return clients[-1]

        run = Sync(settings, client)()
        assert run.exit_code == 0
        statuses = [status for _, status in arrivals(server, "sandbox-client")]
        assert 429 in statuses  # it went over, and was told so
        assert statuses.count(204) == 45 and len(server.stored_orders()) == 45
        # Retry-After said 1 second: the client waited at least that before trying again.
        assert max(clients[0].stats.waits) >= 1.0


def test_the_pacer_never_starts_more_than_its_rate_in_any_second() -> None:
    time = FakeTime()
    pacer = Pacer(20.0, time.clock, time.sleep)
    starts = []
    for _ in range(61):
        pacer.wait()
        starts.append(time.now)
    assert busiest_second(starts) == 20
    assert starts[20] - starts[0] == pytest.approx(1.0 + WINDOW_GUARD_SECONDS)


def test_the_pacer_keeps_its_rate_for_threads_that_wait_at_once() -> None:
    """Several sender threads share a pacer: a start given out to a thread still asleep counts
    in the window of the next one given out (the starts of one real second, by a real clock)."""
    pacer = Pacer(40.0, time.monotonic, time.sleep)
    starts: list[float] = []
    lock = threading.Lock()

    def sender() -> None:
        for _ in range(15):
            pacer.wait()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=sender) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 90
    assert busiest_second(sorted(starts)) <= 40


def test_answers_slower_than_the_pace_do_not_slow_the_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Every answer takes 0.3 s, six times the 50 ms that 20 requests/s leave each: the next
    requests leave meanwhile (seen in the sandbox's log: arrivals closer than one answer
    takes, which one request at a time cannot make), and the record keeps the file's order."""
    settings = settings_for(sandbox, tmp_path, requests_per_second=20.0)
    one_request_per_order(settings.inbox, "S", 12)
    sandbox.set_faults({"faults": [{"delay": 0.3}], "path_prefix": UPSERT})
    run = Sync(settings, lambda: ConnectClient(settings))()
    assert run.exit_code == 0
    times = sorted(at for at, status in arrivals(sandbox, "sandbox-client") if status == 204)
    assert len(times) == 12 and len(sandbox.stored_orders()) == 12
    assert min(later - earlier for earlier, later in itertools.pairwise(times)) < 0.3
    (report,) = settings.outbox.glob("runs/*/orders-1.csv.items.csv")
    ids = [line.split(",")[4] for line in report.read_text().splitlines()[1:]]
    assert ids == [f"S-{n}" for n in range(12)]
