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
        [sys.executable, "-m", "etl", "status", "--json", "--inbox", tmp_path],
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


def test_check_takes_a_folder_and_a_kind_for_names_that_say_none(
    tmp_path: Path, run_cli: RunCli
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", folder / "orders-2026-11-22.csv")
    shutil.copy(SAMPLES / "action-status-2026-11-22.csv", folder / "action-status-1.csv")
    (folder / ".hidden.csv").write_text("x")
    (folder / "orders-partial.csv.part").write_text("x")
    code, out, _ = run_cli("check", folder, "--outbox", tmp_path / "o")
    assert code == 0, out
    assert "orders-2026-11-22.csv: 24 orders" in out and "action-status-1.csv: 3" in out
    assert ".hidden" not in out and ".part" not in out
    export = tmp_path / "ERP export 2026-12-02.csv"  # a name that says no kind
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", export)
    code, out, err = run_cli("check", export, "--outbox", tmp_path / "o")
    assert code == 2 and "understood names" in out + err
    code, out, _ = run_cli("check", export, "--kind", "orders", "--outbox", tmp_path / "o")
    assert code == 0 and "24 orders from 90 rows: 24 valid" in out


def test_report_open_says_when_no_browser_could_be_opened(tmp_path: Path, run_cli: RunCli) -> None:
    outbox = tmp_path / "outbox"
    # The run to open, made in this process: only `report --open` needs a process of its own
    # (BROWSER in its environment, stderr as a person sees it).
    assert run_cli("check", SAMPLES / "orders-2026-11-22.csv", "--outbox", outbox, "-q")[0] == 0
    env = {**os.environ, "PYTHONPATH": str(REPO), "BROWSER": "false"}
    opened = subprocess.run(
        [sys.executable, "-m", "etl", "report", "--open", "--outbox", outbox],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert opened.returncode == 0
    assert "no web browser could be opened here; open " in opened.stderr
    assert "report.html yourself" in opened.stderr
