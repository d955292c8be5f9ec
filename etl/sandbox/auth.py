"""OAuth2 client-credentials token endpoint and the bearer check in front of every API route."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import threading
from collections.abc import Callable, Sequence
from urllib.parse import parse_qs, unquote_plus

from .config import SandboxConfig
from .wire import Handled, LogView, Request, Response, error_response, json_response

# RFC 6749 section 5.1: token responses must not be cached.
NO_STORE = (("Cache-Control", "no-store"), ("Pragma", "no-cache"))
REDACTED = "<redacted>"


class TokenIssuer:
    """Issued tokens, when each expires and which client it was issued to; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._issued: dict[str, tuple[float, str]] = {}  # token -> (expiry, client id)

    def issue(self, ttl: float, client_id: str = "") -> str:
        """A new random token valid for ``ttl`` seconds, for ``client_id``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = self._clock()
            # Forget expired tokens so a long run does not grow the table without bound.
            self._issued = {t: e for t, e in self._issued.items() if e[0] > now}
            self._issued[token] = (now + ttl, client_id)
        return token

    def is_valid(self, token: str) -> bool:
        """True for an issued token that has neither expired nor been revoked."""
        return self.client_of(token) is not None

    def client_of(self, token: str) -> str | None:
        """The client a valid token was issued to; None for any other token."""
        with self._lock:
            issued = self._issued.get(token)
            if issued is None or self._clock() >= issued[0]:
                return None
            return issued[1]

    def revoke_all(self) -> None:
        """Invalidate every issued token (the static token, if any, stays valid)."""
        with self._lock:
            self._issued.clear()


def _same(given: str | None, expected: str) -> bool:
    # Constant-time, so the sandbox does not teach clients to rely on timing.
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(header: str | None) -> list[tuple[str, str]] | None:
    """Candidate (client_id, client_secret) pairs from ``Authorization: Basic``.

    RFC 6749 2.3.1 form-encodes both before base64, but many clients (requests' HTTPBasicAuth)
    do not; accepting the raw and the decoded reading serves both.
    """
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return []
    client_id, sep, client_secret = decoded.partition(":")
    if not sep:
        return []
    return [(client_id, client_secret), (unquote_plus(client_id), unquote_plus(client_secret))]


def token_endpoint(request: Request, config: SandboxConfig, issuer: TokenIssuer) -> Handled:
    """``POST /oauth/token``: client credentials (form body or HTTP Basic) -> bearer token."""
    try:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
    except UnicodeDecodeError:
        form = {}
    basic = _basic_credentials(request.headers.get("authorization"))
    candidates: Sequence[tuple[str | None, str | None]] = (
        basic if basic is not None else [(form.get("client_id"), form.get("client_secret"))]
    )
    logged_form = {k: (REDACTED if k == "client_secret" else v) for k, v in form.items()}
    if basic is not None:
        logged_form["authorization"] = "Basic " + REDACTED

    def answer(response: Response, logged: object) -> Handled:
        return Handled(response=response, log_view=LogView(body=logged_form, response=logged))

    matched = [
        known_id
        for client_id, client_secret in candidates
        for known_id, known_secret in config.clients()
        if _same(client_id, known_id) and _same(client_secret, known_secret)
    ]
    if not matched:
        body = {"error": "invalid_client", "error_description": "Client authentication failed"}
        challenge = (("WWW-Authenticate", 'Basic realm="sandbox"'),)
        return answer(json_response(401, body, NO_STORE + challenge), body)
    grant_type = form.get("grant_type")
    if grant_type is None:
        body = {"error": "invalid_request", "error_description": "grant_type is missing"}
        return answer(json_response(400, body, NO_STORE), body)
    if grant_type != "client_credentials":
        body = {"error": "unsupported_grant_type"}
        return answer(json_response(400, body, NO_STORE), body)
    ttl = config.token_ttl
    # expires_in never overstates the lifetime: a client caching for that long stays safe.
    body_out = {
        "access_token": issuer.issue(ttl, matched[0]),
        "token_type": "Bearer",
        "expires_in": int(ttl),
    }
    return answer(json_response(200, body_out, NO_STORE), {**body_out, "access_token": REDACTED})


STATIC_TOKEN_CLIENT = "static token"  # the caller of the static token, in the request log


def caller(request: Request, config: SandboxConfig, issuer: TokenIssuer) -> str | None:
    """The client whose valid bearer token the request carries; None without one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if config.static_token is not None and _same(token, config.static_token):
        return STATIC_TOKEN_CLIENT
    return issuer.client_of(token)


def check_bearer(request: Request, config: SandboxConfig, issuer: TokenIssuer) -> Response | None:
    """None when the request carries a valid bearer token, else the 401 to answer."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        message = "Missing bearer token (Authorization: Bearer <token>)"
    elif (config.static_token is not None and _same(token, config.static_token)) or (
        issuer.is_valid(token)
    ):
        return None
    else:
        message = "The bearer token is invalid, expired or revoked"
    challenge = (("WWW-Authenticate", 'Bearer realm="sandbox"'),)
    return error_response(401, "UNAUTHORIZED", message, headers=challenge)
