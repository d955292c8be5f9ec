"""HTTP seam to Mirakl Connect: session, auth, pacing, retry policy, error mapping.

``classify`` alone decides what a response means (done / retry / reject / give up); it is a pure
function tested as a table. Time is injected (``clock``, ``sleep``) so retry tests do not wait.
Nothing here logs or raises a token, a secret or a request body.
"""

from __future__ import annotations

import email.utils
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import orjson
import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from etl.core.errors import (
    ApiError,
    ApiMisconfigured,
    AuthFailed,
    NotFound,
    OutcomeUnknown,
    RejectedRequest,
    RetriableApiError,
)
from etl.core.version import __version__
from etl.deliver.transport import AnswerNotRead, deadline, read_whole, with_deadlines
from etl.settings.config import Settings

TOKEN_MARGIN_SECONDS = 60.0  # fetch a new token this long before the old one expires
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 60.0
MAX_RETRY_AFTER_SECONDS = 900.0  # a Retry-After longer than this means "down": give up instead
DEADLINE_READS = 4  # a call's whole answer comes within this many per-read timeouts
MAX_ANSWER_BYTES = 1 << 20  # the API's answers are a few KiB: more is not the API
# How a call can fail on the way: before the request left (see _never_sent), or after, its
# answer not read whole (then whether the server acted on it cannot be known).
NETWORK_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,  # the body was cut short
    requests.exceptions.ContentDecodingError,  # a body its encoding cannot decode
    AnswerNotRead,
)
UPSERT_ORDERS = "/channel-platform/v1/orders"
URL_FIX = "check api_url (CONNECT_API_URL): it ends with /api, e.g. https://miraklconnect.com/api"
# What a bearer token may hold: visible ASCII. Anything else cannot go in an Authorization
# header, and requests' refusal of the header would quote it, token and all.
BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
UNSENDABLE_TOKEN = (
    "the token holds characters an HTTP header cannot carry (a line break, a space, a control "
    "or non-ASCII character); check CONNECT_TOKEN or [connect] token, or the token endpoint's "
    "answer (the token is not shown here)"
)


@dataclass(frozen=True)
class Answer:
    """The success answer an operation documents (its OpenAPI ``responses``): the status and,
    for a JSON object, the fields the caller reads with their types (a text is never empty).
    No fields: no content."""

    status: int = 204
    fields: tuple[tuple[str, type], ...] = ()

    def __str__(self) -> str:
        if not self.fields:
            return f"{self.status} with no content"
        names = ", ".join(name for name, _ in self.fields)
        return f"{self.status} with a JSON object holding {names}"


@dataclass(frozen=True)
class Operation:
    """What the API's documentation says of one operation that decides how to call it."""

    name: str  # its pacing bucket, whatever ids its path holds
    idempotent: bool = True  # sending it twice does what sending it once does
    not_found_names_item: bool = False  # it documents a 404 about the resource it names
    answer: Answer = Answer()  # its success: any other 2xx is not one


UPSERT = Operation("upsertOrders", not_found_names_item=True)  # unknown channel or store
UPDATE_ACTION_STATUS = Operation("updateActionStatus", not_found_names_item=True)
ANONYMIZE = Operation("updateAnonymizeAfterDate")
UPLOAD_DOCUMENT = Operation("uploadOrderDocument", not_found_names_item=True)  # unknown store
DELETE_DOCUMENT = Operation("deleteOrderDocument", not_found_names_item=True)
# Each call creates actions with new ids: a resend after a lost answer reports them twice.
REPORT_ACTIONS = Operation(
    "reportActions", idempotent=False, answer=Answer(200, (("actions", list),))
)
GET_ACTION_STATUS = Operation(
    "getActionStatus", not_found_names_item=True, answer=Answer(200, (("status", str),))
)


class Verdict(StrEnum):
    OK = "ok"
    RETRY = "retry"
    REFRESH_TOKEN = "refresh-token"
    REJECTED = "rejected"
    NOT_FOUND = "not-found"
    AUTH_FAILED = "auth-failed"
    FATAL = "fatal"


