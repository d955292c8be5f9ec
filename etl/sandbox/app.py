"""Dispatch: admin routes aside, each request meets faults, auth, then its route; all are logged."""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from . import admin
from .action_events import TYPES as EVENT_TYPES
from .action_events import EventPublisher, event_data, order_action_event
from .actions import (
    ACTION_STATUS_PATH,
    REPORT_ACTIONS_PATH,
    UPDATE_ACTION_STATUS_PATH,
    Actions,
)
from .actions import TABLE as ACTIONS_TABLE
from .anonymize import ANONYMIZE_AFTER_PATH, Anonymizations
from .anonymize import TABLE as ANONYMIZATIONS_TABLE
from .auth import TokenIssuer, caller, check_bearer, token_endpoint
from .budget import ClientBudget
from .config import SandboxConfig
from .documents import DELETE_DOCUMENT_PATH, JSON_PARTS, UPLOAD_DOCUMENT_PATH, Documents
from .documents import TABLE as DOCUMENTS_TABLE
from .faults import Fault, FaultInjector, parse_plan
from .multipart import describe_body, is_form_data
from .orders import UPSERT_ORDERS_PATH, upsert_orders
from .pacing import too_many_requests
from .routing import RouteTable
from .store import RequestRecord, Store
from .validation import OrdersValidator
from .wire import (
    NOT_JSON,
    Handled,
    Outcome,
    Request,
    Response,
    error_response,
    iso_z,
    json_response,
    status_code_name,
    utc_now,
)

TOKEN_PATH = "/oauth/token"
API_PREFIX = "/api/"
# The tables the operations keep beside the request log and the orders (Store creates them).
TABLES = (ACTIONS_TABLE, DOCUMENTS_TABLE, ANONYMIZATIONS_TABLE)

log = logging.getLogger(__name__)

Route = Callable[[Request, dict[str, str]], Outcome]


def fault_response(fault: Fault) -> Response:
    """The answer an injected error status gets: an Error body, and Retry-After when scripted."""
    assert fault.status is not None
    headers = () if fault.retry_after is None else (("Retry-After", fault.retry_after),)
    code = status_code_name(fault.status)
    message = f"{code.replace('_', ' ').capitalize()} (fault injected by the sandbox)"
    return error_response(fault.status, code, message, headers=headers)


