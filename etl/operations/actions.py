"""Order actions: statuses of command actions, the order action log, and action tracking.

- ``action-status*`` rows -> one updateActionStatus call each. An action already final in
  Connect is reported ``UNCHANGED`` (done before), not as a failure to retry.
- ``order-actions*`` rows -> the ledger's durable queue, flushed to v2-reportOrderActions in
  batches of at most 100, never more than once a minute (the documented maximum; the time of the
  last flush is in the ledger, so a restart cannot break it). The returned action ids are tracked.
- ``track-actions*`` rows, and every id the action log returns -> polled with v2-getActionStatus
  until final, never more than once a minute per id (every 5 minutes by default); each final
  status is written with its errors to ``<outbox>/actions/``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from etl.core.codes import Problem
from etl.core.errors import NotFound, OutcomeUnknown, RejectedRequest
from etl.core.files import atomic_writer
from etl.core.inputs import InputRefused, allowed_owners, open_checked
from etl.core.kinds import detect_kind
from etl.core.models import ItemResult, MappedItem, Outcome
from etl.core.schema import ACTION_STATUSES
from etl.deliver.client import ConnectClient
from etl.deliver.submit import blamed_items
from etl.report.files import neutral
from etl.state.ledger import Ledger

REPORT_OPERATION = "v2-reportOrderActions"
MIN_FLUSH_SECONDS = 60.0  # documented maximum: once per minute
MIN_POLL_SECONDS = 60.0  # documented maximum: once per minute per action id
DEFAULT_POLL_SECONDS = 300.0  # documented recommendation: every 5 minutes
FINAL = ("SUCCESS", "FAILED", "NOT_FOUND")
FINAL_COLUMNS = ("action_id", "status", "source", "entity_id", "created_at", "updated_at", "errors")


@dataclass
class ActionContext:
    """What the action handlers need from the run that calls them."""

    client: Callable[[], ConnectClient]  # created on first use: a file of invalid rows needs none
    ledger: Ledger
    outbox: Path
    file_sha256: str
    now: Callable[[], float]  # wall-clock seconds (persisted pacing must survive restarts)
    poll_seconds: float = DEFAULT_POLL_SECONDS


def _result(
    item: MappedItem, outcome: Outcome, code: str = "", message: str = "", status: int | None = None
) -> ItemResult:
    return ItemResult(item.item_id, item.origin, item.rows, outcome, "", status, code, message)


# --- action statuses ---------------------------------------------------------------------------


def send_action_statuses(items: list[MappedItem], context: ActionContext) -> list[ItemResult]:
    """One updateActionStatus per row; unknown ids rejected, final ones already done."""
    results = []
    for item in items:
        body = {key: value for key, value in item.body.items() if key != "action_id"}
        try:
            context.client().update_action_status(item.item_id, body)
        except RejectedRequest as error:
            if error.code == "ACTION_ALREADY_FINAL":  # Connect's code: answered before
                results.append(
                    _result(
                        item,
                        Outcome.UNCHANGED,
                        error.code,
                        "the action is already final in Connect: nothing left to do",
                        error.status,
                    )
                )
            else:
                results.append(
                    _result(item, Outcome.REJECTED, error.code, str(error), error.status)
                )
            continue
        except NotFound as error:
            results.append(
                _result(
                    item,
                    Outcome.REJECTED,
                    error.code or "DATA_NOT_FOUND",
                    "Connect knows no pending action with this id (wrong id, expired, or "
                    "already completed)",
                    error.status,
                )
            )
            continue
        results.append(_result(item, Outcome.ACCEPTED, status=204))
    return results


# --- the order action log ----------------------------------------------------------------------


def queue_order_actions(
    items: list[MappedItem], context: ActionContext
) -> tuple[list[ItemResult], int]:
    """Queue the rows durably, flush if the minute allows, and say where each row stands.

    Returns the results and the number of requests made (0 or 1)."""
    rows = [
        (context.file_sha256, item.rows[0], item.item_id, orjson.dumps(item.body).decode())
        for item in items
    ]
    context.ledger.queue_actions(rows, context.now())
    flush = flush_action_log(context)
    results = []
    for item in items:
        queued = context.ledger.queued_action(context.file_sha256, item.rows[0])
        if queued.sent_at is None:
            results.append(
                _result(
                    item,
                    Outcome.QUEUED,
                    "QUEUED",
                    "queued in the ledger; sent with the next flush (at most one a minute)",
                )
            )
        elif queued.outcome == "accepted" and queued.action_id:
            results.append(_result(item, Outcome.ACCEPTED, message=f"action_id {queued.action_id}"))
        elif queued.outcome == "unknown":
            results.append(_result(item, Outcome.UNKNOWN, Problem.OUTCOME_UNKNOWN, queued.message))
        else:
            message = queued.message or "refused by Connect"
            results.append(_result(item, Outcome.REJECTED, "REJECTED", message))
    return results, flush.requests


def within_a_minute(now: float, last: float) -> bool:
    """Whether the last flush was less than a minute ago. One recorded more than a minute in
    the future was recorded by a clock since set back: it says nothing of when it was, and
    trusting it would hold every flush until the clock catches up (hours, or a year)."""
    return last - MIN_FLUSH_SECONDS < now < last + MIN_FLUSH_SECONDS


@dataclass(frozen=True)
class Flush:
    sent: int
    rejected: int
    waiting: int
    next_allowed_at: float
    unknown: int = 0

    @property
    def requests(self) -> int:
        return int(self.sent + self.rejected + self.unknown > 0)


def flush_action_log(context: ActionContext, max_items: int = 100) -> Flush:
    """Send the oldest queued actions (at most 100) if a minute has passed since the last flush.

    Each queued row is sent once: accepted (its action id tracked), rejected, or closed as
    unknown when the answer was lost or named no id, for a second call would report the
    actions twice (v2-reportOrderActions is not idempotent)."""
    ledger, now = context.ledger, context.now()
    last = ledger.last_sent(REPORT_OPERATION)
    queued = ledger.unsent_actions(max_items)
    if not queued or (last is not None and within_a_minute(now, last)):
        allowed = now if last is None else last + MIN_FLUSH_SECONDS
        return Flush(0, 0, ledger.unsent_count(), allowed)
    bodies = [orjson.loads(body) for _, body, _, _ in queued]
    ledger.sent_now(REPORT_OPERATION, now)  # before sending: a crash must not allow a resend now
    try:
        ids = context.client().report_order_actions({"actions": bodies})
    except RejectedRequest as error:
        # Mark the actions Connect blames as refused; the others go with the next flush.
        blamed = blamed_items(error, "actions", len(queued))
        if not blamed:
            blamed = {index: [str(error)] for index in range(len(queued))}
        for index, messages in blamed.items():
            ledger.actions_closed([queued[index][0]], now, "rejected", "; ".join(messages))
        waiting = ledger.unsent_count()
        return Flush(0, len(blamed), waiting, now + MIN_FLUSH_SECONDS)
    except OutcomeUnknown as error:
        ledger.actions_closed([seq for seq, _, _, _ in queued], now, "unknown", str(error))
        return Flush(0, 0, ledger.unsent_count(), now + MIN_FLUSH_SECONDS, unknown=len(queued))
    sent, nameless = [], []
    for position, ((seq, _, _, _), body) in enumerate(zip(queued, bodies, strict=True)):
        action_id = ids[position] if position < len(ids) else ""
        if action_id:
            sent.append((seq, action_id, str(body.get("entity_id", ""))))
        else:
            nameless.append(seq)
    ledger.actions_sent(sent, "order-actions", now, now + context.poll_seconds)
    if nameless:
        ledger.actions_closed(
            nameless,
            now,
            "unknown",
            "Connect answered without an action id for this row: whether it recorded the action "
            "cannot be known, and it is not sent again (it would be reported twice)",
        )
    return Flush(
        len(sent), 0, ledger.unsent_count(), now + MIN_FLUSH_SECONDS, unknown=len(nameless)
    )


# --- tracking ----------------------------------------------------------------------------------


def track_actions(
    items: list[MappedItem], context: ActionContext, source: str
) -> tuple[list[ItemResult], int]:
    """Follow the ids of a track-actions file; poll the ones that are due now.

    Returns the results and the number of status requests made. An id already final (now or
    in an earlier run) is reported with its final status at once: it is never polled again."""
    context.ledger.track((item.item_id for item in items), source, context.now())
    polls = len(context.ledger.due_actions(context.now(), _horizon(context)))
    written = {str(row["action_id"]): str(row["written_to"]) for row in poll_actions(context)}
    known = {str(row["action_id"]): row for row in context.ledger.tracked(i.item_id for i in items)}
    results = []
    for item in items:
        row = known.get(item.item_id)
        status = str(row["status"]) if row else "PENDING"
        if status not in FINAL:
            results.append(
                _result(
                    item,
                    Outcome.QUEUED,
                    "TRACKED",
                    "tracked: polled until final (at most once a minute per id); the final "
                    "status is written to outbox/actions/",
                )
            )
            continue
        assert row is not None
        where = written.get(item.item_id)
        said = f"; see {where}" if where else f" (final since {row['updated_at'] or 'before'})"
        results.append(_final_result(item, status, str(row["errors"]), said))
    return results, polls


def _final_result(item: MappedItem, status: str, errors: str, said: str) -> ItemResult:
    """The action's own final status: SUCCESS is accepted; FAILED and NOT_FOUND are not."""
    if status == "SUCCESS":
        return _result(item, Outcome.ACCEPTED, status, f"final status SUCCESS{said}")
    details = "; ".join(
        f"{e.get('code', '')}: {e.get('message', '')}" for e in orjson.loads(errors or "[]")
    )
    meaning = (
        "Connect knows no action with this id (wrong id, or another API)"
        if status == "NOT_FOUND"
        else "Connect could not carry out the action"
    )
    message = f"final status {status}: {meaning}" + (f" ({details})" if details else "") + said
    return _result(item, Outcome.REJECTED, status, message)


