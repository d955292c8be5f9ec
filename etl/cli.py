"""Thin commands over the Python API: each command parses flags and calls one function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from etl import __version__
from etl.config import Settings, SourceFormat, load_mapping_file, load_settings
from etl.errors import UsageError
from etl.kinds import KINDS
from etl.pipeline import FileSummary, RunSummary, check_files
from etl.schema import flat_model

EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inbox", type=Path, help="folder watched for input files (./inbox)")
    parser.add_argument(
        "--outbox", type=Path, help="folder for reports and processed files (./outbox)"
    )
    parser.add_argument("--state", type=Path, help="ledger file (<outbox>/.state/ledger.sqlite3)")
    parser.add_argument("--config", type=Path, help="TOML settings file (./etl.toml if present)")


def _source_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mapping", type=Path, help="mapping file for every FILE (README)")
    parser.add_argument("--channel-id", help="origin.channel_id for rows that leave it empty")
    parser.add_argument("--store-id", help="origin.channel_store_id for rows that leave it empty")


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
    check.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _common(check)
    _source_flags(check)
    check.set_defaults(handler=cmd_check)

    template = commands.add_parser("template", help="print the full CSV header of a file kind")
    template.add_argument("kind", choices=sorted(KINDS), metavar="KIND")
    _common(template)
    template.set_defaults(handler=cmd_template)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {
        "inbox": getattr(args, "inbox", None),
        "outbox": getattr(args, "outbox", None),
        "state": getattr(args, "state", None),
        "channel_id": getattr(args, "channel_id", None),
        "store_id": getattr(args, "store_id", None),
    }
    return load_settings(getattr(args, "config", None), overrides)


def print_file_line(summary: FileSummary) -> None:
    if summary.status != "processed":
        print(f"{summary.name}: {summary.status.upper()}: {summary.reason}", file=sys.stderr)
        return
    outcomes = ", ".join(f"{n} {o.lower()}" for o, n in sorted(summary.outcomes.items()))
    print(
        f"{summary.name}: {summary.items} {summary.kind} from {summary.rows} rows: {outcomes}; "
        f"{summary.violations} problem(s); {summary.requests} request(s)"
    )


def print_run(run: RunSummary, run_dir: Path) -> None:
    for file in run.files:
        print_file_line(file)
    print(f"run {run.run_id}: exit {run.exit_code}; reports in {run_dir}")


def cmd_check(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    source: SourceFormat | None = None
    if args.mapping is not None:
        source = load_mapping_file(args.mapping, settings.default_source)
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    run, run_dir = check_files(list(args.files), settings, source)
    print_run(run, run_dir)
    return run.exit_code


def cmd_template(args: argparse.Namespace) -> int:
    print(",".join(flat_model(KINDS[args.kind]).template()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except UsageError as error:
        print(f"etl: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("etl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
