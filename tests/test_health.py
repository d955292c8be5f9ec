"""`etl health`: 0 for a watcher that beats and reaches the API, 1 and the reason otherwise."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from etl.deliver.client import ConnectClient
from etl.monitor.health import health
from etl.run.watch import Watcher
from etl.sandbox import SandboxServer

from .conftest import RunCli, base_line, settings_for, write_rows


def beat(outbox: Path, age_seconds: float = 1.0, **fields: Any) -> None:
    moment = datetime.now(UTC) - timedelta(seconds=age_seconds)
    heartbeat = {
        "pid": 12345,
        "state": "watching",
        "last_beat_at": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "last_error": "",
        **fields,
    }
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / "watch.heartbeat.json").write_text(json.dumps(heartbeat), encoding="utf-8")


def test_a_fresh_heartbeat_is_healthy(tmp_path: Path, run_cli: RunCli) -> None:
    beat(tmp_path / "outbox")
    code, out, err = run_cli("health", "--outbox", tmp_path / "outbox")
    assert (code, err) == (0, "")
    assert out.startswith("ok: watcher pid 12345 watching, last beat 1 s ago")


def test_a_stale_heartbeat_says_how_old(tmp_path: Path, run_cli: RunCli) -> None:
    beat(tmp_path / "outbox", age_seconds=125)
    code, out, err = run_cli("health", "--outbox", tmp_path / "outbox")
    assert code == 1
    assert err == ""
    assert out.startswith("unhealthy: stale heartbeat: last beat 125 s ago (more than 60 s)")


def test_max_age_is_a_flag(tmp_path: Path, run_cli: RunCli) -> None:
    beat(tmp_path / "outbox", age_seconds=125)
    code, out, _ = run_cli("health", "--outbox", tmp_path / "outbox", "--max-age", "300")
    assert code == 0, out


def test_a_stopped_watcher_is_unhealthy(tmp_path: Path, run_cli: RunCli) -> None:
    beat(tmp_path / "outbox", state="stopped")
    code, out, _ = run_cli("health", "--outbox", tmp_path / "outbox")
    assert code == 1
    assert out.startswith("unhealthy: the watcher stopped (pid 12345)")


def test_api_down_is_unhealthy_with_since_when(tmp_path: Path, run_cli: RunCli) -> None:
    beat(
        tmp_path / "outbox",
        last_error="API unavailable: token endpoint answered 503",
        api_down_since="2026-12-02T10:00:00Z",
    )
    code, out, _ = run_cli("health", "--outbox", tmp_path / "outbox")
    assert code == 1
    assert out.startswith(
        "unhealthy: API down since 2026-12-02T10:00:00Z: API unavailable: token endpoint "
        "answered 503"
    )


def test_an_api_error_from_before_the_last_good_run_is_history(tmp_path: Path) -> None:
    """last_error is kept for people to read; once a run got through, api_down_since is empty."""
    beat(tmp_path, last_error="API unavailable: refused", api_down_since="")
    assert health(tmp_path).ok


def test_no_heartbeat_is_unhealthy(tmp_path: Path, run_cli: RunCli) -> None:
    code, out, _ = run_cli("health", "--outbox", tmp_path / "outbox")
    assert code == 1
    assert out.startswith("unhealthy: no heartbeat in ")


def test_an_unreadable_heartbeat_is_unhealthy(tmp_path: Path) -> None:
    (tmp_path / "watch.heartbeat.json").write_text("{not json", encoding="utf-8")
    verdict = health(tmp_path)
    assert not verdict.ok and "unreadable heartbeat" in verdict.line


def test_the_watcher_records_the_api_down_and_clears_it_when_a_run_gets_through(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, max_attempts=2)
    skipped = [0.0]  # the watcher's clock jumps past its API-down pause when the test says so
    watcher = Watcher(
        settings,
        lambda: ConnectClient(settings, sleep=lambda s: None),
        rescan_seconds=0.5,
        clock=lambda: time.monotonic() + skipped[0],
    )
    thread = threading.Thread(target=watcher.run, name="watcher-under-test")
    sandbox.set_faults({"faults": [{"status": 503}]})
    thread.start()
    try:
        write_rows(settings.inbox / "orders.csv", [base_line("H1", "LH1")])
        wait_for(lambda: bool(watcher.heartbeat.api_down_since))
        wait_for(lambda: "API down since" in health(settings.outbox).line)
        verdict = health(settings.outbox)
        assert not verdict.ok
        assert verdict.line.startswith(
            f"unhealthy: API down since {watcher.heartbeat.api_down_since}: API unavailable: "
        )
        sandbox.clear_faults()
        skipped[0] += 100_000
        wait_for(lambda: health(settings.outbox).ok)
        assert watcher.heartbeat.api_down_since == ""
        assert {o["channel_order_id"] for o in sandbox.stored_orders()} == {"H1"}
    finally:
        watcher.stop()
        thread.join(timeout=30)
    assert health(settings.outbox).line == f"unhealthy: the watcher stopped (pid {os.getpid()})"


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
