"""Order action events: what Connect publishes to the channel's queue when it wants an action.

The sandbox creates a PENDING command action and publishes one ``OrderActionEvent`` for it
(the Channel Platform webhooks file: ``{"id": ULID, "time", "type", "data"}``) to an SQS queue,
through boto3 itself (AWS's standard credential chain). ``data`` is built from the order the
sandbox stores under the ``channel_order_id`` asked for, else from a made-up order.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .wire import iso_z, utc_now

TYPES = ("ACCEPT", "CANCEL", "CREATE_SHIPMENT")  # the ones built here, from an order's lines
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BATCH = 10  # SQS's most per send_message_batch


def ulid() -> str:
    """A ULID: 48 bits of milliseconds, 80 random bits, in Crockford's base 32 (26 chars)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return "".join(CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _lines(order: dict[str, Any] | None, channel_order_id: str) -> list[dict[str, Any]]:
    if order is not None:
        found = order.get("body", {}).get("order_lines", [])
        if isinstance(found, list) and found:
            return [line for line in found if isinstance(line, dict)]
    return [
        {
            "channel_order_line_id": f"{channel_order_id}-1",
            "quantity": 1,
            "product": {"id": "SANDBOX-PRODUCT"},
            "price": {"amount": 10, "currency": "EUR"},
        }
    ]


def event_data(
    kind: str, action_id: str, channel_order_id: str, order: dict[str, Any] | None
) -> dict[str, Any]:
    """``data`` of one event of type ``kind`` for the order (its lines, or made-up ones)."""
    lines = _lines(order, channel_order_id)
    data: dict[str, Any] = {
        "action_id": action_id,
        "channel_id": order["channel_id"] if order else "SANDBOX",
        "channel_store_id": order["channel_store_id"] if order else "SANDBOX-STORE",
        "channel_order_id": channel_order_id,
    }
    if kind == "ACCEPT":
        data["order_lines"] = [
            {"accepted": True, "channel_order_line_id": line.get("channel_order_line_id", "")}
            for line in lines
        ]
    elif kind == "CANCEL":
        data["cancelations"] = [
            {
                "channel_order_line_id": line.get("channel_order_line_id", ""),
                "product_id": str(line.get("product", {}).get("id", "")),
                "quantity": line.get("quantity", 1),
                "price": line.get("price", {"amount": 0, "currency": "EUR"}),
                "reason": "CUSTOMER_CANCELATION",
                "shipping_price": {"amount": 0, "currency": "EUR"},
            }
            for line in lines
        ]
    elif kind == "CREATE_SHIPMENT":
        data["carrier"] = "UPS"
        data["tracking_number"] = "1Z999AA1234567890"
        data["items"] = [
            {
                "channel_order_line_id": line.get("channel_order_line_id", ""),
                "id": str(line.get("product", {}).get("id", "")),
                "quantity": line.get("quantity", 1),
            }
            for line in lines
        ]
    else:
        raise ValueError(f"type must be one of {', '.join(TYPES)} (got {kind!r})")
    return data


def order_action_event(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": ulid(), "time": iso_z(utc_now()), "type": kind, "data": data}


@dataclass(frozen=True)
class EventQueue:
    """The SQS queue the sandbox publishes to (``endpoint_url``: another SQS-compatible one)."""

    queue_url: str
    endpoint_url: str | None = None
    region: str = "us-east-1"


class EventPublisher:
    """Sends events to the queue; a failure is a ValueError saying which queue and why."""

    def __init__(self, queue: EventQueue) -> None:
        import boto3  # only a sandbox started with an events queue needs it
        from botocore.config import Config

        options: dict[str, Any] = {"region_name": queue.region}
        if queue.endpoint_url:
            options["endpoint_url"] = queue.endpoint_url
        # The admin call that creates actions waits for the publication: fail in seconds.
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)
        self._client: Any = boto3.session.Session().client("sqs", config=config, **options)
        self.queue = queue

    def publish(self, events: Sequence[dict[str, Any]]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for start in range(0, len(events), BATCH):
            entries = [
                {"Id": str(index), "MessageBody": orjson.dumps(event).decode()}
                for index, event in enumerate(events[start : start + BATCH])
            ]
            try:
                answer = self._client.send_message_batch(
                    QueueUrl=self.queue.queue_url, Entries=entries
                )
            except (BotoCoreError, ClientError) as error:
                raise ValueError(
                    f"cannot publish the order action events to {self.queue.queue_url}: "
                    f"{type(error).__name__}"
                ) from None
            if answer.get("Failed"):
                raise ValueError(
                    f"the queue {self.queue.queue_url} refused {len(answer['Failed'])} event(s)"
                )

    def close(self) -> None:
        self._client.close()
