"""Many `etl run` / `etl watch` processes on one inbox and one PostgreSQL state URL, against the
sandbox on loopback: every order delivered once, a SIGKILLed worker's file resumed by another,
one send budget per credential across workers, one leader for the minute jobs.

Uses ``ETL_TEST_POSTGRES`` (see tests/test_postgres_ledger.py); skips without a server, except
under ``CI=true``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from bench.generate import generate_rows, write_csv
from etl.deliver.sending import SENDERS
from etl.sandbox import SandboxServer
from etl.settings.config import Settings
from etl.state.leader import Leadership
from etl.state.ledger import Ledger

from .conftest import SECRET, base_line, connect_env, reported_actions, settings_for, write_rows

ORDERS_PATH = "/api/channel-platform/v1/orders"
ACTIONS_PATH = "/api/v2/orders/actions"


def wait_for(condition: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def export(path: Path, orders: int, prefix: str) -> set[str]:
    rows = list(generate_rows(orders, seed=orders, max_lines=2, id_prefix=prefix))
    write_csv(path, iter(rows))
    return {row["channel_order_id"] for row in rows}


def stored_ids(sandbox: SandboxServer) -> set[str]:
    return {o["channel_order_id"] for o in sandbox.stored_orders()}


def orders_sent(sandbox: SandboxServer) -> int:
    """Orders in every upsert request the sandbox received (a resent batch counts again)."""
    return sum(r["orders"] or 0 for r in sandbox.requests_log(path=ORDERS_PATH))


def config_file(tmp_path: Path, **values: object) -> Path:
    """etl.toml with [state] and [connect] numbers (no secret in it)."""
    path = tmp_path / "etl.toml"
    lines = ["[state]", f"lease_seconds = {values.get('lease_seconds', 30)}", "[connect]"]
    lines.append(f"requests_per_second = {values.get('requests_per_second', 20)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def worker(
    command: str,
    settings: Settings,
    state_url: str,
    config: Path,
    env: dict[str, str],
    *extra: str,
) -> subprocess.Popen[str]:
    argv = [
        sys.executable,
        "-m",
        "etl.cli.main",
        command,
        "--inbox",
        str(settings.inbox),
        "--outbox",
        str(settings.outbox),
        "--state",
        state_url,
        "--config",
        str(config),
        "--settle",
        "0.2" if command == "watch" else "0",
        *extra,
    ]
    return subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Workers a test starts; any still running at the end is killed (by its own pid)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out, err


def reported_files(outbox: Path) -> list[str]:
    """The input files named by an items.csv, over every run (one per report)."""
    return sorted(p.name[: -len(".items.csv")] for p in outbox.glob("runs/*/*.items.csv"))


def busiest_second(times: list[str]) -> int:
    """The most requests the sandbox logged in any 1-second window [t, t + 1)."""
    moments = sorted(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in times)
    most, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= 1.0:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_two_runs_on_one_inbox_deliver_every_order_once(
    sandbox: SandboxServer,
    tmp_path: Path,
    postgres_url: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    settings = settings_for(sandbox, tmp_path)
    expected: set[str] = set()
    names = []
    for n in range(16):
        names.append(f"orders-{n:02d}.csv")
        expected |= export(settings.inbox / names[-1], 120, f"F{n:02d}-")
    config = config_file(tmp_path, requests_per_second=30)
    env = connect_env(sandbox, process=True)
    processes.extend(worker("run", settings, postgres_url, config, env) for _ in range(2))
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    assert stored_ids(sandbox) == expected
    assert orders_sent(sandbox) == len(expected)  # no order sent twice
    assert reported_files(settings.outbox) == names  # each file reported once
    archived = sorted(p.name for p in settings.outbox.glob("archive/*/*"))
    assert archived == names
    assert not list(settings.inbox.glob("*.csv")) and not list(settings.inbox.glob(".processing/*"))
    with psycopg.connect(postgres_url) as db:
        assert db.execute("SELECT count(*) FROM work").fetchone() == (0,)  # every claim let go


def test_two_watchers_on_one_inbox_deliver_every_order_once(
    sandbox: SandboxServer,
    tmp_path: Path,
    postgres_url: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    settings = settings_for(sandbox, tmp_path)
    config = config_file(tmp_path, requests_per_second=30)
    env = connect_env(sandbox, process=True)
    processes.extend(worker("watch", settings, postgres_url, config, env) for _ in range(2))
    expected: set[str] = set()
    names = []
    for n in range(12):
        names.append(f"orders-{n:02d}.csv")
        staging = tmp_path / names[-1]
        expected |= export(staging, 80, f"W{n:02d}-")
        os.replace(staging, settings.inbox / names[-1])  # arrives whole, as a drop should
        time.sleep(0.05)
    wait_for(lambda: len(list(settings.outbox.glob("archive/*/*"))) == len(names), 60)
    for process in processes:
        stop(process)
    assert stored_ids(sandbox) == expected
    assert orders_sent(sandbox) == len(expected)
    assert reported_files(settings.outbox) == names


def test_a_killed_workers_file_is_resumed_by_another_after_its_lease(
    sandbox: SandboxServer,
    tmp_path: Path,
    postgres_url: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    settings = settings_for(sandbox, tmp_path)
    expected = export(settings.inbox / "orders-big.csv", 600, "K-")
    config = config_file(tmp_path, lease_seconds=3, requests_per_second=30)
    env = connect_env(sandbox, process=True)
    sandbox.set_faults({"faults": [{"delay": 0.4}], "path_prefix": "/api/"})
    first = worker("watch", settings, postgres_url, config, env)
    processes.append(first)
    wait_for(lambda: len(sandbox.requests_log(path=ORDERS_PATH)) >= 2)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    killed_at = time.monotonic()
    assert (settings.inbox / ".processing" / "orders-big.csv").exists()  # mid-file
    sandbox.clear_faults()
    second = worker("watch", settings, postgres_url, config, env)
    processes.append(second)
    wait_for(lambda: len(list(settings.outbox.glob("archive/*/*"))) == 1, 60)
    resumed_after = time.monotonic() - killed_at
    _, err = stop(second)
    assert "took over orders-big.csv" in err
    assert resumed_after >= 2.0  # not before the dead worker's lease ran out (3 s)
    assert stored_ids(sandbox) == expected
    # The batches on the wire when the worker died (one per sender at most) are sent again (an
    # upsert: harmless); nothing acknowledged before is sent twice.
    assert len(expected) <= orders_sent(sandbox) <= len(expected) + 100 * SENDERS
    (report,) = [p for p in settings.outbox.glob("runs/*/orders-big.csv.items.csv")]
    items = report.read_text()
    assert items.count(",ACCEPTED,") + items.count(",UNCHANGED,") == 600
    assert ",UNCHANGED," in items  # what the dead worker delivered is not sent again


def test_two_workers_with_one_credential_stay_within_its_budget_together(
    sandbox: SandboxServer,
    tmp_path: Path,
    postgres_url: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    # The sandbox logs when each request arrived; small files keep the workers' own work
    # short, so that the budget, not the reading, sets their pace. 8 files each: 4 s at the
    # shared budget, 2 s of both at 4/s (8 in a second) if each kept a budget of its own.
    budget = 4
    config = config_file(tmp_path, requests_per_second=budget)
    env = connect_env(sandbox, process=True)
    for name in ("a", "b"):
        folder = tmp_path / name
        folder.mkdir()
        settings = settings_for(sandbox, folder)
        for n in range(8):
            rows = [base_line(f"{name}{n:02d}-{k}", f"L{name}{n}-{k}") for k in range(3)]
            write_rows(settings.inbox / f"orders-{name}{n:02d}.csv", rows)
        processes.append(worker("run", settings, postgres_url, config, env))
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    sent = sandbox.requests_log(path=ORDERS_PATH)
    assert len(sent) == 16  # a request per file
    times = [r["time"] for r in sent]
    assert busiest_second(times) <= budget, gaps(times)


def test_a_new_leader_takes_over_when_the_leader_is_gone(postgres_url: str) -> None:
    first, second = Leadership(postgres_url, "default"), Leadership(postgres_url, "default")
    other_tenant = Leadership(postgres_url, "seller-2")
    try:
        assert first.leading() and not second.leading()
        assert other_tenant.leading()  # one leader per tenant
        # The leader's connection dies (a killed process, a lost machine): its lock goes with it.
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            pid = first.db.info.backend_pid
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(second.leading, 10)
        assert not first.leading()
        assert second.leading()  # and it stays the leader
    finally:
        for leadership in (first, second, other_tenant):
            leadership.close()


def test_a_killed_leaders_flush_is_done_by_another_watcher(
    sandbox: SandboxServer,
    tmp_path: Path,
    postgres_url: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    settings = settings_for(sandbox, tmp_path)
    config = config_file(tmp_path)
    env = connect_env(sandbox, process=True)
    Ledger.open_url(postgres_url).close()  # the tables, before two workers race to make them
    leader = worker("watch", settings, postgres_url, config, env)
    processes.append(leader)
    wait_for(lambda: leader_pid(postgres_url) is not None)
    follower = worker("watch", settings, postgres_url, config, env)
    processes.append(follower)
    time.sleep(1.0)
    assert leader.poll() is None and follower.poll() is None
    leader.send_signal(signal.SIGKILL)
    leader.communicate(timeout=30)
    killed_at = time.monotonic()
    wait_for(lambda: leader_pid(postgres_url) is not None, 20)
    took_over = time.monotonic() - killed_at
    write_rows(settings.inbox / "order-actions.csv", reported_actions(3))
    wait_for(lambda: sandbox.requests_log(path=ACTIONS_PATH), 30)
    flushed = time.monotonic() - killed_at
    _, err = stop(follower)
    assert "this worker now runs the periodic jobs" in err
    assert took_over < 5 and flushed < 30
    (flush,) = sandbox.requests_log(path=ACTIONS_PATH)
    assert flush["status"] == 200


def leader_pid(url: str) -> int | None:
    """The backend holding a leader lock in this test's schema, if any."""
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = (hashtext('etl-leader:default:' || current_schema()))::oid "
        ).fetchone()
    return None if row is None else int(row[0])


