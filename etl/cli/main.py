"""Thin commands over the Python API: each command parses flags and calls one function."""

from __future__ import annotations

import argparse
import csv
import errno
import json
import logging
import os
import sqlite3
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import __version__
from etl.cli.logs import FORMATS, LogObserver, configure_logging, log_level
from etl.cli.progress import ProgressObserver, progress_observer
from etl.core.errors import UsageError
from etl.core.events import Observer, Observers
from etl.core.kinds import KINDS
from etl.core.printable import printable
from etl.core.process_setup import skip_pandas_probe
from etl.core.schema import flat_model
from etl.core.summary import FileSummary, RunSummary
from etl.run.check import check_files
from etl.settings.config import (
    FLAG_NAMES,
    Secret,
    Settings,
    SourceFormat,
    checked_number,
    load_mapping_file,
    load_settings,
    load_settings_with_origins,
)

if TYPE_CHECKING:
    from etl.monitor.metrics import Metrics
    from etl.monitor.metrics_server import MetricsServer

EXIT_USAGE = 2
EXIT_INTERNAL = 4  # a bug: the traceback is saved, inputs stay for the next run
EXIT_ENVIRONMENT = 5  # the machine: a full disk, a read-only folder, permissions
NUMBER_FLAGS = FLAG_NAMES  # the flags that set a number (their names differ from the setting)


# What `etl completion` offers after a flag (shtab's FILE and DIRECTORY, spelled out so that
# building the parser never imports shtab).
COMPLETE_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
COMPLETE_DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}


def _common(parser: argparse.ArgumentParser) -> None:
    for flag, help_text, complete in (
        ("--inbox", "folder watched for input files (./inbox)", COMPLETE_DIRECTORY),
        ("--outbox", "folder for reports and processed files (./outbox)", COMPLETE_DIRECTORY),
        ("--state", "ledger file (<outbox>/.state/ledger.sqlite3)", COMPLETE_FILE),
        ("--config", "TOML settings file (./etl.toml if present)", COMPLETE_FILE),
    ):
        action = parser.add_argument(flag, type=Path, help=help_text)
        setattr(action, "complete", complete)  # noqa: B010 - shtab reads it; Action lacks it


