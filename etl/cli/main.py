"""Thin commands over the Python API: each command parses flags and calls one function."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from etl.cli.failures import (
    EXIT_ENVIRONMENT,
    EXIT_INTERNAL,
    EXIT_NOT_FINISHED,
    EXIT_USAGE,
    describe_environment_error,
    save_traceback,
)
from etl.cli.logs import LogObserver, configure_logging, log_level
from etl.cli.output import print_run
from etl.cli.parser import NUMBER_FLAGS, build_parser
from etl.cli.progress import ProgressObserver, progress_observer
from etl.core.database_urls import is_database_url, redacted_url
from etl.core.errors import ObjectStoreError, UsageError
from etl.core.events import Observer, Observers
from etl.core.kinds import KINDS
from etl.core.printable import printable
from etl.core.process_setup import skip_pandas_probe
from etl.core.schema import flat_model
from etl.core.store_urls import is_store_url
from etl.core.summary import RunSummary
from etl.settings.config import (
    ExportFormat,
    Settings,
    checked_number,
    load_mapping_file,
    load_settings,
    load_settings_with_origins,
)
from etl.settings.tenants import Tenant, load_tenants
from etl.state.inbox import require_inbox

if TYPE_CHECKING:
    from etl.monitor.metrics import Metrics
    from etl.monitor.metrics_server import MetricsServer
    from etl.run.sandbox_process import ActionDouble


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings the command line sets (None: not given)."""
    overrides: dict[str, Any] = {
        "inbox": getattr(args, "inbox", None),
        "outbox": getattr(args, "outbox", None),
        "state": getattr(args, "state", None),
        "channel_id": getattr(args, "channel_id", None),
        "store_id": getattr(args, "store_id", None),
        "api_url": getattr(args, "api_url", None),
        "token_url": getattr(args, "token_url", None),
        "client_id": getattr(args, "client_id", None),
        "settle_seconds": getattr(args, "settle", None),
        "fresh_ledger": getattr(args, "fresh_ledger", None) or None,
        "rescan_seconds": getattr(args, "rescan", None),
    }
    for name, flag in NUMBER_FLAGS.items():
        if overrides[name] is not None:
            checked_number(name, overrides[name], flag)  # named as typed, not as the setting
    inbox = overrides["inbox"]
    if inbox is not None and is_store_url(inbox):
        overrides["inbox"], overrides["inbox_url"] = None, inbox
    elif inbox is not None:
        overrides["inbox"] = Path(inbox)
    state = overrides.pop("state")
    if state is not None and is_database_url(state):
        if urlsplit(state).password:
            raise UsageError(
                f"--state {redacted_url(state)} holds a password, which every user of this "
                "machine can read in the process list: give the URL in CONNECT_STATE_URL, or "
                "the password in PGPASSWORD or ~/.pgpass"
            )
        from etl.settings.secret import Secret

        overrides["state_url"] = Secret(state)
    elif state is not None:
        overrides["state"] = Path(state)
    return overrides


def _ledger_of(settings: Settings) -> Path | str:
    """What `etl status` reads: the ledger file, or the database URL."""
    return settings.state_url.reveal() if settings.state_url else settings.ledger_path


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None), _overrides(args))


