"""Answers to order action events: an action-status file closes the actions it answers.

A row answering an action no event named, or one answered before, is sent all the same, with a
warning in the file's errors.csv. Warnings, not errors: Connect decides. It answers 404 for an
id it does not know (the row is then REJECTED, an error) and ACTION_ALREADY_FINAL for one
answered before (UNCHANGED), while an event this tool did not see (the queue set up later, a
message older than the queue keeps, another consumer) is no reason to hold a valid answer back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from etl.core.codes import Problem
from etl.core.models import ItemResult, MappedItem, Outcome, Violation
from etl.state.action_events import ActionEvents


def answer_warnings(items: list[MappedItem], events: ActionEvents) -> None:
    """Warn on rows answering an action never received as an event (once events are read
    here at all), or one answered before; the rows are sent all the same."""
    if not events.any_received():
        return  # events are not read for this target: every id would be "unknown"
    ids = [item.item_id for item in items]
    received, answers = events.received(ids), events.answers(ids)
    for item in items:
        if item.violations:
            continue
        answer = answers.get(item.item_id)
        if answer is None and item.item_id not in received:
            message = (
                f"no order action event named the action {item.item_id}: sent all the same "
                "(Connect answers 404 for an id it does not know); check the id against "
                "outbox/actions/pending-*.csv"
            )
            code = Problem.ACTION_NOT_RECEIVED
        elif answer is not None:
            when = datetime.fromtimestamp(answer.answered_at, UTC).isoformat(timespec="seconds")
            message = (
                f"the action {item.item_id} was answered before ({answer.answer}, by "
                f"{answer.answered_by} at {when.replace('+00:00', 'Z')}): sent all the same; "
                "Connect keeps the first answer"
            )
            code = Problem.ACTION_ALREADY_ANSWERED
        else:
            continue
        item.warnings.append(
            Violation(item.source, item.rows, item.item_id, "$.action_id", code, message)
        )


def record_answers(
    items: list[MappedItem], results: list[ItemResult], events: ActionEvents, at: float
) -> None:
    """Close the actions Connect took an answer for, or says are final or unknown."""
    status = {item.item_id: str(item.body.get("status", "")) for item in items}
    closed: list[tuple[str, str]] = []
    for result in results:
        if result.outcome is Outcome.ACCEPTED:
            closed.append((result.item_id, status.get(result.item_id, "")))
        elif result.outcome is Outcome.UNCHANGED:
            closed.append((result.item_id, "ALREADY_FINAL"))
        elif result.outcome is Outcome.REJECTED and result.http_status == 404:
            closed.append((result.item_id, "NOT_FOUND"))
    if closed:
        by = items[0].source if items else ""
        events.answered(closed, by, at)
