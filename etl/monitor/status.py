"""`etl status`: recent runs, the inbox, failed/ and the watcher, read from the folders alone.

Nothing here writes or locks anything (the ledger is opened read-only), so it is safe beside a
running watcher or run. ``pending_actions`` is ``null`` in the JSON when there is no ledger yet,
meaning "unknown", not "none".
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.core.files import beside
from etl.core.kinds import rejected_companions
from etl.core.printable import printable
from etl.core.summary import parse_summary
from etl.report.awaiting import awaiting_answers, format_awaiting
from etl.report.html import LATEST_NAME, REPORT_NAME, run_order
from etl.state.inbox import PROCESSING, claimed_files, waiting_files

HEARTBEAT_NAME = "watch.heartbeat.json"
REASON_SUFFIX = ".reason.txt"
RECENT_RUNS = 10
LISTED_FILES = 100


def _moment(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _file_entry(path: Path, outbox: Path | None = None) -> dict[str, Any]:
    stat = path.lstat()  # the entry itself: a link is shown as a link, never followed
    entry: dict[str, Any] = {
        "name": path.name,
        "bytes": stat.st_size,
        "modified_at": _moment(stat.st_mtime),
    }
    if outbox is not None:
        entry["path"] = str(path.relative_to(outbox))
    return entry


def _files(paths: Iterable[Path], outbox: Path | None = None) -> list[dict[str, Any]]:
    entries = []
    for path in paths:
        try:
            entries.append(_file_entry(path, outbox))
        except FileNotFoundError:
            continue  # taken or moved while we looked
    return entries


def recent_runs(outbox: Path, limit: int = RECENT_RUNS) -> list[dict[str, Any]]:
    """The newest runs first; one without summary.json is running now or was interrupted."""
    folder = outbox / "runs"
    if not folder.is_dir():
        return []
    runs = sorted((p for p in folder.iterdir() if p.is_dir()), key=run_order, reverse=True)
    found = []
    for run_dir in runs[:limit]:
        entry: dict[str, Any] = {"run_id": run_dir.name}
        try:
            summary = parse_summary((run_dir / "summary.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            entry.update(finished=False, exit_code=None)
            found.append(entry)
            continue
        except (OSError, ValueError) as error:
            # Another run's file, truncated or edited: say so, and show the other runs.
            entry.update(finished=None, exit_code=None, unreadable=str(error))
            found.append(entry)
            continue
        totals = summary.get("totals", {})
        entry.update(
            finished=True,
            command=summary.get("command", ""),
            target=summary.get("target", ""),  # the API it talked to; '' for check
            started_at=summary.get("started_at", ""),
            finished_at=summary.get("finished_at", ""),
            duration_seconds=summary.get("duration_seconds", 0.0),
            exit_code=summary.get("exit_code"),
            files=totals.get("files", 0),
            orders=totals.get("items", 0),
            outcomes=totals.get("outcomes", {}),
            requests=totals.get("requests", 0),
            retries=totals.get("retries", 0),
            report=str(run_dir / REPORT_NAME) if (run_dir / REPORT_NAME).is_file() else None,
        )
        found.append(entry)
    return found


def failed_files(outbox: Path) -> list[dict[str, Any]]:
    """Files in failed/<run_id>/, newest run first, each with the first line of its reason."""
    folder = outbox / "failed"
    if not folder.is_dir():
        return []
    entries = []
    for run_dir in sorted((p for p in folder.iterdir() if p.is_dir()), reverse=True):
        paths = sorted(run_dir.iterdir())
        advice = rejected_companions(p.name for p in paths)  # beside an input, not one
        for path in paths:
            if path.name.endswith(REASON_SUFFIX) or path.name in advice:
                continue
            entry = {"run_id": run_dir.name, **_file_entry(path, outbox)}
            reason = beside(path.parent, path.name, REASON_SUFFIX)
            try:
                entry["reason"] = reason.read_text(encoding="utf-8").strip().splitlines()[0]
            except (FileNotFoundError, IndexError):
                entry["reason"] = ""
            entries.append(entry)
    return entries


def _pid_alive(pid: Any) -> bool | None:
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    except OSError:
        return None
    return True


def watcher_status(outbox: Path, now: datetime | None = None) -> dict[str, Any] | None:
    """The watcher's heartbeat as it wrote it, plus whether its pid lives and the scan's age.

    ``pid_alive`` is only meaningful when the watcher runs on this machine.
    """
    path = outbox / HEARTBEAT_NAME
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as error:
        return {"error": f"unreadable heartbeat {path}: {error}"}
    if not isinstance(beat, dict):
        return {"error": f"unreadable heartbeat {path}: not a JSON object"}
    moment = now or datetime.now(UTC)
    scanned = _parse(str(beat.get("last_scan_at", "")))
    beat["pid_alive"] = _pid_alive(beat.get("pid"))
    beat["last_scan_age_seconds"] = (
        None if scanned is None else round((moment - scanned).total_seconds(), 1)
    )
    return beat


def _action_rows(
    execute: Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]], limit: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    columns = "action_id, source, entity_id, status, updated_at, errors, polls"
    pending = execute(
        f"SELECT {columns} FROM tracked_actions WHERE status = 'PENDING' "
        "ORDER BY tracked_at LIMIT ?",
        (LISTED_FILES,),
    )
    finished = execute(
        f"SELECT {columns} FROM tracked_actions WHERE status != 'PENDING' "
        "ORDER BY finished_at DESC LIMIT ?",
        (limit,),
    )
    queued = execute("SELECT count(*) FROM action_log WHERE sent_at IS NULL", ())
    return pending, finished, int(queued[0][0])


def _database_actions(
    url: str, limit: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int] | None:
    """The same look, in the PostgreSQL database many workers share (read-only session)."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2, autocommit=True) as db:
            db.execute("SET default_transaction_read_only = on")
            return _action_rows(
                lambda sql, params: db.execute(sql.replace("?", "%s"), params).fetchall(), limit
            )
    except psycopg.Error:
        return None  # unreachable, or no ledger there yet


