"""Every operation other than upsertOrders, behind one call: valid items in, results out.

``sync.Sync`` reads, maps and validates every kind of file the same way; for orders it screens
against the ledger and batches itself, for the other kinds it hands the valid items here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from etl.core.models import ItemResult, MappedItem, Violation
from etl.core.schema import (
    ACTION_STATUSES,
    ANONYMIZATION,
    DOCUMENTS,
    ORDER_ACTIONS,
    TRACK_ACTIONS,
    FileKind,
)
from etl.operations.action_answers import answer_warnings, record_answers
from etl.operations.actions import (
    ActionContext,
    queue_order_actions,
    send_action_statuses,
    track_actions,
)
from etl.operations.documents import check_documents, send_documents
from etl.send.batch import Batcher
from etl.send.client import ConnectClient
from etl.send.submit import deliver
from etl.state.action_events import ActionEvents
from etl.state.ledger import Ledger

# Connect tolerates a few minutes of clock skew; refusing locally only what is clearly past.
ANONYMIZE_TOLERANCE_SECONDS = 300.0


@dataclass
class OperationContext:
    client: Callable[[], ConnectClient]
    ledger: Ledger
    outbox: Path
    inbox: Path  # the folder the file was dropped in: documents are named relative to it
    file_sha256: str
    source_name: str
    batch_prefix: str
    now: Callable[[], float] = time.time
    poll_seconds: float = 300.0

    def actions(self) -> ActionContext:
        return ActionContext(
            self.client, self.ledger, self.outbox, self.file_sha256, self.now, self.poll_seconds
        )


def precheck(kind: FileKind, items: list[MappedItem], context: OperationContext) -> object:
    """Checks that need more than the schema, before anything is sent (violations added)."""
    if kind is ANONYMIZATION:
        refuse_past_dates(items, context.now())
    if kind is DOCUMENTS:
        return check_documents(items, context.inbox)
    if kind is ACTION_STATUSES:
        answer_warnings(items, ActionEvents(context.ledger))
    return None


def refuse_past_dates(items: list[MappedItem], now: float) -> None:
    for item in items:
        text = item.body.get("anonymize_after")
        if item.violations or not isinstance(text, str):
            continue
        moment = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        if moment < now - ANONYMIZE_TOLERANCE_SECONDS:
            item.violations.append(
                Violation(
                    item.source,
                    item.rows,
                    item.item_id or None,
                    "$.anonymize_after",
                    "ANONYMIZE_DATE_IN_PAST",
                    f"anonymize_after: '{text}' is in the past; Connect only accepts a future "
                    "date (anonymization cannot be undone, so check it)",
                    text,
                )
            )


def send(
    kind: FileKind, items: list[MappedItem], context: OperationContext, prepared: object
) -> tuple[list[ItemResult], int]:
    """(results, requests) for valid items of a kind other than orders."""
    if kind is ACTION_STATUSES:
        results = send_action_statuses(items, context.actions())
        record_answers(items, results, ActionEvents(context.ledger), context.now())
        return results, len(items)
    if kind is ORDER_ACTIONS:
        return queue_order_actions(items, context.actions())
    if kind is TRACK_ACTIONS:
        return track_actions(items, context.actions(), context.source_name)
    if kind is DOCUMENTS:
        inbox = prepared if isinstance(prepared, Path) else context.inbox
        return send_documents(items, inbox, context.client), len(items)
    if kind is ANONYMIZATION:
        return _anonymize(items, context)
    raise ValueError(f"no sender for {kind.name}")


def _anonymize(items: list[MappedItem], context: OperationContext) -> tuple[list[ItemResult], int]:
    """Batches of at most 100, all-or-nothing, rejected items isolated like orders."""
    results: list[ItemResult] = []
    requests = 0
    batcher = Batcher(context.batch_prefix, ANONYMIZATION.max_items)
    for batch in [*batcher.add(items), *batcher.flush()]:
        delivery = deliver(
            context.client().update_anonymize_after,
            batch.batch_id,
            None,
            list(batch.items),
            ANONYMIZATION.items_property,
        )
        requests += delivery.requests
        results.extend(
            ItemResult(
                d.item.item_id,
                d.item.origin,
                d.item.rows,
                d.outcome,
                batch.batch_id,
                d.http_status,
                d.code,
                d.message,
            )
            for d in delivery.results
        )
    return results, requests
