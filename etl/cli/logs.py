"""Log lines for people and collectors: one canonical line per file and per batch.

Text on a terminal, JSON lines otherwise (``--log-format``). Lines go to stderr, through tqdm so
they never tear a progress bar. Only counts, names and ids are logged: never a token, a payload or
a value from the orders.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
from tqdm import tqdm

from etl.core.events import Observer
from etl.core.printable import printable
from etl.core.summary import FileSummary, RunSummary

LOGGER = "etl"
FORMATS = ("auto", "text", "json")
log = logging.getLogger("etl.run")
# sync.py logs its own per-batch line; the observer's line carries the same facts with the file.
SYNC_BATCH_LINE = "batch %s: %d orders, %d accepted, %d request(s)"


def log_level(quiet: bool, verbose: bool) -> int:
    """--quiet: errors and warnings only; default the same; --verbose: a line per file and batch."""
    if verbose and not quiet:
        return logging.INFO
    return logging.WARNING


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, message, then the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode("utf-8")


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(message)s")


class _Stderr(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the moment (tests swap it), above any bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


class _DropSyncBatchLine(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == LOGGER and record.msg == SYNC_BATCH_LINE)


def resolve_format(log_format: str, stream: Any = None) -> str:
    """'auto' is text on a terminal and JSON otherwise."""
    if log_format != "auto":
        return log_format
    target = stream if stream is not None else sys.stderr
    isatty = getattr(target, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def configure_logging(level: int, log_format: str = "auto") -> Callable[[], None]:
    """Route the ``etl`` loggers to stderr; returns what puts the previous set-up back (the CLI
    can be called in-process, by tests or by another program, and must not leave it behind)."""
    logger = logging.getLogger(LOGGER)
    sandbox = logging.getLogger("etl.sandbox")
    before = (list(logger.handlers), logger.level, logger.propagate, sandbox.level)
    for handler in before[0]:
        if isinstance(handler, _Stderr):
            logger.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(
        JsonFormatter() if resolve_format(log_format) == "json" else TextFormatter()
    )
    handler.addFilter(_DropSyncBatchLine())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # The embedded sandbox logs every request it serves: noise beside a line per batch.
    sandbox.setLevel(max(level, logging.WARNING))

    def restore() -> None:
        logger.removeHandler(handler)
        for previous in before[0]:
            if previous not in logger.handlers:
                logger.addHandler(previous)
        logger.setLevel(before[1])
        logger.propagate = before[2]
        sandbox.setLevel(before[3])

    return restore


class TenantLog(logging.LoggerAdapter[logging.Logger]):
    """A logger whose lines start with ``tenant NAME:`` and carry ``tenant`` in their fields."""

    def __init__(self, logger: logging.Logger, tenant: str) -> None:
        super().__init__(logger, {"tenant": tenant})
        self.tenant = tenant

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = dict(kwargs.get("extra") or {})
        extra["fields"] = {"tenant": self.tenant, **extra.get("fields", {})}
        kwargs["extra"] = extra
        return f"tenant {self.tenant}: {msg}", kwargs


class LogObserver(Observer):
    """The canonical lines: one per file when it is finished, one per batch when it is answered.

    Files that never reach ``file_finished`` (unreadable, duplicates) get theirs from
    ``run_finished``, with the run's own line.
    """

    def __init__(self, tenant: str = "") -> None:
        self._logged: set[str] = set()
        # Several sellers log into one stream: each line names its own.
        self._log: logging.Logger | TenantLog = TenantLog(log, tenant) if tenant else log

    def batch_finished(
        self, name: str, batch_id: str, items: int, accepted: int, requests: int
    ) -> None:
        name = printable(name)
        self._log.info(
            "%s: batch %s: %d orders, %d accepted, %d request(s)",
            name,
            batch_id,
            items,
            accepted,
            requests,
            extra={
                "event": "batch",
                "fields": {
                    "file": name,
                    "batch": batch_id,
                    "orders": items,
                    "accepted": accepted,
                    "requests": requests,
                },
            },
        )

    def file_finished(self, summary: FileSummary) -> None:
        self._logged.add(summary.name)
        name = printable(summary.name)  # a name is anyone's choice: never raw on a line
        if summary.status != "processed":
            self._log.info(
                "%s: %s: %s",
                name,
                summary.status,
                printable(summary.reason),
                extra={"event": "file", "fields": {"file": name, "status": summary.status}},
            )
            return
        outcomes = ", ".join(f"{n} {o.lower()}" for o, n in sorted(summary.outcomes.items()))
        self._log.info(
            "%s: %d %s from %d rows in %.1f s: %s; %d problem(s); %d request(s), %d retries",
            name,
            summary.items,
            summary.kind or "orders",
            summary.rows,
            summary.seconds,
            outcomes or "nothing",
            summary.violations,
            summary.requests,
            summary.retries,
            extra={
                "event": "file",
                "fields": {
                    "file": name,
                    "status": summary.status,
                    "kind": summary.kind,
                    "rows": summary.rows,
                    "orders": summary.items,
                    "outcomes": dict(sorted(summary.outcomes.items())),
                    "problems": summary.violations,
                    "warnings": summary.warnings,
                    "requests": summary.requests,
                    "extra_requests": summary.extra_requests,
                    "retries": summary.retries,
                    "seconds": round(summary.seconds, 3),
                },
            },
        )

    def run_finished(self, run: RunSummary, run_dir: object) -> None:
        """The lines of files no hook announced, then one line for the run."""
        for file in run.files:
            if file.name not in self._logged:
                self.file_finished(file)
        totals = run.as_json()["totals"]
        self._log.info(
            "run %s: %d file(s), exit %d in %.1f s; reports in %s",
            run.run_id,
            len(run.files),
            run.exit_code,
            run.seconds,
            run_dir,
            extra={
                "event": "run",
                "fields": {
                    "run_id": run.run_id,
                    "command": run.command,
                    "exit_code": run.exit_code,
                    "seconds": round(run.seconds, 3),
                    "reports": str(run_dir),
                    **totals,
                },
            },
        )
