"""`etl run`, `watch`, `status` and `check` when etl.toml has [tenants]: every seller served by
one process, each apart (etl/run/tenants.py), each reported under its name; the exit code is
the worst (highest) of the tenants'."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.cli.failures import failure
from etl.cli.logs import LogObserver, configure_logging, log_level
from etl.cli.main import checked_files, metrics_for, metrics_server
from etl.cli.output import print_run
from etl.core.errors import UsageError
from etl.run.inbox_run import InboxRun, html_report, run_inbox
from etl.run.tenants import TenantResult, for_each_tenant
from etl.settings.config import ExportFormat, load_mapping_file
from etl.settings.tenants import Tenant

if TYPE_CHECKING:
    from etl.monitor.metrics_server import MetricsServer


def _one_tenant_only(flag: str, tenants: tuple[Tenant, ...]) -> None:
    if len(tenants) > 1:
        raise UsageError(f"{flag} serves one tenant at a time: add --tenant NAME")


def _worst(codes: list[int]) -> int:
    return max(codes, default=0)


def _said(result: TenantResult[Any]) -> int | None:
    """Print why a tenant's command ended early and return its exit code; None if it did not."""
    if result.error is None:
        return None
    code, message = failure(result.error)
    print(f"etl: tenant {result.tenant.name}: {message}", file=sys.stderr)
    return code


def _ready(tenant: Tenant) -> None:
    if tenant.problem:
        raise UsageError(tenant.problem)
    tenant.settings.require_credentials()


def run_tenants(args: argparse.Namespace, tenants: tuple[Tenant, ...]) -> int:
    """`etl run` for every tenant at once; each one's summary printed after, in config order."""

    if args.sandbox:
        raise UsageError(
            "--sandbox serves one seller; with [tenants], start `etl sandbox --client ID:SECRET "
            "...` (one per tenant) and point [connect] api_url and token_url at it"
        )
    if args.metrics_textfile is not None:
        _one_tenant_only("--metrics-textfile", tenants)

    logs = {tenant.name: LogObserver(tenant.name) for tenant in tenants}

    def work(tenant: Tenant) -> InboxRun:
        if tenant.problem:
            raise UsageError(tenant.problem)
        # --metrics-textfile: one seller only (checked above), so one file for one run.
        return run_inbox(
            tenant.settings,
            force=args.force,
            create=args.create,
            observer=logs[tenant.name],
            metrics_textfile=args.metrics_textfile,
        )

    restore = configure_logging(log_level(args.quiet, args.verbose), args.log_format)
    codes: list[int] = []
    try:
        for result in for_each_tenant(tenants, work):
            code = _said(result)
            if code is not None or result.value is None:
                codes.append(code if code is not None else 0)
                continue
            done, name = result.value, result.tenant.name
            run = done.summary
            if not run.files and not run.due_work:
                if not args.quiet:
                    print(f"tenant {name}: inbox {result.tenant.settings.inbox}: nothing to do")
            else:
                if done.html_problem:
                    print(f"etl: tenant {name}: {done.html_problem}", file=sys.stderr)
                logs[name].run_finished(run, done.run_dir)
                print_run(run, done.run_dir, quiet=args.quiet)
                if done.html is not None and not args.quiet:
                    print(f"report: {done.html}")
            if done.api_down is not None:
                print(f"etl: tenant {name}: stopped sending: {done.api_down}", file=sys.stderr)
            codes.append(run.exit_code)
    finally:
        restore()
    return _worst(codes)


