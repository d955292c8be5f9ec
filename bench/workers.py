"""Many workers on one PostgreSQL state URL (issue 17): failover and the shared budget.

    python -m bench.workers                    # ETL_TEST_POSTGRES, or the local test server
    python -m bench.workers --lease 10 --rate 5 --only takeover rate

Prints, against the sandbox on loopback (in this process) and `etl watch` / `etl run` worker
processes sharing one state URL (a schema of its own, dropped at the end):

1. seconds from killing (SIGKILL) the leader to the next order action log flush by another
   worker (the file that queues the actions is dropped right after the kill);
2. seconds from killing a worker mid-file to another worker resuming it (``took over`` in
   its log), with the lease length given (``--lease``; the default is the tool's default);
3. aggregate accepted upsert requests/s at the sandbox for 1, 2 and 4 `etl run` workers with
   one credential, and the busiest 1-second window (the budget is ``requests_per_second``).

Everything is bounded in time (each wait has a deadline) and stops by itself; every process it
starts is stopped by its own pid.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import psycopg

from bench.generate import generate_rows, write_csv
from etl.sandbox import SandboxServer

REPO = Path(__file__).resolve().parent.parent
ORDERS_PATH = "/api/channel-platform/v1/orders"
ACTIONS_PATH = "/api/v2/orders/actions"
SECRET = "bench-secret"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise SystemExit(f"bench: gave up waiting for {what} after {seconds:g} s")


@contextmanager
def schema(base: str) -> Iterator[str]:
    name = f"etl_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-csearch_path%3D{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {name} CASCADE")


class Workers:
    """Worker processes of one scenario; all stopped (by pid) when it ends."""

    def __init__(self, server: SandboxServer, state_url: str, config: Path) -> None:
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "CONNECT_API_URL": server.api_url,
            "CONNECT_TOKEN_URL": server.token_url,
            "CONNECT_CLIENT_ID": "sandbox-client",
            "CONNECT_CLIENT_SECRET": SECRET,
        }
        self.state_url = state_url
        self.config = config
        self.started: list[subprocess.Popen[str]] = []

    def start(self, command: str, folder: Path) -> subprocess.Popen[str]:
        (folder / "inbox").mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "etl.cli.main", command, "--inbox", str(folder / "inbox")]
        argv += ["--outbox", str(folder / "outbox"), "--state", self.state_url]
        argv += ["--config", str(self.config), "--settle", "0.2" if command == "watch" else "0"]
        process = subprocess.Popen(
            argv,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate(timeout=30)


def config_file(folder: Path, lease: float, rate: float) -> Path:
    path = folder / "etl.toml"
    path.write_text(
        f"[state]\nlease_seconds = {lease}\n[connect]\nrequests_per_second = {rate}\n"
        "[actions]\nflush_seconds = 60\n"
    )
    return path


def leader_backend(url: str) -> int | None:
    with psycopg.connect(url) as db:
        row = db.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = (hashtext('etl-leader:default:' || current_schema()))::oid"
        ).fetchone()
    return None if row is None else int(row[0])


def write_actions(path: Path, rows: int) -> None:
    header = "entity_id,entity_type,type,status,executed_at\n"
    body = "".join(
        f"O{n},ORDER,SYNCHRONIZE_ORDER,SUCCESS,2026-11-22T09:00:00Z\n" for n in range(rows)
    )
    staging = path.with_name("." + path.name + ".tmp")
    staging.write_text(header + body)
    os.replace(staging, path)


def leader_failover(server: SandboxServer, base: str, folder: Path) -> str:
    with schema(base) as url:
        workers = Workers(server, url, config_file(folder, 30, 20))
        try:
            first = workers.start("watch", folder)
            wait_for(lambda: leader_backend(url) is not None, 60, "the first leader")
            workers.start("watch", folder)
            time.sleep(2.0)  # the second watcher up and asking
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
            killed = time.monotonic()
            write_actions(folder / "inbox" / "order-actions-bench.csv", 5)
            wait_for(lambda: leader_backend(url) is not None, 60, "a new leader")
            led = time.monotonic() - killed
            wait_for(lambda: server.requests_log(path=ACTIONS_PATH), 60, "the flush")
            flushed = time.monotonic() - killed
        finally:
            workers.stop_all()
    return (
        f"leader killed -> another worker leads after {led:.2f} s; "
        f"-> its order action log flush reached the sandbox after {flushed:.2f} s"
    )


def worker_takeover(server: SandboxServer, base: str, folder: Path, lease: float) -> str:
    rows = list(generate_rows(600, seed=6, max_lines=2, id_prefix="K-"))
    with schema(base) as url:
        workers = Workers(server, url, config_file(folder, lease, 5))
        try:
            write_csv(folder / "orders-big.csv", iter(rows))
            (folder / "inbox").mkdir(parents=True, exist_ok=True)
            os.replace(folder / "orders-big.csv", folder / "inbox" / "orders-big.csv")
            first = workers.start("watch", folder)
            second = workers.start("watch", folder)
            wait_for(
                lambda: len(server.requests_log(path=ORDERS_PATH)) >= 2, 120, "the first batches"
            )
            # Whoever holds the file is killed: the one whose claim the database names.
            with psycopg.connect(url) as db:
                row = db.execute("SELECT holder FROM work").fetchone()
            pid = int(str(row[0]).split(":")[1]) if row else -1
            holder = first if first.pid == pid else second
            other = second if holder is first else first
            holder.send_signal(signal.SIGKILL)
            holder.communicate(timeout=30)
            killed = time.monotonic()
            took: list[float] = []

            def taken() -> bool:
                with psycopg.connect(url) as db:
                    found = db.execute("SELECT holder FROM work").fetchone()
                if found and found[0].split(":")[1] == str(other.pid):
                    took.append(time.monotonic() - killed)
                return bool(took)

            wait_for(taken, lease * 3 + 60, "the take-over")
            archived = lambda: list((folder / "outbox").glob("archive/*/*"))  # noqa: E731
            wait_for(archived, 180, "the resumed file to be archived")
            done = time.monotonic() - killed
        finally:
            workers.stop_all()
    stored = len(server.stored_orders())
    return (
        f"worker killed mid-file (lease {lease:g} s) -> another took the file over after "
        f"{took[0]:.2f} s; file archived {done:.2f} s after the kill; {stored} orders stored "
        "once at the sandbox"
    )


def throughput(
    server: SandboxServer, base: str, folder: Path, count: int, rate: float, orders: int
) -> str:
    """``count`` `etl run` workers, each with its own inbox, one credential: ``orders`` in all
    (requests of up to 100 orders), split between them in 12 files."""
    files = 12
    with schema(base) as url:
        workers = Workers(server, url, config_file(folder, 30, rate))
        before = len(server.requests_log(path=ORDERS_PATH))
        try:
            for n in range(files):
                inbox = folder / f"w{n % count}" / "inbox"
                inbox.mkdir(parents=True, exist_ok=True)
                rows = generate_rows(
                    orders // files, seed=n, max_lines=1, id_prefix=f"T{count}-{n}-"
                )
                write_csv(inbox / f"orders-{n:03d}.csv", rows)
            for worker in range(count):
                workers.start("run", folder / f"w{worker}")
            deadline = time.monotonic() + 300
            for process in workers.started:
                process.communicate(timeout=max(1, deadline - time.monotonic()))
        finally:
            workers.stop_all()
    sent = [r for r in server.requests_log(path=ORDERS_PATH)[before:] if r["status"] == 204]
    moments = sorted(
        datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp() for r in sent
    )
    seconds = moments[-1] - moments[0]
    busiest, first = 0, 0
    for last, moment in enumerate(moments):
        while moment - moments[first] >= 1.0:
            first += 1
        busiest = max(busiest, last - first + 1)
    return (
        f"{count} worker(s), one credential at {rate:g}/s: {len(sent)} accepted requests in "
        f"{seconds:.2f} s = {(len(sent) - 1) / seconds:.2f} requests/s; busiest 1-s window "
        f"{busiest}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lease", type=float, default=30.0, help="lease seconds (30)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests_per_second (20)")
    parser.add_argument("--orders", type=int, default=24000, help="orders in the rate runs")
    parser.add_argument(
        "--only", nargs="+", choices=("leader", "takeover", "rate"), help="some scenarios only"
    )
    args = parser.parse_args()
    base = os.environ.get("ETL_TEST_POSTGRES", DEFAULT_URL)
    lines = []
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        for number, (name, scenario) in enumerate(
            [
                ("leader", lambda s, f: leader_failover(s, base, f)),
                ("takeover", lambda s, f: worker_takeover(s, base, f, args.lease)),
                *[
                    (
                        f"rate-{n}",
                        lambda s, f, n=n: throughput(s, base, f, n, args.rate, args.orders),
                    )
                    for n in (1, 2, 4)
                ],
            ]
        ):
            if args.only and name.split("-")[0] not in args.only:
                continue
            folder = root / f"{number}-{name}"
            folder.mkdir()
            started = time.monotonic()
            with SandboxServer(db_path=folder / "sandbox.sqlite3", client_secret=SECRET) as server:
                lines.append(scenario(server, folder))
            print(f"{lines[-1]}  [{time.monotonic() - started:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
