"""What a run wrote (summary.json, errors.csv, items.csv) -> report.html, one page for people.

The page is self-contained (inline CSS, JS and SVG; a Content-Security-Policy that allows no
network and only our own inline script and style, pinned by hash) and every value in it is
escaped by Jinja2's autoescaping: order data is untrusted input. ``outbox/latest.html`` is a full
copy of the newest run's page whose links point into ``runs/<run_id>/``: it opens on any share or
as a mail attachment, where a symlink or a redirect would not.
"""

from __future__ import annotations

import base64
import csv
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from etl.core.errors import UsageError
from etl.core.files import atomic_writer, beside
from etl.core.printable import printable
from etl.core.summary import FileSummary, RunSummary, parse_summary, run_sequence
from etl.report.files import restored
from etl.report.hints import CODE_HINTS, hint_for

REPORT_NAME = "report.html"
LATEST_NAME = "latest.html"
# A page with more rows gets slow in a browser; the CSV next to it always has every problem.
MAX_PROBLEMS_PER_FILE = 5000
RUN_OUTCOMES = ("ACCEPTED", "INVALID", "REJECTED", "UNCHANGED", "STALE", "FAILED")
CHECK_OUTCOMES = ("VALID", "INVALID")
OUTCOME_ORDER = ("ACCEPTED", "VALID", "UNCHANGED", "STALE", "INVALID", "REJECTED", "FAILED")
# Orders that never made it and are not in errors.csv: their one line of items.csv says why.
NOT_DELIVERED = ("STALE", "FAILED")


class ReportMissing(UsageError):
    """The run folder has no summary.json (running now, or killed before the end), or one
    that cannot be read back."""


@dataclass(frozen=True)
class ProblemRow:
    """One row of a file's problem table."""

    rows: str
    order_id: str
    field: str
    column: str  # the user's column to fix
    code: str
    message: str
    value: str
    hint: str


@dataclass(frozen=True)
class Bar:
    """One outcome's segment of a file's bar in the chart (x and width in chart units)."""

    outcome: str
    count: int
    x: float
    width: float


@dataclass
class FileView:
    name: str
    status: str
    reason: str
    kind: str
    rows: int
    items: int
    seconds: float
    requests: int
    outcomes: list[tuple[str, int]]
    bars: list[Bar]
    codes: list[tuple[str, int, str]]  # code, count, what to do
    problems: list[ProblemRow] = field(default_factory=list)
    problem_count: int = 0
    errors_csv: str = ""
    items_csv: str = ""


@dataclass
class ReportView:
    run_id: str
    command: str
    target: str  # the API the run talked to
    tenant: str  # the seller ([tenants.<name>]); '' without tenants
    tool_version: str
    started_at: str
    finished_at: str
    duration: str
    exit_code: int
    totals: list[tuple[str, int]]
    counters: list[tuple[str, int]]
    files: list[FileView]
    codes: list[tuple[str, int]]
    problem_count: int
    shown_count: int
    max_rows: int = MAX_PROBLEMS_PER_FILE


