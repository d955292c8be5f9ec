"""Dispatch: admin routes aside, each request meets faults, auth, then its route; all are logged."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from . import admin
from .auth import TokenIssuer, check_bearer, token_endpoint
from .config import SandboxConfig
from .faults import Fault, FaultInjector, parse_plan
from .orders import UPSERT_ORDERS_PATH, upsert_orders
from .store import RequestRecord, Store
from .validation import OrdersValidator
from .wire import Handled, Request, Response, error_response, status_code_name

TOKEN_PATH = "/oauth/token"
API_PREFIX = "/api/"

log = logging.getLogger(__name__)

Route = Callable[[Request], Handled]


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
    ) -> None:
        self.store = store
        self.config = config  # swapped whole by configure(); readers see one or the other
        self.tokens = TokenIssuer(clock)
        self.faults = FaultInjector()
        self._validator = OrdersValidator()
        self._wait = wait  # returns early when the server stops, so delays never block shutdown
        self._routes: dict[str, dict[str, Route]] = {
            TOKEN_PATH: {"POST": lambda r: token_endpoint(r, self.config, self.tokens)},
            UPSERT_ORDERS_PATH: {"POST": lambda r: upsert_orders(r, self.config, self._validator)},
        }

    # -- serving -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """Answer one request; None means close the connection without answering."""
        if admin.is_admin(request.path):
            return admin.handle(self, request)
        fault = self.faults.pick(request.path)
        if fault is not None:
            if fault.delay:
                self._wait(fault.delay)
            if fault.drop:
                self._record(request, None, fault)
                return None
            if fault.status is not None:
                return self._record(request, Handled(fault_response(fault)), fault)
        return self._record(request, self._route(request), fault)

    def _route(self, request: Request) -> Handled:
        if request.path.startswith(API_PREFIX):
            denied = check_bearer(request, self.config, self.tokens)
            if denied is not None:
                return Handled(denied)
        methods = self._routes.get(request.path)
        if methods is None:
            message = f"No operation at {request.method} {request.path}"
            return Handled(error_response(404, "DATA_NOT_FOUND", message))
        route = methods.get(request.method)
        if route is None:
            allow = (("Allow", ", ".join(sorted(methods))),)
            message = f"{request.method} is not allowed on {request.path}"
            return Handled(error_response(405, "METHOD_NOT_ALLOWED", message, headers=allow))
        return route(request)

    def _record(
        self, request: Request, handled: Handled | None, fault: Fault | None
    ) -> Response | None:
        """Log the request and store its orders in one transaction; the answer if that worked."""
        record = _record_of(request, handled, fault)
        write = None if handled is None else handled.write
        try:
            self.store.commit(record, write)
        except sqlite3.Error:
            log.exception("sandbox store failed on %s %s", request.method, request.path)
            failed = error_response(500, "INTERNAL_SERVER_ERROR", "The sandbox could not store it")
            self.store.commit(_record_of(request, Handled(failed), fault))
            return failed
        return None if handled is None else handled.response

    # -- the operations behind the admin routes (also the Python API) --------------------

    def requests_log(self, path: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        """Every API request received (after seq ``since``), oldest first."""
        return self.store.requests(path=path, since=since)

    def stored_orders(self) -> list[dict[str, Any]]:
        """Every stored order with its channel, store and body."""
        return self.store.orders()

    def reset(self) -> None:
        """Forget orders, requests, tokens and faults (settings stay)."""
        self.faults.clear()
        self.tokens.revoke_all()
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
        """Change omit_field / known_stores / token_ttl; returns the settings (no secrets)."""
        self.config = self.config.updated(changes)
        return self.config.public()


def _record_of(request: Request, handled: Handled | None, fault: Fault | None) -> RequestRecord:
    document = request.document
    orders = document.get("orders") if isinstance(document, dict) else None
    body: str | None
    response: str | None
    if handled is not None and handled.log_view is not None:
        body = orjson.dumps(handled.log_view.body).decode()
        response = orjson.dumps(handled.log_view.response).decode()
    else:
        body = request.body.decode("utf-8", "replace") or None
        response = None if handled is None else (handled.response.body.decode() or None)
    return RequestRecord(
        method=request.method,
        path=request.path,
        status=None if handled is None else handled.response.status,
        fault=None if fault is None else fault.to_json(),
        orders=len(orders) if isinstance(orders, list) else None,
        body=body,
        response=response,
    )
