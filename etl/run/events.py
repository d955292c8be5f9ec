"""`etl events`: order action events from the queue -> ledger -> pending file -> acknowledged.

The order is what makes it safe. Each batch of messages is (1) read and checked, (2) kept in
the ledger once per event id, each event naming the pending file it goes to, (3) written to
that file (fsync, rename, folder synced), (4) marked written, and only then (5) deleted from
the queue. Killed after (2), the next start writes the file from the ledger; after (3), it
finds the file whole; after (4), the queue delivers the messages again and the ledger knows
them: a row is never lost, and never written twice.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from etl.core import failpoints
from etl.core.errors import UsageError
from etl.operations.action_events import PENDING_COLUMNS, Unreadable, parse_event
from etl.operations.queues import ActionQueue
from etl.report.pending import PENDING_FOLDER, pending_name, write_pending, write_unreadable
from etl.settings.config import Settings
from etl.state.action_events import ActionEvents, KeptEvent
from etl.state.ledger import Ledger

DRAINING_WAIT_SECONDS = 1  # after the first batch: a drained queue ends the command soon
LOCK_NAME = "action-events.lock"


@dataclass
class Consumed:
    """What one pass over the queue did."""

    received: int = 0
    new: int = 0  # actions written to a pending file
    duplicates: int = 0  # events (or actions) kept or answered before: acknowledged, no row
    unreadable: int = 0  # messages that hold no event: kept beside the pending files
    not_acknowledged: int = 0  # the queue will deliver these again (harmless)
    recovered: int = 0  # rows a killed pass kept but had not written
    files: list[Path] = field(default_factory=list)
    unreadable_files: list[Path] = field(default_factory=list)


def consume_events(
    settings: Settings,
    queue: ActionQueue,
    *,
    wait_seconds: int,
    now: Callable[[], float] = time.time,
) -> Consumed:
    """Receive until the queue is empty; every new action lands in a pending file first."""
    consumed = Consumed()
    lock = _exclusive(settings.outbox)
    try:
        ledger = Ledger.open(settings.ledger_path, settings.ledger_timeout, target=settings.target)
        try:
            _consume(ledger, settings.outbox, queue, wait_seconds, now, consumed)
        finally:
            ledger.close()
    finally:
        os.close(lock)
    return consumed


def _consume(
    ledger: Ledger,
    outbox: Path,
    queue: ActionQueue,
    wait_seconds: int,
    now: Callable[[], float],
    consumed: Consumed,
) -> None:
    events = ActionEvents(ledger, queue.name)
    _recover(events, outbox, consumed, now)
    wait = wait_seconds
    while True:
        messages = queue.receive(wait)
        if not messages:
            return
        wait = min(wait_seconds, DRAINING_WAIT_SECONDS)
        consumed.received += len(messages)
        at = now()
        name = pending_name(at)
        parsed: list[KeptEvent] = []
        unreadable: list[dict[str, str]] = []
        for message in messages:
            event = parse_event(message.body)
            if isinstance(event, Unreadable):
                unreadable.append(
                    {"message_id": message.message_id, "reason": event.reason, "body": message.body}
                )
            else:
                parsed.append(event)
        if unreadable:
            consumed.unreadable_files.append(write_unreadable(outbox, name, unreadable))
            consumed.unreadable += len(unreadable)
        new = events.keep(parsed, name, at)
        consumed.duplicates += len(parsed) - len(new)
        failpoints.reach("action-events-kept")
        if new:
            path = write_pending(outbox, name, PENDING_COLUMNS, [e.row for e in new])
            failpoints.reach("action-events-written")
            events.written(name, now())
            consumed.files.append(path)
            consumed.new += len(new)
        failpoints.reach("action-events-acknowledge")
        consumed.not_acknowledged += queue.acknowledge(messages)


def _recover(
    events: ActionEvents, outbox: Path, consumed: Consumed, now: Callable[[], float]
) -> None:
    """Finish what a killed pass left: rows kept whose file is missing are written; a file
    that exists was renamed into place whole, so its rows are only marked written."""
    for name, rows in events.unwritten().items():
        path = outbox / PENDING_FOLDER / name
        if not path.exists():
            write_pending(outbox, name, PENDING_COLUMNS, rows)
            consumed.recovered += len(rows)
            consumed.files.append(path)
        events.written(name, now())


def _exclusive(outbox: Path) -> int:
    """One reader of the queue per outbox (an `etl events` and a watcher, say): another one
    finishing this one's interrupted file while this one writes it could hand the ERP the same
    rows twice. The kernel releases the lock when the process dies."""
    folder = outbox / ".state"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise UsageError(
            f"another process is reading the order action events into {outbox} (an etl "
            "events, or etl watch with [events]); this one leaves it to that one"
        ) from None
    return fd
