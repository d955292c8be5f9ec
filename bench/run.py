"""The bench of issue 7: naive baseline vs `etl check` side by side, big files, a paced sync.

    python -m bench.run                 # everything (generates its inputs once, ~10 min)
    python -m bench.run --only 250k 1m  # some scenarios
    python -m bench.run --repeat 5 --data /tmp/etl-bench

Each measurement is a fresh process (`python -m etl.cli.main ...`, `python -m bench.baseline ...`),
timed by wall clock, its peak RSS the peak of the sum over the process and all its children
(worker processes included), sampled every 20 ms from /proc. Medians of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from etl.run.sandbox_process import SandboxProcess

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
PROTOTYPE_SECONDS = 8.6  # the two-process prototype of issue 7, 1M lines (not re-measured)
GIB = 1 << 30

SCENARIOS = ("shapes", "sandbox", "run", "delta", "run-5m-sorted")
# name -> (orders, format, sorted); lines are about 4.5 per order
INPUTS = {
    "100k": (22_222, "csv", False),
    "250k": (55_555, "csv", False),
    "1m": (222_222, "csv", False),
    "1m-parquet": (222_222, "parquet", False),
    "5m-sorted": (1_111_111, "csv", True),
}


@dataclass
class Runs:
    label: str
    lines: int
    seconds: list[float] = field(default_factory=list)
    peaks: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def peak(self) -> int:
        return max(self.peaks)

    def line(self) -> str:
        runs = ", ".join(f"{s:.2f}" for s in self.seconds)
        return (
            f"{self.label:<34} median {self.median:7.2f} s  ({runs})  "
            f"{self.lines / self.median:>9,.0f} lines/s  peak RSS {self.peak / GIB:.2f} GiB"
        )


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> tuple[int, dict[int, float]]:
    """Resident bytes of a process and all its descendants, and each one's CPU seconds."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    total, stack, seen = 0, [root], {}
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/statm", "rb") as handle:
                total += int(handle.read().split()[1]) * PAGE
        except OSError:
            pass
        if pid in cpu:
            seen[pid] = cpu[pid]
        stack.extend(children.get(pid, []))
    return total, seen


def _tree_rss(root: int) -> int:
    return _tree(root)[0]


def _become_subreaper() -> None:
    """Descendants orphaned when `etl` exits (the forkserver, which reaps the workers) become
    this process's children, so that their CPU time is counted when they are reaped here."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def _reap_orphans(pids: set[int], timeout: float = 10.0) -> None:
    """Wait for the descendants of a finished command (they exit once their parent is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return
        if not any(os.path.exists(f"/proc/{pid}") for pid in pids):
            return
        time.sleep(0.02)


@dataclass
class Measured:
    seconds: float
    peak: int  # bytes, the process tree's resident memory at its largest
    cpu: float  # seconds, user + system, of the process and every descendant
    output: str


def measure(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak tree RSS and stdout of one command."""
    measured = measured_run(command, env)
    return measured.seconds, measured.peak, measured.output


def measured_run(
    command: list[str], env: dict[str, str] | None = None, cwd: Path = REPO
) -> Measured:
    """Wall seconds, peak tree RSS, CPU seconds of the tree and stdout of one command (run in
    ``cwd``: `python -m` imports the package found there first)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd
    )
    peak = 0
    sampled: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            rss, cpu = _tree(process.pid)
            peak = max(peak, rss)
            sampled.update(cpu)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    _reap_orphans(set(sampled) - {process.pid})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # Reaped here: the command and every descendant (this process is their subreaper); the
    # samples are the fallback should one outlive the wait (they miss its last 20 ms).
    cpu = max(reaped, sum(sampled.values()))
    text = output.decode("utf-8", "replace")
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{text}")
    return Measured(elapsed, peak, cpu, text)


def ensure_input(data: Path, name: str) -> Path:
    orders, kind, is_sorted = INPUTS[name]
    path = data / f"orders-{name}.{kind}"
    if not path.exists():
        print(f"generating {path.name} ({orders:,} orders) ...", flush=True)
        command = [sys.executable, "-m", "bench.generate", "--orders", str(orders)]
        command += ["--out", str(path.with_suffix(".tmp" + path.suffix))]
        if is_sorted:
            command.append("--sorted")
        subprocess.run(command, check=True, cwd=REPO)
        path.with_suffix(".tmp" + path.suffix).rename(path)
    return path


def count_lines(path: Path) -> int:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    import pyarrow as pa
    import pyarrow.csv as pacsv

    reader = pacsv.open_csv(
        path,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            include_columns=["channel_order_id"], column_types={"channel_order_id": pa.string()}
        ),
    )
    return sum(batch.num_rows for batch in reader)


