"""Issue 14 item 5: what the command line prints when it is quiet, or read only in part."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from etl.sandbox import SandboxServer

from .conftest import REPO, SAMPLES, RunCli, connect_env


def test_quiet_still_says_why_a_file_was_not_delivered(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("orders-2026-11-22.csv", "orders-with-mistakes.csv"):
        shutil.copy(SAMPLES / name, inbox / name)
    (inbox / "export.csv").write_text("a,b\n1,2\n")
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(
        "run", "-q", "--inbox", inbox, "--outbox", tmp_path / "outbox", "--settle", "0"
    )
    assert code == 1
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert any(line.startswith("export.csv: UNREADABLE: ") for line in lines)
    assert "orders-with-mistakes.csv: PROBLEMS: 12 invalid of 20; see its errors.csv" in err
    assert "orders-2026-11-22.csv" not in out + err
    assert len(out.splitlines()) == 1  # the closing line


def test_a_reader_that_stops_early_gets_no_broken_pipe_error(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # `| head` that has already had enough
    process = subprocess.run(
        [sys.executable, "-m", "etl.cli", "status", "--json", "--inbox", tmp_path],
        stdout=write,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    os.close(write)
    assert process.stderr == b""
    assert process.returncode == 0
