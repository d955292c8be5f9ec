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
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from etl.cli.logs import FORMATS, LogObserver, configure_logging, log_level
from etl.cli.progress import ProgressObserver, progress_observer
from etl.core.database_urls import is_database_url, redacted_url
from etl.core.errors import ObjectStoreError, UsageError
from etl.core.events import Observer, Observers
from etl.core.kinds import KINDS
from etl.core.printable import printable
from etl.core.process_setup import skip_pandas_probe
from etl.core.schema import flat_model
from etl.core.store_urls import is_store_url
from etl.core.summary import FileSummary, RunSummary
from etl.core.version import __version__
from etl.settings.config import (
    FLAG_NAMES,
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

EXIT_USAGE = 2
EXIT_NOT_FINISHED = 3  # an object store away: the objects stay for the next run
EXIT_INTERNAL = 4  # a bug: the traceback is saved, inputs stay for the next run
EXIT_ENVIRONMENT = 5  # the machine: a full disk, a read-only folder, permissions
NUMBER_FLAGS = FLAG_NAMES  # the flags that set a number (their names differ from the setting)


# What `etl completion` offers after a flag (shtab's FILE and DIRECTORY, spelled out so that
# building the parser never imports shtab).
COMPLETE_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
COMPLETE_DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}


def _common(parser: argparse.ArgumentParser) -> None:
    for flag, help_text, complete in (
        (
            "--inbox",
            "folder watched for input files (./inbox), or an object-store prefix "
            "(s3://bucket/prefix/)",
            COMPLETE_DIRECTORY,
        ),
        ("--outbox", "folder for reports and processed files (./outbox)", COMPLETE_DIRECTORY),
        (
            "--state",
            "ledger file (<outbox>/.state/ledger.sqlite3), or a PostgreSQL URL "
            "(postgresql://user@host/db, shared by many workers; CONNECT_STATE_URL)",
            COMPLETE_FILE,
        ),
        ("--config", "TOML settings file (./etl.toml if present)", COMPLETE_FILE),
    ):
        # --state and --inbox stay text: a URL's "//" would not survive a Path.
        kind: Any = str if flag in ("--state", "--inbox") else Path
        action = parser.add_argument(flag, type=kind, help=help_text)
        setattr(action, "complete", complete)  # noqa: B010 - shtab reads it; Action lacks it


def _tenant_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tenant",
        metavar="NAME",
        help="only this seller ([tenants.NAME] in etl.toml); default: every tenant",
    )


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
    _tenant_flag(check)
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
    _tenant_flag(run)
    run.set_defaults(handler=cmd_run)

    retry = commands.add_parser(
        "retry",
        help="send now the orders a past run could not deliver (FAILED: the API was down)",
        description=(
            "RUN_ID is a run id, a unique prefix of one, or 'latest'. Finds the files of that "
            "run whose orders were not delivered where they wait (the inbox, or claimed in "
            "inbox/.processing) and runs them now, as `etl run` would; orders delivered since "
            "are skipped as unchanged. Exit codes as for `etl run`."
        ),
    )
    retry.add_argument("run_id", metavar="RUN_ID")
    _common(retry)
    _connect_flags(retry)
    retry.add_argument(
        "--sandbox", action="store_true", help="send to the local API double, as `etl run` does"
    )
    retry.add_argument("-v", "--verbose", action="store_true", help="one log line per batch")
    _output_flags(retry, verbose=False)
    retry.set_defaults(handler=cmd_retry, force=False, metrics_textfile=None, create=False)

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
    _tenant_flag(watch)
    watch.set_defaults(handler=cmd_watch)

    status = commands.add_parser(
        "status",
        help="recent runs, files waiting in the inbox, files in failed/, the watcher's heartbeat",
        description="Reads the folders only: safe beside a running watcher. Exit 0.",
    )
    _common(status)
    status.add_argument("--json", action="store_true", help="JSON for monitoring")
    status.add_argument("--runs", type=int, default=10, help="how many recent runs (10)")
    _tenant_flag(status)
    status.set_defaults(handler=cmd_status)

    events = commands.add_parser(
        "events",
        help="read Connect's order action events from the queue into outbox/actions/pending-*.csv",
        description=(
            "Reads the queue of [events] until it is empty: each new action becomes a row of "
            "<outbox>/actions/pending-<time>.csv, then its message is deleted. Exit 0 read; 1 "
            "some messages held no event (kept in *.unreadable.jsonl); 2 configuration; 3 the "
            "queue cannot be reached (nothing deleted)."
        ),
    )
    _common(events)
    events.add_argument(
        "--wait",
        type=int,
        metavar="SECONDS",
        help="how long the first receive waits for a message, 0 to 20 ([events] wait_seconds)",
    )
    events.add_argument("-q", "--quiet", action="store_true", help="print only problems")
    events.set_defaults(handler=cmd_events)

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
    _tenant_flag(health)
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
    _tenant_flag(report)
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
    _tenant_flag(show)
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
    tenant = f" for tenant {run.tenant}" if run.tenant else ""
    target = f" to {run.target}" if run.target else ""
    print(f"run {run.run_id}{tenant}{target}: exit {run.exit_code}; reports in {run_dir}")


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

    with _observed(args) as (observer, logs):
        done = run_inbox(
            settings,
            force=force,
            create=args.create,
            observer=observer,
            metrics_textfile=args.metrics_textfile,
            drop=None if paths is None else lambda: list(paths),
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
    handler: Callable[[argparse.Namespace], int] = args.handler
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


def save_traceback(error: BaseException | None = None) -> str:
    """Write the traceback of ``error`` (default: the exception being handled) to a private
    temp file; return its path."""
    handle, name = tempfile.mkstemp(prefix="etl-crash-", suffix=".txt")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        if error is None:
            stream.write(traceback.format_exc())
        else:
            stream.write("".join(traceback.format_exception(error)))
    return name


def failure(error: BaseException) -> tuple[int, str]:
    """The exit code and the line for an error that ended one tenant's command, as ``main``
    says them for the whole process."""
    if isinstance(error, UsageError):
        return EXIT_USAGE, str(error)
    if isinstance(error, OSError | sqlite3.Error):
        return EXIT_ENVIRONMENT, describe_environment_error(error)
    where = save_traceback(error)
    return EXIT_INTERNAL, (
        f"internal error ({type(error).__name__}: {error}); the traceback is in {where}; "
        "inputs are left in place for the next run"
    )


if __name__ == "__main__":
    raise SystemExit(main())