def warm(path: Path) -> None:
    """Read the whole input just before a run, so that every run starts with it in the page
    cache. These machines drop cold cached pages within seconds (half of a 550 MB file in 20 s),
    so without this a run read anything from 0 to 300 MB from disk, at random."""
    with path.open("rb") as handle:
        while handle.read(16 << 20):
            pass


def check(path: Path, lines: int, repeat: int, label: str) -> Runs:
    runs = Runs(label, lines)
    for _ in range(repeat):
        warm(path)
        with tempfile.TemporaryDirectory() as outbox:
            command = [sys.executable, "-m", "etl.cli.main", "check", str(path), "--outbox", outbox]
            seconds, peak, _ = measure(command)
        runs.seconds.append(seconds)
        runs.peaks.append(peak)
        print("   ", runs.label, f"{seconds:.2f} s", f"{peak / GIB:.2f} GiB", flush=True)
    return runs


def baseline(path: Path, lines: int, repeat: int) -> Runs:
    runs = Runs("naive baseline (pandas+jsonschema)", lines)
    for _ in range(repeat):
        warm(path)
        with tempfile.TemporaryDirectory() as folder:
            out = Path(folder) / "requests.jsonl"
            command = [sys.executable, "-m", "bench.baseline", str(path), str(out)]
            seconds, peak, _ = measure(command)
        runs.seconds.append(seconds)
        runs.peaks.append(peak)
        print("   ", runs.label, f"{seconds:.2f} s", f"{peak / GIB:.2f} GiB", flush=True)
    return runs


SHAPE_NAMES = ("bench", "wide", "minimal")


@dataclass
class ShapeInput:
    shape: str
    path: Path
    mapping: Path | None
    delimiter: str
    env: dict[str, str]
    lines: int = 0


def ensure_shape(data: Path, shape: str, orders: int) -> ShapeInput:
    """The export of one shape with ``orders`` orders (generated once), and how to read it."""
    from bench.shapes import SHAPES, mapping_path

    path = data / f"orders-{shape}-{orders}.csv"
    if not path.exists():
        print(f"generating {path.name} ({orders:,} orders, shape {shape}) ...", flush=True)
        partial = path.with_suffix(".tmp.csv")
        command = [sys.executable, "-m", "bench.generate", "--orders", str(orders)]
        command += ["--shape", shape, "--out", str(partial)]
        subprocess.run(command, check=True, cwd=REPO)
        partial.rename(path)
    known = SHAPES.get(shape)
    mapping = mapping_path(path) if known is not None and known.mapping else None
    return ShapeInput(
        shape,
        path,
        mapping,
        known.delimiter if known is not None else ",",
        dict(known.env) if known is not None else {},
    )


