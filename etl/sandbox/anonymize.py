"""updateAnonymizeAfterDate: all-or-nothing, no date in the past, kept per channel and order."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from etl.core.formats import FORMATS

from .config import SandboxConfig
from .store import Table
from .validation import Problem, SchemaValidator, invalid_input
from .wire import NOT_JSON, Handled, Outcome, Request, Response, error_response, iso_z, utc_now

ANONYMIZE_AFTER_PATH = "/api/channel-platform/v1/orders/anonymize-after"
MAX_ORDERS = 100

TABLE = Table(
    "anonymizations",
    """
CREATE TABLE IF NOT EXISTS anonymizations (
    channel_id TEXT NOT NULL,
    channel_order_id TEXT NOT NULL,
    anonymize_after TEXT NOT NULL,             -- as sent
    sub_channel_code TEXT,
    times_updated INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,                  -- when the sandbox last stored it (UTC)
    PRIMARY KEY (channel_id, channel_order_id)
);
""",
)

UPSERT = """
INSERT INTO anonymizations (channel_id, channel_order_id, anonymize_after, sub_channel_code,
                            updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (channel_id, channel_order_id) DO UPDATE SET
    anonymize_after = excluded.anonymize_after,
    sub_channel_code = excluded.sub_channel_code,
    times_updated = anonymizations.times_updated + 1,
    updated_at = excluded.updated_at
"""
LISTED = (
    "channel_id",
    "channel_order_id",
    "sub_channel_code",
    "anonymize_after",
    "times_updated",
    "updated_at",
)


class Anonymizations:
    """The operation and its admin listing; state in the ``anonymizations`` table."""

    def __init__(self, config: Callable[[], SandboxConfig]) -> None:
        self._config = config
        self._validator = SchemaValidator(
            "anonymize-after-request.schema.json", items="orders", max_items=MAX_ORDERS
        )

    def update(self, request: Request, params: dict[str, str]) -> Outcome:
        """``PUT .../v1/orders/anonymize-after``: 204, or 400 for the whole request."""
        config = self._config()
        document = request.document
        if document is NOT_JSON:
            message = "The request body is not valid JSON"
            return Handled(error_response(400, "INVALID_INPUT", message))
        problems = self._validator.problems(document)
        orders = document.get("orders") if isinstance(document, dict) else None
        if isinstance(orders, list) and len(orders) <= MAX_ORDERS:
            problems = sorted({*problems, *in_the_past(orders, config.anonymize_tolerance)})
        if problems:
            consequence = "no anonymize_after date was updated"
            return Handled(invalid_input(problems, config.omit_field, consequence))
        rows = [
            (
                item["channel_id"],
                item["channel_order_id"],
                item["anonymize_after"],
                item.get("sub_channel_code"),
            )
            for item in document["orders"]
        ]

        def store(db: sqlite3.Connection) -> Handled:
            now = iso_z(utc_now())
            db.executemany(UPSERT, [(*row, now) for row in rows])
            return Handled(Response(status=204))

        return store

    def listing(self, db: sqlite3.Connection) -> list[dict[str, Any]]:
        """Every stored date, in the order first received."""
        rows = db.execute(f"SELECT {', '.join(LISTED)} FROM anonymizations ORDER BY rowid")
        return [dict(zip(LISTED, row, strict=True)) for row in rows.fetchall()]


def in_the_past(orders: list[Any], tolerance: float) -> list[Problem]:
    """A problem per well-formed ``anonymize_after`` more than ``tolerance`` s before now."""
    now = utc_now()
    problems = []
    for i, item in enumerate(orders):
        value = item.get("anonymize_after") if isinstance(item, dict) else None
        if not isinstance(value, str) or not FORMATS["date-time"](value):
            continue  # the schema reports it
        try:
            moment = datetime.fromisoformat(value.upper())
        except ValueError:
            continue
        # Aware minus aware never overflows, even for year 1 with an offset.
        if (now - moment).total_seconds() > tolerance:
            message = f"must not be in the past (tolerance {tolerance:g} s)"
            problems.append(Problem.at(["orders", i, "anonymize_after"], message))
    return problems