def due_work(context: ActionContext) -> dict[str, int]:
    """What every run does whatever its inbox held: flush the order action log when the
    minute allows, poll the tracked actions that are due. Counts of what was done."""
    flush = flush_action_log(context)
    polled = len(context.ledger.due_actions(context.now(), _horizon(context)))
    final = len(poll_actions(context)) if polled else 0
    counts = {
        "actions_reported": flush.sent,
        "actions_rejected": flush.rejected,
        "actions_unknown": flush.unknown,
        "actions_waiting": flush.waiting,
        "actions_polled": polled,
        "actions_final": final,
    }
    return {name: count for name, count in counts.items() if count}


def _horizon(context: ActionContext) -> float:
    """How far ahead a planned poll can be: further, the clock was set back since."""
    return max(MIN_POLL_SECONDS, context.poll_seconds) + MIN_POLL_SECONDS


def poll_actions(context: ActionContext) -> list[dict[str, object]]:
    """Poll every tracked action that is due; write the ones that became final to the outbox."""
    ledger, now = context.ledger, context.now()
    interval = max(MIN_POLL_SECONDS, context.poll_seconds)
    finished: list[dict[str, object]] = []
    for action_id in ledger.due_actions(now, _horizon(context)):
        try:
            answer = context.client().get_action_status(action_id)
        except NotFound:
            # A 404 is final: Connect knows no such action (its 200s are read as documented).
            status = "NOT_FOUND"
            answer = {
                "errors": [
                    {"code": "DATA_NOT_FOUND", "message": "Connect knows no action with this id"}
                ],
            }
        else:
            status = documented_status(answer.get("status"))
        final = status in FINAL
        ledger.action_polled(
            action_id,
            status,
            orjson.dumps(answer.get("errors") or []).decode(),
            str(answer.get("created_at", "")),
            str(answer.get("updated_at", "")),
            now + interval,
            now if final else None,
        )
        if final:
            finished.append({"action_id": action_id})
    if not finished:
        return []
    rows = ledger.tracked(str(row["action_id"]) for row in finished)
    path = write_final_statuses(context.outbox, rows, now)
    return [{**row, "written_to": str(path)} for row in rows]


