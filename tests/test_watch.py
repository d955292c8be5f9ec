"""`etl watch` with real files in temporary folders and the sandbox on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.generate import generate_rows, write_csv
from etl.deliver.client import ConnectClient
from etl.run.watch import HEARTBEAT_NAME, Watcher, WatcherRefused
from etl.sandbox import SandboxServer
from etl.settings.config import Settings
from etl.state.ledger import Ledger

from .conftest import SECRET, RunCli, connect_env, settings_for

ORDERS_PATH = "/api/channel-platform/v1/orders"


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        extra = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not extra:
            return
        time.sleep(0.05)
    raise AssertionError(f"threads left behind: {extra}")


class Running:
    """A watcher running in a background thread for the length of a test."""

    def __init__(self, settings: Settings, polling: bool) -> None:
        self.watcher = Watcher(
            settings,
            lambda: ConnectClient(settings, sleep=lambda s: None),
            polling=polling,
            rescan_seconds=2.0,
        )
        self.thread = threading.Thread(target=self.watcher.run, name="watcher-under-test")

    def __enter__(self) -> Watcher:
        self.thread.start()
        # Ready when it watches: its observer started and its first scan done (a real signal,
        # not a fixed sleep that a slow machine outlasts).
        wait_for(lambda: self.watcher.heartbeat.state == "watching" or not self.thread.is_alive())
        wait_for(lambda: bool(self.watcher.heartbeat.last_scan_at) or not self.thread.is_alive())
        return self.watcher

    def __exit__(self, *exc: object) -> None:
        self.watcher.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


def wait_for(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def archived(settings: Settings) -> list[Path]:
    return sorted((settings.outbox / "archive").glob("*/*"))


def stored_ids(sandbox: SandboxServer) -> set[str]:
    return {o["channel_order_id"] for o in sandbox.stored_orders()}


def export(path: Path, orders: int, prefix: str) -> set[str]:
    rows = list(generate_rows(orders, seed=len(prefix) + orders, max_lines=2, id_prefix=prefix))
    write_csv(path, iter(rows))
    return {row["channel_order_id"] for row in rows}


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_a_file_present_before_start_is_taken(
    sandbox: SandboxServer, tmp_path: Path, polling: bool
) -> None:
    settings = settings_for(sandbox, tmp_path, settle_seconds=0.5)
    expected = export(settings.inbox / "orders-early.csv", 30, "E-")
    with Running(settings, polling):
        wait_for(lambda: len(archived(settings)) == 1)
    assert stored_ids(sandbox) == expected
    heartbeat = json.loads((settings.outbox / HEARTBEAT_NAME).read_text())
    assert heartbeat["state"] == "stopped" and heartbeat["runs"] == 1
    assert heartbeat["pid"] == os.getpid() and heartbeat["last_scan_at"]


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_a_file_written_slowly_is_taken_once_and_complete(
    sandbox: SandboxServer, tmp_path: Path, polling: bool
) -> None:
    settings = settings_for(sandbox, tmp_path, settle_seconds=1.0)
    source = tmp_path / "source.csv"
    expected = export(source, 60, "S-")
    data = source.read_bytes()
    target = settings.inbox / "orders-slow.csv"
    with Running(settings, polling):
        # Written over 1.6 s, longer than the settle period (in 4 parts: 8 took 3.2 s, and
        # the length past the settle period is what the test needs, not the number of parts).
        part = len(data) // 4 + 1
        with target.open("wb") as handle:
            for start in range(0, len(data), part):
                handle.write(data[start : start + part])
                handle.flush()
                time.sleep(0.4)  # each pause shorter than the settle period
        wait_for(lambda: len(archived(settings)) == 1)
        time.sleep(1.5)  # longer than the settle period: a second, partial take would be seen
    (done,) = archived(settings)
    assert done.read_bytes() == data
    assert stored_ids(sandbox) == expected
    ledger = Ledger.open(settings.ledger_path)
    assert ledger.db.execute("SELECT count(*) FROM files").fetchone()[0] == 1
    ledger.close()


@pytest.mark.parametrize("polling", [False, True], ids=["native", "polling"])
def test_a_file_renamed_into_the_inbox_is_taken(
    sandbox: SandboxServer, tmp_path: Path, polling: bool
) -> None:
    settings = settings_for(sandbox, tmp_path, settle_seconds=0.5)
    with Running(settings, polling):
        partial = settings.inbox / "orders-moved.csv.part"  # never taken under this name
        expected = export(partial, 20, "M-")
        time.sleep(1.0)  # twice the settle period: it would be taken by now, were it taken
        assert stored_ids(sandbox) == set()
        os.rename(partial, settings.inbox / "orders-moved.csv")
        outside = tmp_path / "orders-from-elsewhere.csv"
        expected |= export(outside, 10, "X-")
        os.rename(outside, settings.inbox / outside.name)
        wait_for(lambda: len(archived(settings)) == 2)
    assert stored_ids(sandbox) == expected


def test_fifty_files_dropped_at_once_are_each_processed_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, settle_seconds=0.5)
    staging = tmp_path / "staging"
    staging.mkdir()
    expected: set[str] = set()
    for number in range(50):
        expected |= export(staging / f"orders-{number:02d}.csv", 3, f"F{number:02d}-")
    with Running(settings, polling=False):
        for path in sorted(staging.iterdir()):
            os.rename(path, settings.inbox / path.name)
        wait_for(lambda: len(archived(settings)) == 50, seconds=60)
    assert sorted(p.name for p in archived(settings)) == [f"orders-{n:02d}.csv" for n in range(50)]
    assert stored_ids(sandbox) == expected
    sent = sandbox.requests_log(path=ORDERS_PATH)
    orders_sent = sum(r["orders"] for r in sent)
    assert orders_sent == len(expected)  # none sent twice


def test_a_second_watcher_on_the_same_inbox_is_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    with Running(settings, polling=False):
        second = Watcher(settings, lambda: ConnectClient(settings))
        with pytest.raises(WatcherRefused, match=r"already taken by etl watch \(pid \d+\)"):
            second.run()


def test_a_dead_observer_thread_is_noticed_and_restarted(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, settle_seconds=0.3)
    with Running(settings, polling=False) as watcher:
        wait_for(lambda: watcher._observer is not None)
        observer = watcher._observer
        assert observer is not None
        observer.stop()
        observer.join(timeout=5)
        wait_for(lambda: watcher.heartbeat.observer_restarts == 1)
        expected = export(settings.inbox / "orders-after.csv", 5, "A-")
        wait_for(lambda: len(archived(settings)) == 1)
    assert stored_ids(sandbox) == expected
    assert "observer stopped" in watcher.heartbeat.last_error


def test_sigterm_finishes_the_batch_in_flight_and_exits_0(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    expected = export(settings.inbox / "orders-big.csv", 600, "T-")
    sandbox.set_faults({"faults": [{"delay": 0.6}], "path_prefix": "/api/"})
    env = connect_env(sandbox, process=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl",
            "watch",
            "--inbox",
            str(settings.inbox),
            "--outbox",
            str(settings.outbox),
            "--settle",
            "0.2",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: len(sandbox.requests_log(path=ORDERS_PATH)) >= 1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "SIGTERM: finishing the batch in flight" in out
    sent = sandbox.requests_log(path=ORDERS_PATH)
    assert all(r["status"] == 204 for r in sent)
    # Every batch that was sent completed; the rest waits in the inbox for the next start.
    assert stored_ids(sandbox) and stored_ids(sandbox) < expected
    assert (settings.inbox / "orders-big.csv").exists()
    (run_dir,) = (settings.outbox / "runs").iterdir()
    items = (run_dir / "orders-big.csv.items.csv").read_text()
    assert items.count(",ACCEPTED,") == len(stored_ids(sandbox))
    assert items.count(",FAILED,") == 600 - len(stored_ids(sandbox))
    sandbox.clear_faults()
    with Running(settings, polling=False):
        wait_for(lambda: len(archived(settings)) == 1)
    assert stored_ids(sandbox) == expected


def test_etl_run_is_refused_while_a_watcher_holds_the_inbox(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(sandbox, tmp_path)
    monkeypatch.setenv("CONNECT_CLIENT_ID", "sandbox-client")
    monkeypatch.setenv("CONNECT_CLIENT_SECRET", SECRET)
    with Running(settings, polling=False):
        code, _, err = run_cli("run", "--inbox", settings.inbox, "--outbox", settings.outbox)
    assert code == 2
    assert "already taken by etl watch" in err


def test_the_heartbeat_keeps_beating_during_a_long_file(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Issue 14 item 11: written only between files, the heartbeat of a watcher busy with one
    long file went stale, and a health check would have killed a healthy process."""
    settings = settings_for(sandbox, tmp_path)
    write_csv(settings.inbox / "orders-slow.csv", generate_rows(300, seed=9, max_lines=1))
    sandbox.set_faults({"faults": [{"delay": 0.6}], "path_prefix": ORDERS_PATH})
    watcher = Watcher(
        settings,
        lambda: ConnectClient(settings, sleep=lambda s: None),
        rescan_seconds=0.5,
        beat_seconds=0.2,
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    beats: set[str] = set()
    try:
        deadline = time.monotonic() + 30
        while not archived(settings) and time.monotonic() < deadline:
            try:
                heartbeat = json.loads((settings.outbox / HEARTBEAT_NAME).read_text())
            except (FileNotFoundError, ValueError):
                heartbeat = {}
            if heartbeat.get("state") == "processing":
                beats.add(heartbeat["last_beat_at"])
            time.sleep(0.05)
    finally:
        watcher.stop()
        thread.join(timeout=30)
    assert archived(settings), "the file was delivered"
    assert len(beats) >= 4, f"beats while the file was processed: {sorted(beats)}"


def test_etl_watch_sandbox_delivers_to_its_own_sandbox_and_stops_it(tmp_path: Path) -> None:
    """Issue 14 item 10: `etl watch --sandbox`, like `etl run --sandbox`."""
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECT_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl",
            "watch",
            "--sandbox",
            "--inbox",
            str(inbox),
            "--outbox",
            str(outbox),
            "--settle",
            "0.2",
            "--rescan",
            "0.5",
        ],
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        write_csv(inbox / "orders-a.csv", generate_rows(5, seed=3, max_lines=1))
        wait_for(lambda: list((outbox / "archive").glob("*/orders-a.csv")), seconds=30)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "sandbox: serving http://127.0.0.1:" in out
    assert re.search(r"sandbox: received \d+ request\(s\) during this watcher; holds 5 order", out)
    pid = int(out.split("(process ", 1)[1].split(";", 1)[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
