"""Running the sandbox: in a background thread (``SandboxServer``, for tests) or from the CLI."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from .action_events import EventPublisher, EventQueue
from .app import TABLES, TOKEN_PATH, SandboxApp
from .config import (
    DEFAULT_ACTION_DELAY,
    DEFAULT_ANONYMIZE_TOLERANCE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_FAIL_ENTITY_PREFIX,
    DEFAULT_REPORT_INTERVAL,
    DEFAULT_STATUS_INTERVAL,
    DEFAULT_TOKEN_TTL,
    DOCUMENTED_RATE_LIMIT,
    SandboxConfig,
    normalise_stores,
    parse_prefix,
    parse_rate_limit,
    seconds,
)
from .handler import SandboxHTTPServer
from .orders import UPSERT_ORDERS_PATH
from .store import Store

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
CLI_DB = Path("outbox/.sandbox/sandbox.sqlite3")
GC_THRESHOLD = 100_000  # tracked objects; a 100-order request makes ~20,000 (default: 700)


class SandboxServer:
    """The sandbox serving in a background thread; a context manager.

    ``with SandboxServer(db_path=tmp_path / "s.sqlite3") as sandbox:`` then point the client at
    ``sandbox.api_url`` and ``sandbox.token_url``; leaving the block stops every thread.
    """

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = 0,
        db_path: str | Path | None = None,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        static_token: str | None = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        known_stores: Iterable[tuple[str, str]] | None = None,
        omit_field: bool = False,
        action_delay: float = DEFAULT_ACTION_DELAY,
        report_interval: float = DEFAULT_REPORT_INTERVAL,
        status_interval: float = DEFAULT_STATUS_INTERVAL,
        fail_entity_prefix: str | None = DEFAULT_FAIL_ENTITY_PREFIX,
        anonymize_tolerance: float = DEFAULT_ANONYMIZE_TOLERANCE,
        extra_clients: Iterable[tuple[str, str]] = (),
        rate_limit: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        events_queue: EventQueue | None = None,
    ) -> None:
        self._host, self._port = host, port
        self._db_path = None if db_path is None else Path(db_path)
        self._config = SandboxConfig(
            client_id=client_id,
            client_secret=client_secret,
            static_token=static_token,
            token_ttl=token_ttl,
            known_stores=normalise_stores(known_stores),
            omit_field=omit_field,
            action_delay=seconds("action_delay")(action_delay),
            report_interval=seconds("report_interval")(report_interval),
            status_interval=seconds("status_interval")(status_interval),
            fail_entity_prefix=parse_prefix(fail_entity_prefix),
            anonymize_tolerance=seconds("anonymize_tolerance")(anonymize_tolerance),
            extra_clients=tuple((str(c), str(secret)) for c, secret in extra_clients),
            rate_limit=parse_rate_limit(rate_limit),
        )
        # Measures the action delays and the call-frequency limits (tokens expire by it too);
        # a test injects a fake one so nothing waits. Date-times shown are wall-clock UTC.
        self._clock = clock
        # Where each created command action is announced, as Connect's order action events.
        self._events_queue = events_queue
        self._publisher: EventPublisher | None = None
        self._stopping = threading.Event()
        self._temp_dir: str | None = None
        self._httpd: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._app: SandboxApp | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> SandboxServer:
        """Open the store, bind the socket and serve in a background thread."""
        if self._httpd is not None:
            raise RuntimeError("the sandbox is already running")
        db_path = self._db_path
        if db_path is None:
            self._temp_dir = tempfile.mkdtemp(prefix="etl-sandbox-")
            db_path = Path(self._temp_dir) / "sandbox.sqlite3"
        if not db_path.parent.exists():
            # Made here, so the sandbox's own: what it received is its owner's business.
            db_path.parent.mkdir(mode=0o700, parents=True)
        self._stopping.clear()
        self._store = Store(db_path, TABLES)
        if self._events_queue is not None:
            self._publisher = EventPublisher(self._events_queue)
        self._app = SandboxApp(
            self._store,
            self._config,
            clock=self._clock,
            wait=self._stopping.wait,
            events=self._publisher,
        )
        try:
            self._httpd = SandboxHTTPServer((self._host, self._port), self._app)
        except OSError:
            self._release_store()
            raise
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="sandbox-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, end every connection, close the socket and the store."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # ends scripted delays early
        httpd.shutdown()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        httpd.close_connections(timeout=5.0)
        httpd.server_close()
        self._release_store()

    def _release_store(self) -> None:
        if self._app is not None:
            self._config = self._app.config  # keep run-time changes across a restart
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None
        self._app = None
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- addresses -----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the server root."""
        httpd = self._running()
        host, port = httpd.server_address[:2]
        shown = f"[{host!s}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}"

    @property
    def api_url(self) -> str:
        """Base URL of the API (what ``CONNECT_API_URL`` points at)."""
        return self.url + "/api"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint (what ``CONNECT_TOKEN_URL`` points at)."""
        return self.url + TOKEN_PATH

    @property
    def orders_url(self) -> str:
        """upsertOrders."""
        return self.url + UPSERT_ORDERS_PATH

    @property
    def admin_url(self) -> str:
        """Root of the admin routes."""
        return self.url + "/_sandbox"

    @property
    def db_path(self) -> Path:
        """The SQLite file holding what the sandbox received."""
        store = self._store
        if store is None:
            raise RuntimeError("the sandbox is not running")
        return store.path

    @property
    def app(self) -> SandboxApp:
        """The running app: the same operations as the admin routes, without HTTP."""
        if self._app is None:
            raise RuntimeError("the sandbox is not running")
        return self._app

    def _running(self) -> SandboxHTTPServer:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        return self._httpd

    # -- shortcuts to the admin operations ----------------------------------------------

    def requests_log(
        self, path: str | None = None, since: int = 0, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every API request received, oldest first (``GET /_sandbox/requests``)."""
        return self.app.requests_log(path=path, since=since, client_id=client_id)

    def stored_orders(self) -> list[dict[str, Any]]:
        """Every stored order (``GET /_sandbox/orders``)."""
        return self.app.stored_orders()

    def counts(
        self, path: str | None = None, since: int = 0, client_id: str | None = None
    ) -> dict[str, int]:
        """``{"requests", "orders", "last_seq"}`` counted in SQL (``GET /_sandbox/counts``)."""
        return self.app.counts(path=path, since=since, client_id=client_id)

    def create_actions(
        self,
        count: int | None = None,
        action_ids: Sequence[str] | None = None,
        event_type: str = "ACCEPT",
        channel_order_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """New PENDING command actions (``POST /_sandbox/actions``), each announced on the
        events queue when there is one; ValueError if malformed."""
        return self.app.create_actions(count, action_ids, event_type, channel_order_id)

    def actions(self) -> list[dict[str, Any]]:
        """Every action, command and reported (``GET /_sandbox/actions``)."""
        return self.app.actions()

    def documents(self) -> list[dict[str, Any]]:
        """Every stored document (``GET /_sandbox/documents``)."""
        return self.app.documents()

    def anonymizations(self) -> list[dict[str, Any]]:
        """Every stored anonymize_after date (``GET /_sandbox/anonymizations``)."""
        return self.app.anonymizations()

    def reset(self) -> None:
        """Forget everything received, tokens and faults (``POST /_sandbox/reset``)."""
        self.app.reset()

    def set_faults(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Script faults (``POST /_sandbox/faults``); ValueError if the spec is malformed."""
        return self.app.set_faults(spec)

    def clear_faults(self) -> None:
        """``DELETE /_sandbox/faults``."""
        self.app.clear_faults()

    def revoke_tokens(self) -> None:
        """``POST /_sandbox/tokens/revoke``."""
        self.app.revoke_tokens()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """``POST /_sandbox/config``: omit_field, known_stores, token_ttl, action_delay,
        report_interval, status_interval, fail_entity_prefix, anonymize_tolerance."""
        return self.app.configure(changes)


# -- CLI ---------------------------------------------------------------------------------


def _store_arg(text: str) -> tuple[str, str]:
    channel, sep, store = text.partition(":")
    if not (sep and channel and store):
        raise argparse.ArgumentTypeError(f"expected CHANNEL:STORE, got {text!r}")
    return channel, store


def _client_arg(text: str) -> tuple[str, str]:
    client_id, sep, secret = text.partition(":")
    if not (sep and client_id and secret):
        raise argparse.ArgumentTypeError("expected CLIENT_ID:SECRET")  # never echo a secret
    return client_id, secret


def _rate_arg(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("expected a number of requests per second (0: none)")
    return value or None


def _ttl_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a positive number of seconds")
    return value


def _seconds_arg(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("expected zero or a positive number of seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``etl sandbox`` / ``python -m etl.sandbox`` arguments (help never shows a secret)."""
    parser = argparse.ArgumentParser(
        prog="etl sandbox",
        description="Serve a local double of the Mirakl Connect order API and its OAuth2.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind (%(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port, 0 for any free one (%(default)s)"
    )
    parser.add_argument("--db", type=Path, default=CLI_DB, help="SQLite file (%(default)s)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID, help="OAuth2 client id")
    parser.add_argument(
        "--client-secret",
        default=DEFAULT_CLIENT_SECRET,
        help="OAuth2 client secret (default: the built-in sandbox one)",
    )
    parser.add_argument(
        "--client",
        type=_client_arg,
        action="append",
        default=[],
        metavar="ID:SECRET",
        help="one more client accepted beside --client-id, e.g. one per seller (repeatable)",
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate_arg,
        default=DOCUMENTED_RATE_LIMIT,
        metavar="N",
        help="requests per second per client in any 1-second window, else 429 with "
        "Retry-After (%(default)g, the documented maximum; 0: no limit)",
    )
    parser.add_argument(
        "--static-token", default=None, help="a bearer token that is always accepted"
    )
    parser.add_argument(
        "--token-ttl", type=_ttl_arg, default=DEFAULT_TOKEN_TTL, help="token lifetime, seconds"
    )
    parser.add_argument(
        "--known-store",
        type=_store_arg,
        action="append",
        metavar="CHANNEL:STORE",
        help="accept only these stores (repeatable); others get 404",
    )
    parser.add_argument(
        "--omit-field", action="store_true", help="leave `field` out of 400 error items"
    )
    parser.add_argument(
        "--action-delay",
        type=_seconds_arg,
        default=DEFAULT_ACTION_DELAY,
        metavar="SECONDS",
        help="a reported action stays PENDING this long (%(default)s)",
    )
    parser.add_argument(
        "--report-interval",
        type=_seconds_arg,
        default=DEFAULT_REPORT_INTERVAL,
        metavar="SECONDS",
        help="v2-reportOrderActions: least time between accepted calls, else 429 (%(default)s)",
    )
    parser.add_argument(
        "--status-interval",
        type=_seconds_arg,
        default=DEFAULT_STATUS_INTERVAL,
        metavar="SECONDS",
        help="v2-getActionStatus: least time between calls per action id (%(default)s)",
    )
    parser.add_argument(
        "--fail-entity-prefix",
        default=DEFAULT_FAIL_ENTITY_PREFIX,
        metavar="PREFIX",
        help="reported actions whose entity_id starts with this end FAILED (%(default)s)",
    )
    parser.add_argument(
        "--anonymize-tolerance",
        type=_seconds_arg,
        default=DEFAULT_ANONYMIZE_TOLERANCE,
        metavar="SECONDS",
        help="how far in the past anonymize_after may be (%(default)s)",
    )
    parser.add_argument(
        "--stop-on-stdin-close",
        action="store_true",
        help="stop when standard input closes: a launching process that keeps the pipe open "
        "cannot leave the sandbox behind, even when it is killed",
    )
    parser.add_argument(
        "--events-queue",
        metavar="URL",
        help="publish an OrderActionEvent to this SQS queue for each action created (boto3; "
        "AWS's standard credentials)",
    )
    parser.add_argument(
        "--events-endpoint",
        metavar="URL",
        help="the SQS-compatible server of --events-queue, when not AWS's own",
    )
    parser.add_argument(
        "--events-region", default="us-east-1", help="the queue's AWS region (%(default)s)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="one log line per request")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM. Exit 0 on a clean stop, 2 if the port cannot be bound."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
    )
    sandbox = SandboxServer(
        host=args.host,
        port=args.port,
        db_path=args.db,
        client_id=args.client_id,
        client_secret=args.client_secret,
        static_token=args.static_token,
        token_ttl=args.token_ttl,
        known_stores=args.known_store,
        omit_field=args.omit_field,
        action_delay=args.action_delay,
        report_interval=args.report_interval,
        status_interval=args.status_interval,
        fail_entity_prefix=args.fail_entity_prefix or None,
        anonymize_tolerance=args.anonymize_tolerance,
        events_queue=None
        if args.events_queue is None
        else EventQueue(args.events_queue, args.events_endpoint, args.events_region),
        extra_clients=args.client,
        rate_limit=args.rate_limit,
    )
    try:
        sandbox.start()
    except OSError as error:
        print(f"etl sandbox: cannot listen on {args.host}:{args.port}: {error.strerror}")
        return 2
    # A 100-order request parses into ~20,000 dicts and lists: dozens of collections each,
    # and every full one would walk the modules and compiled schemas loaded by now as well.
    # Frozen, they are left out (only this process's own main does it, not an embedding test).
    gc.freeze()
    # The first generation counts allocations minus frees: a request's document is freed when
    # it is answered, so above a few requests' worth the collector runs only when objects
    # really pile up (cycles), not a dozen times inside each parse.
    gc.set_threshold(GC_THRESHOLD)
    stop = threading.Event()
    previous = _on_signals(lambda: stop.set())
    if args.stop_on_stdin_close:
        threading.Thread(target=_set_at_eof, args=(stop,), name="stdin-watch", daemon=True).start()
    try:
        print(f"Mirakl Connect sandbox on {sandbox.url}")
        print(f"  CONNECT_API_URL={sandbox.api_url}")
        print(f"  CONNECT_TOKEN_URL={sandbox.token_url}")
        client_ids = ", ".join([args.client_id, *(client for client, _ in args.client)])
        print(f"  client id(s): {client_ids} (secrets not shown)")
        if args.rate_limit is not None:
            print(f"  rate limit: {args.rate_limit:g} requests per second per client")
        if args.static_token is not None:
            print("  static token: configured (not shown)")
        print(
            f"  admin: {sandbox.admin_url}/requests, /counts, /orders, /actions, /documents,"
            " /anonymizations, /faults, /reset, /config"
        )
        print(f"  database: {sandbox.db_path}")
        print("Ctrl-C to stop.", flush=True)
        # A timed wait keeps the main thread responsive to signals on every platform.
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        _restore_signals(previous)
        sandbox.close()
    print("sandbox stopped")
    return 0


def _set_at_eof(stop: threading.Event) -> None:
    """Read standard input to its end (the launcher exited or closed it), then ``stop``."""
    try:
        while os.read(0, 4096):  # whatever is written is ignored
            pass
    except OSError:  # no usable stdin: same as closed
        pass
    stop.set()


SignalHandler = Callable[[int, FrameType | None], Any] | int | None


def _on_signals(action: Callable[[], None]) -> dict[int, SignalHandler]:
    """Route SIGINT and SIGTERM to ``action`` (main thread only); returns the old handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, SignalHandler] = {}
    for number in (signal.SIGINT, signal.SIGTERM):
        previous[number] = signal.signal(number, lambda _n, _f: action())
    return previous


def _restore_signals(previous: dict[int, SignalHandler]) -> None:
    for number, handler in previous.items():
        signal.signal(number, handler)
