"""Exactly once, with workers killed, and the aggregate rate with many tenants (issue 17).

    python -m bench.exactly_once                 # ETL_TEST_POSTGRES, or the local test server
    python -m bench.exactly_once --seed 3 --only exactly-once

Against the sandbox in a process of its own on loopback (one client per tenant, 429 past 30
requests/s each) and worker processes sharing one PostgreSQL state URL (a schema of their own,
dropped at the end):

1. **exactly-once**: 4 `etl watch` workers serve 3 tenants of one etl.toml (each its inbox, its
   secret in an environment variable, a budget of ``--budget`` requests/s); 60 files are
   dropped over time across the tenants (some invalid, some exact copies of an earlier file
   under another name); 5 times a worker, chosen at random, is killed with SIGKILL at a random
   moment and restarted (``--seed`` makes it reproducible). Then it checks that every valid
   order is stored at the sandbox, once (and counts the upsert requests that carried each, to
   show resends), that every file is reported exactly once (in its tenant's archive/ or
   failed/) and none is left in an inbox or its .processing/, and that per tenant the busiest
   1-second window of upserts at the sandbox never exceeds the budget.
2. **rate**: aggregate accepted upserts/s at the sandbox for 1, 2 and 4 `etl run` workers with 4
   tenants, and with 1 tenant (which must stay at its budget).

Exits 1 if any check fails. Every wait has a deadline; every process it starts is stopped by
its own pid.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.generate import generate_rows, write_csv
from bench.workers import DEFAULT_URL, REPO, schema

ORDERS_PATH = "/api/channel-platform/v1/orders"


@dataclass
class Sandbox:
    url: str
    db_path: Path
    process: subprocess.Popen[str]

    def stop(self) -> None:
        """Stops it (stdin closed) so that its last requests are written."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def upserts(self) -> list[tuple[str, float, int, list[str]]]:
        """(client, arrival in seconds since the epoch, status, order ids) of each upsert."""
        db = sqlite3.connect(self.db_path)
        try:
            rows = db.execute(
                "SELECT client_id, time, status, body FROM requests WHERE path = ? ORDER BY seq",
                (ORDERS_PATH,),
            ).fetchall()
        finally:
            db.close()
        found = []
        for client, at, status, body in rows:
            try:
                orders = json.loads(body or "{}").get("orders") or []
            except ValueError:
                orders = []
            ids = [str(o.get("channel_order_id")) for o in orders if isinstance(o, dict)]
            found.append((client, datetime.fromisoformat(at).timestamp(), status or 0, ids))
        return found

    def stored(self) -> list[str]:
        db = sqlite3.connect(self.db_path)
        try:
            return [row[0] for row in db.execute("SELECT channel_order_id FROM orders")]
        finally:
            db.close()


@contextmanager
def sandbox(folder: Path, tenants: list[str]) -> Iterator[Sandbox]:
    clients = [f"--client={name}-client:{name}-secret" for name in tenants[1:]]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "etl.sandbox",
            *("--port", "0", "--db", str(folder / "sandbox.sqlite3"), "--stop-on-stdin-close"),
            *("--client-id", f"{tenants[0]}-client", "--client-secret", f"{tenants[0]}-secret"),
            *clients,
            *("--rate-limit", "30"),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    server = Sandbox("", folder / "sandbox.sqlite3", process)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        if not banner.startswith("Mirakl Connect sandbox on "):
            raise SystemExit(f"bench: the sandbox did not start: {banner!r}")
        server.url = banner.split()[-1]
        yield server
    finally:
        server.stop()


def write_config(
    folder: Path, server: Sandbox, state_url: str, tenants: list[str], budget: float, lease: float
) -> Path:
    text = (
        f'[paths]\noutbox = "outbox"\n[state]\nstate_url = "{state_url}"\n'
        f"lease_seconds = {lease}\n"
        f'[connect]\napi_url = "{server.url}/api"\ntoken_url = "{server.url}/oauth/token"\n'
        "timeout = 10\n[actions]\nflush_seconds = 60\n"
    )
    for name in tenants:
        (folder / "inbox" / name).mkdir(parents=True, exist_ok=True)
        text += (
            f'\n[tenants.{name}]\ninbox = "inbox/{name}"\nclient_id = "{name}-client"\n'
            f'client_secret_env = "{name.upper()}_SECRET"\nrequests_per_second = {budget}\n'
        )
    path = folder / "etl.toml"
    path.write_text(text)
    return path