def _connect_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that talk to Connect (never a secret: those would show in ps)."""
    parser.add_argument("--channel-id", help="origin.channel_id for rows that leave it empty")
    parser.add_argument("--store-id", help="origin.channel_store_id for rows that leave it empty")
    parser.add_argument("--api-url", help="Connect API base URL (CONNECT_API_URL)")
    parser.add_argument("--token-url", help="OAuth2 token URL (CONNECT_TOKEN_URL)")
    parser.add_argument("--client-id", help="OAuth2 client id (CONNECT_CLIENT_ID)")
    parser.add_argument("--settle", type=float, help="seconds a file must stay unchanged (2)")
    parser.add_argument(
        "--create", action="store_true", help="make the inbox folder if it does not exist"
    )
    parser.add_argument(
        "--fresh-ledger",
        action="store_true",
        help="use a ledger that is new, or older than this outbox's runs knew (deleted, "
        "restored): every order it does not know is sent once more",
    )


def _source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mapping", type=Path, help="mapping file for every FILE (README)")
    parser.add_argument("--channel-id", help="origin.channel_id for rows that leave it empty")
    parser.add_argument("--store-id", help="origin.channel_store_id for rows that leave it empty")


def _output_flags(parser: argparse.ArgumentParser, verbose: bool = True) -> None:
    if verbose:
        parser.add_argument(
            "-v", "--verbose", action="store_true", help="a log line per file and per batch"
        )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bars and no log lines but warnings; print only the closing line",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="auto",
        help="log lines as text or JSON lines (auto: text on a terminal, JSON otherwise)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="etl",
        description="File-drop order sync for Mirakl Connect (README.md has the whole story).",
    )
    parser.add_argument("--version", action="version", version=f"etl {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="map and validate files offline; write would-be requests and reports",
        description="Offline: no request is sent. Exit 0 all valid, 1 some invalid, 2 unreadable.",
    )
    check.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="a file, or a folder of files"
    )
    check.add_argument(
        "--kind",
        choices=sorted(KINDS),
        metavar="KIND",
        help="read every FILE as this kind, whatever its name says: " + ", ".join(sorted(KINDS)),
    )
    _common(check)
    _source_flags(check)
    _output_flags(check)
    check.set_defaults(handler=cmd_check)

    run = commands.add_parser(
        "run",
        help="process every file waiting in the inbox once, send it to Connect, and exit",
        description=(
            "Exit 0 all accepted; 1 some orders invalid or rejected, or an action's outcome "
            "unknown (reports written); 2 usage or configuration error, or an API URL that "
            "answers like no Connect API; 3 not finished: API unreachable, credentials "
            "refused, or stopped (inputs left in the inbox for the next run); 4 internal error "
            "(a bug; a file that meets one goes to failed/, the others go on); 5 the machine "
            "refused (disk full, read-only, permissions). Credentials come "
            "from CONNECT_* environment variables or the config file, never from flags."
        ),
    )
    _common(run)
    _connect_flags(run)
    run.add_argument("--force", action="store_true", help="send files and orders seen before")
    run.add_argument(
        "--sandbox",
        action="store_true",
        help="start the local API double (its own process) for this run and send to it (a demo; "
        "nothing leaves this machine); what it stored is in <outbox>/.sandbox/sandbox.sqlite3",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="one log line per batch")
    run.add_argument(
        "--metrics-textfile",
        type=Path,
        metavar="PATH",
        help="write Prometheus metrics of this run to PATH at its end (node_exporter textfile "
        "collector format, written atomically)",
    )
    _output_flags(run, verbose=False)
    run.set_defaults(handler=cmd_run)

    watch = commands.add_parser(
        "watch",
        help="watch the inbox and process each file once it has settled; stop with Ctrl-C",
        description=(
            "Runs until SIGINT/SIGTERM, which finish the batch in flight and exit 0. One watcher "
            "per inbox. Writes <outbox>/watch.heartbeat.json (last scan, files queued, last error)."
        ),
    )
    _common(watch)
    _connect_flags(watch)
    watch.add_argument(
        "--polling",
        action="store_true",
        default=None,
        help="poll the folder instead of kernel events (for SMB/NFS shares; [watch] polling)",
    )
    watch.add_argument(
        "--rescan", type=float, help="seconds between full rescans of the inbox (30)"
    )
    watch.add_argument("-v", "--verbose", action="store_true", help="one log line per run")
    watch.add_argument(
        "--sandbox",
        action="store_true",
        help="start the local API double for as long as the watcher runs and send to it (a "
        "demo; nothing leaves this machine)",
    )
    watch.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve Prometheus /metrics and /healthz on this port (0: any free port)",
    )
    watch.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address for --metrics-port (127.0.0.1; 0.0.0.0 in a container)",
    )
    watch.set_defaults(handler=cmd_watch)

    status = commands.add_parser(
        "status",
        help="recent runs, files waiting in the inbox, files in failed/, the watcher's heartbeat",
        description="Reads the folders only: safe beside a running watcher. Exit 0.",
    )
    _common(status)
    status.add_argument("--json", action="store_true", help="JSON for monitoring")
    status.add_argument("--runs", type=int, default=10, help="how many recent runs (10)")
    status.set_defaults(handler=cmd_status)

    health = commands.add_parser(
        "health",
        help="exit 0 if the watcher's heartbeat is fresh and the API reachable, 1 otherwise",
        description=(
            "Reads <outbox>/watch.heartbeat.json only and prints one line saying why: a stale "
            "heartbeat (how old), a stopped watcher, the API down since when. Exit 0 healthy, "
            "1 not."
        ),
    )
    _common(health)
    health.add_argument(
        "--max-age",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="a heartbeat older than this is stale (60)",
    )
    health.set_defaults(handler=cmd_health)

    report = commands.add_parser(
        "report",
        help="print a past run's summary; write its report.html if missing",
        description="RUN_ID is a run id, a unique prefix of one, or 'latest' (the default).",
    )
    report.add_argument("run_id", nargs="?", default="latest", metavar="RUN_ID")
    _common(report)
    report.add_argument("--open", action="store_true", help="open report.html in a web browser")
    report.add_argument("--html", action="store_true", help="write report.html again")
    report.add_argument("--json", action="store_true", help="print summary.json as it is")
    report.set_defaults(handler=cmd_report)

    sandbox = commands.add_parser(
        "sandbox",
        help="serve the local double of the Connect API on 127.0.0.1",
        add_help=False,
    )
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    sandbox.set_defaults(handler=cmd_sandbox)

    template = commands.add_parser(
        "template",
        help="print the full CSV header of a file kind",
        description="KIND: " + ", ".join(sorted(KINDS)) + ".",
    )
    template.add_argument("kind", choices=sorted(KINDS), metavar="KIND")
    shown = template.add_mutually_exclusive_group()
    shown.add_argument("--required", action="store_true", help="only the columns every item needs")
    shown.add_argument(
        "--describe",
        action="store_true",
        help="one line per column: column, required, level (request, item or line), indexed",
    )
    _common(template)
    template.set_defaults(handler=cmd_template)

    config = commands.add_parser(
        "config",
        help="show the settings a command would use, and where each one came from",
        description="`etl config show`: flags, CONNECT_* variables, secret files, etl.toml, "
        "defaults, merged as `etl run` merges them. Secrets print as ***.",
    )
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_commands.add_parser(
        "show", help="each setting, its value (secrets as ***) and its origin; exit 0"
    )
    _common(show)
    _connect_flags(show)
    show.add_argument("--rescan", type=float, help="seconds between full rescans of the inbox")
    show.add_argument("--json", action="store_true", help="one JSON object: {name: {value, from}}")
    show.set_defaults(handler=cmd_config_show)

    completion = commands.add_parser(
        "completion",
        help='print a shell completion script: eval "$(etl completion bash)"',
        description="bash: source it from ~/.bashrc; zsh: save it as _etl in a folder of $fpath.",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"), metavar="SHELL")
    completion.set_defaults(handler=cmd_completion)
    return parser


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
    return overrides


def settings_from(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None), _overrides(args))


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0


def cmd_config_show(args: argparse.Namespace) -> int:
    from etl.cli.config_show import settings_lines, settings_table

    settings, origins = load_settings_with_origins(args.config, _overrides(args))
    table = settings_table(settings, origins)
    print(json.dumps(table, indent=2) if args.json else "\n".join(settings_lines(table)))
    return 0


def print_file_line(summary: FileSummary) -> None:
    name, reason = printable(summary.name), printable(summary.reason)
    if summary.status in ("duplicate", "empty"):
        print(f"{name}: {summary.status.upper()}: {reason}")
        return
    if summary.status != "processed":
        print(f"{name}: {summary.status.upper()}: {reason}", file=sys.stderr)
        return
    outcomes = ", ".join(f"{n} {o.lower()}" for o, n in sorted(summary.outcomes.items()))
    print(
        f"{name}: {summary.items} {summary.kind} from {summary.rows} rows: {outcomes}; "
        f"{summary.violations} problem(s); "
        + (f"{summary.warnings} warning(s); " if summary.warnings else "")
        + f"{summary.requests} request(s)"
        + (
            f" ({summary.extra_requests} extra to isolate rejected orders)"
            if summary.extra_requests
            else ""
        )
        + (f"; {reason}" if reason else "")
    )


def refused(file: FileSummary) -> str:
    """Why a file was not delivered whole, in one line ('' when it was)."""
    if file.status not in ("processed", "empty", "duplicate", "resumed"):
        return f"{file.status.upper()}: {file.reason}"
    bad = {o: n for o, n in file.outcomes.items() if o in ("INVALID", "REJECTED", "UNKNOWN")}
    if bad:
        counts = ", ".join(f"{n} {o.lower()}" for o, n in sorted(bad.items()))
        return f"PROBLEMS: {counts} of {file.items}; see its errors.csv"
    return f"LEFT IN THE INBOX: {file.reason}" if file.unfinished else ""


def print_run(run: RunSummary, run_dir: Path, quiet: bool = False) -> None:
    for file in run.files:
        if not quiet:
            print_file_line(file)
        elif refused(file):
            # Quiet is for cron: silence about what went well, one line about what did not.
            print(f"{file.name}: {refused(file)}", file=sys.stderr)
    for job, count in run.due_work.items():
        print(f"due work: {count} {job.replace('_', ' ')}")
    target = f" to {run.target}" if run.target else ""
    print(f"run {run.run_id}{target}: exit {run.exit_code}; reports in {run_dir}")


def cmd_check(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    source: SourceFormat | None = None
    if args.mapping is not None:
        source = load_mapping_file(args.mapping, settings.default_source)
    files = checked_files(args.files)
    kind = KINDS[args.kind] if args.kind else None
    with _observed(args) as (observer, logs):
        run, run_dir = check_files(files, settings, source, observer=observer, kind=kind)
        _finish(run, run_dir, args, logs)
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


def _finish(run: RunSummary, run_dir: Path, args: argparse.Namespace, logs: LogObserver) -> None:
    """The HTML report (never the cause of a failed run), the run's log line, the summary."""
    from etl.report.html import write_html_report

    report: Path | None = None
    if run.files:
        try:
            report = write_html_report(run_dir)
        except Exception as error:  # the run's work is done and recorded; say so, keep its code
            logging.getLogger("etl.run").exception("cannot write the HTML report")
            print(f"etl: cannot write {run_dir}/report.html: {error}", file=sys.stderr)
    logs.run_finished(run, run_dir)
    print_run(run, run_dir, quiet=args.quiet)
    if report is not None and not args.quiet:
        print(f"report: {report}")


