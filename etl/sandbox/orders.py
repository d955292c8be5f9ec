"""``POST /api/channel-platform/v1/orders`` (upsertOrders): validate all or nothing, then store."""

from __future__ import annotations

from .config import SandboxConfig
from .validation import OrdersValidator, invalid_input
from .wire import NOT_JSON, Handled, OrdersWrite, Request, Response, error_response

UPSERT_ORDERS_PATH = "/api/channel-platform/v1/orders"


def upsert_orders(request: Request, config: SandboxConfig, validator: OrdersValidator) -> Handled:
    """Validate the whole request; 204 with the orders to store, or the error to answer."""
    document = request.document
    if document is NOT_JSON:
        return Handled(error_response(400, "INVALID_INPUT", "The request body is not valid JSON"))
    problems = validator.problems(document)
    if problems:
        return Handled(invalid_input(problems, config.omit_field, "no order was saved"))
    # The schema guarantees the shapes read below.
    origin = document["origin"]
    channel_id, store_id = origin["channel_id"], origin["channel_store_id"]
    if config.known_stores is not None and (channel_id, store_id) not in config.known_stores:
        message = f"Unknown channel or store: channel {channel_id!r}, store {store_id!r}"
        return Handled(error_response(404, "DATA_NOT_FOUND", message))
    return Handled(
        Response(status=204),
        write=OrdersWrite(channel_id, store_id, document["orders"]),
    )