class SandboxApp:
    """The sandbox without its sockets: request in, response out (None: drop the connection)."""

    def __init__(
        self,
        store: Store,
        config: SandboxConfig,
        *,
        clock: Callable[[], float],
        wait: Callable[[float], object],
        events: EventPublisher | None = None,
    ) -> None:
        self.store = store
        self.events = events  # where created actions are announced, as Connect's events
        self.config = config  # swapped whole by configure(); readers see one or the other
        self.tokens = TokenIssuer(clock)
        self.budget = ClientBudget(clock)
        self.faults = FaultInjector()
        self._validator = OrdersValidator()
        self._wait = wait  # returns early when the server stops, so delays never block shutdown
        self._actions = Actions(lambda: self.config, clock)
        self._documents = Documents(lambda: self.config)
        self._anonymizations = Anonymizations(lambda: self.config)
        self._routes = RouteTable[Route](
            {
                TOKEN_PATH: {"POST": lambda r, _: token_endpoint(r, self.config, self.tokens)},
                UPSERT_ORDERS_PATH: {
                    "POST": lambda r, _: upsert_orders(r, self.config, self._validator)
                },
                UPDATE_ACTION_STATUS_PATH: {"PUT": self._actions.update_status},
                REPORT_ACTIONS_PATH: {"POST": self._actions.report},
                ACTION_STATUS_PATH: {"GET": self._actions.status},
                ANONYMIZE_AFTER_PATH: {"PUT": self._anonymizations.update},
                UPLOAD_DOCUMENT_PATH: {"POST": self._documents.upload},
                DELETE_DOCUMENT_PATH: {"DELETE": self._documents.delete},
            }
        )

    # -- serving -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer one request; None means close the connection without answering."""
        if admin.is_admin(request.path):
            return admin.handle(self, request)
        received = iso_z(utc_now())
        # Known before faults and auth, so that every request of a client is logged as its own.
        client = caller(request, self.config, self.tokens)
        seen = RequestSeen(received, client)
        fault = self.faults.pick(request.path)
        if fault is not None:
            if fault.delay:
                self._wait(fault.delay)
            if fault.drop:
                self._record(request, None, fault, seen)
                return None
            if fault.status is not None:
                return self._record(request, Handled(fault_response(fault)), fault, seen)
        return self._record(request, self._route(request, client), fault, seen)

    def _route(self, request: Request, client: str | None) -> Outcome:
        if request.path.startswith(API_PREFIX):
            denied = check_bearer(request, self.config, self.tokens)
            if denied is not None:
                return Handled(denied)
            limit = self.config.rate_limit
            left = 0.0 if limit is None or client is None else self.budget.admit(client, limit)
            if left > 0:
                what = f"Over {limit:g} requests per second for client {client}"
                return Handled(too_many_requests(left, what))
        match = self._routes.resolve(request.method, request.path)
        if match is None:
            # As a gateway answers a path it has no route for: not the API's Error body, which
            # names a resource that does not exist (a store, an action, a document).
            message = f"No operation at {request.method} {request.path}"
            body = {"status": 404, "error": "Not Found", "path": request.path, "message": message}
            return Handled(json_response(404, body))
        if match.route is None:
            allow = (("Allow", ", ".join(match.allowed)),)
            message = f"{request.method} is not allowed on {request.path}"
            return Handled(error_response(405, "METHOD_NOT_ALLOWED", message, headers=allow))
        return match.route(request, match.params)

    def _record(
        self, request: Request, outcome: Outcome | None, fault: Fault | None, seen: RequestSeen
    ) -> Response | None:
        """Log the request and make its changes in one transaction; the answer if that worked.

        A deferred outcome decides inside that transaction, so what it checked still holds
        when it writes.
        """
        handled: Handled | None
        try:
            if outcome is None or isinstance(outcome, Handled):
                handled = outcome
                record = _record_of(request, handled, fault, seen)  # outside the lock: may parse
                self.store.commit(record, None if handled is None else handled.write)
            else:
                with self.store.transaction() as db:
                    handled = outcome(db)
                    self.store.log(db, _record_of(request, handled, fault, seen), handled.write)
        except sqlite3.Error:
            log.exception("sandbox store failed on %s %s", request.method, request.path)
            failed = error_response(500, "INTERNAL_SERVER_ERROR", "The sandbox could not store it")
            self.store.commit(_record_of(request, Handled(failed), fault, seen))
            return failed
        return None if handled is None else handled.response

    # -- the operations behind the admin routes (also the Python API) --------------------

    def requests_log(
        self, path: str | None = None, since: int = 0, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every API request received (after seq ``since``; of ``client_id``), oldest first."""
        return self.store.requests(path=path, since=since, client_id=client_id)

    def stored_orders(self) -> list[dict[str, Any]]:
        """Every stored order with its channel, store and body."""
        return self.store.orders()

    def counts(
        self, path: str | None = None, since: int = 0, client_id: str | None = None
    ) -> dict[str, int]:
        """``requests`` received after seq ``since`` (on ``path``, of ``client_id``),
        ``orders`` stored, and the ``last_seq`` so far, without reading a body."""
        return self.store.counts(path=path, since=since, client_id=client_id)

    def create_actions(
        self,
        count: int | None = None,
        action_ids: Sequence[str] | None = None,
        event_type: str = "ACCEPT",
        channel_order_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """New PENDING command actions (``count`` uuid4 ids, or ``action_ids``; default one).

        With an events queue, one OrderActionEvent of ``event_type`` per action is published about
        ``channel_order_id`` (a stored order's lines, else made-up ones) before the actions
        exist: a queue that refuses them leaves none created (ValueError)."""
        if event_type not in EVENT_TYPES:
            raise ValueError(f"type must be one of {', '.join(EVENT_TYPES)} (got {event_type!r})")
        stored = [o for o in self.store.orders() if o["channel_order_id"] == channel_order_id]
        with self.store.transaction() as db:
            created = self._actions.create(db, count=count, action_ids=action_ids)
            if self.events is not None:
                events = []
                for number, action in enumerate(created, start=1):
                    order_id = channel_order_id or f"SANDBOX-ORDER-{number}"
                    data = event_data(
                        event_type, action["id"], order_id, stored[0] if stored else None
                    )
                    events.append(order_action_event(event_type, data))
                self.events.publish(events)
            return created

    def actions(self) -> list[dict[str, Any]]:
        """Every action, command and reported, with status, errors, created/updated times."""
        with self.store.transaction() as db:
            return self._actions.listing(db)

    def documents(self) -> list[dict[str, Any]]:
        """Every stored document (metadata, size and sha256; never the bytes)."""
        with self.store.transaction() as db:
            return self._documents.listing(db)

    def anonymizations(self) -> list[dict[str, Any]]:
        """Every stored anonymize_after date, per channel and order."""
        with self.store.transaction() as db:
            return self._anonymizations.listing(db)

    def reset(self) -> None:
        """Forget orders, requests, actions, documents, anonymizations, call-frequency
        history, tokens and faults (settings stay)."""
        self.faults.clear()
        self.tokens.revoke_all()
        self.budget.clear()
        self._actions.pacer.clear()
        self.store.reset()

    def set_faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Install a fault plan (the ``POST /_sandbox/faults`` body); ValueError if malformed."""
        plan = parse_plan(spec)
        self.faults.set(plan)
        return plan.to_json()

    def clear_faults(self) -> None:
        """No more faults."""
        self.faults.clear()

    def revoke_tokens(self) -> None:
        """Every issued token answers 401 from now on."""
        self.tokens.revoke_all()

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change run-time settings (``config.RUN_TIME_SETTINGS``); returns them (no secrets)."""
        self.config = self.config.updated(changes)
        return self.config.public()


@dataclass(frozen=True)
class RequestSeen:
    """When a request came (wall-clock UTC) and which client sent it (None: no valid token)."""

    received: str
    client: str | None


def _record_of(
    request: Request, handled: Handled | None, fault: Fault | None, seen: RequestSeen
) -> RequestRecord:
    body: str | bytes | None
    response: str | None
    orders = None
    if handled is not None and handled.log_view is not None:
        body = orjson.dumps(handled.log_view.body).decode()
        response = orjson.dumps(handled.log_view.response).decode()
    else:
        body = logged_body(request)
        response = None if handled is None else (handled.response.body.decode() or None)
        multipart = is_form_data(request.headers.get("content-type", ""))
        document = None if multipart else request.document
        listed = document.get("orders") if isinstance(document, dict) else None
        orders = len(listed) if isinstance(listed, list) else None
    return RequestRecord(
        method=request.method,
        path=request.path,
        status=None if handled is None else handled.response.status,
        fault=None if fault is None else fault.to_json(),
        orders=orders,
        body=body,
        response=response,
        received=seen.received,
        client_id=seen.client,
    )


def logged_body(request: Request) -> str | bytes | None:
    """The body as the request log keeps it: text as sent (JSON as its UTF-8 bytes); multipart
    as its parts' names, sizes and hashes (with the JSON parts parsed); other binary as its size
    and hash."""
    content_type = request.headers.get("content-type", "")
    if is_form_data(content_type):
        return orjson.dumps(describe_body(content_type, request.body, JSON_PARTS)).decode()
    if request.document is not NOT_JSON:
        # orjson parsed it, so it is valid UTF-8: no need to decode it to know it is text.
        return request.body
    try:
        return request.body.decode("utf-8") or None
    except UnicodeDecodeError:
        summary = {
            "content_type": content_type or None,
            "size": len(request.body),
            "sha256": hashlib.sha256(request.body).hexdigest(),
        }
        return orjson.dumps(summary).decode()