def worker_env(tenants: list[str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECT_")}
    env["PYTHONPATH"] = str(REPO)
    for name in tenants:
        env[f"{name.upper()}_SECRET"] = f"{name}-secret"
    return env


def export(path: Path, orders: int, seed: int, prefix: str) -> set[str]:
    """A valid export of ``orders`` orders, each of a store of its own: one request each."""
    rows = list(generate_rows(orders, seed=seed, max_lines=2, id_prefix=prefix))
    for row in rows:
        row["origin.channel_store_id"] = "S-" + row["channel_order_id"]
    staging = path.with_name("." + path.name + ".tmp")
    write_csv(staging, iter(rows))
    os.replace(staging, path)
    return {row["channel_order_id"] for row in rows}


def busiest_second(times: list[float]) -> int:
    """The most arrivals in any window of one second."""
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while times[start] <= at - 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


def reported(outbox: Path) -> Counter[str]:
    """Input names under archive/<run>/ and failed/<run>/ (not the .reason.txt and errors)."""
    names: Counter[str] = Counter()
    for kind in ("archive", "failed"):
        for path in outbox.glob(f"{kind}/*/*"):
            if path.is_file() and not path.name.endswith((".reason.txt", ".errors.csv")):
                names[path.name] += 1
    return names


def left_behind(inbox: Path) -> list[str]:
    return sorted(
        str(p.relative_to(inbox))
        for p in inbox.rglob("*")
        if (p.is_file() and not p.name.startswith(".")) or p.parent.name == ".processing"
    )


@dataclass
class Pool:
    """Worker processes; each stopped by its own pid when the pool ends."""

    argv: list[str]
    env: dict[str, str]
    logs: Path
    running: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.logs
        )
        log.close()
        self.running.append(process)
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        self.running.remove(process)

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)


def exactly_once(base: str, folder: Path, seed: int, budget: float, lease: float) -> list[str]:
    """Returns the failed checks (none: all held); prints the figures."""
    tenants = ["acme", "bolt", "cask"]
    rng = random.Random(seed)
    with schema(base) as url, sandbox(folder, tenants) as server:
        config = write_config(folder, server, url, tenants, budget, lease)
        argv = [sys.executable, "-m", "etl.cli.main", "watch", "--config", str(config)]
        pool = Pool([*argv, "--settle", "0.2", "--rescan", "2"], worker_env(tenants), folder)
        expected: set[str] = set()
        inputs: dict[str, list[str]] = {name: [] for name in tenants}
        plan: list[tuple[str, str]] = []  # (tenant, kind) of each file, in dropping order
        for number in range(60):
            kind = "valid"
            if number % 10 == 7:
                kind = "invalid"
            elif number % 10 == 9:
                kind = "copy"
            plan.append((tenants[number % 3], kind))
        drop_seconds = 30.0
        kill_moments = sorted(rng.uniform(3.0, drop_seconds + 5.0) for _ in range(5))
        began = time.monotonic()
        kills: list[str] = []
        try:
            for _ in range(4):
                pool.start()
            dropped, killed = 0, 0
            deadline = began + 300
            valid_files: dict[str, list[Path]] = {name: [] for name in tenants}
            while time.monotonic() < deadline:
                now = time.monotonic() - began
                while dropped < len(plan) and now >= dropped * drop_seconds / len(plan):
                    tenant, kind = plan[dropped]
                    inbox = folder / "inbox" / tenant
                    name = f"orders-{dropped:03d}.csv"
                    if kind == "valid":
                        prefix = f"{tenant[0].upper()}{dropped:03d}-"
                        expected |= export(folder / name, 8, seed * 1000 + dropped, prefix)
                        shutil.copyfile(folder / name, folder / f"keep-{name}")
                        os.replace(folder / name, inbox / name)
                        valid_files[tenant].append(folder / f"keep-{name}")
                    elif kind == "invalid":
                        (inbox / name).write_text("order,what\n1,2\n")
                    else:  # an exact copy of an earlier file of this tenant, under a new name
                        source = rng.choice(valid_files[tenant])
                        staging = folder / f".copy-{name}"
                        shutil.copyfile(source, staging)
                        os.replace(staging, inbox / name)
                    inputs[tenant].append(name)
                    dropped += 1
                if killed < len(kill_moments) and now >= kill_moments[killed]:
                    victim = rng.choice(pool.running)
                    pool.kill(victim)
                    pool.start()
                    kills.append(f"{now:.1f}")
                    killed += 1
                done = all(
                    sum(reported(folder / "outbox" / "tenants" / name).values())
                    >= len(inputs[name])
                    for name in tenants
                )
                if dropped == len(plan) and killed == len(kill_moments) and done:
                    break
                time.sleep(0.1)
            finished = time.monotonic() - began
        finally:
            pool.stop()
            server.stop()
        upserts = server.upserts()
        stored = server.stored()
    failures: list[str] = []
    # Orders: every valid one stored, once; nothing else stored.
    stored_count = Counter(stored)
    missing = expected - set(stored_count)
    extra = set(stored_count) - expected
    twice = [order for order, n in stored_count.items() if n > 1]
    carried = Counter(order for _, _, status, ids in upserts if status == 204 for order in ids)
    resent = {order: n for order, n in carried.items() if n > 1}
    if missing or extra or twice:
        failures.append(
            f"orders: {len(missing)} missing, {len(extra)} unexpected, {len(twice)} stored twice"
        )
    # Files: each input reported exactly once, none left behind.
    file_lines = []
    for name in tenants:
        outbox = folder / "outbox" / "tenants" / name
        seen = reported(outbox)
        wrong = {f: seen[f] for f in inputs[name] if seen[f] != 1}
        strays = sorted(set(seen) - set(inputs[name]))
        left = left_behind(folder / "inbox" / name)
        archived = len([p for p in outbox.glob("archive/*/*") if p.suffix == ".csv"])
        failed = len([p for p in outbox.glob("failed/*/*") if p.name.endswith(".csv")])
        failed -= len(list(outbox.glob("failed/*/*.errors.csv")))
        file_lines.append(
            f"  {name}: {len(inputs[name])} files dropped, {archived} archived, {failed} failed"
        )
        if wrong or strays or left:
            failures.append(
                f"files of {name}: not reported once {wrong}, unknown {strays}, left {left}"
            )
    # Budgets, from the sandbox's arrival times.
    budget_lines = []
    for name in tenants:
        times = [at for client, at, _, _ in upserts if client == f"{name}-client"]
        most = busiest_second(times)
        refused = sum(1 for client, _, s, _ in upserts if client == f"{name}-client" and s == 429)
        budget_lines.append(
            f"  {name}: {len(times)} upserts, busiest 1-s window {most} (budget {budget:g}), "
            f"{refused} refused (429)"
        )
        if most > budget:
            failures.append(f"budget of {name}: {most} upserts in one second > {budget:g}")
    print(
        f"exactly-once: 4 watch workers, 3 tenants, 60 files ({len(expected)} valid orders), "
        f"lease {lease:g} s, seed {seed}; SIGKILL + restart at {', '.join(kills)} s; "
        f"all reported after {finished:.1f} s"
    )
    print(
        f"  orders: {len(set(stored_count) & expected)}/{len(expected)} stored, "
        f"{len(twice)} stored twice, {len(missing)} missing; "
        f"{len(upserts)} upsert requests, {len(resent)} orders sent more than once "
        f"(most {max(resent.values(), default=1)} times: resends after a kill)"
    )
    print("\n".join(file_lines))
    print("\n".join(budget_lines))
    print(f"  checks: {'all held' if not failures else 'FAILED: ' + '; '.join(failures)}")
    return failures


