"""`etl run` as one call: the checks before anything is claimed, the inbox lock, the run, then
its alerts and metrics. The command line and the Python API (``etl.run_inbox``, ``etl.sync``)
both come here, so they cannot drift apart."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.core.errors import UsageError
from etl.core.events import Observer
from etl.core.store_urls import shown_url
from etl.core.summary import RunSummary
from etl.deliver.client import ConnectClient
from etl.monitor.alerts import Alerts
from etl.run.object_sync import ObjectSync, publish_reports, staged_settings
from etl.run.parallel import Workers
from etl.run.shared_state import ClientFactory
from etl.run.sync import ApiDown, FileReport, Sync
from etl.settings.config import Settings
from etl.state.inbox import locked_inbox, require_inbox

log = logging.getLogger("etl.run")


@dataclass
class InboxRun:
    """What one run came to: its summary, where its reports are, and why sending stopped (None
    when it did not)."""

    summary: RunSummary
    run_dir: Path
    api_down: ApiDown | None = None
    reports: list[FileReport] = field(default_factory=list)  # with ``keep_reports``
    html: Path | None = None  # report.html, when the run processed a file
    html_problem: str = ""  # why report.html could not be written
    publish_problem: str = ""  # why the reports could not be uploaded to [report] url


def run_inbox(
    settings: Settings,
    *,
    force: bool = False,
    create: bool = False,
    observer: Observer | None = None,
    drop: Callable[[], list[Path]] | None = None,
    keep_reports: bool = False,
    metrics_textfile: Path | None = None,
    client_factory: Callable[[], ConnectClient] | None = None,
    workers: Workers | None = None,
) -> InboxRun:
    """Process the inbox once, as `etl run` does: UsageError (nothing claimed) without
    credentials, without the inbox (unless ``create``), or when another run or watcher holds
    it. ``drop`` puts files in the inbox once it is locked (the Python API's sources): the
    run then takes only those (and files a killed run left claimed). An object-store inbox is
    staged in a folder under the outbox; with a shared state, the database's claims keep
    workers apart file by file instead of the inbox lock."""
    settings.require_credentials()
    metrics = None
    if metrics_textfile is not None:
        # Imported only when asked for: prometheus_client is not loaded by every run.
        from etl.monitor.metrics import Metrics

        metrics = Metrics(settings.inbox, settings.outbox)
    clients = ClientFactory(settings, metrics)
    try:
        with inbox_of(settings, create) as inbox_settings, _held(inbox_settings):
            paths = drop() if drop is not None else None
            sync = new_sync(
                inbox_settings,
                client_factory or clients,
                force=force,
                observer=observer,
                paths=paths,
                keep_reports=keep_reports,
                workers=workers,
            )
            run = sync()
    finally:
        clients.close()
    html, html_problem = html_report(run, sync.run_dir)
    alert_run(settings, run, sync.api_down)
    if metrics is not None and metrics_textfile is not None:
        metrics.record_run(run)
        metrics.write_textfile(metrics_textfile)
    published = publish_reports(settings, sync.run_dir) if settings.report_url else None
    return InboxRun(
        run, sync.run_dir, sync.api_down, sync.reports, html, html_problem, published or ""
    )


@contextmanager
def inbox_of(settings: Settings, create: bool) -> Iterator[Settings]:
    """The settings a run or a watcher works with: a local inbox as it is (it must exist), an
    object-store inbox as its staging folder under the outbox (etl/run/object_sync.py)."""
    if not settings.inbox_url:
        require_inbox(settings.inbox, create)
        yield settings
        return
    with staged_settings(settings) as staged:
        yield staged


@contextmanager
def _held(settings: Settings) -> Iterator[None]:
    """One process at a time on an inbox (or its staging folder); with a shared state the
    database's claims keep runs and watchers apart, file by file."""
    if settings.shared_state:
        yield
        return
    with locked_inbox(settings.inbox, "etl run"):
        yield


def new_sync(settings: Settings, clients: Callable[[], ConnectClient], **kwargs: Any) -> Sync:
    """The run over the inbox: a folder's, or an object store's (staged, then moved)."""
    if not settings.inbox_url:
        return Sync(settings, clients, **kwargs)
    if kwargs.pop("paths", None) is not None:
        # An object-store inbox takes its files from the store: what settled there.
        raise UsageError(
            "files handed over from Python go to a local inbox, not to an object store"
        )
    return ObjectSync(settings, clients, **kwargs)


def inbox_shown(settings: Settings) -> str:
    return shown_url(settings.inbox_url) if settings.inbox_url else str(settings.inbox)


def html_report(run: RunSummary, run_dir: Path) -> tuple[Path | None, str]:
    """``report.html`` (and ``outbox/latest.html``) for a run that processed a file. Never the
    cause of a failed run: the run's work is done and recorded; (None, why) when it cannot be
    written."""
    if not run.files:
        return None, ""
    # Imported only when there is a report to write: cron's empty runs never load jinja2.
    from etl.report.html import write_html_report

    try:
        return write_html_report(run_dir), ""
    except Exception as error:
        log.exception("cannot write the HTML report")
        return None, f"cannot write {run_dir}/report.html: {error}"


def alert_run(settings: Settings, run: RunSummary, api_down: BaseException | None) -> None:
    """`etl run` under cron: one alert listing this run's failed files, and the API's outage
    once it has lasted past the threshold over the runs (and once when it is over)."""
    if not settings.alert_urls:
        return
    alerts = Alerts.from_settings(settings, clock=time.time)
    state = settings.outbox / ".state" / "api-down.json"
    alerts.load_api_state(state)
    alerts.failed_files(run, settings.outbox)
    alerts.api_state(api_down, run.run_id)
    alerts.save_api_state(state)
    alerts.close()
