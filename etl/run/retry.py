"""`etl retry RUN_ID`: send now what a past run could not deliver (its FAILED orders: the API was
down, or the run was stopped), without anyone moving a file.

Such a run put its files back in the inbox (or left them claimed), so they wait there; this
finds them by name and content, and hands exactly those to a run now, instead of waiting for the
next cron run or the watcher's back-off. A file already sent since, or gone, is said so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.core.errors import UsageError
from etl.core.printable import printable
from etl.read.tables import fingerprint
from etl.report.html import read_summary
from etl.settings.config import Settings
from etl.state.inbox import PROCESSING
from etl.state.ledger import Ledger


@dataclass
class RetryPlan:
    """The inbox files to send again now, and a line for each file of the run that is not."""

    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def unfinished_files(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, sha256) of the run's files with orders not delivered: FAILED ones, or the file
    put back unfinished; and the files it claimed, then left unstarted (sha256 unknown)."""
    found = [
        (str(f.get("name", "")), str(f.get("sha256", "")))
        for f in summary.get("files", [])
        if (f.get("outcomes") or {}).get("FAILED") or f.get("unfinished")
    ]
    found += [(str(name), "") for name in summary.get("left_in_inbox", [])]
    return found


def plan_retry(run_dir: Path, settings: Settings) -> RetryPlan:
    """Where each unfinished file of the run waits now; UsageError if the run is no `etl run`
    or sent to another target than these settings do."""
    summary = read_summary(run_dir, "running now, or interrupted: nothing to retry yet")
    run_id = str(summary.get("run_id", run_dir.name))
    if summary.get("command") not in ("run", "watch"):
        raise UsageError(f"run {run_id} was `etl {summary.get('command')}`: it sent nothing")
    target = str(summary.get("target", ""))
    if target and target != settings.target:
        raise UsageError(
            f"run {run_id} sent to {target}; these settings send to {settings.target}: retry "
            "with the settings of that run"
        )
    plan = RetryPlan()
    unfinished = unfinished_files(summary)
    if not unfinished:
        plan.notes.append(f"run {run_id} left no order undelivered: nothing to retry")
        return plan
    ledger = Ledger.open(settings.ledger_path, settings.ledger_timeout, target=settings.target)
    try:
        for name, sha256 in unfinished:
            path, note = _locate(settings.inbox, name, sha256, ledger)
            if path is not None:
                plan.paths.append(path)
            if note:
                plan.notes.append(f"{printable(name)}: {note}")
    finally:
        ledger.close()
    return plan


def _locate(inbox: Path, name: str, sha256: str, ledger: Ledger) -> tuple[Path | None, str]:
    """The file of that run where it waits now, or why it is not waiting."""
    claimed = inbox / PROCESSING / name
    if claimed.is_file():
        return None, "claimed by a run that did not finish; this run resumes it"
    waiting = inbox / name
    if waiting.is_file() and not waiting.is_symlink():
        if sha256 and fingerprint(waiting) != sha256:
            return waiting, "a newer file of that name waits in the inbox: it is sent as it is"
        return waiting, ""
    record = ledger.file_record(sha256) if sha256 else None
    if record is not None and record.status == "delivered":
        return None, f"delivered since, by run {record.run_id}: nothing to retry"
    if record is not None and record.status == "failed":
        return None, (
            f"judged since, by run {record.run_id}, and moved to failed/ (see its reports)"
        )
    return None, "not in the inbox any more (moved or deleted): drop it there again to send it"
