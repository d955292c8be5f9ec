"""`etl health` and ``/healthz``: one verdict on the watcher from its heartbeat file alone.

Healthy means the watcher beats (it writes ``watch.heartbeat.json`` every tick, and every few
seconds during a run) and its last run was not stopped by the API (down, credentials refused).
Bad data is not ill health: invalid orders are in the reports and the metrics, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from etl.monitor.status import watcher_status

DEFAULT_MAX_AGE_SECONDS = 60.0  # 3 x the watcher's slowest beat (5 s during a run) and slack
EXIT_UNHEALTHY = 1


@dataclass(frozen=True)
class Health:
    """The verdict and the one line that says why."""

    ok: bool
    line: str

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else EXIT_UNHEALTHY


def health(
    outbox: Path, max_age: float = DEFAULT_MAX_AGE_SECONDS, now: datetime | None = None
) -> Health:
    """The watcher's health, read from ``<outbox>/watch.heartbeat.json``."""
    moment = now or datetime.now(UTC)
    beat = watcher_status(outbox, moment)
    if beat is None:
        return Health(False, f"unhealthy: no heartbeat in {outbox} (no watcher has run here)")
    if "error" in beat and "pid" not in beat:
        return Health(False, f"unhealthy: {beat['error']}")
    pid, state = beat.get("pid"), str(beat.get("state", ""))
    if state == "stopped":
        return Health(False, f"unhealthy: the watcher stopped (pid {pid})")
    last = _parse(str(beat.get("last_beat_at", "")))
    if last is None:
        return Health(False, f"unhealthy: the heartbeat has no last_beat_at (pid {pid})")
    age = (moment - last).total_seconds()
    if age > max_age:
        return Health(
            False,
            f"unhealthy: stale heartbeat: last beat {age:.0f} s ago (more than {max_age:.0f} s); "
            f"watcher pid {pid}, state {state}",
        )
    if _api_down(beat):
        since = beat.get("api_down_since") or "an unknown time"
        return Health(False, f"unhealthy: API down since {since}: {beat.get('last_error', '')}")
    return Health(True, f"ok: watcher pid {pid} {state}, last beat {max(age, 0):.0f} s ago")


def _api_down(beat: dict[str, object]) -> bool:
    if "api_down_since" in beat:
        return bool(beat["api_down_since"])  # cleared by the first run that gets through
    # A heartbeat from a watcher older than api_down_since: only its last error says it.
    return str(beat.get("last_error", "")).startswith("API unavailable")


def _parse(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
