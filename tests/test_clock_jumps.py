"""Issue 13: a wall clock set back (or jumped ahead, then corrected) reorders nothing and holds
nothing back: runs are ordered by the outbox's run number, and a flush or a poll planned by a
clock since set back is not waited for."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from etl.core.models import MappedItem
from etl.core.summary import new_run_id
from etl.deliver.client import ConnectClient
from etl.operations.actions import (
    ActionContext,
    flush_action_log,
    poll_actions,
    queue_order_actions,
)
from etl.report.html import find_run, newest_report
from etl.sandbox import SandboxServer
from etl.state.ledger import Ledger

from .conftest import SECRET, FakeTime, settings_for


def _run_folder(outbox: Path, moment: datetime) -> Path:
    folder = outbox / "runs" / new_run_id(outbox, now=moment)
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"run_id": folder.name, "files": []}))
    (folder / "report.html").write_text("<html></html>")
    return folder


def test_a_run_made_after_the_clock_was_set_back_is_still_the_latest(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    future = _run_folder(outbox, datetime(2027, 6, 1, tzinfo=UTC))  # the clock a year ahead
    corrected = _run_folder(outbox, datetime(2026, 12, 2, tzinfo=UTC))  # then set right
    assert find_run(outbox, "latest") == corrected
    assert newest_report(outbox) == corrected
    assert future.name > corrected.name, "the ids' times disagree; the run numbers decide"


def _reported(entity: str, row: int) -> MappedItem:
    body = {
        "entity_id": entity,
        "entity_type": "ORDER",
        "executed_at": "2026-11-22T10:00:00Z",
        "status": "SUCCESS",
        "type": "SYNCHRONIZE_ORDER",
    }
    return MappedItem(entity, None, body, (row,), "order-actions.csv")


def test_flushes_and_polls_planned_by_a_clock_set_back_since_are_not_waited_for(
    tmp_path: Path,
) -> None:
    # Our wall clock is set back; Connect's is not, nor the client's monotonic one.
    ours, theirs, monotonic = FakeTime(), FakeTime(), FakeTime()
    with SandboxServer(
        db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET, clock=theirs.clock
    ) as server:
        settings = settings_for(server, tmp_path)
        client = ConnectClient(settings, clock=monotonic.clock, sleep=monotonic.sleep)
        ledger = Ledger.open(tmp_path / "ledger.sqlite3", target=settings.target)
        try:
            work = ActionContext(lambda: client, ledger, settings.outbox, "f" * 64, ours.clock)
            ours.now = 1_000_000.0  # a year ahead, say
            queue_order_actions([_reported(f"O-{n}", n + 2) for n in range(120)], work)
            assert ledger.unsent_count() == 20 and len(ledger.tracked()) == 100
            ours.now = 1_000_000.0 - 86_400 * 30  # set right: a month back
            theirs.now += 120  # Connect saw two minutes go by, and so did the client
            monotonic.now += 120
            flushed = flush_action_log(work)
            assert flushed.sent == 20, "not held back until the clock catches up"
            poll_actions(work)
            polled = [r for r in server.requests_log() if r["method"] == "GET"]
            assert len(polled) == 100, "the polls planned by the clock ahead are due now"
        finally:
            ledger.close()
