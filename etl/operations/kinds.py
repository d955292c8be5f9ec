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
from typing import Protocol

from etl.core.codes import Problem
from etl.core.models import ItemResult, MappedItem, Violation
from etl.core.schema import (
    ACTION_STATUSES,
    ANONYMIZATION,
    DOCUMENTS,
    ORDER_ACTIONS,
    TRACK_ACTIONS,
    FileKind,
)
from etl.deliver.batch import Batcher
from etl.deliver.client import ConnectClient
from etl.deliver.submit import deliver
from etl.operations.action_answers import answer_warnings, record_answers
from etl.operations.actions import (
    ActionContext,
    queue_order_actions,
    send_action_statuses,
    track_actions,
)
from etl.operations.documents import check_documents, send_documents
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


class Operation(Protocol):
    """How the valid items of one kind other than orders reach Connect."""

    def precheck(self, items: list[MappedItem], context: OperationContext) -> None:
        """Checks that need more than the schema, before anything is sent (violations added)."""

    def send(
        self, items: list[MappedItem], context: OperationContext
    ) -> tuple[list[ItemResult], int]:
        """(results, requests) for the valid items."""
        ...


class ActionStatuses:
    """Answers to Connect's actions; each one closes the action it answers (warned when no
    event named it, or it was answered before)."""

    def precheck(self, items: list[MappedItem], context: OperationContext) -> None:
        answer_warnings(items, ActionEvents(context.ledger))

    def send(
        self, items: list[MappedItem], context: OperationContext
    ) -> tuple[list[ItemResult], int]:
        results = send_action_statuses(items, context.actions())
        record_answers(items, results, ActionEvents(context.ledger), context.now())
        return results, len(items)


class OrderActions:
    def precheck(self, items: list[MappedItem], context: OperationContext) -> None:
        pass

    def send(
        self, items: list[MappedItem], context: OperationContext
    ) -> tuple[list[ItemResult], int]:
        return queue_order_actions(items, context.actions())


class TrackActions:
    def precheck(self, items: list[MappedItem], context: OperationContext) -> None:
        pass

    def send(
        self, items: list[MappedItem], context: OperationContext
    ) -> tuple[list[ItemResult], int]:
        return track_actions(items, context.actions(), context.source_name)


class Documents:
    """Each document is read and checked before anything is sent; the folder they were found in
    is kept for the upload (the inbox, or the folder the file was moved to)."""

    def __init__(self) -> None:
        self.folder: Path | None = None

    def precheck(self, items: list[MappedItem], context: OperationContext) -> None:
        self.folder = check_documents(items, context.inbox)

    def send(
        self, items: list[MappedItem], context: OperationContext
    ) -> tuple[list[ItemResult], int]:
        folder = self.folder or context.inbox
        return send_documents(items, folder, context.client), len(items)


class Anonymization:
    def precheck(self, items: list[MappedItem], context: OperationContext) -> None:
        refuse_past_dates(items, context.now())

    def send(
        self, items: list[MappedItem], context: OperationContext
    ) -> tuple[list[ItemResult], int]:
        return _anonymize(items, context)


OPERATIONS: dict[str, Callable[[], Operation]] = {
    ACTION_STATUSES.name: ActionStatuses,
    ORDER_ACTIONS.name: OrderActions,
    TRACK_ACTIONS.name: TrackActions,
    DOCUMENTS.name: Documents,
    ANONYMIZATION.name: Anonymization,
}


def operation_for(kind: FileKind) -> Operation:
    """A new operation for one file of ``kind`` (it may keep what its precheck found)."""
    if kind.name not in OPERATIONS:
        raise ValueError(f"no operation for {kind.name}")
    return OPERATIONS[kind.name]()


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
                    Problem.ANONYMIZE_DATE_IN_PAST,
                    f"anonymize_after: '{text}' is in the past; Connect only accepts a future "
                    "date (anonymization cannot be undone, so check it)",
                    text,
                )
            )


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