def cmd_run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    _require_inbox(settings.inbox, args.create)
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
    from etl.run.sandbox_process import started_sandbox

    db_path = settings.outbox / ".sandbox" / "sandbox.sqlite3"
    with started_sandbox(db_path) as sandbox:
        print(
            f"sandbox: serving {sandbox.api_url} (process {sandbox.pid}; stops with this "
            f"{command})",
            flush=True,
        )
        before = sandbox.counts()  # the file outlives runs: this run's requests come after this
        created = seed_pending_actions(sandbox, settings.inbox)
        if created:
            print(
                f"sandbox: created {created} pending action(s) named by the action-status "
                "files, as Connect's order action events would"
            )
        settings = replace(
            settings,
            api_url=sandbox.api_url,
            token_url=sandbox.token_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
            token=Secret(""),
            # The sandbox is a target of its own, with a history of its own: what the demo
            # delivered says nothing about the real API (DESIGN.md section 9).
            target_name=f"sandbox {db_path}",
            state=settings.state or db_path.parent / "ledger.sqlite3",
        )

        def count() -> str:
            after = sandbox.counts(since=before.last_seq)
            return (
                f"sandbox: received {after.requests} request(s) during this {command}; "
                f"holds {after.orders} order(s) in {db_path}"
            )

        yield settings, count


