"""Actions from PENDING to final: command actions (updateActionStatus), reported ones (v2 log).

Command actions stand for the ids Connect hands out in its order action events; they exist once
created through the admin route and take the final status the connector PUTs. Reported actions
come from v2-reportOrderActions and turn final by themselves ``action_delay`` seconds later (the
injected clock). v2-getActionStatus answers for both.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

import orjson

from .config import SandboxConfig
from .pacing import Pacer, too_many_requests
from .store import Table, parsed_json
from .validation import SchemaValidator, invalid_input
from .wire import (
    NOT_JSON,
    Handled,
    Outcome,
    Request,
    Response,
    error_response,
    iso_z,
    json_response,
    utc_now,
)

UPDATE_ACTION_STATUS_PATH = "/api/channel-platform/v1/orders/actions/{action_id}"
REPORT_ACTIONS_PATH = "/api/v2/orders/actions"
ACTION_STATUS_PATH = "/api/v2/orders/actions/{action_id}"
MAX_REPORTED = 100
MAX_CREATED = 1000  # per admin call
REPORT_KEY = "v2-reportOrderActions"

TABLE = Table(
    "actions",
    """
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,     -- creation order
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,                        -- command | reported
    status TEXT NOT NULL,                      -- PENDING | SUCCESS | FAILED
    errors TEXT,                               -- JSON list, once final (NULL: none)
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    report TEXT,                               -- reported: the action item as sent (JSON)
    due REAL,                                  -- reported, pending: injected-clock time to turn
    final_status TEXT,                         -- reported: the status it turns to,
    final_errors TEXT,                         -- its errors (JSON),
    final_at TEXT                              -- and its updated_at then
);
CREATE INDEX IF NOT EXISTS actions_due ON actions (due) WHERE due IS NOT NULL;
""",
)

SETTLE = """
UPDATE actions SET status = final_status, errors = final_errors, updated_at = final_at, due = NULL
WHERE due IS NOT NULL AND due <= ?
"""
INSERT = """
INSERT INTO actions (id, kind, status, errors, created_at, updated_at, report, due,
                     final_status, final_errors, final_at)
VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)
"""
COLUMNS = "id, kind, status, errors, created_at, updated_at, report"


class Kind(StrEnum):
    COMMAND = "command"
    REPORTED = "reported"


class Status(StrEnum):
    PENDING = "PENDING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"


def _not_json() -> Handled:
    return Handled(error_response(400, "INVALID_INPUT", "The request body is not valid JSON"))


def _unknown(action_id: str) -> Handled:
    return Handled(error_response(404, "DATA_NOT_FOUND", f"Action {action_id!r} does not exist"))


class Actions:
    """The three action operations and their admin side; state in the ``actions`` table."""

    def __init__(self, config: Callable[[], SandboxConfig], clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self.pacer = Pacer(clock)
        self._update = SchemaValidator("update-action-status-request.schema.json")
        self._report = SchemaValidator(
            "report-order-actions-request.schema.json", items="actions", max_items=MAX_REPORTED
        )

    # -- routes --------------------------------------------------------------------------

    def update_status(self, request: Request, params: dict[str, str]) -> Outcome:
        """``PUT .../v1/orders/actions/{action_id}``: 204, 400, 404, 400 ACTION_ALREADY_FINAL."""
        document = request.document
        if document is NOT_JSON:
            return _not_json()
        problems = self._update.problems(document)
        if problems:
            omit = self._config().omit_field
            return Handled(invalid_input(problems, omit, "the action was not updated"))
        action_id = params["action_id"]
        status, errors = document["status"], document.get("errors")

        def decide(db: sqlite3.Connection) -> Handled:
            row = db.execute("SELECT kind, status FROM actions WHERE id = ?", (action_id,))
            found = row.fetchone()
            # Only command actions are the connector's to finish; reported ones finish alone.
            if found is None or found[0] != Kind.COMMAND:
                return _unknown(action_id)
            if found[1] != Status.PENDING:
                message = f"Action {action_id!r} is already final ({found[1]})"
                return Handled(error_response(400, "ACTION_ALREADY_FINAL", message))
            db.execute(
                "UPDATE actions SET status = ?, errors = ?, updated_at = ? WHERE id = ?",
                (status, _json(errors), iso_z(utc_now()), action_id),
            )
            return Handled(Response(status=204))

        return decide

    def report(self, request: Request, params: dict[str, str]) -> Outcome:
        """``POST /v2/orders/actions``: 200 with one id per action, 400, 429 (once a minute)."""
        config = self._config()
        # The limit comes first, as a gateway's would; only an accepted call starts the wait.
        left = self.pacer.wait(REPORT_KEY, config.report_interval)
        if left > 0:
            return Handled(too_many_requests(left, "v2-reportOrderActions: once per minute"))
        document = request.document
        if document is NOT_JSON:
            return _not_json()
        problems = self._report.problems(document)
        if problems:
            return Handled(invalid_input(problems, config.omit_field, "no action was recorded"))
        left = self.pacer.admit(REPORT_KEY, config.report_interval)
        if left > 0:  # another call got in since the check above
            return Handled(too_many_requests(left, "v2-reportOrderActions: once per minute"))
        due = self._clock() + config.action_delay
        created = utc_now()
        created_at = iso_z(created)
        final_at = iso_z(created + timedelta(seconds=config.action_delay))
        rows = []
        for item in document["actions"]:
            final_status, final_errors = _outcome(item["entity_id"], config.fail_entity_prefix)
            rows.append(
                (
                    str(uuid.uuid4()),
                    Kind.REPORTED,
                    Status.PENDING,
                    created_at,
                    created_at,
                    _json(item),
                    due,
                    final_status,
                    _json(final_errors),
                    final_at,
                )
            )
        answer = json_response(200, {"actions": [{"action_id": row[0]} for row in rows]})

        def record(db: sqlite3.Connection) -> Handled:
            db.executemany(INSERT, rows)
            return Handled(answer)

        return record

    def status(self, request: Request, params: dict[str, str]) -> Outcome:
        """``GET /v2/orders/actions/{action_id}``: 200, 404, 429 (once a minute per id)."""
        action_id = params["action_id"]
        interval = self._config().status_interval

        def answer(db: sqlite3.Connection) -> Handled:
            self._settle(db)
            found = db.execute(
                "SELECT id, status, errors, created_at, updated_at FROM actions WHERE id = ?",
                (action_id,),
            ).fetchone()
            if found is None:
                return _unknown(action_id)
            left = self.pacer.admit(("v2-getActionStatus", action_id), interval)
            if left > 0:
                what = "v2-getActionStatus: once per minute per action id"
                return Handled(too_many_requests(left, what))
            body: dict[str, Any] = {
                "id": found[0],
                "status": found[1],
                "created_at": found[3],
                "updated_at": found[4],
            }
            errors = parsed_json(found[2])
            if errors:
                body["errors"] = errors
            return Handled(json_response(200, body))

        return answer

    # -- admin side (inside a store transaction) -----------------------------------------

    def create(
        self,
        db: sqlite3.Connection,
        count: int | None = None,
        action_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """New PENDING command actions, as Connect's order action events would hand out.

        ``action_ids`` as given, else ``count`` (default 1) uuid4 ids. ValueError when the
        arguments are malformed or an id exists already.
        """
        ids = _new_ids(count, action_ids)
        now = iso_z(utc_now())
        try:
            db.executemany(
                INSERT,
                [
                    (i, Kind.COMMAND, Status.PENDING, now, now, None, None, None, None, None)
                    for i in ids
                ],
            )
        except sqlite3.IntegrityError:
            raise ValueError("an action with one of these ids exists already") from None
        marks = ", ".join("?" * len(ids))
        rows = db.execute(f"SELECT {COLUMNS} FROM actions WHERE id IN ({marks}) ORDER BY seq", ids)
        return [_listed(row) for row in rows.fetchall()]

    def listing(self, db: sqlite3.Connection) -> list[dict[str, Any]]:
        """Every action, oldest first, reported ones settled up to now."""
        self._settle(db)
        rows = db.execute(f"SELECT {COLUMNS} FROM actions ORDER BY seq").fetchall()
        return [_listed(row) for row in rows]

    def _settle(self, db: sqlite3.Connection) -> None:
        """Reported actions whose delay has passed take their final status."""
        db.execute(SETTLE, (self._clock(),))


def _outcome(entity_id: str, fail_prefix: str | None) -> tuple[Status, list[dict[str, str]] | None]:
    """What Connect makes of a reported action: FAILED for an order it does not know."""
    if fail_prefix is not None and entity_id.startswith(fail_prefix):
        message = f"order {entity_id} is unknown to Connect"
        return Status.FAILED, [{"code": "DATA_NOT_FOUND", "message": message}]
    return Status.SUCCESS, None


def _new_ids(count: Any, action_ids: Any) -> list[str]:
    if count is not None and action_ids is not None:
        raise ValueError("give either count or action_ids, not both")
    if action_ids is not None:
        if (
            not isinstance(action_ids, list | tuple)
            or not action_ids
            or not all(isinstance(i, str) and i for i in action_ids)
        ):
            raise ValueError("action_ids must be a non-empty list of non-empty strings")
        if len(set(action_ids)) != len(action_ids):
            raise ValueError("action_ids must not repeat an id")
        if len(action_ids) > MAX_CREATED:
            raise ValueError(f"at most {MAX_CREATED} actions per call")
        return list(action_ids)
    count = 1 if count is None else count
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_CREATED:
        raise ValueError(f"count must be an integer from 1 to {MAX_CREATED}")
    return [str(uuid.uuid4()) for _ in range(count)]


def _listed(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "kind", "status", "errors", "created_at", "updated_at", "report")
    item = dict(zip(keys, row, strict=True))
    item["errors"] = parsed_json(item["errors"])
    item["report"] = parsed_json(item["report"])
    return item


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