def shape_env(shape: ShapeInput) -> dict[str, str]:
    """The bench's environment for one shape, running this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNECT_")}
    env.update(shape.env)
    env["PYTHONPATH"] = str(REPO)
    return env


def plain_read(shape: ShapeInput) -> float:
    """The floor: seconds for pyarrow alone to read the whole file (types inferred, threads)."""
    import pyarrow.csv as pacsv

    started = time.perf_counter()
    table = pacsv.read_csv(shape.path, parse_options=pacsv.ParseOptions(delimiter=shape.delimiter))
    elapsed = time.perf_counter() - started
    shape.lines = table.num_rows
    del table
    return elapsed


@dataclass
class ShapeRuns:
    floor: list[float] = field(default_factory=list)
    check: list[Measured] = field(default_factory=list)
    polars: list[Measured] = field(default_factory=list)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def shapes(inputs: list[ShapeInput], repeat: int, compare: bool) -> list[str]:
    """Per shape, side by side in rounds (each round every shape, alternating the tools):
    the plain read, `etl check`, and the Polars comparator."""
    runs = {shape.shape: ShapeRuns() for shape in inputs}
    for round_number in range(repeat):
        for shape in inputs:
            got = runs[shape.shape]
            warm(shape.path)
            got.floor.append(plain_read(shape))
            tools = ["check", "polars"] if compare else ["check"]
            for tool in tools if round_number % 2 == 0 else tools[::-1]:
                warm(shape.path)
                with tempfile.TemporaryDirectory() as outbox:
                    if tool == "check":
                        command = [sys.executable, "-m", "etl.cli.main", "check", str(shape.path)]
                        command += ["--outbox", outbox]
                    else:
                        command = [sys.executable, "-m", "bench.compare_polars", str(shape.path)]
                        command.append(str(Path(outbox) / "requests.jsonl"))
                    if shape.mapping is not None:
                        command += ["--mapping", str(shape.mapping)]
                    measured = measured_run(command, shape_env(shape))
                getattr(got, tool).append(measured)
                print(
                    f"    {shape.shape:<8} {tool:<7} {measured.seconds:6.2f} s "
                    f"(plain read {got.floor[-1]:.2f} s) {measured.cpu:6.1f} s CPU "
                    f"{measured.peak / GIB:.2f} GiB",
                    flush=True,
                )
    lines: list[str] = []
    best = min(_median([m.seconds for m in runs[s.shape].check]) for s in inputs)
    for shape in inputs:
        got = runs[shape.shape]
        floor = _median(got.floor)
        for tool in ("check", "polars"):
            measured = getattr(got, tool)
            if not measured:
                continue
            seconds = _median([m.seconds for m in measured])
            cpu = _median([m.cpu for m in measured])
            peak = max(m.peak for m in measured)
            label = "etl check" if tool == "check" else "polars comparator"
            text = (
                f"{shape.shape:<8} {label:<17} {seconds:7.2f} s = {seconds / floor:5.2f}x the "
                f"plain read ({floor:.2f} s); peak RSS {peak / GIB:.2f} GiB; "
                f"{cpu / shape.lines * 1e6:6.1f} CPU s per million lines "
                f"({shape.lines:,} lines; runs {', '.join(f'{m.seconds:.2f}' for m in measured)})"
            )
            if tool == "check":
                text += f"; {seconds / best:.2f}x the best shape"
            lines.append(text)
        if got.polars:
            ratio = _median([m.seconds for m in got.check]) / _median(
                [m.seconds for m in got.polars]
            )
            lines.append(f"  -> etl check / polars = {ratio:.2f} (target: at most 0.8)")
    lines.append(
        "  -> targets: etl check within 5x the plain read, within 1.3x of its best shape, "
        "peak RSS within 1 GiB"
    )
    return lines


def submission(path: Path, lines: int, repeat: int) -> list[str]:
    """`etl run` against the sandbox (its own process, as the real API is elsewhere) at the
    default pacing of 20 requests/s: the file's time vs requests / 20."""
    from etl.run.sandbox_process import started_sandbox

    report: list[str] = []
    for _ in range(repeat):
        with (
            tempfile.TemporaryDirectory() as folder,
            started_sandbox(Path(folder) / "sandbox.sqlite3") as sandbox,
        ):
            inbox, outbox = Path(folder) / "inbox", Path(folder) / "outbox"
            inbox.mkdir()
            shutil.copy(path, inbox / path.name)
            command = [sys.executable, "-m", "etl.cli.main", "run", "--inbox", str(inbox)]
            command += ["--outbox", str(outbox), "--settle", "0", "--quiet"]
            seconds, peak, _ = measure(command, connect_env(dict(os.environ), sandbox))
            (summary_path,) = outbox.glob("runs/*/summary.json")
            summary = json.loads(summary_path.read_text())
        file = summary["files"][0]
        requests = int(file["requests"])
        floor = requests / 20
        report.append(
            f"paced sync of {lines:,} lines: {requests} requests, file done in "
            f"{file['seconds']:.2f} s = {file['seconds'] / floor:.3f} x (requests / 20 = "
            f"{floor:.2f} s); whole command {seconds:.2f} s; peak RSS {peak / GIB:.2f} GiB; "
            f"outcomes {file['outcomes']}"
        )
        print("   ", report[-1], flush=True)
    return report