def gaps(times: list[str]) -> list[int]:
    """Milliseconds between consecutive logged requests (said when a window is over budget)."""
    moments = sorted(datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in times)
    return [round((b - a) * 1000) for a, b in itertools.pairwise(moments)]


def test_two_watchers_serving_a_tenant_stay_within_its_budget_together(
    sandbox: SandboxServer,
    tmp_path: Path,
    postgres_url: str,
    processes: list[subprocess.Popen[str]],
) -> None:
    # `etl watch` with [tenants]: each worker serves the tenant's inbox; the two share its
    # budget through the database, as `etl run` workers do.
    budget = 4
    config = tmp_path / "etl.toml"
    config.write_text(
        f'[paths]\noutbox = "outbox"\n[state]\nstate_url = "{postgres_url}"\n'
        f'[connect]\napi_url = "{sandbox.api_url}"\ntoken_url = "{sandbox.token_url}"\n'
        '[tenants.acme]\ninbox = "inbox"\nclient_id = "sandbox-client"\n'
        f'client_secret_env = "ACME_SECRET"\nrequests_per_second = {budget}\n'
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # 12 files: 3 s at the shared budget; 1.5 s at 8 a second if each watcher kept its own.
    for n in range(12):
        rows = [base_line(f"W{n:02d}-{k}", f"LW{n}-{k}") for k in range(3)]
        write_rows(inbox / f"orders-{n:02d}.csv", rows)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECT_")}
    env.update(PYTHONPATH=str(Path(__file__).resolve().parent.parent), ACME_SECRET=SECRET)
    argv = [sys.executable, "-m", "etl.cli.main", "watch", "--config", str(config)]
    for _ in range(2):
        processes.append(
            subprocess.Popen(
                [*argv, "--settle", "0.2", "--rescan", "1"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    archive = tmp_path / "outbox" / "tenants" / "acme" / "archive"
    wait_for(lambda: len(list(archive.glob("*/*.csv"))) == 12, 120)
    for process in processes:
        stop(process)
    sent = sandbox.requests_log(path=ORDERS_PATH)
    assert len(sent) == 12  # a request per file
    times = [r["time"] for r in sent]
    assert busiest_second(times) <= budget, gaps(times)
