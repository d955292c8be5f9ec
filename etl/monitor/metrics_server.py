"""The watcher's HTTP endpoint: ``/metrics`` for Prometheus, ``/healthz`` for a probe.

A plain ``http.server`` in a daemon thread: prometheus_client's own server answers every path
with the metrics, and a health probe needs its own status code (200 or 503).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from etl.monitor.health import Health
from etl.monitor.metrics import Metrics


class MetricsServer:
    """Serves until close(); ``port`` is the one bound (ask for 0 to get a free one)."""

    def __init__(
        self, metrics: Metrics, verdict: Callable[[], Health], host: str, port: int
    ) -> None:
        handler = type("Handler", (_Handler,), {"metrics": metrics, "verdict": verdict})
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="etl-metrics", daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    metrics: Metrics
    verdict: Callable[[], Health]

    def do_GET(self) -> None:  # the name http.server calls
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._answer(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        elif path == "/healthz":
            found = type(self).verdict()
            self._answer(200 if found.ok else 503, f"{found.line}\n".encode(), "text/plain")
        else:
            self._answer(404, b"not found: try /metrics or /healthz\n", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every 15 s is not news