def rate(
    base: str,
    folder: Path,
    workers: int,
    tenants: int,
    budget: float,
    orders: int,
    failures: list[str],
) -> str:
    """``workers`` `etl run` processes over ``tenants`` tenants of one etl.toml, ``orders``
    orders per tenant, one request each, in 6 files per tenant."""
    names = [f"t{n}" for n in range(tenants)]
    with schema(base) as url, sandbox(folder, names) as server:
        config = write_config(folder, server, url, names, budget, 30)
        for name in names:
            for n in range(6):
                export(
                    folder / "inbox" / name / f"orders-{n}.csv",
                    orders // 6,
                    n,
                    f"{name}-{workers}-{n}-",
                )
        argv = [sys.executable, "-m", "etl.cli.main", "run", "--config", str(config)]
        pool = Pool([*argv, "--settle", "0"], worker_env(names), folder)
        try:
            for _ in range(workers):
                pool.start()
            deadline = time.monotonic() + 300
            for process in pool.started:
                process.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            pool.stop()
            server.stop()
        upserts = server.upserts()
    accepted = sorted(at for _, at, status, _ in upserts if status == 204)
    seconds = accepted[-1] - accepted[0]
    windows = {
        name: busiest_second([at for c, at, _, _ in upserts if c == f"{name}-client"])
        for name in names
    }
    if max(windows.values()) > budget:
        failures.append(f"rate: {workers} workers, {tenants} tenants: over {budget:g} in 1 s")
    return (
        f"rate: {workers} worker(s), {tenants} tenant(s) at {budget:g}/s each: "
        f"{len(accepted)} accepted in {seconds:.1f} s = {(len(accepted) - 1) / seconds:.1f} "
        f"requests/s; busiest 1-s window per tenant {max(windows.values())}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=17, help="kills and copies (17)")
    parser.add_argument("--budget", type=float, default=10.0, help="requests/s a tenant (10)")
    parser.add_argument("--lease", type=float, default=5.0, help="lease seconds (5 here)")
    parser.add_argument("--rate-budget", type=float, default=20.0, help="in the rate runs (20)")
    parser.add_argument("--orders", type=int, default=240, help="orders a tenant, rate runs")
    parser.add_argument("--only", nargs="+", choices=("exactly-once", "rate"))
    args = parser.parse_args()
    base = os.environ.get("ETL_TEST_POSTGRES", DEFAULT_URL)
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as temp:
        root = Path(temp)
        if not args.only or "exactly-once" in args.only:
            (root / "once").mkdir()
            failures += exactly_once(base, root / "once", args.seed, args.budget, args.lease)
        if not args.only or "rate" in args.only:
            for tenants in (4, 1):
                for workers in (1, 2, 4):
                    folder = root / f"rate-{tenants}-{workers}"
                    folder.mkdir()
                    started = time.monotonic()
                    line = rate(
                        base, folder, workers, tenants, args.rate_budget, args.orders, failures
                    )
                    print(f"{line}  [{time.monotonic() - started:.0f} s]", flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
