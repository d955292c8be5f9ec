"""Prometheus metrics of runs, API calls and the folders, in a registry of our own.

Never the global default registry: importing the library must change nothing global, and two
watchers in one test process must not count into each other. Labels are of low cardinality
only (a status, an outcome, an operation, an HTTP status): never a file name or an order id.
The folder gauges are computed when read (a scrape, the textfile's write), so they are never
stale and cost nothing between scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, write_to_textfile
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from etl.core.kinds import rejected_companions
from etl.core.summary import RunSummary
from etl.deliver.client import ClientMeter
from etl.monitor.status import REASON_SUFFIX, recent_runs
from etl.state.inbox import waiting_files

# Exit 1 is a run that worked and found bad data (counted in etl_orders_total); 2-5 are runs
# that did not work: the API, the settings, a bug, the machine.
SUCCESSFUL_EXIT_CODES = frozenset({0, 1})
HISTORY_RUNS = 50  # how far back the last success is looked for when the process starts


class Metrics(ClientMeter):
    """What `etl watch` serves on /metrics and `etl run` writes as a node_exporter textfile."""

    def __init__(self, inbox: Path, outbox: Path, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        registry = self.registry
        self.files = Counter(
            "etl_files",
            "Input files handled, by how they ended (unfinished: put back in the inbox)",
            ["status"],
            registry=registry,
        )
        self.orders = Counter(
            "etl_orders", "Items (orders, actions...) by outcome", ["outcome"], registry=registry
        )
        self.runs = Counter("etl_runs", "Runs, by exit code", ["exit_code"], registry=registry)
        self.requests = Counter(
            "etl_api_requests",
            "API requests by operation and HTTP status (network: no answer came)",
            ["operation", "status"],
            registry=registry,
        )
        self.retries = Counter("etl_api_retries", "Requests sent again", registry=registry)
        self.throttled = Counter(
            "etl_api_throttled", "429 Too Many Requests answers", registry=registry
        )
        self.last_success = Gauge(
            "etl_last_success_timestamp_seconds",
            "Unix time of the end of the last run that exited 0 or 1 (0: none known)",
            registry=registry,
        )
        self.last_success.set(last_success_from_history(outbox))
        registry.register(FolderCollector(inbox, outbox))

    # --- ClientMeter: called by the client as each answer arrives ---------------------------

    def answered(self, operation: str, status: str) -> None:
        self.requests.labels(operation=operation, status=status).inc()
        if status == "429":
            self.throttled.inc()

    def retried(self) -> None:
        self.retries.inc()

    # --- runs ------------------------------------------------------------------------------

    def record_run(self, run: RunSummary) -> None:
        """Count a finished run: its files, its items' outcomes, its exit code."""
        for file in run.files:
            self.files.labels(status="unfinished" if file.unfinished else file.status).inc()
            for outcome, count in file.outcomes.items():
                self.orders.labels(outcome=outcome).inc(count)
        self.runs.labels(exit_code=str(run.exit_code)).inc()
        if run.exit_code in SUCCESSFUL_EXIT_CODES:
            self.last_success.set(self.clock())

    def write_textfile(self, path: Path) -> None:
        """The node_exporter textfile: written to a temporary name, then renamed over ``path``
        (the collector never reads half a file)."""
        write_to_textfile(str(path), self.registry)


class FolderCollector(Collector):
    """Files waiting in the inbox and files in failed/, counted when read."""

    def __init__(self, inbox: Path, outbox: Path) -> None:
        self.inbox = inbox
        self.outbox = outbox

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Without it the registry would collect (read the folders) at registration.
        return [self._waiting(), self._failed()]

    def collect(self) -> Iterable[GaugeMetricFamily]:
        waiting, failed = self._waiting(), self._failed()
        try:
            waiting.add_metric([], len(waiting_files(self.inbox)))
            failed.add_metric([], count_failed(self.outbox))
        except OSError:
            return []  # an unreachable share: no value rather than a wrong one
        return [waiting, failed]

    @staticmethod
    def _waiting() -> GaugeMetricFamily:
        return GaugeMetricFamily("etl_inbox_waiting_files", "Files waiting in the inbox")

    @staticmethod
    def _failed() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "etl_failed_files", "Files in failed/ (each waits for a person to fix it)"
        )


def count_failed(outbox: Path) -> int:
    """The files of failed/<run_id>/ without their .reason.txt and rejected-file companions."""
    folder = outbox / "failed"
    if not folder.is_dir():
        return 0
    count = 0
    for run_dir in folder.iterdir():
        if run_dir.is_dir():
            names = [p.name for p in run_dir.iterdir() if not p.name.endswith(REASON_SUFFIX)]
            count += len(names) - len(rejected_companions(names))  # advice beside an input
    return count


def last_success_from_history(outbox: Path) -> float:
    """The end of the newest successful run in the outbox, so a restart does not reset it."""
    for run in recent_runs(outbox, HISTORY_RUNS):
        if run.get("finished") and run.get("exit_code") in SUCCESSFUL_EXIT_CODES:
            try:
                moment = datetime.fromisoformat(str(run["finished_at"]).replace("Z", "+00:00"))
            except ValueError:
                continue
            return moment.timestamp()
    return 0.0