def action_status(ledger: Path | str | None, limit: int = 20) -> dict[str, Any] | None:
    """Tracked order actions from the ledger (a file, or a database URL): pending ones, the
    recently finished, the queue."""
    if isinstance(ledger, str):
        found = _database_actions(ledger, limit)
        if found is None:
            return None
        pending, finished, queued = found
    else:
        if ledger is None or not ledger.is_file():
            return None
        try:
            db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=2)
        except sqlite3.Error:
            return None
        try:
            pending, finished, queued = _action_rows(
                lambda sql, params: db.execute(sql, params).fetchall(), limit
            )
        except sqlite3.Error:
            return None  # a ledger from before the actions feature
        finally:
            db.close()
    names = ["action_id", "source", "entity_id", "status", "updated_at", "errors", "polls"]

    def rows(found: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        out = [dict(zip(names, row, strict=True)) for row in found]
        for entry in out:
            entry["errors"] = json.loads(entry["errors"] or "[]")
        return out

    return {"pending": rows(pending), "finished": rows(finished), "queued_to_report": queued}


def collect_status(
    inbox: Path,
    outbox: Path,
    runs: int = RECENT_RUNS,
    now: datetime | None = None,
    ledger: Path | str | None = None,
) -> dict[str, Any]:
    """Everything `etl status` shows, as plain JSON-ready values."""
    waiting = _files(waiting_files(inbox))
    claimed = _files(claimed_files(inbox))
    failed = failed_files(outbox)
    latest = outbox / LATEST_NAME
    return {
        "generated_at": (now or datetime.now(UTC))
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z"),
        "inbox": str(inbox),
        "outbox": str(outbox),
        "runs": recent_runs(outbox, runs),
        "latest_report": str(latest) if latest.is_file() else None,
        "inbox_waiting_count": len(waiting),
        "inbox_waiting": waiting[:LISTED_FILES],
        "inbox_processing_count": len(claimed),
        "inbox_processing": claimed[:LISTED_FILES],
        "failed_count": len(failed),
        "failed": failed[:LISTED_FILES],
        "pending_actions": action_status(ledger),
        "awaiting_answer": awaiting_answers(ledger, (now or datetime.now(UTC)).timestamp()),
        "watcher": watcher_status(outbox, now),
    }


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{count} B"


def _outcomes(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {o.lower()}" for o, n in sorted(counts.items())) or "no orders"


def format_status(status: dict[str, Any]) -> str:
    """The text a person reads; the JSON is ``collect_status`` itself."""
    lines = []
    lines.append(
        f"inbox {status['inbox']}: {status['inbox_waiting_count']} file(s) waiting, "
        f"{status['inbox_processing_count']} claimed"
    )
    for entry in status["inbox_waiting"]:
        lines.append(
            f"  {printable(entry['name'])}  {_size(entry['bytes'])}  since {entry['modified_at']}"
        )
    for entry in status["inbox_processing"]:
        lines.append(
            f"  {PROCESSING}/{printable(entry['name'])}  {_size(entry['bytes'])}  "
            "(being processed, or left by an interrupted run: the next run resumes it)"
        )
    lines.append(f"failed/: {status['failed_count']} file(s)")
    for entry in status["failed"]:
        lines.append(f"  {printable(entry['path'])}: {printable(entry['reason'])}")
    shown = status["failed_count"] - len(status["failed"])
    if shown > 0:
        lines.append(f"  ... and {shown} more")
    lines.append("recent runs (newest first):" if status["runs"] else "recent runs: none yet")
    for run in status["runs"]:
        if run.get("unreadable"):
            lines.append(
                f"  {run['run_id']}  summary.json is unreadable: {printable(run['unreadable'])}"
            )
            continue
        if not run["finished"]:
            lines.append(f"  {run['run_id']}  running now, or interrupted (no summary.json)")
            continue
        lines.append(
            f"  {run['run_id']}  {run['command']:<5}  exit {run['exit_code']}  "
            f"{run['files']} file(s)  {_outcomes(run['outcomes'])}  "
            f"{run['duration_seconds']:.1f} s" + (f"  to {run['target']}" if run["target"] else "")
        )
    if status["latest_report"]:
        lines.append(f"latest report: {status['latest_report']}")
    watcher = status["watcher"]
    if watcher is None:
        lines.append(f"watcher: no heartbeat in {status['outbox']} (not running here)")
    elif "error" in watcher and "pid" not in watcher:
        lines.append(f"watcher: {watcher['error']}")
    else:
        alive = {True: "alive", False: "NOT RUNNING", None: "unknown"}[watcher["pid_alive"]]
        age = watcher["last_scan_age_seconds"]
        lines.append(
            f"watcher: pid {watcher.get('pid')} ({alive}), state {watcher.get('state', '?')}, "
            f"last scan {'never' if age is None else f'{age:.0f} s ago'}, "
            f"{watcher.get('files_queued', 0)} file(s) queued"
            + (f", last error: {watcher['last_error']}" if watcher.get("last_error") else "")
        )
    actions = status["pending_actions"]
    if actions is None:
        lines.append("actions: no ledger yet")
    else:
        lines.append(
            f"actions: {len(actions['pending'])} pending, {actions['queued_to_report']} "
            "waiting in the action log for the next flush"
        )
        for entry in actions["pending"]:
            lines.append(
                f"  {entry['action_id']}  PENDING  ({entry['source']}, {entry['polls']} polls)"
            )
        for entry in actions["finished"]:
            errors = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in entry["errors"])
            lines.append(
                f"  {entry['action_id']}  {entry['status']}  {entry['updated_at']}"
                + (f"  {errors}" if errors else "")
            )
    lines.extend(format_awaiting(status.get("awaiting_answer")))
    return "\n".join(lines)