def _require_inbox(inbox: Path, create: bool) -> None:
    """A typo in a folder must not pass for an empty inbox: cron would hear "nothing to do"
    forever."""
    if inbox.is_dir():
        return
    if inbox.exists():
        raise UsageError(f"the inbox {inbox} is not a folder")
    if not create:
        raise UsageError(
            f"the inbox {inbox} does not exist (a typo?); create it, or pass --create to let "
            "the tool make it"
        )
    inbox.mkdir(parents=True)


def _require_credentials(settings: Settings) -> None:
    if not settings.token and not (settings.client_id and settings.client_secret):
        raise UsageError(
            "no Connect credentials: set CONNECT_CLIENT_ID and CONNECT_CLIENT_SECRET "
            "(or CONNECT_TOKEN), the secret in a file (CONNECT_CLIENT_SECRET_FILE, "
            "systemd credentials, /run/secrets: README, Secrets), or [connect] in the config "
            "file; --sandbox runs a local demo"
        )


def seed_pending_actions(sandbox: Any, inbox: Path) -> int:
    """The demo's stand-in for Connect's command events: the actions the inbox reports on.

    Only regular files are read (etl/inputs.py: a pipe would block, a link lead elsewhere);
    one that is not UTF-8 is skipped with a warning: the run itself reports it."""
    from etl.core.kinds import detect_kind
    from etl.core.schema import ACTION_STATUSES
    from etl.read.inputs import InputRefused, allowed_owners, open_checked

    wanted: set[str] = set()
    for path in sorted(inbox.glob("*")) if inbox.is_dir() else []:
        if detect_kind(path) is not ACTION_STATUSES or path.suffix.lower() != ".csv":
            continue
        try:
            fd, _ = open_checked(path, allowed_owners(inbox))
        except (InputRefused, OSError):
            continue
        try:
            with open(fd, encoding="utf-8-sig", newline="") as handle:
                wanted.update(row.get("action_id", "") for row in csv.DictReader(handle))
        except (UnicodeDecodeError, csv.Error) as error:
            print(
                f"sandbox: {printable(path.name)} skipped while creating pending actions "
                f"(not UTF-8 CSV text: {error}); the run reports the file",
                file=sys.stderr,
            )
    known = {action["id"] for action in sandbox.actions()}
    missing = sorted(a for a in wanted - known if a)
    if missing:
        sandbox.create_actions(action_ids=missing)
    return len(missing)


