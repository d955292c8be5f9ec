"""Plain values passed between the HTTP layer, the routes and the store, and the JSON they speak."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from functools import cached_property
from http import HTTPStatus
from typing import Any, TypeAlias

import orjson


class NotJson(Enum):
    """The body did not parse as JSON (a sentinel: ``None`` is valid JSON)."""

    NOT_JSON = "not-json"


NOT_JSON = NotJson.NOT_JSON


@dataclass(frozen=True)
class Request:
    """One HTTP request as read off the socket."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    client_host: str
    server_port: int = 0  # the port the sandbox listens on (0: not known, as in a unit test)
    # When it arrived, read off the socket ('' in a unit test: logged when it is stored). A
    # rate is measured from arrivals: handling a large body takes a variable while.
    received_at: str = ""

    @cached_property
    def document(self) -> Any:
        """The body parsed as JSON, or NOT_JSON."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return NOT_JSON


@dataclass(frozen=True)
class Response:
    """What to answer; ``body`` is already encoded."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class OrdersWrite:
    """Orders a valid upsertOrders request asks to store, all under one origin."""

    channel_id: str
    channel_store_id: str
    orders: list[dict[str, Any]]


@dataclass(frozen=True)
class LogView:
    """What the request log shows instead of the raw exchange (when that carries secrets)."""

    body: Any
    response: Any


@dataclass(frozen=True)
class Handled:
    """A route's answer, what it wants stored, and how the request log may show it."""

    response: Response
    write: OrdersWrite | None = None
    log_view: LogView | None = None


# A route whose answer depends on stored state returns one of these: the app calls it inside the
# request's transaction, so the check and the change (and the log line) cannot interleave.
Deferred: TypeAlias = Callable[[sqlite3.Connection], Handled]
Outcome: TypeAlias = Handled | Deferred


def logged_as(response: Response, body: Any) -> Handled:
    """The answer, with the request log showing ``body`` instead of the raw request body."""
    shown = orjson.loads(response.body) if response.body else None
    return Handled(response, log_view=LogView(body=body, response=shown))


def json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response with the right content type."""
    return Response(
        status=status,
        body=orjson.dumps(payload),
        headers=(("Content-Type", "application/json"), *headers),
    )


def error_response(
    status: int,
    code: str,
    message: str,
    errors: list[dict[str, str]] | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> Response:
    """The API's ``Error`` body: ``{"code", "message", "errors"?}``."""
    payload: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        payload["errors"] = errors
    return json_response(status, payload, headers)


def status_code_name(status: int) -> str:
    """``TOO_MANY_REQUESTS`` for 429: the error code the sandbox uses for a bare status."""
    try:
        return HTTPStatus(status).name
    except ValueError:
        return f"HTTP_{status}"


def iso_z(moment: datetime) -> str:
    """``2024-05-01T10:00:00.000Z``: UTC, milliseconds, a ``Z``, as every sandbox date-time."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utc_now() -> datetime:
    """The wall clock, timezone-aware."""
    return datetime.now(UTC)
