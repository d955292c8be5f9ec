"""Issue 18, done when: a watcher with alerts and metrics on, the API down for longer than the
threshold, then back: one alert by mail and by webhook, the recovery alert, metrics that tell the
story, and `etl health` turning non-zero, then zero."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from etl.deliver.client import ConnectClient
from etl.monitor.health import health
from etl.monitor.metrics import Metrics
from etl.monitor.metrics_server import MetricsServer
from etl.run.watch import Watcher
from etl.sandbox import SandboxServer
from etl.settings.config import Secret

from .conftest import SAMPLES, RunCli, connect_env, settings_for
from .test_alerts import MAIL_PASSWORD, Mailbox, hook, readable, smtp, wait_for

__all__ = ["hook", "smtp"]  # the fixtures, used here by name


def _scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _healthz(server: MetricsServer) -> int:
    try:
        with urllib.request.urlopen(f"{server.url}/healthz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_an_outage_is_alerted_measured_and_seen_by_the_health_check(
    sandbox: SandboxServer,
    tmp_path: Path,
    smtp: tuple[Mailbox, int],
    hook: tuple[list[dict[str, Any]], int],
    run_cli: RunCli,
) -> None:
    mailbox, mail_port = smtp
    received, hook_port = hook
    mail = (
        f"mailto://ops:{MAIL_PASSWORD}@127.0.0.1:{mail_port}"
        "?from=etl@example.com&to=ops@example.com"
    )
    settings = settings_for(
        sandbox,
        tmp_path,
        alert_urls=(Secret(mail), Secret(f"json://127.0.0.1:{hook_port}/etl")),
        alert_api_down_minutes=0.005,  # 0.3 s: down for a few runs, not for the first one
    )
    metrics = Metrics(settings.inbox, settings.outbox)
    watcher = Watcher(
        settings,
        lambda: ConnectClient(settings, sleep=lambda s: None, meter=metrics),
        rescan_seconds=0.2,
        api_down_pause=0.05,  # doubled after each run the API is down: 0.2 made it 8 s
    )
    watcher.run_listeners.append(metrics.record_run)
    server = MetricsServer(metrics, lambda: health(settings.outbox), "127.0.0.1", 0)
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-2026-11-22.csv")
    thread = threading.Thread(target=watcher.run, name="watcher-under-test")
    thread.start()
    try:
        # Down for longer than the threshold: one alert by each way, however many runs fail.
        wait_for(lambda: len(received) == 1 and len(mailbox.messages) == 1)
        runs = watcher.heartbeat.runs
        wait_for(lambda: watcher.heartbeat.runs >= runs + 2)
        assert len(received) == 1 and len(mailbox.messages) == 1
        assert "unreachable" in received[0]["title"]
        assert "unreachable" in readable(mailbox.messages[0])
        code, out, _ = run_cli("health", "--outbox", settings.outbox)
        assert code == 1 and "API down since" in out
        assert _healthz(server) == 503
        down = _scrape(server)
        assert down[("etl_files_total", (("status", "unfinished"),))] >= 1
        assert down[("etl_api_requests_total", (("operation", "upsertOrders"), ("status", "503")))]
        # Back: the recovery alert, the file delivered, healthy again.
        sandbox.clear_faults()
        wait_for(lambda: len(received) == 2 and len(mailbox.messages) == 2)
        assert "back" in received[1]["title"]
        wait_for(lambda: len(sandbox.stored_orders()) == 24)
        wait_for(lambda: run_cli("health", "--outbox", settings.outbox)[0] == 0)
        assert _healthz(server) == 200
        up = _scrape(server)
        assert up[("etl_orders_total", (("outcome", "ACCEPTED"),))] == 24
        assert up[("etl_api_requests_total", (("operation", "upsertOrders"), ("status", "204")))]
        assert up[("etl_last_success_timestamp_seconds", ())] > 0
    finally:
        watcher.stop()
        thread.join(timeout=30)
        server.close()
    assert not thread.is_alive()
    code, out, _ = run_cli("health", "--outbox", settings.outbox)
    assert code == 1 and "stopped" in out


def test_a_stale_heartbeat_is_alerted_once_by_the_health_check_and_once_when_well(
    tmp_path: Path, hook: tuple[list[dict[str, Any]], int], run_cli: RunCli
) -> None:
    """A watcher killed or hung cannot say so itself: `etl health`, run by cron or a supervisor,
    alerts once when the heartbeat goes stale and once when it is fresh again."""
    received, port = hook
    outbox = tmp_path / "outbox"
    config = tmp_path / "etl.toml"
    config.write_text(f'[alerts]\nurls = ["json://127.0.0.1:{port}/etl"]\n')
    config.chmod(0o600)
    beat = outbox / "watch.heartbeat.json"
    outbox.mkdir()

    def heartbeat(age_seconds: float) -> None:
        moment = datetime.now(UTC) - timedelta(seconds=age_seconds)
        beat.write_text(
            json.dumps(
                {
                    "pid": 4242,
                    "state": "watching",
                    "last_beat_at": moment.isoformat().replace("+00:00", "Z"),
                    "last_error": "",
                }
            )
        )

    check = ("health", "--config", config, "--outbox", outbox)
    heartbeat(600)
    assert run_cli(*check)[0] == 1
    assert run_cli(*check)[0] == 1  # still stale: no second alert
    wait_for(lambda: len(received) == 1)
    assert "not healthy" in received[0]["title"] and "600 s ago" in received[0]["message"]
    heartbeat(0)
    assert run_cli(*check)[0] == 0
    assert run_cli(*check)[0] == 0
    wait_for(lambda: len(received) == 2)
    assert "healthy again" in received[1]["title"]
    time.sleep(0.3)
    assert len(received) == 2


def test_etl_run_under_cron_alerts_an_outage_that_outlasts_the_threshold_over_runs(
    sandbox: SandboxServer,
    tmp_path: Path,
    hook: tuple[list[dict[str, Any]], int],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each `etl run` is a process of its own: the outage's start is kept in the outbox, so the
    third run of a long outage says it once, and the first run that gets through says it is over."""
    received, port = hook
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CONNECT_ALERT_URLS", f"json://127.0.0.1:{port}/etl")
    config = tmp_path / "etl.toml"
    config.write_text("[alerts]\napi_down_minutes = 0.005\n[connect]\nmax_attempts = 1\n")
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", inbox / "orders-2026-11-22.csv")
    command = ("run", "--config", config, "--inbox", inbox, "--outbox", outbox, "--settle", "0")
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    assert run_cli(*command)[0] == 3  # down, not for long yet: nothing said
    time.sleep(0.5)
    assert run_cli(*command)[0] == 3  # down past the threshold: said once
    assert run_cli(*command)[0] == 3
    wait_for(lambda: len(received) == 1)
    assert "unreachable" in received[0]["title"]
    sandbox.clear_faults()
    assert run_cli(*command)[0] == 0
    wait_for(lambda: len(received) == 2)
    assert "back" in received[1]["title"]
    time.sleep(0.3)
    assert len(received) == 2
