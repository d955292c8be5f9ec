"""The command line's grammar: every command, flag and help text (``etl --help``). Building it
imports nothing heavy, so that help and usage errors answer at once; each command names its
function in ``etl.cli.main``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from etl.cli.logs import FORMATS
from etl.core.kinds import KINDS
from etl.core.version import __version__
from etl.settings.config import FLAG_NAMES

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
    check.set_defaults(command="check")

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
    run.set_defaults(command="run")

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
    retry.set_defaults(command="retry", force=False, metrics_textfile=None, create=False)

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
    watch.set_defaults(command="watch")

    status = commands.add_parser(
        "status",
        help="recent runs, files waiting in the inbox, files in failed/, the watcher's heartbeat",
        description="Reads the folders only: safe beside a running watcher. Exit 0.",
    )
    _common(status)
    status.add_argument("--json", action="store_true", help="JSON for monitoring")
    status.add_argument("--runs", type=int, default=10, help="how many recent runs (10)")
    _tenant_flag(status)
    status.set_defaults(command="status")

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
    events.set_defaults(command="events")

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
    health.set_defaults(command="health")

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
    report.set_defaults(command="report")

    sandbox = commands.add_parser(
        "sandbox",
        help="serve the local double of the Connect API on 127.0.0.1",
        add_help=False,
    )
    sandbox.add_argument("sandbox_args", nargs=argparse.REMAINDER)
    sandbox.set_defaults(command="sandbox")

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
    template.set_defaults(command="template")

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
    show.set_defaults(command="config_show")

    completion = commands.add_parser(
        "completion",
        help='print a shell completion script: eval "$(etl completion bash)"',
        description="bash: source it from ~/.bashrc; zsh: save it as _etl in a folder of $fpath.",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"), metavar="SHELL")
    completion.set_defaults(command="completion")
    return parser