def watch_tenants(args: argparse.Namespace, tenants: tuple[Tenant, ...]) -> int:
    """`etl watch` for every tenant: one watcher each, all stopped by one SIGINT/SIGTERM."""
    from etl.run.inbox_run import inbox_of, inbox_shown
    from etl.run.object_watch import ObjectWatcher
    from etl.run.shared_state import ClientFactory
    from etl.run.watch import Watcher, WatcherRefused

    if args.sandbox:
        raise UsageError(
            "--sandbox serves one seller; with [tenants], start `etl sandbox --client ID:SECRET "
            "...` and point [connect] api_url and token_url at it"
        )
    if args.metrics_port is not None:
        _one_tenant_only("--metrics-port", tenants)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(threadName)s %(levelname)s %(message)s",
    )
    watchers: list[Watcher] = []
    factories: list[ClientFactory] = []  # with a state URL, each tenant's shared budget
    servers: list[MetricsServer] = []
    ready: list[Tenant] = []
    codes: list[int] = []
    # Each tenant's inbox: its folder, or the staging folder of its bucket, held while it is
    # watched.
    inboxes = contextlib.ExitStack()
    for tenant in tenants:
        try:
            _ready(tenant)
            settings = inboxes.enter_context(inbox_of(tenant.settings, args.create))
        except UsageError as error:
            print(f"etl: tenant {tenant.name}: {error}", file=sys.stderr)
            codes.append(2)
            continue
        ready.append(tenant)
        # --metrics-port: one seller only (checked above), served as `etl watch` serves it.
        metrics = metrics_for(settings) if args.metrics_port is not None else None
        factories.append(ClientFactory(settings, metrics))
        kind = ObjectWatcher if settings.inbox_url else Watcher
        watcher = kind(
            settings,
            factories[-1],
            polling=settings.polling if args.polling is None else args.polling,
            rescan_seconds=settings.rescan_seconds,
            observer=LogObserver(tenant.name),
        )
        watchers.append(watcher)
        if metrics is not None:
            watcher.run_listeners.append(metrics.record_run)
            servers.append(metrics_server(metrics, settings, args))

    def stop(signum: int, frame: object) -> None:
        print(f"etl watch: {signal.Signals(signum).name}: finishing the batches in flight")
        for watcher in watchers:
            watcher.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    for tenant in ready:
        print(
            f"etl watch: tenant {tenant.name}: watching {inbox_shown(tenant.settings)} "
            f"(heartbeat in {tenant.settings.outbox})",
            flush=True,
        )
    by_name = dict(zip((t.name for t in ready), watchers, strict=True))

    def work(tenant: Tenant) -> int:
        try:
            return by_name[tenant.name].run()
        except WatcherRefused as refused:
            raise UsageError(str(refused)) from None

    try:
        for result in for_each_tenant(ready, work):
            code = _said(result)
            codes.append(code if code is not None else 0)
    finally:
        for server in servers:
            server.close()
        for factory in factories:
            factory.close()
        inboxes.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("etl watch: stopped")
    return _worst(codes)


def status_tenants(args: argparse.Namespace, tenants: tuple[Tenant, ...]) -> int:
    """`etl status` of every tenant, one block (or one JSON member) each."""
    from etl.monitor.status import collect_status, format_status

    statuses = {
        tenant.name: collect_status(
            tenant.settings.inbox,
            tenant.settings.outbox,
            runs=args.runs,
            ledger=tenant.settings.ledger_path,
        )
        for tenant in tenants
    }
    if args.json:
        print(json.dumps({"tenants": statuses}, indent=2, ensure_ascii=False))
        return 0
    for tenant in tenants:
        print(f"tenant {tenant.name} ({tenant.settings.target}):")
        if tenant.problem:
            print(f"  cannot be served: {tenant.problem}")
        print("\n".join("  " + line for line in format_status(statuses[tenant.name]).splitlines()))
    return 0


def _tenant_of(path: Path, tenants: tuple[Tenant, ...]) -> Tenant | None:
    where = path.resolve()
    for tenant in tenants:
        inbox = tenant.settings.inbox.resolve()
        if where == inbox or inbox in where.parents:
            return tenant
    return None


def check_tenants(args: argparse.Namespace, tenants: tuple[Tenant, ...]) -> int:
    """`etl check FILE...`: each file with the mapping and origin of the tenant whose inbox
    holds it (``--tenant``: that tenant's, wherever the file is); reports in its outbox."""
    from dataclasses import replace

    from etl.run.check import check_files

    files = checked_files(args.files)
    groups: dict[str, list[Path]] = {}
    strays: list[str] = []
    for path in files:
        tenant = tenants[0] if args.tenant else _tenant_of(path, tenants)
        if tenant is None:
            strays.append(str(path))
        else:
            groups.setdefault(tenant.name, []).append(path)
    if strays:
        raise UsageError(
            f"{', '.join(strays)}: in no tenant's inbox; say whose with --tenant NAME (its "
            "mapping and default origin are used)"
        )
    from etl.core.kinds import KINDS

    kind = KINDS[args.kind] if args.kind else None
    restore = configure_logging(log_level(args.quiet, args.verbose), args.log_format)
    codes = []
    try:
        for tenant in tenants:
            if tenant.name not in groups:
                continue
            settings = tenant.settings
            if args.channel_id or args.store_id:
                settings = replace(
                    settings,
                    channel_id=args.channel_id or settings.channel_id,
                    store_id=args.store_id or settings.store_id,
                )
            source: ExportFormat | None = None
            if args.mapping is not None:
                source = load_mapping_file(args.mapping, settings.default_source)
            observer = LogObserver(tenant.name)
            run, run_dir = check_files(groups[tenant.name], settings, source, observer, kind=kind)
            html_report(run, run_dir)
            print_run(run, run_dir, quiet=args.quiet)
            codes.append(run.exit_code)
    finally:
        restore()
    return _worst(codes)
