"""`etl health`: 0 for a watcher that beats and reaches the API, 1 and the reason otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from etl.health import health

from .conftest import RunCli


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
