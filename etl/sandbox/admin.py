"""Admin routes under ``/_sandbox/`` (loopback only): inspect what arrived, script faults, reset."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .wire import NOT_JSON, Request, Response, error_response, json_response

if TYPE_CHECKING:
    from .app import SandboxApp

PREFIX = "/_sandbox/"
LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
# The names this machine's programs reach the sandbox by; a page whose own name was made to
# resolve to 127.0.0.1 (DNS rebinding) still sends that name in Host.
OWN_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON = "application/json"

AdminRoute = Callable[["SandboxApp", Request], Response]


def is_admin(path: str) -> bool:
    """True for the reserved prefix (no auth, no faults, not logged)."""
    return path.startswith(PREFIX) or path == PREFIX.rstrip("/")


def _object_body(request: Request, *, required: bool) -> dict[str, Any]:
    if not request.body.strip() and not required:
        return {}
    document = request.document
    if document is NOT_JSON or not isinstance(document, dict):
        raise ValueError("the body must be a JSON object")
    return document


def _ok(payload: dict[str, Any] | None = None) -> Response:
    return json_response(200, {"ok": True} if payload is None else payload)


def _log_filter(request: Request) -> tuple[str | None, int, str | None]:
    """``?path=``, ``?since=`` and ``?client_id=`` of the request-log routes."""
    path = request.query.get("path", [None])[-1]
    since_text = request.query.get("since", ["0"])[-1]
    if not since_text.isdigit():
        raise ValueError("since must be a request seq (a non-negative integer)")
    client_id = request.query.get("client_id", [None])[-1]
    return path, int(since_text), client_id


def _requests(app: SandboxApp, request: Request) -> Response:
    path, since, client_id = _log_filter(request)
    return _ok({"requests": app.requests_log(path=path, since=since, client_id=client_id)})


def _counts(app: SandboxApp, request: Request) -> Response:
    path, since, client_id = _log_filter(request)
    return _ok(app.counts(path=path, since=since, client_id=client_id))


def _orders(app: SandboxApp, request: Request) -> Response:
    return _ok({"orders": app.stored_orders()})


def _actions(app: SandboxApp, request: Request) -> Response:
    return _ok({"actions": app.actions()})


def _create_actions(app: SandboxApp, request: Request) -> Response:
    body = _object_body(request, required=False)
    unknown = set(body) - {"count", "action_ids", "type", "channel_order_id"}
    if unknown:
        raise ValueError(
            f"unknown keys: {sorted(unknown)} (expected count or action_ids, type, "
            "channel_order_id)"
        )
    order = body.get("channel_order_id")
    if order is not None and not isinstance(order, str):
        raise ValueError("channel_order_id must be a string")
    created = app.create_actions(
        count=body.get("count"),
        action_ids=body.get("action_ids"),
        event_type=str(body.get("type", "ACCEPT")),
        channel_order_id=order,
    )
    return _ok({"actions": created})


def _documents(app: SandboxApp, request: Request) -> Response:
    return _ok({"documents": app.documents()})


def _anonymizations(app: SandboxApp, request: Request) -> Response:
    return _ok({"anonymizations": app.anonymizations()})


def _reset(app: SandboxApp, request: Request) -> Response:
    app.reset()
    return _ok()


def _get_faults(app: SandboxApp, request: Request) -> Response:
    return _ok({"plan": app.faults.describe()})


def _set_faults(app: SandboxApp, request: Request) -> Response:
    return _ok({"plan": app.set_faults(_object_body(request, required=True))})


def _clear_faults(app: SandboxApp, request: Request) -> Response:
    app.clear_faults()
    return _ok()


def _revoke(app: SandboxApp, request: Request) -> Response:
    app.revoke_tokens()
    return _ok()


def _get_config(app: SandboxApp, request: Request) -> Response:
    return _ok(app.config.public())


def _set_config(app: SandboxApp, request: Request) -> Response:
    return _ok(app.configure(_object_body(request, required=True)))


ROUTES: dict[str, dict[str, AdminRoute]] = {
    PREFIX + "requests": {"GET": _requests},
    PREFIX + "counts": {"GET": _counts},
    PREFIX + "orders": {"GET": _orders},
    PREFIX + "actions": {"GET": _actions, "POST": _create_actions},
    PREFIX + "documents": {"GET": _documents},
    PREFIX + "anonymizations": {"GET": _anonymizations},
    PREFIX + "reset": {"POST": _reset},
    PREFIX + "faults": {"GET": _get_faults, "POST": _set_faults, "DELETE": _clear_faults},
    PREFIX + "tokens/revoke": {"POST": _revoke},
    PREFIX + "config": {"GET": _get_config, "POST": _set_config},
}


def refusal(request: Request) -> Response | None:
    """403 unless the request comes from this machine and names the sandbox by its own
    address; 415 for a write that is not JSON, which no web page can send to another site
    without the browser asking the sandbox first (a form or a no-cors fetch cannot)."""
    if request.client_host not in LOOPBACK:
        return error_response(403, "FORBIDDEN", "Admin routes answer loopback clients only")
    own = {f"{host}:{request.server_port}" for host in OWN_HOSTS}
    if request.headers.get("host", "").lower() not in own:
        return error_response(
            403,
            "FORBIDDEN",
            "Admin routes answer requests whose Host header is the sandbox's own address "
            f"({' or '.join(sorted(own))}), not a name a web page chose",
        )
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if request.method in WRITES and content_type != JSON:
        return error_response(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Admin writes must be sent with Content-Type: {JSON} (even without a body)",
        )
    return None


def handle(app: SandboxApp, request: Request) -> Response:
    """Answer an admin request, once ``refusal`` finds nothing against it."""
    refused = refusal(request)
    if refused is not None:
        return refused
    methods = ROUTES.get(request.path.rstrip("/"))
    if methods is None:
        known = ", ".join(sorted(ROUTES))
        return error_response(404, "DATA_NOT_FOUND", f"No admin route here; known: {known}")
    route = methods.get(request.method)
    if route is None:
        allow = (("Allow", ", ".join(sorted(methods))),)
        return error_response(405, "METHOD_NOT_ALLOWED", "Method not allowed", headers=allow)
    try:
        return route(app, request)
    except ValueError as error:
        return error_response(400, "INVALID_INPUT", str(error))