def _run(settings: Settings, force: bool, args: argparse.Namespace) -> int:
    from etl.run.sync import Sync
    from etl.send.client import ConnectClient
    from etl.state.inbox import InboxLock

    _require_credentials(settings)
    _require_inbox(settings.inbox, args.create)
    lock = InboxLock(settings.inbox, purpose="etl run")
    holder = lock.acquire()
    if holder is not None:
        raise UsageError(holder)
    metrics = _metrics(settings) if args.metrics_textfile else None
    # No worker processes (Sync(workers=...) can take them): measured at 200k lines on 2 shared
    # cores with the sandbox beside it, they made the paced run and the delta run slower and
    # doubled the peak RSS (bench/README.md, issue 16).
    with _observed(args) as (observer, logs):
        try:
            sync = Sync(
                settings,
                lambda: ConnectClient(settings, meter=metrics),
                force=force,
                observer=observer,
            )
            run = sync()
        finally:
            lock.release()
        _alert_run(settings, run, sync.api_down)
        if metrics is not None:
            metrics.record_run(run)
            metrics.write_textfile(args.metrics_textfile)
        if not run.files and not run.due_work:
            if not args.quiet:
                print(f"inbox {settings.inbox}: nothing to do")
        else:
            _finish(run, sync.run_dir, args, logs)
    if sync.api_down is not None:
        print(f"etl: stopped sending: {sync.api_down}", file=sys.stderr)
    return run.exit_code


def _alert_run(settings: Settings, run: RunSummary, api_down: BaseException | None) -> None:
    """`etl run` under cron: one alert listing this run's failed files, and the API's outage
    once it has lasted past the threshold over the runs (and once when it is over)."""
    import time

    from etl.monitor.alerts import Alerts

    if settings.alert_urls:
        alerts = Alerts.from_settings(settings, clock=time.time)
        state = settings.outbox / ".state" / "api-down.json"
        alerts.load_api_state(state)
        alerts.failed_files(run, settings.outbox)
        alerts.api_state(api_down, run.run_id)
        alerts.save_api_state(state)
        alerts.close()