def duration_text(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    if not path.is_file():
        return
    with path.open(encoding="utf-8", newline="") as handle:
        yield from csv.DictReader(handle)


def _bars(outcomes: dict[str, int], width: float) -> list[Bar]:
    total = sum(outcomes.values())
    bars: list[Bar] = []
    x = 0.0
    for outcome, count in _ordered(outcomes):
        share = width * count / total if total else 0.0
        bars.append(Bar(outcome, count, round(x, 2), round(share, 2)))
        x += share
    return bars


def _ordered(counts: dict[str, int]) -> list[tuple[str, int]]:
    rank = {o: i for i, o in enumerate(OUTCOME_ORDER)}
    return sorted(
        ((o, n) for o, n in counts.items() if n), key=lambda p: (rank.get(p[0], 99), p[0])
    )


CHART_WIDTH = 560.0


def _file_view(run_dir: Path, entry: dict[str, Any], limit: int) -> FileView:
    name = str(entry.get("name", ""))
    outcomes = {str(k): int(v) for k, v in dict(entry.get("outcomes") or {}).items()}
    view = FileView(
        name=name,
        status=str(entry.get("status", "processed")),
        reason=str(entry.get("reason", "")),
        kind=str(entry.get("kind", "")),
        rows=int(entry.get("rows", 0)),
        items=int(entry.get("items", 0)),
        seconds=float(entry.get("seconds", 0.0)),
        requests=int(entry.get("requests", 0)),
        outcomes=_ordered(outcomes),
        bars=_bars(outcomes, CHART_WIDTH),
        codes=[],
    )
    errors, items = beside(run_dir, name, ".errors.csv"), beside(run_dir, name, ".items.csv")
    view.errors_csv = errors.name if errors.is_file() else ""
    view.items_csv = items.name if items.is_file() else ""
    codes: Counter[str] = Counter()

    def keep(problem: ProblemRow) -> None:
        codes[problem.code] += 1
        view.problem_count += 1
        if len(view.problems) < limit:
            view.problems.append(problem)

    # The CSV cells are guarded against spreadsheets (report.neutral); the page shows the data.
    for row in _csv_rows(errors):
        code, path = restored(row.get("code", "")), row.get("field", "")
        value, message = restored(row.get("value", "")), restored(row.get("message", ""))
        keep(
            ProblemRow(
                rows=row.get("row", "").replace(",", ", "),
                order_id=restored(row.get("id", "")),
                field=path,
                column=restored(row.get("column", "")),
                code=code,
                message=message,
                value=value,
                hint=hint_for(code, path, value, message),
            )
        )
    undelivered = any(outcomes.get(o) for o in NOT_DELIVERED)
    for row in _csv_rows(items) if undelivered else iter(()):
        if row.get("outcome") in NOT_DELIVERED:
            code = restored(row.get("code") or row.get("outcome", ""))
            keep(
                ProblemRow(
                    rows=row.get("rows", "").replace(",", ", "),
                    order_id=restored(row.get("id", "")),
                    field="",
                    column="",
                    code=code,
                    message=restored(row.get("message", "")),
                    value="",
                    hint=CODE_HINTS.get(code, ""),
                )
            )
    view.codes = [(c, n, CODE_HINTS.get(c, "")) for c, n in sorted(codes.items())]
    return view


def load_report(run_dir: Path, limit: int = MAX_PROBLEMS_PER_FILE) -> ReportView:
    """Everything the page shows, read back from the files the run wrote."""
    summary = read_summary(run_dir, "not a finished run")
    totals = summary.get("totals", {})
    outcomes = {str(k): int(v) for k, v in dict(totals.get("outcomes") or {}).items()}
    command = str(summary.get("command", ""))
    shown = CHECK_OUTCOMES if command == "check" else RUN_OUTCOMES
    files = [_file_view(run_dir, entry, limit) for entry in summary.get("files", [])]
    codes: Counter[str] = Counter()
    for file in files:
        codes.update({code: count for code, count, _ in file.codes})
    counters = [("files", int(totals.get("files", len(files)))), ("orders", totals.get("items", 0))]
    counters += [
        ("requests" if command != "check" else "would-be requests", totals.get("requests", 0)),
    ]
    if command != "check":
        counters += [
            ("extra requests (isolating rejected orders)", totals.get("extra_requests", 0)),
            ("retries", totals.get("retries", 0)),
        ]
    return ReportView(
        run_id=str(summary.get("run_id", run_dir.name)),
        command=command,
        target=str(summary.get("target", "")),
        tenant=str(summary.get("tenant", "")),
        tool_version=str(summary.get("tool_version", "")),
        started_at=str(summary.get("started_at", "")),
        finished_at=str(summary.get("finished_at", "")),
        duration=duration_text(float(summary.get("duration_seconds", 0.0))),
        exit_code=int(summary.get("exit_code", 0)),
        totals=[(o, outcomes.get(o, 0)) for o in shown]
        + [(o, n) for o, n in _ordered(outcomes) if o not in shown],
        counters=[(label, int(value)) for label, value in counters],
        files=files,
        codes=sorted(codes.items()),
        problem_count=sum(f.problem_count for f in files),
        shown_count=sum(len(f.problems) for f in files),
        max_rows=limit,
    )


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("etl.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["thousands"] = lambda number: f"{number:,}"
    environment.filters["duration"] = duration_text
    return environment


@cache
def _asset(name: str) -> tuple[Markup, str]:
    """A static inline asset and its CSP hash: only this exact text may run or style the page."""
    text = (resources.files("etl.report") / "templates" / name).read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")
    return Markup(text), f"'sha256-{digest}'"  # our own file, not data


def render_report(view: ReportView, link_prefix: str = "", copy_of: str = "") -> str:
    """The HTML page; ``link_prefix`` is where the run's CSV files are, relative to the page."""
    script, script_hash = _asset("report.js")
    style, style_hash = _asset("report.css")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            run=view,
            link_prefix=link_prefix,
            copy_of=copy_of,
            script=script,
            style=style,
            csp=(
                f"default-src 'none'; script-src {script_hash}; style-src {style_hash}; "
                "img-src data:; base-uri 'none'; form-action 'none'"
            ),
            chart_width=CHART_WIDTH,
        )
    )