def documented_status(status: object) -> str:
    """v2-getActionStatus documents PENDING, SUCCESS and FAILED. Any other status (a new one,
    another spelling, NOT_FOUND in a 200) says nothing final: the action is polled again as
    PENDING, for kept as it came it would be polled never again (only PENDING ones are)."""
    return str(status) if status in ("SUCCESS", "FAILED") else "PENDING"


def write_final_statuses(outbox: Path, rows: list[dict[str, object]], now: float) -> Path:
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = outbox / "actions" / f"final-{stamp}.csv"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FINAL_COLUMNS)
    for row in rows:
        errors = orjson.loads(str(row["errors"]))
        text = "; ".join(f"{e.get('code', '')}: {e.get('message', '')}" for e in errors)
        cells = (row[name] for name in FINAL_COLUMNS[:-1])
        # Ids and messages come from the data and the API: never a formula in a spreadsheet.
        writer.writerow([*(neutral(str(cell)) for cell in cells), neutral(text)])
    with atomic_writer(path) as stream:
        stream.write(buffer.getvalue())
    return path


@dataclass(frozen=True)
class NamedActions:
    """The action ids that the inbox's action-status files name, and the files skipped (name,
    why): not UTF-8 CSV text; the run itself reports them."""

    ids: frozenset[str]
    skipped: tuple[tuple[str, str], ...]


def named_action_ids(inbox: Path) -> NamedActions:
    """The ``action_id`` of every row of the inbox's action-status CSV files (the sandbox's
    stand-in for Connect's command events creates them). Only regular files are read
    (etl/read/inputs.py: a pipe would block, a link lead elsewhere)."""
    wanted: set[str] = set()
    skipped: list[tuple[str, str]] = []
    for path in sorted(inbox.glob("*")) if inbox.is_dir() else []:
        if detect_kind(path) is not ACTION_STATUSES or path.suffix.lower() != ".csv":
            continue
        try:
            fd, _ = open_checked(path, allowed_owners(inbox))
        except (InputRefused, OSError):
            continue
        try:
            with open(fd, encoding="utf-8-sig", newline="") as handle:
                wanted.update(row.get("action_id", "") for row in csv.DictReader(handle))
        except (UnicodeDecodeError, csv.Error) as error:
            skipped.append((path.name, f"not UTF-8 CSV text: {error}"))
    wanted.discard("")
    return NamedActions(frozenset(wanted), tuple(skipped))
