"""`etl status`: runs, inbox, failed/ and the watcher's heartbeat, for people and for monitors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from etl.core.files import write_json
from etl.core.summary import new_run_id
from etl.monitor.status import collect_status, format_status

from .conftest import SAMPLES, RunCli


def status_json(run_cli: RunCli, inbox: Path, outbox: Path) -> dict[str, Any]:
    code, out, err = run_cli("status", "--json", "--inbox", inbox, "--outbox", outbox)
    assert (code, err) == (0, "")
    data: dict[str, Any] = json.loads(out)
    return data


def test_status_of_a_fresh_install_says_nothing_happened(tmp_path: Path, run_cli: RunCli) -> None:
    status = status_json(run_cli, tmp_path / "inbox", tmp_path / "outbox")
    assert status["runs"] == [] and status["latest_report"] is None
    assert (status["inbox_waiting_count"], status["failed_count"]) == (0, 0)
    assert status["watcher"] is None
    assert status["pending_actions"] is None  # no ledger yet: unknown, not "none"
    assert status["awaiting_answer"] is None  # likewise for the actions Connect asked for
    code, out, _ = run_cli("status", "--inbox", tmp_path / "inbox", "--outbox", tmp_path / "o")
    assert code == 0
    assert "recent runs: none yet" in out
    assert "actions: no ledger yet" in out


def finished_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                             capture_output=True, text=True, check=True)  # fmt: skip
    return int(process.stdout)


def test_status_after_runs_with_waiting_failed_files_and_a_watcher(
    tmp_path: Path, run_cli: RunCli
) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    for sample in ("orders-2026-11-22.csv", "orders-with-mistakes.csv"):
        shutil.copy(SAMPLES / sample, inbox / sample)
    code, _, _ = run_cli("run", "--sandbox", "--inbox", inbox, "--outbox", outbox, "--settle", "0")
    assert code == 1
    run_cli("check", SAMPLES / "orders-2026-11-22.csv", "--outbox", outbox)
    shutil.copy(SAMPLES / "orders-eu-erp.csv", inbox / "orders-eu-erp.csv")
    (inbox / ".processing").mkdir(exist_ok=True)
    (inbox / ".processing" / "orders-left.csv").write_text("x", encoding="utf-8")
    (inbox / "orders-next.csv.part").write_text("x", encoding="utf-8")  # still arriving: ignored
    dead = new_run_id(outbox)  # numbered after the others, as a run that was started is
    (outbox / "runs" / dead).mkdir()  # no summary.json: running or killed
    scanned = datetime.now(UTC) - timedelta(seconds=30)
    write_json(
        outbox / "watch.heartbeat.json",
        {
            "pid": os.getpid(),
            "started_at": "2026-11-22T10:00:00Z",
            "state": "watching",
            "last_scan_at": scanned.isoformat().replace("+00:00", "Z"),
            "files_queued": 1,
            "last_error": "",
        },
    )

    status = status_json(run_cli, inbox, outbox)
    unfinished, checked, ran = status["runs"]
    assert unfinished == {"run_id": dead, "finished": False, "exit_code": None}
    assert (checked["command"], checked["exit_code"], checked["outcomes"]) == (
        "check",
        0,
        {"VALID": 24},
    )
    assert (ran["command"], ran["exit_code"], ran["files"], ran["orders"]) == ("run", 1, 2, 44)
    assert ran["outcomes"] == {"ACCEPTED": 32, "INVALID": 12}
    assert ran["report"] == str(outbox / "runs" / ran["run_id"] / "report.html")
    assert status["latest_report"] == str(outbox / "latest.html")
    assert [f["name"] for f in status["inbox_waiting"]] == ["orders-eu-erp.csv"]
    assert [f["name"] for f in status["inbox_processing"]] == ["orders-left.csv"]
    (failed,) = status["failed"]
    assert failed["path"] == f"failed/{ran['run_id']}/orders-with-mistakes.csv"
    assert failed["reason"].startswith("12 of 20 orders were not accepted")
    watcher = status["watcher"]
    assert (watcher["pid_alive"], watcher["files_queued"], watcher["state"]) == (
        True,
        1,
        "watching",
    )
    assert 29 <= watcher["last_scan_age_seconds"] < 120

    text = format_status(collect_status(inbox, outbox))
    assert "inbox " + str(inbox) + ": 1 file(s) waiting, 1 claimed" in text
    assert f"  failed/{ran['run_id']}/orders-with-mistakes.csv: 12 of 20 orders" in text
    assert f"  {ran['run_id']}  run    exit 1  2 file(s)  32 accepted, 12 invalid  " in text
    assert f"  {dead}  running now, or interrupted (no summary.json)" in text
    assert f"watcher: pid {os.getpid()} (alive), state watching, last scan 30 s ago" in text


def test_a_dead_or_broken_watcher_is_said_so(tmp_path: Path) -> None:
    heartbeat = tmp_path / "watch.heartbeat.json"
    write_json(heartbeat, {"pid": finished_pid(), "last_scan_at": "", "last_error": "disk full"})
    watcher = collect_status(tmp_path / "inbox", tmp_path)["watcher"]
    assert (watcher["pid_alive"], watcher["last_scan_age_seconds"]) == (False, None)
    text = format_status(collect_status(tmp_path / "inbox", tmp_path))
    assert "(NOT RUNNING)" in text and "last scan never" in text and "last error: disk full" in text
    heartbeat.write_text("{not json", encoding="utf-8")
    assert (
        "unreadable heartbeat" in collect_status(tmp_path / "inbox", tmp_path)["watcher"]["error"]
    )
