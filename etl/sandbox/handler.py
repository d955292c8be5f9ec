"""The HTTP plumbing: socket -> ``Request`` -> app -> ``Response``, on keep-alive connections."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .app import SandboxApp
from .wire import Request, Response, error_response, iso_z, utc_now

log = logging.getLogger("etl.sandbox")

IDLE_TIMEOUT = 60.0  # seconds a keep-alive connection may sit idle before its thread gives up


class RequestHandler(BaseHTTPRequestHandler):
    """Reads one request into a ``Request``, asks the app, writes the ``Response``."""

    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server_version = "MiraklConnectSandbox/0.1"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK would
    # stall every response by ~40 ms.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        started = time.perf_counter()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Clients send Content-Length for JSON bodies; chunked uploads are not worth a parser.
            self.close_connection = True
            self._send(error_response(411, "LENGTH_REQUIRED", "Send a Content-Length"))
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(error_response(400, "INVALID_INPUT", "Bad Content-Length"))
            return
        body = self.rfile.read(length) if length else b""
        received_at = iso_z(utc_now())
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            client_host=self.client_address[0],
            server_port=self.server.server_address[1],
            received_at=received_at,
        )
        try:
            response = self.server.app.handle(request)
        except Exception:
            log.exception("sandbox failed on %s %s", request.method, request.path)
            response = error_response(500, "INTERNAL_SERVER_ERROR", "The sandbox failed")
        if response is None:
            # A scripted drop: no status line at all, the client sees the connection close.
            self.close_connection = True
            log.info("%s %s -> dropped", request.method, request.path)
            return
        self._send(response)
        elapsed = (time.perf_counter() - started) * 1000
        # One concise line per request: never headers, query strings or bodies (tokens, secrets).
        log.info("%s %s -> %d (%.1f ms)", request.method, request.path, response.status, elapsed)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        # RFC 9110 8.6: no Content-Length on 204; every other answer has one (keep-alive).
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body and response.status != 204:
            self.wfile.write(response.body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silenced: ``_serve`` writes its own line, without the query string."""

    def log_message(self, format: str, *args: Any) -> None:
        # Only protocol errors reach here (bad request lines, timeouts).
        log.debug("%s: %s", self.address_string(), format % args)


class SandboxHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its live connections, so closing leaves no thread behind."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SandboxApp) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self._live_lock = threading.Lock()
        self._live: dict[socket.socket, threading.Thread] = {}
        super().__init__(address, RequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="sandbox-connection",
            daemon=True,
        )
        with self._live_lock:
            self._live[request] = thread
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._live_lock:
                self._live.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client going away mid-answer is normal for a test double; anything else is a bug.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self, timeout: float) -> None:
        """Shut every open connection and wait for its thread to finish."""
        with self._live_lock:
            live = list(self._live.items())
        for sock, _ in live:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in live:
            thread.join(timeout)
