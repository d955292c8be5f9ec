"""`etl status`: the actions Connect asked for (order action events) still waiting for an answer.

Read from the ledger opened read-only, like the rest of `etl status`. ``None`` means unknown (no
ledger, or one from before action events), not "none waiting".
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from etl.core.printable import printable

LISTED = 100
WAITING = (
    "NOT EXISTS (SELECT 1 FROM action_answers WHERE action_answers.action_id = "
    "action_events.action_id)"
)


def awaiting_answers(ledger: Path | str | None, now: float) -> dict[str, Any] | None:
    """``{"count": N, "actions": [...oldest first, at most 100]}``, each with its age. The
    ledger is a file, or a database URL (the shared state)."""
    if isinstance(ledger, str):
        rows = _database_rows(ledger)
    elif ledger is None or not ledger.is_file():
        return None
    else:
        rows = _file_rows(ledger)
    if rows is None:
        return None
    count, found = rows
    names = ("action_id", "type", "channel_order_id", "event_time", "received_at", "pending_file")
    actions = []
    for row in found:
        entry = dict(zip(names, row, strict=True))
        entry["age_seconds"] = round(max(0.0, now - float(entry.pop("received_at"))), 1)
        actions.append(entry)
    return {"count": count, "actions": actions}


COUNT = f"SELECT count(*) FROM action_events WHERE {WAITING}"
LIST = (
    "SELECT action_id, type, channel_order_id, event_time, received_at, pending_file "
    f"FROM action_events WHERE {WAITING} ORDER BY received_at, action_id LIMIT {LISTED}"
)


def _file_rows(ledger: Path) -> tuple[int, list[tuple[Any, ...]]] | None:
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        return int(db.execute(COUNT).fetchone()[0]), db.execute(LIST).fetchall()
    except sqlite3.Error:
        return None  # a ledger from before action events
    finally:
        db.close()


def _database_rows(url: str) -> tuple[int, list[tuple[Any, ...]]] | None:
    import psycopg  # only for a state URL

    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as db:
            db.execute("SET default_transaction_read_only = on")
            count = db.execute(COUNT).fetchone()
            return int(count[0]) if count else 0, db.execute(LIST).fetchall()
    except psycopg.Error:
        return None  # unreachable, or no ledger there yet


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def format_awaiting(awaiting: dict[str, Any] | None) -> list[str]:
    """The lines a person reads."""
    if awaiting is None:
        return ["actions asked by Connect: none received (no [events] read into this ledger)"]
    lines = [f"actions asked by Connect, waiting for an answer: {awaiting['count']}"]
    for entry in awaiting["actions"]:
        lines.append(
            f"  {printable(entry['action_id'])}  {printable(entry['type'])}  order "
            f"{printable(entry['channel_order_id'])}  waiting {_age(entry['age_seconds'])}  "
            f"(in actions/{entry['pending_file']})"
        )
    shown = awaiting["count"] - len(awaiting["actions"])
    if shown > 0:
        lines.append(f"  ... and {shown} more")
    return lines
