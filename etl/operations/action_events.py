"""Connect's order action events, read: what the ERP must do, as one row of a pending file.

An ``OrderActionEvent`` (the Channel Platform webhooks file in ``api/openapi/``) is
``{"id": ULID, "time", "type", "data": {"action_id", "channel_order_id", ...}}``, ``type`` one
of nine and ``data`` shaped by it. A message that is not such an event is kept and explained
(``Unreadable``), never dropped: the ERP cannot answer an action nobody has seen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from etl.state.action_events import KeptEvent

PENDING_COLUMNS = (
    "action_id",
    "type",
    "channel_id",
    "channel_store_id",
    "channel_order_id",
    "lines",
    "todo",
    "deadline",
    "event_id",
    "event_time",
    "details",
)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A message that is no order action event, and why."""

    reason: str


def parse_event(body: str) -> KeptEvent | Unreadable:
    """The event a queue message holds (also inside an SNS notification), or why it holds none."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Unreadable("the message is not JSON")
    if (
        isinstance(document, dict)
        and document.get("Type") == "Notification"
        and isinstance(document.get("Message"), str)
    ):
        # An SNS topic delivering to the queue wraps the event in a notification.
        return parse_event(document["Message"])
    if not isinstance(document, dict):
        return Unreadable("the message is not a JSON object")
    missing = [key for key in ("id", "time", "type") if not _text(document.get(key))]
    data = document.get("data")
    if not isinstance(data, dict):
        missing.append("data")
    elif not _text(data.get("action_id")):
        missing.append("data.action_id")
    if missing:
        return Unreadable(
            f"the message is no order action event: it lacks {', '.join(missing)} "
            "(OrderActionEvent: id, time, type and data.action_id)"
        )
    assert isinstance(data, dict)
    kind = str(document["type"])
    row = {
        "action_id": str(data["action_id"]),
        "type": kind,
        "channel_id": _text(data.get("channel_id")),
        "channel_store_id": _text(data.get("channel_store_id")),
        "channel_order_id": _text(data.get("channel_order_id")),
        "lines": " ".join(lines_of(kind, data)),
        "todo": erp_step(kind, data),
        # The event documents no deadline; one it carries some day is shown as it comes.
        "deadline": _text(data.get("deadline")),
        "event_id": str(document["id"]),
        "event_time": str(document["time"]),
        "details": orjson.dumps(data).decode(),
    }
    return KeptEvent(
        str(document["id"]),
        row["action_id"],
        kind,
        row["channel_order_id"],
        row["event_time"],
        row,
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _items(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = data.get(key)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


# The array of order lines each type carries (returns and documents carry none).
LINE_ARRAYS = {
    "ACCEPT": "order_lines",
    "CANCEL": "cancelations",
    "REFUND": "refunds",
    "CREATE_SHIPMENT": "items",
}


def _line_id(item: dict[str, Any]) -> str:
    # The refund example of the webhooks file writes order_line_id where its schema says
    # channel_order_line_id: either is read.
    return _text(item.get("channel_order_line_id")) or _text(item.get("order_line_id"))


def lines_of(kind: str, data: dict[str, Any]) -> list[str]:
    """The order line ids the action is about, in the event's order."""
    return [_line_id(item) for item in _items(data, LINE_ARRAYS.get(kind, ""))]


def _money(value: Any) -> str:
    if not isinstance(value, dict):
        return "?"
    return f"{value.get('amount', '?')} {value.get('currency', '')}".strip()


def _line_money(verb: str, data: dict[str, Any], key: str) -> str:
    parts = []
    for item in _items(data, key):
        text = (
            f"{item.get('quantity', '?')} x {item.get('product_id', '?')} (line {_line_id(item)})"
        )
        text += f" at {_money(item.get('price'))}"
        if "shipping_price" in item:
            text += f" + shipping {_money(item.get('shipping_price'))}"
        if item.get("reason"):
            text += f", reason {item['reason']}"
        parts.append(text)
    return f"{verb}: " + "; ".join(parts) if parts else f"{verb} the order"


def _accept(data: dict[str, Any]) -> str:
    lines = _items(data, "order_lines")
    accepted = [_line_id(i) for i in lines if i.get("accepted") is True]
    refused = [_line_id(i) for i in lines if i.get("accepted") is not True]
    said = []
    if accepted:
        said.append(f"accept line(s) {', '.join(accepted)}")
    if refused:
        said.append(f"refuse line(s) {', '.join(refused)}")
    return "; ".join(said) or "accept or refuse the order"


def _ship(data: dict[str, Any]) -> str:
    items = ", ".join(
        f"{i.get('quantity', '?')} x {i.get('id', '?')} (line {_line_id(i)})"
        for i in _items(data, "items")
    )
    text = f"ship {items or 'the order'} with {data.get('carrier', '?')}"
    if data.get("tracking_number"):
        text += f", tracking number {data['tracking_number']}"
    return text


def _return_acceptance(data: dict[str, Any]) -> str:
    returned = data.get("channel_return_id", "?")
    if data.get("accepted") is True:
        return f"accept return {returned}"
    reason = data.get("rejection_reason")
    return f"refuse return {returned}" + (f", reason {reason}" if reason else "")


def _return_tracking(data: dict[str, Any]) -> str:
    found = data.get("tracking")
    tracking: dict[str, Any] = found if isinstance(found, dict) else {}
    return (
        f"record the return tracking of return {data.get('channel_return_id', '?')}: "
        f"{tracking.get('carrier', '?')} {tracking.get('tracking_number', '')}".rstrip()
    )


def _document(data: dict[str, Any]) -> str:
    return (
        f"upload the {data.get('document_type', 'document')} {data.get('document_name', '')!r} "
        "to the channel (download it from details.document_download_url, a link that expires)"
    )


ERP_STEPS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ACCEPT": _accept,
    "CANCEL": lambda data: _line_money("cancel", data, "cancelations"),
    "REFUND": lambda data: _line_money("refund", data, "refunds"),
    "CREATE_SHIPMENT": _ship,
    "ACCEPT_RETURN": _return_acceptance,
    "UPDATE_RETURN_TRACKING_INFORMATION": _return_tracking,
    "ACKNOWLEDGE_RETURN_RECEPTION": lambda data: (
        f"acknowledge that return {data.get('channel_return_id', '?')} was received"
    ),
    "CLOSE_RETURN": lambda data: f"close return {data.get('channel_return_id', '?')}",
    "UPLOAD_DOCUMENT": _document,
}


def erp_step(kind: str, data: dict[str, Any]) -> str:
    """What the ERP must do, in words; then answer the action id with an action-status file."""
    said = ERP_STEPS.get(kind)
    if said is None:
        return f"an action of type {kind} that this tool does not know: read details"
    return said(data)