def write_html_report(run_dir: Path, *, update_latest: bool = True) -> Path:
    """Write ``<run_dir>/report.html``; refresh ``<outbox>/latest.html`` if this run is newest."""
    view = load_report(run_dir)
    target = run_dir / REPORT_NAME
    with atomic_writer(target) as stream:
        stream.write(render_report(view))
    if update_latest:
        refresh_latest(run_dir.parent.parent)
    return target


def run_order(run_dir: Path) -> tuple[int, str, int]:
    """Sort key of run folders: the outbox's run number in the id, which a clock set back
    cannot reorder; for ids from before it (0), the id's time (to the second), then when
    summary.json was written (once, at the run's end)."""
    try:
        finished = (run_dir / "summary.json").stat().st_mtime_ns
    except FileNotFoundError:
        finished = 0
    return run_sequence(run_dir.name), run_dir.name.split("-", 1)[0], finished


def newest_report(outbox: Path) -> Path | None:
    """The run folder of the newest run that has a report (run ids sort by time)."""
    runs = outbox / "runs"
    if not runs.is_dir():
        return None
    reported = [p for p in runs.iterdir() if (p / REPORT_NAME).is_file()]
    return max(reported, key=run_order, default=None)


def refresh_latest(outbox: Path) -> Path | None:
    """Rewrite ``latest.html`` from the newest run; two runs ending together both converge."""
    newest = newest_report(outbox)
    if newest is None:
        return None
    prefix = f"runs/{newest.name}/"
    page = render_report(load_report(newest), link_prefix=prefix, copy_of=prefix + REPORT_NAME)
    target = outbox / LATEST_NAME
    with atomic_writer(target) as stream:
        stream.write(page)
    return target


def find_run(outbox: Path, run_id: str) -> Path:
    """The run folder named by an id, a unique prefix of one, or 'latest'."""
    runs = outbox / "runs"
    folders = (
        sorted((p for p in runs.iterdir() if p.is_dir()), key=run_order) if runs.is_dir() else []
    )
    names = [p.name for p in folders]
    if not names:
        raise UsageError(f"no runs in {runs}")
    if run_id == "latest":
        return runs / names[-1]
    if run_id in names:
        return runs / run_id
    matches = [n for n in names if n.startswith(run_id)]
    if len(matches) == 1:
        return runs / matches[0]
    if not matches:
        raise UsageError(f"no run {run_id!r} in {runs} (`etl status` lists the recent ones)")
    raise UsageError(f"{run_id!r} matches {len(matches)} runs in {runs}: give more of the id")


def read_summary(run_dir: Path, missing: str) -> dict[str, Any]:
    """A run's summary.json (``summary.parse_summary``), or ReportMissing saying why not."""
    try:
        return parse_summary((run_dir / "summary.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportMissing(f"{run_dir} has no summary.json ({missing})") from None
    except (OSError, ValueError) as error:
        raise ReportMissing(
            f"{run_dir}/summary.json is unreadable ({printable(str(error))}): truncated or "
            "edited; the run's other files are still there"
        ) from None


def read_run_summary(run_dir: Path) -> RunSummary:
    """summary.json back into a RunSummary, for printing a past run like a fresh one."""
    data = read_summary(run_dir, "running now, or interrupted")
    known = {f.name for f in fields(FileSummary)}
    return RunSummary(
        run_id=str(data.get("run_id", run_dir.name)),
        command=str(data.get("command", "")),
        started_at=str(data.get("started_at", "")),
        target=str(data.get("target", "")),
        tenant=str(data.get("tenant", "")),
        due_work={str(k): int(v) for k, v in (data.get("due_work") or {}).items()},
        files=[
            FileSummary(**{k: v for k, v in f.items() if k in known}) for f in data.get("files", [])
        ],
        finished_at=str(data.get("finished_at", "")),
        seconds=float(data.get("duration_seconds", 0.0)),
        exit_code=int(data.get("exit_code", 0)),
    )
