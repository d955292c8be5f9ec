"""README's "Many sellers, many machines" runs as written: each sub-section's etl.toml and
commands in bash, against the sandbox its `etl sandbox` line describes (started here on a free
port, parsed by the sandbox's own parser, so that a flag README shows must exist), and for the
two workers, against the real PostgreSQL (a schema of the test's own; skipped without a server,
except under ``CI=true``)."""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from etl.sandbox import SandboxServer
from etl.sandbox.server import build_parser as sandbox_parser

from .conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
UPSERT = "/api/channel-platform/v1/orders"


def section(title: str) -> str:
    """A sub-section of "Many sellers, many machines", up to the next heading."""
    whole = README.index("\n## Many sellers, many machines")
    start = README.index(f"\n### {title}", whole)
    end = min(README.index(mark, start + 1) for mark in ("\n## ", "\n### "))
    return README[start:end]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def run_as_written(folder: Path, config: str, commands: str) -> subprocess.CompletedProcess[str]:
    """README's shell block run in ``folder`` beside its etl.toml and the samples, with `etl`
    as README types it running this checkout's code."""
    (folder / "etl.toml").write_text(config)
    (folder / "samples").symlink_to(REPO / "samples")
    shims = folder / "bin"
    shims.mkdir()
    (shims / "etl").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m etl.cli.main "$@"\n')
    (shims / "etl").chmod(0o755)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECT_")}
    env.update(PATH=f"{shims}:{env['PATH']}", PYTHONPATH=str(REPO))
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_many_sellers_section_runs_as_written(tmp_path: Path) -> None:
    text = section("Many sellers")
    (config,) = blocks(text, "toml")
    sandbox_block, commands = blocks(text, "sh")
    sandbox_argv = shlex.split(sandbox_block.strip())
    assert sandbox_argv[:2] == ["etl", "sandbox"]
    args = sandbox_parser().parse_args(sandbox_argv[2:])
    with SandboxServer(
        port=0,
        db_path=tmp_path / "sandbox.sqlite3",
        client_id=args.client_id,
        client_secret=args.client_secret,
        extra_clients=args.client,
        rate_limit=args.rate_limit,
    ) as server:
        address = server.url.removeprefix("http://")
        config = config.replace(f"127.0.0.1:{args.port}", address)
        done = run_as_written(tmp_path, config, commands)
        assert done.returncode == 0, done.stdout + done.stderr
        log = server.requests_log(path=UPSERT)
    clients = {entry["client_id"] for entry in log}
    assert clients == {"acme-client", "bolt-client"}
    assert all(entry["status"] == 204 for entry in log)
    out = done.stdout
    assert "for tenant acme to" in out and "for tenant bolt to" in out
    assert "tenant acme (" in out and "tenant bolt (" in out  # etl status, one block each
    assert "acme-secret" not in out + done.stderr and "bolt-secret" not in out + done.stderr


def sample_ids(name: str, delimiter: str, column: int) -> set[str]:
    """The order ids of a sample export (the column that holds them)."""
    with (REPO / "samples" / name).open(encoding="utf-8-sig", newline="") as handle:
        return {row[column] for row in list(csv.reader(handle, delimiter=delimiter))[1:]}


def test_two_workers_for_two_sellers_one_killed_the_other_finishes(
    tmp_path: Path, postgres_url: str
) -> None:
    text = section("Two sellers, two workers")
    (config,) = blocks(text, "toml")
    sandbox_block, commands = blocks(text, "sh")
    args = sandbox_parser().parse_args(shlex.split(sandbox_block.strip())[2:])
    written_url = re.search(r'state_url = "([^"]+)"', config)
    assert written_url is not None
    assert "kill -9 $first" in commands and commands.count("etl watch") == 2
    with SandboxServer(
        port=0,
        db_path=tmp_path / "sandbox.sqlite3",
        client_id=args.client_id,
        client_secret=args.client_secret,
        extra_clients=args.client,
        rate_limit=args.rate_limit,
    ) as server:
        address = server.url.removeprefix("http://")
        config = config.replace(f"127.0.0.1:{args.port}", address)
        # README's 10 s lease is for a person to watch; the take-over is the same at the
        # settings' floor of 3 s, which spares the test 7 s of waiting for the dead worker.
        config, leases = re.subn(r"(?m)^lease_seconds = 10\b", "lease_seconds = 3", config)
        assert leases == 1
        done = run_as_written(tmp_path, config.replace(written_url[1], postgres_url), commands)
        second = (tmp_path / "second.log").read_text()
        assert done.returncode == 0, done.stdout + done.stderr + second
        log = server.requests_log(path=UPSERT)
        stored = server.stored_orders()
    # Every order of both files stored, by the credentials of its own seller.
    assert {entry["client_id"] for entry in log} == {"acme-client", "bolt-client"}
    ids = {o["channel_order_id"] for o in stored}
    assert (
        len(stored)
        == len(ids)
        == len(sample_ids("orders-2026-11-22.csv", ",", 2))
        + len(sample_ids("orders-eu-erp.csv", ";", 0))
    )
    # The first worker died holding a file: the second took it over and finished both.
    assert "took over" in second, second
    for tenant, name in (("acme", "orders-2026-11-22.csv"), ("bolt", "orders-eu-erp.csv")):
        outbox = tmp_path / "outbox" / "tenants" / tenant
        assert len(list(outbox.glob(f"archive/*/{name}"))) == 1
        assert not list(outbox.glob("failed/*/*"))
        assert not list((tmp_path / "inbox" / tenant).glob(".processing/*.csv"))
    assert "tenant acme (" in done.stdout and "tenant bolt (" in done.stdout
    assert "etl watch: stopped" in second