def connect_env(base: dict[str, str], sandbox: SandboxProcess) -> dict[str, str]:
    """``base`` without its CONNECT_* variables, then the sandbox's address and credentials."""
    env = {k: v for k, v in base.items() if not k.startswith("CONNECT_")}
    env.update(
        CONNECT_API_URL=sandbox.api_url,
        CONNECT_TOKEN_URL=sandbox.token_url,
        CONNECT_CLIENT_ID=sandbox.client_id,
        CONNECT_CLIENT_SECRET=sandbox.client_secret.reveal(),
    )
    return env


def sandbox_throughput(shape: ShapeInput, count: int = 400, threads: int = 2) -> list[str]:
    """Requests per second the sandbox (its own process) takes: ``count`` upserts of 100 orders
    (the bodies `etl check` writes for ``shape``) sent from ``threads`` client threads."""
    import requests

    from etl.run.sandbox_process import started_sandbox

    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "etl.cli.main", "check", str(shape.path)]
        command += ["--outbox", folder, "--quiet"]
        if shape.mapping is not None:
            command += ["--mapping", str(shape.mapping)]
        subprocess.run(command, check=False, cwd=REPO, env=shape_env(shape))
        (requests_path,) = Path(folder).glob("runs/*/*.requests.jsonl")
        bodies = [
            line
            for line in requests_path.read_bytes().splitlines()
            if line.count(b'"order_lines"') == 100
        ]
        token = "bench-token"
        # The bench measures what the sandbox can take: its per-client rate limit (the
        # documented 30 requests/s by default on the command line) is off.
        options = ("--static-token", token, "--rate-limit", "0")
        with started_sandbox(Path(folder) / "sandbox.sqlite3", options=options) as server:
            url = f"{server.api_url}/channel-platform/v1/orders"
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            statuses: list[int] = []
            lock = threading.Lock()
            sent = iter(range(count))

            def client() -> None:
                with requests.Session() as session:
                    for number in sent:
                        body = bodies[number % len(bodies)]
                        status = session.post(
                            url, data=body, headers=headers, timeout=60
                        ).status_code
                        with lock:
                            statuses.append(status)

            before = _tree(server.pid)[1].get(server.pid, 0.0)
            started = time.perf_counter()
            workers = [threading.Thread(target=client) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - started
            cpu = _tree(server.pid)[1].get(server.pid, 0.0) - before
    rate = len(statuses) / elapsed
    counted = {s: statuses.count(s) for s in sorted(set(statuses))}
    return [
        f"sandbox: {len(statuses)} upserts of 100 orders from {threads} threads in "
        f"{elapsed:.2f} s = {rate:.1f} requests/s ({cpu / len(statuses) * 1000:.1f} ms of "
        f"sandbox CPU per request; statuses {counted}; sandbox started with --rate-limit 0)",
        f"  -> target: at least 100 requests/s: {'met' if rate >= 100 else 'NOT met'}",
    ]


def changed_copy(path: Path, fraction_percent: int = 1) -> Path:
    """The export again with ``fraction_percent`` % of its orders changed (their shipping method
    flipped on every row), as the next day's export of the same orders: written once."""
    import csv

    out = path.with_name(path.stem + f"-delta{fraction_percent}" + path.suffix)
    if out.exists():
        return out
    partial = out.with_suffix(".tmp.csv")
    with (
        path.open(encoding="utf-8", newline="") as source,
        partial.open("w", encoding="utf-8", newline="") as target,
    ):
        reader, writer = csv.reader(source), csv.writer(target)
        header = next(reader)
        writer.writerow(header)
        order, method = header.index("channel_order_id"), header.index("shipping_info.method")
        flip = {"standard": "express", "express": "standard"}
        for row in reader:
            if int(row[order].rsplit("-", 1)[-1]) % 100 < fraction_percent:
                row[method] = flip.get(row[method], row[method])
            writer.writerow(row)
    partial.rename(out)
    return out


def paced_runs(shape: ShapeInput, delta: bool) -> list[str]:
    """`etl run` of a whole export against the sandbox (its own process) at the default pacing
    of 20 requests/s, against requests / 20; then, with ``delta``, the same export with 1% of
    its orders changed, against `etl check` of that file measured in the same session."""
    from etl.run.sandbox_process import started_sandbox

    report: list[str] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        started_sandbox(Path(folder) / "sandbox.sqlite3") as sandbox,
    ):
        inbox, outbox = Path(folder) / "inbox", Path(folder) / "outbox"
        inbox.mkdir()
        env = connect_env(shape_env(shape), sandbox)
        command = [sys.executable, "-m", "etl.cli.main", "run", "--inbox", str(inbox)]
        command += ["--outbox", str(outbox), "--settle", "0", "--quiet"]
        files = [shape.path, changed_copy(shape.path)] if delta else [shape.path]
        for number, path in enumerate(files):
            warm(path)
            shutil.copy(path, inbox / path.name)
            measured = measured_run(command, env)
            summaries = sorted(outbox.glob("runs/*/summary.json"))
            file = json.loads(summaries[-1].read_text())["files"][0]
            requests = int(file["requests"])
            lines = f"{shape.lines:,} lines" if shape.lines else path.name
            if number == 0:
                floor = requests / 20
                report.append(
                    f"etl run of {lines}: {requests} requests, file done in "
                    f"{file['seconds']:.2f} s = {file['seconds'] / floor:.3f} x "
                    f"(requests / 20 = {floor:.2f} s); whole command "
                    f"{measured.seconds:.2f} s; peak RSS {measured.peak / GIB:.2f} GiB; "
                    f"{measured.cpu:.1f} s CPU; outcomes {file['outcomes']}"
                )
                report.append("  -> target: at most 1.10 x (requests / 20), within 1 GiB")
                continue
            warm(path)
            with tempfile.TemporaryDirectory() as check_outbox:
                checked = measured_run(
                    [
                        sys.executable,
                        "-m",
                        "etl.cli.main",
                        "check",
                        str(path),
                        "--outbox",
                        check_outbox,
                        "--quiet",
                    ],
                    shape_env(shape),
                )
            report.append(
                f"delta run (1% of orders changed): {requests} requests, whole command "
                f"{measured.seconds:.2f} s ({measured.cpu:.1f} s CPU, peak RSS "
                f"{measured.peak / GIB:.2f} GiB) against etl check of the same file "
                f"{checked.seconds:.2f} s ({checked.cpu:.1f} s CPU) = "
                f"{measured.seconds / checked.seconds:.2f}x; outcomes {file['outcomes']}"
            )
            report.append("  -> target: at most 1.5x etl check of the same file")
    for line in report:
        print("   ", line, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=BENCH / "data", help="generated inputs")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each `etl check`")
    parser.add_argument("--baseline-repeat", type=int, default=1, help="runs of the baseline")
    parser.add_argument(
        "--only",
        nargs="*",
        default=["shapes", "250k", "1m", "1m-parquet", "5m-sorted", "100k"],
        choices=sorted([*INPUTS, *SCENARIOS]),
    )
    parser.add_argument(
        "--orders",
        type=int,
        default=222_222,
        help="orders per shape export (222,222 = about 1M lines; 44,444 for 200k lines)",
    )
    parser.add_argument("--shapes", nargs="*", default=list(SHAPE_NAMES), choices=SHAPE_NAMES)
    parser.add_argument("--no-compare", action="store_true", help="shapes without Polars")
    args = parser.parse_args()
    args.data.mkdir(parents=True, exist_ok=True)
    _become_subreaper()
    lines_of: dict[str, int] = {}
    paths: dict[str, Path] = {}
    for name in args.only:
        if name in INPUTS:
            paths[name] = ensure_input(args.data, name)
            lines_of[name] = count_lines(paths[name])
    results: list[str] = []
    if "shapes" in args.only:
        print(f"shapes of {args.orders:,} orders, side by side", flush=True)
        inputs = [ensure_shape(args.data, shape, args.orders) for shape in args.shapes]
        results += shapes(inputs, args.repeat, not args.no_compare)
    if "run" in args.only or "delta" in args.only:
        print("etl run against the sandbox, paced at 20 requests/s", flush=True)
        paced = ensure_shape(args.data, "bench", args.orders)
        paced.lines = count_lines(paced.path)
        results += paced_runs(paced, delta="delta" in args.only)
    if "run-5m-sorted" in args.only:
        # About 11,000 requests: ten minutes at the default pace, for the peak RSS of the run.
        print("etl run of the 5M-line export sorted by id, paced at 20 requests/s", flush=True)
        path = ensure_input(args.data, "5m-sorted")
        big = ShapeInput("bench", path, None, ",", {}, count_lines(path))
        results += paced_runs(big, delta=False)
    if "sandbox" in args.only:
        print("sandbox throughput", flush=True)
        results += sandbox_throughput(ensure_shape(args.data, "bench", min(args.orders, 4444)))
    if "250k" in args.only:
        print("250k lines: naive baseline and etl check, side by side", flush=True)
        lines = lines_of["250k"]
        naive = baseline(paths["250k"], lines, args.baseline_repeat)
        fast = check(paths["250k"], lines, args.repeat, "etl check, 250k CSV")
        results += [naive.line(), fast.line()]
        results.append(
            f"  -> etl check is {naive.median / fast.median:.1f}x faster than the baseline "
            "(target: at least 25x)"
        )
    for name, label in (("1m", "etl check, 1M CSV"), ("1m-parquet", "etl check, 1M Parquet")):
        if name in args.only:
            print(label, flush=True)
            runs = check(paths[name], lines_of[name], args.repeat, label)
            results.append(runs.line())
            results.append(
                f"  -> {runs.median / PROTOTYPE_SECONDS:.2f}x the two-process prototype's "
                f"{PROTOTYPE_SECONDS} s (target: at most about 12 s, 1.4x); peak RSS "
                f"{'within' if runs.peak <= GIB else 'OVER'} 1 GiB"
            )
    if "5m-sorted" in args.only:
        label = "etl check, 5M CSV sorted by id"
        print(label, flush=True)
        runs = check(paths["5m-sorted"], lines_of["5m-sorted"], 1, label)
        results.append(runs.line())
        results.append(f"  -> peak RSS {'within' if runs.peak <= GIB else 'OVER'} 1 GiB")
    if "100k" in args.only:
        print("100k lines: etl run --sandbox, paced at 20 requests/s", flush=True)
        results += submission(paths["100k"], lines_of["100k"], 1)
        results.append("  -> target: at most 1.15 x (requests / 20)")
    print("\n" + "\n".join(results))


if __name__ == "__main__":
    main()