def tenants_from(args: argparse.Namespace, base: Settings) -> tuple[Tenant, ...]:
    """The config file's tenants (``--tenant``: that one); empty without [tenants], when the
    command serves the one seller of ``base`` as it always has."""
    tenants = load_tenants(getattr(args, "config", None), base, only=getattr(args, "tenant", None))
    if tenants and getattr(args, "inbox", None) is not None:
        raise UsageError(
            "--inbox: each tenant has its own inbox ([tenants.NAME] inbox in the config file)"
        )
    return tenants


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from etl.cli.config_show import settings_lines, settings_table

    settings, origins = load_settings_with_origins(args.config, _overrides(args))
    if args.tenant is not None:
        # The tenant's own settings over the shared ones, each with where it came from.
        (tenant,) = load_tenants(args.config, settings, only=args.tenant)
        settings, origins = tenant.settings, {**origins, **tenant.origins}
        for key in ("client_id", "client_secret", "token"):
            if key not in tenant.origins:
                origins.pop(key, None)  # never another's: unset for this tenant
        if tenant.problem:
            print(f"etl: tenant {tenant.name}: {tenant.problem}", file=sys.stderr)
    table = settings_table(settings, origins)
    print(json.dumps(table, indent=2) if args.json else "\n".join(settings_lines(table)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from etl.run.inbox_run import html_report
    from etl.run.parallel import default_workers

    settings = settings_from(args)
    tenants = tenants_from(args, settings)
    if tenants:
        from etl.cli.tenant_commands import check_tenants

        return check_tenants(args, tenants)
    source: ExportFormat | None = None
    if args.mapping is not None:
        source = load_mapping_file(args.mapping, settings.default_source)
    files = checked_files(args.files)
    from etl.run.check import check_files

    kind = KINDS[args.kind] if args.kind else None
    with _observed(args) as (observer, logs):
        run, run_dir = check_files(
            files, settings, source, observer=observer, kind=kind, workers=default_workers()
        )
        _finish(run, run_dir, args, logs, html_report(run, run_dir))
    return run.exit_code


def checked_files(given: list[Path]) -> list[Path]:
    """The files `etl check` reads: each FILE, and the files of each folder (not its subfolders,
    nor names the inbox never takes: hidden, temporary), in name order."""
    from etl.core.kinds import is_ignored

    files: list[Path] = []
    missing: list[str] = []
    for path in given:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not is_ignored(p))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(str(path))
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    if not files:
        raise UsageError(f"no file to check in {', '.join(str(p) for p in given)}")
    return files


@contextmanager
def _observed(args: argparse.Namespace) -> Iterator[tuple[Observer, LogObserver]]:
    """Log set-up, progress bars (on a terminal) and the canonical log lines for one command."""
    restore = configure_logging(log_level(args.quiet, args.verbose), args.log_format)
    progress = progress_observer(args.quiet)
    logs = LogObserver()
    try:
        yield Observers(progress, logs), logs
    finally:
        if isinstance(progress, ProgressObserver):
            progress.close()
        restore()


def _finish(
    run: RunSummary,
    run_dir: Path,
    args: argparse.Namespace,
    logs: LogObserver,
    html: tuple[Path | None, str],
) -> None:
    """The run's log line, the summary, and where its HTML report is (or why it is not)."""
    report, problem = html
    if problem:
        print(f"etl: {problem}", file=sys.stderr)
    logs.run_finished(run, run_dir)
    print_run(run, run_dir, quiet=args.quiet)
    if report is not None and not args.quiet:
        print(f"report: {report}")


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    tenants = tenants_from(args, settings)
    if tenants:
        from etl.cli.tenant_commands import run_tenants

        return run_tenants(args, tenants)
    if not settings.inbox_url:
        require_inbox(settings.inbox, args.create)
    if not args.sandbox:
        return _run(settings, args.force, args)
    with sandboxed(settings, "run") as (sandboxed_settings, count):
        code = _run(sandboxed_settings, args.force, args)
        print(count())
    return code


@contextmanager
def sandboxed(settings: Settings, command: str) -> Iterator[tuple[Settings, Callable[[], str]]]:
    """`--sandbox`: the local double started as a process of its own for this command, the
    settings pointing at it, and a function that says what it received meanwhile."""
    from etl.run.sandbox_process import sandbox_db, sandbox_settings, started_sandbox

    db_path = sandbox_db(settings)
    with started_sandbox(db_path) as sandbox:
        print(
            f"sandbox: serving {sandbox.api_url} (process {sandbox.pid}; stops with this "
            f"{command})",
            flush=True,
        )
        before = sandbox.counts()  # the file outlives runs: this run's requests come after this
        created = 0 if settings.inbox_url else seed_pending_actions(sandbox, settings.inbox)
        if created:
            print(
                f"sandbox: created {created} pending action(s) named by the action-status "
                "files, as Connect's order action events would"
            )

        def count() -> str:
            after = sandbox.counts(since=before.last_seq)
            return (
                f"sandbox: received {after.requests} request(s) during this {command}; "
                f"holds {after.orders} order(s) in {db_path}"
            )

        yield sandbox_settings(settings, sandbox, db_path), count


def seed_pending_actions(sandbox: ActionDouble, inbox: Path) -> int:
    """The run layer's seeding (etl/run/sandbox_process.py), with a warning per file skipped:
    the run itself reports that file."""
    from etl.run.sandbox_process import seed_pending_actions as seed

    seeded = seed(sandbox, inbox)
    for name, why in seeded.skipped:
        print(
            f"sandbox: {printable(name)} skipped while creating pending actions ({why}); "
            "the run reports the file",
            file=sys.stderr,
        )
    return seeded.created


def cmd_retry(args: argparse.Namespace) -> int:
    from etl.report.html import find_run
    from etl.run.retry import plan_retry
    from etl.state.inbox import claimed_files

    settings = settings_from(args)
    require_inbox(settings.inbox, create=False)

    def retry(chosen: Settings) -> int:
        plan = plan_retry(find_run(chosen.outbox, args.run_id), chosen)
        for note in plan.notes:
            print(note)
        if not plan.paths and not claimed_files(chosen.inbox):
            return 0
        return _run(chosen, False, args, plan.paths)

    if not args.sandbox:
        return retry(settings)
    with sandboxed(settings, "retry") as (sandboxed_settings, count):
        code = retry(sandboxed_settings)
        print(count())
    return code


def _run(
    settings: Settings, force: bool, args: argparse.Namespace, paths: list[Path] | None = None
) -> int:
    """``etl run`` (every file waiting), or ``etl retry`` (``paths``: a run's files, which wait
    in the inbox)."""
    from etl.run.inbox_run import inbox_shown, run_inbox
    from etl.run.parallel import Workers, run_workers

    with _observed(args) as (observer, logs), Workers(run_workers()) as workers:
        done = run_inbox(
            settings,
            force=force,
            create=args.create,
            observer=observer,
            metrics_textfile=args.metrics_textfile,
            drop=None if paths is None else lambda: list(paths),
            workers=workers,
        )
        run = done.summary
        if not run.files and not run.due_work:
            if not args.quiet:
                print(f"inbox {inbox_shown(settings)}: nothing to do")
        else:
            _finish(run, done.run_dir, args, logs, (done.html, done.html_problem))
    if done.publish_problem:
        print(
            f"etl: cannot upload the reports to [report] url: {done.publish_problem}",
            file=sys.stderr,
        )
    if done.api_down is not None:
        print(f"etl: stopped sending: {done.api_down}", file=sys.stderr)
    return run.exit_code


def cmd_watch(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    settings = settings_from(args)
    tenants = tenants_from(args, settings)
    if tenants:
        from etl.cli.tenant_commands import watch_tenants

        return watch_tenants(args, tenants)
    if not settings.inbox_url:
        require_inbox(settings.inbox, args.create)
    if not args.sandbox:
        return _watch(settings, args)
    with sandboxed(settings, "watcher") as (sandboxed_settings, count):
        code = _watch(sandboxed_settings, args)
        print(count())
    return code


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    from etl.run.inbox_run import inbox_of

    settings.require_credentials()
    with inbox_of(settings, args.create) as staged:
        return _watch_inbox(staged, args)


def _watch_inbox(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from etl.run.inbox_run import inbox_shown
    from etl.run.object_watch import ObjectWatcher
    from etl.run.shared_state import ClientFactory
    from etl.run.watch import Watcher, WatcherRefused

    metrics = metrics_for(settings) if args.metrics_port is not None else None
    clients = ClientFactory(settings, metrics)
    kind = ObjectWatcher if settings.inbox_url else Watcher
    watcher = kind(
        settings,
        clients,
        polling=settings.polling if args.polling is None else args.polling,
        rescan_seconds=settings.rescan_seconds,
    )

    def stop(signum: int, frame: object) -> None:
        print(f"etl watch: {signal.Signals(signum).name}: finishing the batch in flight")
        watcher.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(
        f"etl watch: watching {inbox_shown(settings)} (heartbeat in {settings.outbox})",
        flush=True,
    )
    server = None
    try:
        if metrics is not None:
            watcher.run_listeners.append(metrics.record_run)
            server = metrics_server(metrics, settings, args)
        watcher.run()
    except WatcherRefused as refused:
        raise UsageError(str(refused)) from None
    finally:
        clients.close()
        if server is not None:
            server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("etl watch: stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from etl.monitor.status import collect_status, format_status

    settings = settings_from(args)
    tenants = tenants_from(args, settings)
    if tenants:
        from etl.cli.tenant_commands import status_tenants

        return status_tenants(args, tenants)
    status = collect_status(
        settings.inbox, settings.outbox, runs=args.runs, ledger=_ledger_of(settings)
    )
    if settings.inbox_url:
        from etl.monitor.status import LISTED_FILES
        from etl.run.object_sync import object_inbox_status

        status.update(object_inbox_status(settings, LISTED_FILES))
    print(json.dumps(status, indent=2, ensure_ascii=False) if args.json else format_status(status))
    return 0


def cmd_events(args: argparse.Namespace) -> int:
    from etl.cli.events import events_command

    return events_command(settings_from(args), args.wait, args.quiet)


def cmd_health(args: argparse.Namespace) -> int:
    from etl.monitor.health import health

    settings = settings_from(args)
    # With tenants, each seller has its own watcher and heartbeat: the worst of them decides.
    served = [(t.name, t.settings) for t in tenants_from(args, settings)] or [("", settings)]
    codes = []
    for tenant, each in served:
        verdict = health(each.outbox, args.max_age)
        print(f"tenant {tenant}: {verdict.line}" if tenant else verdict.line)
        if each.alert_urls:
            from etl.monitor.alerts import Alerts

            alerts = Alerts.from_settings(each)
            alerts.health(verdict.exit_code == 0, verdict.line, each.outbox)
            alerts.close()
        codes.append(verdict.exit_code)
    return max(codes)


def metrics_for(settings: Settings) -> Metrics:
    # Imported only when asked for: prometheus_client is not loaded by every command.
    from etl.monitor.metrics import Metrics

    return Metrics(settings.inbox, settings.outbox)


def metrics_server(metrics: Metrics, settings: Settings, args: argparse.Namespace) -> MetricsServer:
    from etl.monitor.health import health
    from etl.monitor.metrics_server import MetricsServer

    try:
        server = MetricsServer(
            metrics, lambda: health(settings.outbox), args.metrics_host, args.metrics_port
        )
    except OSError as error:
        raise UsageError(
            f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {error.strerror}"
        ) from None
    print(f"etl watch: metrics on {server.url}/metrics, health on {server.url}/healthz", flush=True)
    return server


def cmd_report(args: argparse.Namespace) -> int:
    import webbrowser

    from etl.report.html import REPORT_NAME, find_run, read_run_summary, write_html_report

    settings = settings_from(args)
    tenants = tenants_from(args, settings)
    if len(tenants) > 1:
        names = ", ".join(t.name for t in tenants)
        raise UsageError(f"each tenant has runs of its own: add --tenant NAME ({names})")
    if tenants:
        settings = tenants[0].settings
    run_dir = find_run(settings.outbox, args.run_id)
    run = read_run_summary(run_dir)
    if args.json:
        print((run_dir / "summary.json").read_text(encoding="utf-8"), end="")
        return 0
    report = run_dir / REPORT_NAME
    if args.html or not report.is_file():
        report = write_html_report(run_dir)
    print(f"run {run.run_id}: etl {run.command}, started {run.started_at}, {run.seconds:.1f} s")
    print_run(run, run_dir)
    print(f"report: {report}")
    if args.open and not webbrowser.open(report.resolve().as_uri()):
        print(
            f"etl report: no web browser could be opened here; open {report} yourself",
            file=sys.stderr,
        )
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from etl.sandbox import main as sandbox_main

    return sandbox_main(list(args.sandbox_args))


def cmd_template(args: argparse.Namespace) -> int:
    kind = KINDS[args.kind]
    columns = flat_model(kind).described()
    if args.describe:
        levels = {"request": "request", "item": kind.singular, "row": "line"}
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["column", "required", "level", "indexed"])
        for column in columns:
            writer.writerow(
                [
                    column.name,
                    "yes" if column.required else "no",
                    levels[column.level.value],
                    "yes" if column.indexed else "no",
                ]
            )
        return 0
    print(",".join(c.name for c in columns if c.required or not args.required))
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if arguments[:1] == ["sandbox"]:
        # The sandbox has its own flags (and --help); argparse's REMAINDER would swallow none of
        # those that start with a dash.
        from etl.sandbox import main as sandbox_main

        return sandbox_main(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)  # --help and usage errors end here, before pyarrow loads
    skip_pandas_probe()
    handler: Callable[[argparse.Namespace], int] = globals()[f"cmd_{args.command}"]
    try:
        return handler(args)
    except UsageError as error:
        print(f"etl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ObjectStoreError as error:
        # The store away or refusing: nothing was deleted from it; the next run tries again.
        print(f"etl: {error}; the objects stay in the store for the next run", file=sys.stderr)
        return EXIT_NOT_FINISHED
    except KeyboardInterrupt:
        print("etl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `etl status --json | head`: the reader has had enough; nothing to complain about.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (OSError, sqlite3.Error) as error:
        # The machine, not the data: a full disk, a read-only folder, a ledger another process
        # holds. Inputs stay where they are (claimed files are resumed by the next run).
        print(f"etl: {describe_environment_error(error)}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except Exception as error:
        # A bug: say so plainly, keep the traceback for the report, never retry silently.
        where = save_traceback()
        print(
            f"etl: internal error ({type(error).__name__}: {error}); the traceback is in {where}; "
            "inputs are left in place for the next run",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
