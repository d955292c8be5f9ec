"""What the commands print about a run: one line a file, the run's closing line."""

from __future__ import annotations

import sys
from pathlib import Path

from etl.core.printable import printable
from etl.core.summary import FileSummary, RunSummary


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
