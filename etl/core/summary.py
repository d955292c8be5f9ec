"""What a run did, file by file: the content of summary.json and of the printed summary."""

from __future__ import annotations

import fcntl
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.core.version import __version__


@dataclass
class FileSummary:
    """What happened to one input file; one entry of summary.json's ``files``."""

    name: str
    kind: str = ""
    sha256: str = ""
    # processed | empty (a header, no rows) | unreadable | duplicate | resumed | error (a bug)
    status: str = "processed"
    reason: str = ""
    rows: int = 0
    items: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    violations: int = 0
    warnings: int = 0  # problems that held no item back (errors.csv has both)
    requests: int = 0
    extra_requests: int = 0
    retries: int = 0
    seconds: float = 0.0
    unfinished: bool = False  # put back in the inbox with items not sent (stopped, API down)


@dataclass
class RunSummary:
    run_id: str
    command: str
    started_at: str
    target: str = ""  # the API this run talked to (DESIGN.md section 9); '' for `etl check`
    tenant: str = ""  # the seller ([tenants.<name>]); '' without tenants
    files: list[FileSummary] = field(default_factory=list)
    # Work due whatever the inbox held: the order action log flushed, tracked actions polled.
    due_work: dict[str, int] = field(default_factory=dict)
    left_in_inbox: list[str] = field(default_factory=list)  # claimed, then not started
    finished_at: str = ""
    seconds: float = 0.0
    exit_code: int = 0

    def as_json(self) -> dict[str, Any]:
        totals: Counter[str] = Counter()
        for file in self.files:
            totals.update(file.outcomes)
        return {
            "run_id": self.run_id,
            "command": self.command,
            "target": self.target,
            **({"tenant": self.tenant} if self.tenant else {}),
            "tool_version": __version__,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "totals": {
                "files": len(self.files),
                "items": sum(f.items for f in self.files),
                "outcomes": dict(sorted(totals.items())),
                "violations": sum(f.violations for f in self.files),
                "warnings": sum(f.warnings for f in self.files),
                "requests": sum(f.requests for f in self.files),
                "extra_requests": sum(f.extra_requests for f in self.files),
                "retries": sum(f.retries for f in self.files),
            },
            "files": [asdict(f) for f in self.files],
            "due_work": self.due_work,
            "left_in_inbox": self.left_in_inbox,
        }


SEQUENCE_NAME = ".run-sequence"


def next_run_sequence(outbox: Path) -> int:
    """The next number of the outbox's runs, whatever the wall clock says: runs are ordered by
    it (the newest report, `etl status`), so a clock set back does not put later runs before
    earlier ones. Counted under a lock: two runs never get the same number."""
    outbox.mkdir(parents=True, exist_ok=True)
    fd = os.open(outbox / SEQUENCE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.pread(fd, 32, 0).decode("ascii", "ignore").strip()
        number = (int(text) if text.isdigit() else 0) + 1
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{number}\n".encode(), 0)
        os.fsync(fd)
        return number
    finally:
        os.close(fd)  # and the lock with it


def new_run_id(outbox: Path, now: datetime | None = None) -> str:
    """The time, then the outbox's run number: ``20261122T190512Z-000042``. Unique in the
    outbox; ordered by the number, whatever the clock says (``run_sequence``)."""
    moment = now or datetime.now(UTC)
    return f"{moment.strftime('%Y%m%dT%H%M%SZ')}-{next_run_sequence(outbox):06d}"


def run_sequence(run_id: str) -> int:
    """The run number in a run id; 0 for ids from before numbers (``...-3fa9``: random)."""
    suffix = run_id.rpartition("-")[2]
    return int(suffix) if len(suffix) >= 6 and suffix.isdigit() else 0


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- reading summary.json back ------------------------------------------------------------------

_TEXT = (str,)
_COUNT = (int,)
_NUMBER = (int, float)
_RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": _TEXT,
    "command": _TEXT,
    "target": _TEXT,
    "tenant": _TEXT,
    "tool_version": _TEXT,
    "started_at": _TEXT,
    "finished_at": _TEXT,
    "note": _TEXT,
    "duration_seconds": _NUMBER,
    "exit_code": _COUNT,
    "interrupted": (bool,),
    "totals": (dict,),
    "files": (list,),
    "due_work": (dict,),
    "left_in_inbox": (list,),
    "reports": (list,),
}
_TOTAL_FIELDS = (
    "files",
    "items",
    "violations",
    "warnings",
    "requests",
    "extra_requests",
    "retries",
)
_FILE_FIELDS: dict[str, tuple[type, ...]] = {
    "name": _TEXT,
    "kind": _TEXT,
    "sha256": _TEXT,
    "status": _TEXT,
    "reason": _TEXT,
    "rows": _COUNT,
    "items": _COUNT,
    "outcomes": (dict,),
    "violations": _COUNT,
    "warnings": _COUNT,
    "requests": _COUNT,
    "extra_requests": _COUNT,
    "retries": _COUNT,
    "seconds": _NUMBER,
    "unfinished": (bool,),
}


def parse_summary(text: str) -> dict[str, Any]:
    """A summary.json's content, every field it has of the type ``RunSummary.as_json`` writes,
    or ValueError saying what is wrong: another run's file may be truncated (a full disk), or
    edited by hand, and must never crash `etl status` or `etl report`."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    _check_fields(data, _RUN_FIELDS, "")
    totals = data.get("totals", {})
    _check_fields(totals, dict.fromkeys(_TOTAL_FIELDS, _COUNT), "totals.")
    _check_counts(totals.get("outcomes", {}), "totals.outcomes")
    _check_counts(data.get("due_work", {}), "due_work")
    for index, entry in enumerate(data.get("files", [])):
        where = f"files[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ValueError(f"{where} is not a file entry with a name")
        _check_fields(entry, _FILE_FIELDS, f"{where}.")
        _check_counts(entry.get("outcomes", {}), f"{where}.outcomes")
        if "/" in entry["name"] or entry["name"] in ("", ".", ".."):
            raise ValueError(f"{where}.name is not a file name")  # reports are read beside it
    for key in ("left_in_inbox", "reports"):
        if not all(isinstance(value, str) for value in data.get(key, [])):
            raise ValueError(f"{key} holds something other than names")
    return data


def _check_fields(data: dict[str, Any], types: dict[str, tuple[type, ...]], where: str) -> None:
    for key, allowed in types.items():
        if key not in data:
            continue
        value = data[key]
        # JSON true is a Python int too; a count or a number is never a boolean.
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            raise ValueError(f"{where}{key} is {json.dumps(value)[:40]}, of the wrong type")


def _check_counts(counts: Any, where: str) -> None:
    if not isinstance(counts, dict) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in counts.values()
    ):
        raise ValueError(f"{where} is not a table of counts")