def classify(status: int) -> Verdict:
    """What the caller must do with an HTTP status (DESIGN.md section 6)."""
    if 200 <= status < 300:
        return Verdict.OK
    if status == 429 or status >= 500:
        return Verdict.RETRY
    if status == 401:
        return Verdict.REFRESH_TOKEN
    if status == 403:
        return Verdict.AUTH_FAILED
    if status == 404:
        return Verdict.NOT_FOUND
    if status in (400, 409, 422):
        return Verdict.REJECTED
    return Verdict.FATAL


def status_unknown(status: int) -> bool:
    """An error status after which the server may have acted: 429 and 503 say "not now, not
    done"; a 500, or a gateway's 502 and 504, can come after the work was done."""
    return status >= 500 and status != 503


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - now).total_seconds())


# Connect counts a credential's requests over a sliding second, by when they arrive; on a busy
# machine a request can reach it tens of milliseconds later than the next one's schedule
# assumed, so the client keeps this much in hand (5% of the budget: 30/s sends 28.6/s).
WINDOW_GUARD_SECONDS = 0.05


@dataclass
class Pacer:
    """At most ``rate`` request starts per second for one operation, across threads: spaced
    1/rate apart, and never more than ``rate`` in any second even when some left late (the
    server's window is strict: 31 requests within a second are over a budget of 30)."""

    rate: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]
    _next: float = 0.0
    # The last ``rate`` starts, in the order they were given out: each a one-item list, the
    # planned start until the thread really starts, then when it did.
    _starts: deque[list[float]] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self) -> None:
        if self.rate <= 0:
            return
        budget = max(1, int(self.rate))  # whole requests in one window
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            if len(self._starts) >= budget:
                start = max(start, self._starts[-budget][0] + 1.0 + WINDOW_GUARD_SECONDS)
            self._next = start + 1.0 / self.rate
            # Counted now, not once started: threads still asleep hold their places, or the
            # next one given out would not see them in its window.
            slot = [start]
            self._starts.append(slot)
            while len(self._starts) > budget:
                self._starts.popleft()
        if start > now:
            self.sleep(start - now)
        with self._lock:
            # When it really starts: a sleep that ends late must not crowd the next window.
            slot[0] = max(start, self.clock())


class Pacing(Protocol):
    """What paces one operation's requests: ``Pacer`` in this process, or a budget shared by
    every worker sending with the same credential (etl/state/budget.py)."""

    def wait(self) -> None: ...


# (operation, requests per second, sleep) -> its pacing; the default is a Pacer per client.
PacingFactory = Callable[[str, float, Callable[[float], None]], Pacing]


class ClientMeter:
    """Told of every answer ``send`` sees and every retry, as they happen (the metrics count
    them); every default does nothing, so the client knows nothing of how they are counted."""

    def answered(self, operation: str, status: str) -> None:
        """An answer to ``operation``: its HTTP status, or ``network`` when none came."""

    def retried(self) -> None:
        """A request is about to be sent again."""


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    token_fetches: int = 0
    waited_seconds: float = 0.0
    waits: list[float] = field(default_factory=list)