def cmd_watch(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    settings = settings_from(args)
    _require_inbox(settings.inbox, args.create)
    if not args.sandbox:
        return _watch(settings, args)
    with sandboxed(settings, "watcher") as (sandboxed_settings, count):
        code = _watch(sandboxed_settings, args)
        print(count())
    return code


def _watch(settings: Settings, args: argparse.Namespace) -> int:
    import signal

    from etl.run.watch import Watcher, WatcherRefused
    from etl.send.client import ConnectClient

    _require_credentials(settings)
    metrics = _metrics(settings) if args.metrics_port is not None else None
    watcher = Watcher(
        settings,
        lambda: ConnectClient(settings, meter=metrics),
        polling=settings.polling if args.polling is None else args.polling,
        rescan_seconds=settings.rescan_seconds,
    )

    def stop(signum: int, frame: object) -> None:
        print(f"etl watch: {signal.Signals(signum).name}: finishing the batch in flight")
        watcher.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"etl watch: watching {settings.inbox} (heartbeat in {settings.outbox})", flush=True)
    server = None
    try:
        if metrics is not None:
            watcher.run_listeners.append(metrics.record_run)
            server = _metrics_server(metrics, settings, args)
        watcher.run()
    except WatcherRefused as refused:
        raise UsageError(str(refused)) from None
    finally:
        if server is not None:
            server.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("etl watch: stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from etl.report.status import collect_status, format_status

    settings = settings_from(args)
    status = collect_status(
        settings.inbox, settings.outbox, runs=args.runs, ledger=settings.ledger_path
    )
    print(json.dumps(status, indent=2, ensure_ascii=False) if args.json else format_status(status))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from etl.monitor.health import health

    settings = settings_from(args)
    verdict = health(settings.outbox, args.max_age)
    print(verdict.line)
    if settings.alert_urls:
        from etl.monitor.alerts import Alerts

        alerts = Alerts.from_settings(settings)
        alerts.health(verdict.exit_code == 0, verdict.line, settings.outbox)
        alerts.close()
    return verdict.exit_code


def _metrics(settings: Settings) -> Metrics:
    # Imported only when asked for: prometheus_client is not loaded by every command.
    from etl.monitor.metrics import Metrics

    return Metrics(settings.inbox, settings.outbox)


def _metrics_server(
    metrics: Metrics, settings: Settings, args: argparse.Namespace
) -> MetricsServer:
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
    skip_pandas_probe()
    parser = build_parser()
    args = parser.parse_args(arguments)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as error:
        print(f"etl: {error}", file=sys.stderr)
        return EXIT_USAGE
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


def describe_environment_error(error: OSError | sqlite3.Error) -> str:
    if isinstance(error, sqlite3.Error) and not isinstance(error, sqlite3.OperationalError):
        return (
            f"the ledger is damaged ({error}): put back a copy from a backup, or move it away "
            "and run once with --fresh-ledger (every order it does not know is sent once more)"
        )
    if isinstance(error, sqlite3.Error):
        return (
            f"the ledger cannot be written ({error}); is the disk full or another run holding it?"
        )
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EFBIG: "the disk is full (or a file size limit was reached)",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    reason = reasons.get(error.errno or 0, error.strerror or str(error))
    target = f" ({error.filename})" if error.filename else ""
    return f"cannot read or write a file{target}: {reason}"


def save_traceback() -> str:
    """Write the current exception's traceback to a private temp file; return its path."""
    handle, name = tempfile.mkstemp(prefix="etl-crash-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(traceback.format_exc())
    return name


if __name__ == "__main__":
    raise SystemExit(main())
