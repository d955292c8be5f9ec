"""Prometheus metrics: `etl watch --metrics-port` serves them, `etl run --metrics-textfile`
writes them; both are read back with prometheus_client's own parser, against the sandbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from etl.sandbox import SandboxServer

from .conftest import RunCli, base_line, connect_env, settings_for, write_rows


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample by (name, labels), parsed the way Prometheus would."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def test_etl_run_writes_a_textfile_with_the_runs_counts(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, setting in connect_env(sandbox).items():
        monkeypatch.setenv(name, setting)
    settings = settings_for(sandbox, tmp_path)
    write_rows(settings.inbox / "orders-1.csv", [base_line("A1", "LA1"), base_line("A2", "LA2")])
    write_rows(settings.inbox / "orders-2.csv", [base_line("B1", "LB1", status="NOT-A-STATUS")])
    (settings.outbox / "failed" / "20260101T000000Z-000001").mkdir(parents=True)
    (settings.outbox / "failed" / "20260101T000000Z-000001" / "old.csv").write_text("x\n")
    # One 429 first: it is counted as a request and a retry, and the run still succeeds.
    sandbox.set_faults({"faults": [{"status": 429, "retry_after": "0"}], "next": 1})
    textfile = tmp_path / "node_exporter" / "etl.prom"
    textfile.parent.mkdir()

    code, out, err = run_cli(
        "run",
        "--inbox", settings.inbox,
        "--outbox", settings.outbox,
        "--settle", "0",
        "--metrics-textfile", textfile,
    )  # fmt: skip

    assert code == 1, out + err  # one invalid order
    found = samples(textfile.read_text(encoding="utf-8"))
    assert value(found, "etl_files_total", status="processed") == 2
    assert value(found, "etl_orders_total", outcome="ACCEPTED") == 2
    assert value(found, "etl_orders_total", outcome="INVALID") == 1
    assert value(found, "etl_api_requests_total", operation="upsertOrders", status="429") == 1
    assert value(found, "etl_api_requests_total", operation="upsertOrders", status="204") >= 1
    assert value(found, "etl_api_throttled_total") == 1
    assert value(found, "etl_api_retries_total") == 1
    assert value(found, "etl_runs_total", exit_code="1") == 1
    assert value(found, "etl_inbox_waiting_files") == 0
    assert value(found, "etl_failed_files") == 2  # the old one and orders-2.csv
    assert abs(value(found, "etl_last_success_timestamp_seconds") - time.time()) < 60
    # Low cardinality: no file name and no order id in any label.
    text = textfile.read_text(encoding="utf-8")
    assert "orders-1" not in text and "A1" not in text
    assert [p.name for p in textfile.parent.iterdir()] == ["etl.prom"]  # no temp file left


def _scrape(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def test_etl_watch_serves_metrics_and_healthz(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path)
    folders = ["--inbox", str(settings.inbox), "--outbox", str(settings.outbox)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl",
            "watch",
            "--metrics-port",
            "0",
            "--settle",
            "0",
            *folders,
        ],
        env=connect_env(sandbox, process=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = 0
        deadline = time.monotonic() + 60
        while not port and time.monotonic() < deadline:
            line = process.stdout.readline()
            found = re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line)
            if found:
                port = int(found.group(1))
            assert line or process.poll() is None, process.stderr and process.stderr.read()
        assert port
        status, text = _scrape(port, "/metrics")
        assert status == 200
        assert value(samples(text), "etl_files_total", status="processed") == 0
        write_rows(settings.inbox / "orders.csv", [base_line("W1", "LW1"), base_line("W2", "LW2")])
        while time.monotonic() < deadline:
            found_samples = samples(_scrape(port, "/metrics")[1])
            if value(found_samples, "etl_files_total", status="processed") == 1:
                break
            time.sleep(0.2)
        assert value(found_samples, "etl_orders_total", outcome="ACCEPTED") == 2
        assert (
            value(found_samples, "etl_api_requests_total", operation="upsertOrders", status="204")
            == 1
        )
        assert value(found_samples, "etl_inbox_waiting_files") == 0
        assert value(found_samples, "etl_last_success_timestamp_seconds") > 0
        status, text = _scrape(port, "/healthz")
        assert status == 200, text
        assert text.startswith("ok")
        assert _scrape(port, "/elsewhere")[0] == 404
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    heartbeat = json.loads((settings.outbox / "watch.heartbeat.json").read_text())
    assert heartbeat["state"] == "stopped" and heartbeat["pid"] != os.getpid()
