"""`etl run --sandbox` runs the API double as its own process, and counts in SQL what it got."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from etl.core.errors import SandboxFailed
from etl.run.sandbox_process import SandboxCounts, started_sandbox
from etl.sandbox.config import DEFAULT_CLIENT_SECRET
from etl.state.inbox import InboxLock

from .conftest import REPO, base_line, write_rows

TIMEOUT = 60  # seconds for a whole `etl run`: a hang fails the test, not the suite
SERVING = re.compile(r"^sandbox: serving (http://127\.0\.0\.1:\d+/api) \(process (\d+);", re.M)
CLOSING = re.compile(
    r"^sandbox: received (\d+) request\(s\) during this run; holds (\d+) order\(s\) in (.+)$",
    re.M,
)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def sandboxes_on(db_path: Path) -> list[int]:
    """Pids of the sandbox processes serving this database file (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"etl.sandbox" in argv and os.fsencode(db_path) in argv and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def run_command(inbox: Path, outbox: Path) -> tuple[list[str], dict[str, str]]:
    """`etl run --sandbox` as a subprocess: argv, and an environment without CONNECT_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECT_")}
    env.update(PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "etl", "run", "--sandbox", "--inbox", str(inbox)]
    return [*command, "--outbox", str(outbox), "--settle", "0"], env


def etl_run_sandbox(inbox: Path, outbox: Path) -> subprocess.CompletedProcess[str]:
    """`etl run --sandbox` to its end, its output captured."""
    command, env = run_command(inbox, outbox)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT)


def test_started_sandbox_is_a_child_process_stopped_on_leaving(tmp_path: Path) -> None:
    db_path = tmp_path / "sandbox" / "sandbox.sqlite3"
    with started_sandbox(db_path) as sandbox:
        assert sandbox.pid != os.getpid() and alive(sandbox.pid)
        assert sandbox.api_url.startswith("http://127.0.0.1:") and sandbox.api_url.endswith("/api")
        assert sandbox.token_url == sandbox.api_url.removesuffix("/api") + "/oauth/token"
        assert DEFAULT_CLIENT_SECRET not in repr(sandbox)
        token = requests.post(
            sandbox.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": sandbox.client_id,
                "client_secret": sandbox.client_secret.reveal(),
            },
            timeout=10,
        )
        assert token.status_code == 200
        assert sandbox.counts() == SandboxCounts(requests=1, orders=0, last_seq=1)
        assert sandbox.counts(since=1) == SandboxCounts(requests=0, orders=0, last_seq=1)
        sandbox.create_actions(action_ids=["A-2", "A-1"])
        assert [a["id"] for a in sandbox.actions()] == ["A-2", "A-1"]
        pid = sandbox.pid
    assert not alive(pid)
    assert db_path.is_file()


def test_the_child_is_stopped_when_the_block_raises(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), started_sandbox(tmp_path / "s.sqlite3") as s:
        pid = s.pid
        raise RuntimeError("boom")
    assert not alive(pid)


def test_a_child_that_exits_early_is_reported_with_its_last_lines(tmp_path: Path) -> None:
    # A folder where the SQLite file should be: the sandbox cannot open its store and exits.
    (tmp_path / "taken").mkdir()
    with pytest.raises(SandboxFailed) as raised, started_sandbox(tmp_path / "taken"):
        pass
    message = str(raised.value)
    assert "the sandbox exited (code 1) before it was ready" in message
    assert "unable to open database file" in message  # the child's own last line
    assert not sandboxes_on(tmp_path / "taken")


def test_a_child_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    db_path = tmp_path / "s.sqlite3"
    not_ready = pytest.raises(SandboxFailed, match=r"not ready within 0\.01 s")
    with not_ready, started_sandbox(db_path, ready_timeout=0.01):
        pass
    assert not sandboxes_on(db_path)


def test_run_counts_only_this_runs_requests_and_stops_the_child(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    write_rows(
        inbox / "orders-1.csv",
        [base_line("A1", "LA1"), base_line("A2", "LA2"), base_line("A3", "LA3")],
    )
    first = etl_run_sandbox(inbox, outbox)
    assert first.returncode == 0, first.stderr
    write_rows(inbox / "orders-2.csv", [base_line("B1", "LB1"), base_line("B2", "LB2")])
    second = etl_run_sandbox(inbox, outbox)
    assert second.returncode == 0, second.stderr

    db_path = outbox / ".sandbox" / "sandbox.sqlite3"
    with sqlite3.connect(db_path) as db:
        (total,) = db.execute("SELECT count(*) FROM requests").fetchone()
        (orders,) = db.execute("SELECT count(*) FROM orders").fetchone()
    received, held = [], []
    for run in (first, second):
        serving, closing = SERVING.search(run.stdout), CLOSING.search(run.stdout)
        assert serving is not None and closing is not None, run.stdout
        assert not alive(int(serving.group(2)))
        received.append(int(closing.group(1)))
        held.append(int(closing.group(2)))
        assert closing.group(3) == str(db_path)
        assert DEFAULT_CLIENT_SECRET not in run.stdout + run.stderr
    assert received == [2, 2]  # a token and one upsertOrders each; not the file's total of 4
    assert sum(received) == total
    assert held == [3, orders] == [3, 5]
    # Only the run's own lines: the child's banner is captured, not spilled.
    assert "Ctrl-C" not in first.stdout + first.stderr


def test_the_child_is_stopped_when_the_run_fails(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    lock = InboxLock(inbox, purpose="this test")
    assert lock.acquire() is None
    write_rows(inbox / "orders.csv", [base_line("A1", "LA1")])
    try:
        run = etl_run_sandbox(inbox, outbox)
    finally:
        lock.release()
    assert run.returncode == 2
    assert "already taken by this test" in run.stderr
    serving = SERVING.search(run.stdout)
    assert serving is not None, run.stdout
    assert not alive(int(serving.group(2)))
    assert not sandboxes_on(outbox / ".sandbox" / "sandbox.sqlite3")


def test_counts_over_http_match_the_request_log(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    write_rows(inbox / "orders.csv", [base_line("A1", "LA1"), base_line("A2", "LA2")])
    assert etl_run_sandbox(inbox, outbox).returncode == 0
    with started_sandbox(outbox / ".sandbox" / "sandbox.sqlite3") as sandbox:
        admin = sandbox.api_url.removesuffix("/api") + "/_sandbox"
        log = requests.get(admin + "/requests", timeout=10).json()["requests"]
        orders = requests.get(admin + "/orders", timeout=10).json()["orders"]
        counts = sandbox.counts()
        assert counts == SandboxCounts(requests=len(log), orders=len(orders), last_seq=len(log))
        assert sandbox.counts(since=1).requests == len(log) - 1


def test_the_child_stops_when_the_run_is_killed(tmp_path: Path) -> None:
    # No `finally` runs after a SIGKILL: the child notices its stdin close and stops itself.
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    command, env = run_command(inbox, outbox)
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as run:
        assert run.stdout is not None
        watchdog = threading.Timer(TIMEOUT, run.kill)  # bounds the readline below
        watchdog.start()
        try:
            serving = SERVING.search(run.stdout.readline())
        finally:
            watchdog.cancel()
        assert serving is not None
        pid = int(serving.group(2))
        assert alive(pid)
        run.kill()
        run.wait(timeout=TIMEOUT)
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)
