"""Order action events in the ledger: each recorded once, its pending file named before written.

A queue delivers at least once, so the same event (or a second event for the same action) may
come again; only the first is kept. Each kept event names the pending file its row goes to
*before* that file is written, so a process killed anywhere leaves either the file whole (the
rows are marked written at the next start) or no file (it is written then, from the ledger).
Answers (action-status files) are kept by action id, whether an event named the action or not,
and whatever target they were sent to: reading a queue needs no Connect credential.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from etl.state.ledger import Ledger


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """What the ledger keeps of one event: its ids and the pending file's row for it."""

    event_id: str
    action_id: str
    type: str
    channel_order_id: str
    event_time: str
    row: dict[str, str]


@dataclass(frozen=True, slots=True)
class Answer:
    """How an action was answered: SUCCESS or FAILED (sent), ALREADY_FINAL or NOT_FOUND."""

    answer: str
    answered_at: float
    answered_by: str


class ActionEvents:
    """The ``action_events`` table; ``queue`` names where new events come from."""

    def __init__(self, ledger: Ledger, queue: str = "") -> None:
        self.ledger = ledger
        self.db = ledger.db
        self.queue = queue

    def keep(self, events: Iterable[KeptEvent], pending_file: str, at: float) -> list[KeptEvent]:
        """Record the events never seen (by event id, nor by action id) nor answered, all bound for
        ``pending_file``, in one transaction; the new ones, in the order given."""
        new: list[KeptEvent] = []
        seen: set[str] = set()
        with self.ledger.transaction() as db:
            for event in events:
                if event.event_id in seen or event.action_id in seen:
                    continue
                seen.update((event.event_id, event.action_id))
                # Known, or already answered (the ERP learnt of it otherwise): no new row,
                # which could have the ERP carry it out twice.
                known = db.execute(
                    "SELECT 1 FROM action_events WHERE event_id = ? OR action_id = ? UNION ALL "
                    "SELECT 1 FROM action_answers WHERE action_id = ?",
                    (event.event_id, event.action_id, event.action_id),
                ).fetchone()
                if known is not None:
                    continue
                db.execute(
                    "INSERT INTO action_events (queue, event_id, action_id, type, "
                    "channel_order_id, event_time, received_at, pending_row, pending_file) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        self.queue,
                        event.event_id,
                        event.action_id,
                        event.type,
                        event.channel_order_id,
                        event.event_time,
                        at,
                        orjson.dumps(event.row).decode(),
                        pending_file,
                    ),
                )
                new.append(event)
        return new

    def unwritten(self) -> dict[str, list[dict[str, str]]]:
        """Rows recorded but not yet known to be on disk, by the pending file they go to."""
        found: dict[str, list[dict[str, str]]] = {}
        rows = self.db.execute(
            "SELECT pending_file, pending_row FROM action_events WHERE written_at IS NULL "
            "ORDER BY received_at, event_id"
        )
        for pending_file, row in rows.fetchall():
            found.setdefault(str(pending_file), []).append(orjson.loads(row))
        return found

    def written(self, pending_file: str, at: float) -> None:
        """The pending file is on disk, whole and synced."""
        with self.ledger.transaction() as db:
            db.execute(
                "UPDATE action_events SET written_at = ? WHERE pending_file = ? "
                "AND written_at IS NULL",
                (at, pending_file),
            )

    def any_received(self) -> bool:
        """Whether an event was ever received (so events are in use here)."""
        row = self.db.execute("SELECT 1 FROM action_events LIMIT 1").fetchone()
        return row is not None

    def received(self, action_ids: Iterable[str]) -> set[str]:
        """Which of these actions an event named."""
        return {
            action_id
            for action_id in set(action_ids)
            if self.db.execute(
                "SELECT 1 FROM action_events WHERE action_id = ?", (action_id,)
            ).fetchone()
        }

    def answers(self, action_ids: Iterable[str]) -> dict[str, Answer]:
        """The answers sent so far for these actions (unanswered ones are left out)."""
        found: dict[str, Answer] = {}
        for action_id in set(action_ids):
            row = self.db.execute(
                "SELECT answer, answered_at, answered_by FROM action_answers WHERE action_id = ?",
                (action_id,),
            ).fetchone()
            if row is not None:
                found[action_id] = Answer(str(row[0]), float(row[1]), str(row[2]))
        return found

    def answered(self, answers: Iterable[tuple[str, str]], by: str, at: float) -> None:
        """Close the actions answered: (action id, answer). The first answer stays."""
        with self.ledger.transaction() as db:
            for action_id, answer in answers:
                known = db.execute(
                    "SELECT 1 FROM action_answers WHERE action_id = ?", (action_id,)
                ).fetchone()
                if known is None:
                    db.execute(
                        "INSERT INTO action_answers (action_id, answer, answered_at, "
                        "answered_by) VALUES (?, ?, ?, ?)",
                        (action_id, answer, at, by),
                    )
