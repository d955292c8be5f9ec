"""README's "Many sellers" section runs as written: its etl.toml, its commands in bash, against
the sandbox its `etl sandbox` line describes (started here on a free port, parsed by the
sandbox's own parser, so that a flag README shows must exist)."""

from __future__ import annotations

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
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


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
        (tmp_path / "etl.toml").write_text(config.replace(f"127.0.0.1:{args.port}", address))
        (tmp_path / "samples").symlink_to(REPO / "samples")
        shims = tmp_path / "bin"
        shims.mkdir()
        # `etl` as README types it, running this checkout's code.
        (shims / "etl").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m etl.cli.main "$@"\n')
        (shims / "etl").chmod(0o755)
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECT_")}
        env.update(PATH=f"{shims}:{env['PATH']}", PYTHONPATH=str(REPO))
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", commands],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        log = server.requests_log(path=UPSERT)
    clients = {entry["client_id"] for entry in log}
    assert clients == {"acme-client", "bolt-client"}
    assert all(entry["status"] == 204 for entry in log)
    out = done.stdout
    assert "for tenant acme to" in out and "for tenant bolt to" in out
    assert "tenant acme (" in out and "tenant bolt (" in out  # etl status, one block each
    assert "acme-secret" not in out + done.stderr and "bolt-secret" not in out + done.stderr
