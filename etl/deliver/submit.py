"""Batch -> outcome per item: send, and on a 400 isolate the offending items and resend the rest.

Connect rejects a whole upsertOrders request when one order is invalid. The items to blame come
from ``errors[].field`` JSONPaths (``$.orders[3].order_lines[0].status``) when the API gives them;
otherwise (no field, or fields naming items the batch does not have) the batch is split in halves
until each bad item stands alone. Either way every good item is delivered, and the extra requests
this costs are counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from etl.core.codes import Problem
from etl.core.errors import ApiError, NotFound, RejectedRequest
from etl.core.models import MappedItem, Origin, Outcome
from etl.deliver.batch import request_bytes

TOO_LARGE = 413
ITEM_INDEX = re.compile(r"^\$\.(?P<array>[A-Za-z_]+)\[(?P<index>\d+)\]")


@dataclass(frozen=True, slots=True)
class Delivered:
    """The API's final word on one item."""

    item: MappedItem
    outcome: Outcome
    batch_id: str
    http_status: int | None
    code: str = ""
    message: str = ""


@dataclass
class Delivery:
    """Everything one batch turned into, and what it cost."""

    results: list[Delivered] = field(default_factory=list)
    requests: int = 0

    @property
    def extra_requests(self) -> int:
        return max(0, self.requests - 1)


Send = Callable[[bytes], None]  # one request's JSON, as it goes on the wire


def error_entries(error: ApiError) -> list[dict[str, Any]]:
    """The objects of the answer's ``errors`` list; a server that sends something else there
    (a text, a number) blames nothing."""
    entries = error.body.get("errors")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def blamed_items(error: ApiError, items_property: str, count: int) -> dict[int, list[str]]:
    """Item index -> the API's messages about it, from ``errors[].field``; {} if none given."""
    blamed: dict[int, list[str]] = {}
    for entry in error_entries(error):
        match = ITEM_INDEX.match(str(entry.get("field", "")))
        if match and match.group("array") == items_property and int(match.group("index")) < count:
            index = int(match.group("index"))
            field_path = str(entry["field"])
            local = "$" + field_path[match.end() :]
            blamed.setdefault(index, []).append(f"{local}: {entry.get('message', '')}".strip())
    return blamed


def deliver(
    send: Send,
    batch_id: str,
    origin: Origin | None,
    items: list[MappedItem],
    items_property: str,
) -> Delivery:
    """Send the items as one request; isolate and report whatever the API refuses."""
    delivery = Delivery()
    _deliver(send, batch_id, origin, items, items_property, delivery)
    return delivery


def _deliver(
    send: Send,
    batch_id: str,
    origin: Origin | None,
    items: list[MappedItem],
    items_property: str,
    delivery: Delivery,
) -> None:
    if not items:
        return
    body = request_bytes(origin, items_property, items)
    delivery.requests += 1
    try:
        send(body)
    except NotFound as error:
        # The channel or store is unknown: no item of this origin can succeed.
        delivery.results.extend(
            Delivered(i, Outcome.REJECTED, batch_id, error.status, error.code, str(error))
            for i in items
        )
        return
    except RejectedRequest as error:
        _isolate(send, batch_id, origin, items, items_property, delivery, error)
        return
    except ApiError as error:
        if error.status != TOO_LARGE:
            raise
        # The request is too big as a whole: halves are smaller, and an order too big alone is
        # that order's problem.
        if len(items) == 1:
            message = f"{error}: this order alone is larger than Connect accepts in one request"
            delivery.results.append(
                Delivered(
                    items[0], Outcome.REJECTED, batch_id, error.status, Problem.TOO_LARGE, message
                )
            )
            return
        middle = len(items) // 2
        _deliver(send, batch_id, origin, items[:middle], items_property, delivery)
        _deliver(send, batch_id, origin, items[middle:], items_property, delivery)
        return
    delivery.results.extend(Delivered(i, Outcome.ACCEPTED, batch_id, 204) for i in items)


def _isolate(
    send: Send,
    batch_id: str,
    origin: Origin | None,
    items: list[MappedItem],
    items_property: str,
    delivery: Delivery,
    error: RejectedRequest,
) -> None:
    if len(items) == 1:
        (item,) = items
        blamed = blamed_items(error, items_property, 1)
        message = "; ".join(blamed.get(0, [])) or str(error)
        delivery.results.append(
            Delivered(item, Outcome.REJECTED, batch_id, error.status, error.code, message)
        )
        return
    blamed = blamed_items(error, items_property, len(items))
    if blamed:
        for index, messages in sorted(blamed.items()):
            delivery.results.append(
                Delivered(
                    items[index],
                    Outcome.REJECTED,
                    batch_id,
                    error.status,
                    error.code,
                    "; ".join(messages),
                )
            )
        rest = [item for index, item in enumerate(items) if index not in blamed]
        _deliver(send, batch_id, origin, rest, items_property, delivery)
    elif _blames_the_request(error, items_property):
        # The API blames the request itself (e.g. $.origin): every item shares the fault.
        delivery.results.extend(
            Delivered(i, Outcome.REJECTED, batch_id, error.status, error.code, str(error))
            for i in items
        )
    else:
        middle = len(items) // 2
        _deliver(send, batch_id, origin, items[:middle], items_property, delivery)
        _deliver(send, batch_id, origin, items[middle:], items_property, delivery)


def _blames_the_request(error: ApiError, items_property: str) -> bool:
    """Whether a field names the request rather than its items. A field naming an item the
    batch does not have (``$.orders[500]`` in a batch of 100, ``$.orders[-1]``) blames no
    item that can be found: halving will find it, where rejecting them all would lose the
    good ones."""
    item = f"$.{items_property}["
    fields = [str(entry.get("field") or "") for entry in error_entries(error)]
    return any(field and not field.startswith(item) for field in fields)