class ConnectClient:
    """One keep-alive session to Connect, with its token, pacing and retry policy."""

    def __init__(
        self,
        settings: Settings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        meter: ClientMeter | None = None,
        pacing: PacingFactory | None = None,
    ) -> None:
        self.settings = settings
        self.pacing = pacing
        self.meter = meter or ClientMeter()
        self.session = with_deadlines(session or requests.Session())
        self.session.headers["User-Agent"] = f"mirakl-connect-etl/{__version__}"
        self.clock = clock
        self.wall_clock = wall_clock
        self._sleep = sleep
        self.rng = rng or random.Random()
        self.stats = ClientStats()
        # Several sender threads share this client: its counts and its pacers.
        self._shared_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires = 0.0
        self._token_lock = threading.Lock()
        self._pacers: dict[str, Pacing] = {}

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ConnectClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- auth -----------------------------------------------------------------------------------

    def _bearer(self) -> str:
        if self.settings.token:
            return self.settings.token.reveal()
        with self._token_lock:
            if self._token is None or self.clock() >= self._token_expires:
                self._fetch_token()
            assert self._token is not None
            return self._token

    def _forget_token(self) -> None:
        with self._token_lock:
            self._token = None

    def _fetch_token(self) -> None:
        self.stats.token_fetches += 1
        try:
            response = self._exchange(
                "POST",
                self.settings.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self.settings.client_id,
                    "client_secret": self.settings.client_secret.reveal(),
                },
            )
        except NETWORK_ERRORS as error:
            raise RetriableApiError(
                f"cannot reach the token endpoint {self.settings.token_url}: "
                f"{_describe_network_error(error)}"
            ) from None
        if 300 <= response.status_code < 400:
            location = response.headers.get("Location", "") or "(no Location)"
            raise ApiMisconfigured(
                f"the token endpoint {self.settings.token_url} answered {response.status_code}, "
                f"a redirect to {location}; redirects are not followed: check token_url "
                "(CONNECT_TOKEN_URL)",
                status=response.status_code,
            )
        if response.status_code == 429 or response.status_code >= 500:
            raise RetriableApiError(
                f"token endpoint answered {response.status_code}",
                status=response.status_code,
                retry_after=parse_retry_after(
                    response.headers.get("Retry-After"), self.wall_clock()
                ),
            )
        if response.status_code != 200:
            raise AuthFailed(
                f"the token endpoint refused the client credentials ({response.status_code}); "
                "check CONNECT_CLIENT_ID and CONNECT_CLIENT_SECRET",
                status=response.status_code,
            )
        try:
            payload = response.json()
            token = str(payload["access_token"])
            lifetime = float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise AuthFailed("the token endpoint answered without an access_token") from None
        self._token = token
        margin = min(TOKEN_MARGIN_SECONDS, lifetime / 10)
        self._token_expires = self.clock() + lifetime - margin

    # --- requests -------------------------------------------------------------------------------

    def _exchange(self, method: str, url: str, **options: Any) -> requests.Response:
        """One request and its answer read whole: within the call's deadline (a few per-read
        timeouts: a server dripping a byte a second never reaches the per-read one) and up to
        the size cap; AnswerNotRead otherwise. Redirects are not followed: a redirect would
        carry the secret, the token or the orders to another place."""
        seconds = self.settings.timeout * DEADLINE_READS
        with deadline(seconds) as at:
            try:
                response = self.session.request(
                    method,
                    url,
                    timeout=self.settings.timeout,
                    allow_redirects=False,
                    stream=True,
                    **options,
                )
                read_whole(response, MAX_ANSWER_BYTES)
            except NETWORK_ERRORS as error:
                if time.monotonic() < at or _never_sent(error):
                    raise
                raise AnswerNotRead(
                    f"no complete answer within the call's deadline ({seconds:g} s)"
                ) from error
        return response

    def pacer(self, operation: str, rate: float) -> Pacing:
        # Under a lock: two sender threads each making a pacer would send at twice the rate.
        with self._shared_lock:
            if operation not in self._pacers:
                if self.pacing is not None:
                    self._pacers[operation] = self.pacing(operation, rate, self.sleep)
                else:
                    self._pacers[operation] = Pacer(rate, self.clock, self.sleep)
            return self._pacers[operation]

    def sleep(self, seconds: float) -> None:
        with self._shared_lock:
            self.stats.waited_seconds += seconds
            self.stats.waits.append(seconds)
        self._sleep(seconds)

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [base, base * 2**attempt], capped."""
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)
        return self.rng.uniform(BACKOFF_BASE_SECONDS, max(BACKOFF_BASE_SECONDS, ceiling))

    def send(
        self,
        method: str,
        path: str,
        operation: Operation,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        files: dict[str, tuple[str | None, bytes, str]] | None = None,
        rate: float | None = None,
    ) -> requests.Response:
        """Send one API request, retrying what is worth retrying; raise ApiError otherwise.

        ``data`` is a JSON body already encoded; ``files`` sends multipart/form-data parts
        (name -> (filename, bytes, type)). A request whose answer was lost is sent again only
        when the operation is idempotent; otherwise OutcomeUnknown says so.
        """
        url = self.settings.api_url.rstrip("/") + path
        pacer = self.pacer(operation.name, rate or self.settings.requests_per_second)
        if json_body is not None:
            data = orjson.dumps(json_body)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            try:
                bearer = self._bearer()
            except RetriableApiError as error:  # the token endpoint itself is down: not sent
                self._retry_or_raise(error, attempt)
                continue
            if not BEARER_TOKEN.fullmatch(bearer):
                raise ApiMisconfigured(UNSENDABLE_TOKEN)
            # After the token: a token fetched first must not delay this request's arrival
            # while the next ones keep their times, which would crowd them into one second.
            pacer.wait()
            with self._shared_lock:
                self.stats.requests += 1
            try:
                response = self._exchange(
                    method,
                    url,
                    data=data,
                    files=files,
                    headers={**headers, "Authorization": f"Bearer {bearer}"},
                )
            except ValueError as error:
                # A header or URL requests (or http.client) cannot build; their messages quote
                # the value, which may be the token: only the kind of error is kept.
                raise ApiMisconfigured(
                    f"{method} {path}: the request could not be built ({type(error).__name__}); "
                    "check api_url and the token (the value is not shown here)"
                ) from None
            except NETWORK_ERRORS as error:
                self.meter.answered(operation.name, "network")
                what = f"{method} {path}: {_describe_network_error(error)}"
                if not operation.idempotent and not _never_sent(error):
                    raise OutcomeUnknown(
                        f"{what}; the request may have reached Connect, so it is not sent again "
                        "(it is not idempotent: a second call would act twice)"
                    ) from None
                self._retry_or_raise(RetriableApiError(what), attempt)
                continue
            self.meter.answered(operation.name, str(response.status_code))
            verdict = classify(response.status_code)
            misplaced = _misconfiguration(method, path, response, operation)
            if misplaced is not None:
                raise ApiMisconfigured(misplaced, status=response.status_code)
            if verdict is Verdict.OK:
                unexpected = _unexpected_answer(response, operation)
                if unexpected is None:
                    return response
                raise _not_the_answer(f"{method} {path} {unexpected}", response, operation)
            body = _json_or_empty(response)
            message = _api_message(method, path, response.status_code, body)
            code = str(body.get("code", ""))
            if (
                verdict is Verdict.RETRY
                and not operation.idempotent
                and status_unknown(response.status_code)
            ):
                raise OutcomeUnknown(
                    f"{message}; the server may have acted on it before failing, so it is not "
                    "sent again (it is not idempotent: a second call would act twice)",
                    status=response.status_code,
                    code=code,
                    body=body,
                )
            if verdict is Verdict.RETRY:
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), self.wall_clock()
                )
                self._retry_or_raise(
                    RetriableApiError(
                        message,
                        status=response.status_code,
                        code=code,
                        body=body,
                        retry_after=retry_after,
                    ),
                    attempt,
                )
                continue
            if verdict is Verdict.REFRESH_TOKEN and not refreshed and not self.settings.token:
                refreshed = True
                self._forget_token()
                continue
            if verdict in (Verdict.REFRESH_TOKEN, Verdict.AUTH_FAILED):
                raise AuthFailed(
                    f"{message}; check the credentials and their scopes",
                    status=response.status_code,
                    code=code,
                    body=body,
                )
            if verdict is Verdict.REJECTED:
                raise RejectedRequest(message, status=response.status_code, code=code, body=body)
            if verdict is Verdict.NOT_FOUND:
                raise NotFound(message, status=response.status_code, code=code, body=body)
            raise ApiError(message, status=response.status_code, code=code, body=body)

    def _retry_or_raise(self, error: RetriableApiError, attempt: int) -> None:
        if attempt >= self.settings.max_attempts:
            raise RetriableApiError(
                f"{error} (gave up after {attempt} attempts)",
                status=error.status,
                code=error.code,
                body=error.body,
                retry_after=error.retry_after,
            )
        if error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER_SECONDS:
            raise error
        wait = self.backoff(attempt)
        if error.retry_after is not None:
            wait = max(wait, error.retry_after)  # never earlier than the server asked
        with self._shared_lock:
            self.stats.retries += 1
        self.meter.retried()
        self.sleep(wait)

    def upsert_orders(self, body: bytes | dict[str, Any]) -> None:
        """POST /channel-platform/v1/orders (upsertOrders): 204 when every order is accepted.
        ``body``: the request's JSON as built (sent as it is), or a value to encode."""
        self.send("POST", UPSERT_ORDERS, UPSERT, **_json_argument(body))

    def update_action_status(self, action_id: str, body: dict[str, Any]) -> None:
        """PUT /channel-platform/v1/orders/actions/{action_id} (updateActionStatus)."""
        self.send(
            "PUT",
            f"/channel-platform/v1/orders/actions/{path_segment(action_id)}",
            UPDATE_ACTION_STATUS,
            json_body=body,
        )

    def update_anonymize_after(self, body: bytes | dict[str, Any]) -> None:
        """PUT /channel-platform/v1/orders/anonymize-after (updateAnonymizeAfterDate)."""
        path = "/channel-platform/v1/orders/anonymize-after"
        self.send("PUT", path, ANONYMIZE, **_json_argument(body))

    def upload_document(
        self,
        channel_order_id: str,
        content: bytes,
        filename: str,
        content_type: str,
        origin: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        """POST /channel-platform/v1/orders/{channel_order_id}/documents (multipart)."""
        self.send(
            "POST",
            f"/channel-platform/v1/orders/{path_segment(channel_order_id)}/documents",
            UPLOAD_DOCUMENT,
            files={
                "file": (filename, content, content_type),
                "origin": (None, orjson.dumps(origin), "application/json"),
                "metadata": (None, orjson.dumps(metadata), "application/json"),
            },
        )

    def delete_document(self, channel_document_id: str, origin: dict[str, Any]) -> None:
        """DELETE /channel-platform/v1/orders/documents/{channel_document_id}, origin in body."""
        self.send(
            "DELETE",
            f"/channel-platform/v1/orders/documents/{path_segment(channel_document_id)}",
            DELETE_DOCUMENT,
            json_body={"origin": origin},
        )

    def report_order_actions(self, body: dict[str, Any]) -> list[str]:
        """POST /v2/orders/actions (v2-reportOrderActions): the ids Connect gave the actions.

        Documented maximum: once per minute; the caller schedules flushes (``actions.py``),
        the pacer here is the last guard within one process.
        """
        response = self.send(
            "POST", "/v2/orders/actions", REPORT_ACTIONS, json_body=body, rate=1 / 60
        )
        # Entries are in the order of the actions sent; one without a text id names nothing
        # (the caller closes its row as unknown, never as tracked under an id like "None").
        return [
            entry["action_id"]
            if isinstance(entry, dict) and isinstance(entry.get("action_id"), str)
            else ""
            for entry in _json_or_empty(response)["actions"]
        ]

    def get_action_status(self, action_id: str) -> dict[str, Any]:
        """GET /v2/orders/actions/{action_id} (v2-getActionStatus)."""
        response = self.send(
            "GET",
            f"/v2/orders/actions/{path_segment(action_id)}",
            GET_ACTION_STATUS,
        )
        answer = _json_or_empty(response)
        errors = answer.get("errors")  # read as objects by the reports: nothing else kept
        answer["errors"] = (
            [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
        )
        return answer


def _json_argument(body: bytes | dict[str, Any]) -> dict[str, Any]:
    return {"data": body} if isinstance(body, bytes) else {"json_body": body}


def path_segment(value: str) -> str:
    """An id as one path segment: quoted, and never a dot segment, which a URL would resolve
    to another path (``.../actions/..`` is ``.../orders``)."""
    if value in (".", ".."):
        raise RejectedRequest(f"the id {value!r} cannot be part of a URL")
    return quote(value, safe="")


def _never_sent(error: Exception) -> bool:
    """Whether a network error happened before the request left: no connection was made."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _misconfiguration(
    method: str, path: str, response: requests.Response, operation: Operation
) -> str | None:
    """Why an answer says the URL is wrong (not the item), or None. A redirect, a 405, a 404
    without the API's error body (or for an operation that documents no 404), and an error
    in HTML are what a wrong base URL or a proxy answer."""
    status = response.status_code
    where = f"{method} {path} answered {status}"
    fix = URL_FIX
    if 300 <= status < 400:
        location = response.headers.get("Location", "") or "(no Location)"
        return f"{where}, a redirect to {location}; redirects are not followed: {fix}"
    if status == 405:
        return f"{where} (method not allowed): there is no such operation at this URL; {fix}"
    if status == 404 and (
        not operation.not_found_names_item or "code" not in _json_or_empty(response)
    ):
        return f"{where}: no such operation at this URL; {fix}"
    if 400 <= status < 500 and status != 429 and response.content and not _is_json(response):
        kind = response.headers.get("Content-Type", "unknown type").split(";")[0]
        return f"{where} with a {kind} page, not the API's JSON; {fix}"
    return None


def _unexpected_answer(response: requests.Response, operation: Operation) -> str | None:
    """How a 2xx differs from the success answer the operation documents, or None."""
    expected = operation.answer
    if response.status_code == expected.status and _holds(response.content, expected.fields):
        return None
    kind = response.headers.get("Content-Type", "no type").split(";")[0]
    got = f"{len(response.content)} bytes of {kind}" if response.content else "no content"
    return f"answered {response.status_code} with {got}, where {operation.name} answers {expected}"


def _holds(content: bytes, fields: tuple[tuple[str, type], ...]) -> bool:
    if not fields:
        return not content.strip()
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return False
    return isinstance(body, dict) and all(
        isinstance(body.get(name), kind) and body[name] != "" for name, kind in fields
    )


def _not_the_answer(what: str, response: requests.Response, operation: Operation) -> ApiError:
    """The error for a 2xx that is not the operation's answer: a portal, a proxy, a wrong
    URL, or an API that changed. The server took the request; whether it carried it out
    cannot be known. For a call that is not idempotent that is an unknown outcome, never sent
    again (a configuration error would leave it queued, to be sent again once the URL is
    fixed: twice). An idempotent one is a configuration error: the run stops (exit 2),
    nothing counts as delivered, and sending it again later is harmless."""
    status = response.status_code
    if not operation.idempotent:
        return OutcomeUnknown(
            f"{what}; whether Connect acted on it cannot be known, so it is not sent again "
            "(it is not idempotent: a second call would act twice)",
            status=status,
        )
    return ApiMisconfigured(f"{what}; this is not Connect's answer: {URL_FIX}", status=status)


def _is_json(response: requests.Response) -> bool:
    try:
        response.json()
    except ValueError:
        return False
    return True


def _describe_network_error(error: Exception) -> str:
    if isinstance(error, AnswerNotRead):
        return str(error)
    if isinstance(error, requests.Timeout):
        return "no answer within the timeout"
    return "connection failed or dropped"


def _json_or_empty(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _api_message(method: str, path: str, status: int, body: dict[str, Any]) -> str:
    code = body.get("code")
    text = body.get("message")
    detail = f": {code}" if code else ""
    detail += f" - {text}" if text else ""
    return f"{method} {path} answered {status}{detail}"
