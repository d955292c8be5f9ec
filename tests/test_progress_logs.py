"""Progress bars only on a terminal, --quiet, --verbose and the JSON log lines of check and run."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import Any

from etl.cli.progress import ProgressObserver, wants_progress
from etl.core.summary import FileSummary

from .conftest import REPO, SAMPLES, RunCli

SAMPLE_FILES = (SAMPLES / "orders-2026-11-22.csv", SAMPLES / "orders-with-mistakes.csv")


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_when_someone_watches_a_terminal() -> None:
    assert wants_progress(False, FakeTerminal(), FakeTerminal())
    assert not wants_progress(False, io.StringIO(), FakeTerminal())  # stdout piped or redirected
    assert not wants_progress(False, FakeTerminal(), io.StringIO())
    assert not wants_progress(True, FakeTerminal(), FakeTerminal())  # --quiet


def test_the_bar_shows_rows_per_second_eta_and_orders() -> None:
    screen = FakeTerminal()
    progress = ProgressObserver(screen, mininterval=0)
    progress.file_started("orders-a.csv", 1000)
    progress.items_validated("orders-a.csv", 200, 500)
    progress.batch_finished("orders-a.csv", "b-1", 100, 100, 1)
    progress.items_validated("orders-a.csv", 150, 400)
    assert progress.bar is not None
    line = progress.bar.format_meter(**{**progress.bar.format_dict, "ncols": 200})
    assert line.startswith("orders-a.csv:  90%|")
    assert "900/1000 [" in line and " rows/s" in line and "<00:" in line  # rate and ETA
    assert line.endswith("/s), 100 sent]") and "350 orders (" in line
    progress.file_finished(FileSummary(name="orders-a.csv"))
    text = screen.getvalue()
    assert "orders-a.csv:  50%|" in text  # drawn on the terminal as it went
    assert text.endswith("\r" + " " * len(text.rsplit("\r", 2)[-2]) + "\r")  # cleared at the end
    assert progress.bar is None


def summary_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if not line.startswith("run ")]


def run_in_terminal(*args: str | Path) -> tuple[int, str]:
    """`etl ...` in a real pseudo-terminal (100x24), as a person at a shell would see it."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "etl", *map(str, args)],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=REPO,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    return process.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def run_piped(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "etl", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_a_terminal_gets_bars_and_a_pipe_gets_only_the_summary(tmp_path: Path) -> None:
    code, screen = run_in_terminal("check", *SAMPLE_FILES, "--outbox", tmp_path / "tty")
    assert code == 1
    assert "orders-with-mistakes.csv:   0%|" in screen and " rows/s]" in screen
    assert "orders-with-mistakes.csv: 20 orders from 34 rows: 12 invalid, 8 valid" in screen

    piped = run_piped("check", *SAMPLE_FILES, "--outbox", tmp_path / "pipe")
    assert (piped.returncode, piped.stderr) == (1, "")
    assert "\r" not in piped.stdout and "rows/s" not in piped.stdout
    (run_dir,) = (tmp_path / "pipe" / "runs").iterdir()
    assert piped.stdout.splitlines() == [
        "orders-2026-11-22.csv: 24 orders from 90 rows: 24 valid; 0 problem(s); 2 request(s)",
        "orders-with-mistakes.csv: 20 orders from 34 rows: 12 invalid, 8 valid; 13 problem(s); "
        "2 request(s)",
        f"run {run_dir.name}: exit 1; reports in {run_dir}",
        f"report: {run_dir / 'report.html'}",
    ]


def test_quiet_prints_only_what_went_wrong_and_the_closing_line_even_on_a_terminal(
    tmp_path: Path,
) -> None:
    code, screen = run_in_terminal("check", *SAMPLE_FILES, "--outbox", tmp_path, "--quiet")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert (code, screen) == (
        1,
        "orders-with-mistakes.csv: PROBLEMS: 12 invalid of 20; see its errors.csv\r\n"
        f"run {run_dir.name}: exit 1; reports in {run_dir}\r\n",
    )


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_verbose_check_logs_one_json_line_per_file_and_one_per_run(
    tmp_path: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli("check", *SAMPLE_FILES, "--outbox", tmp_path, "-v")
    assert code == 1
    lines = json_lines(err)
    assert [(line["event"], line.get("file")) for line in lines] == [
        ("file", "orders-2026-11-22.csv"),
        ("file", "orders-with-mistakes.csv"),
        ("run", None),
    ]
    mistakes = lines[1]
    assert {k: mistakes[k] for k in ("level", "logger", "rows", "orders", "problems")} == {
        "level": "info",
        "logger": "etl.run",
        "rows": 34,
        "orders": 20,
        "problems": 13,
    }
    assert mistakes["outcomes"] == {"INVALID": 12, "VALID": 8}
    assert mistakes["message"].startswith("orders-with-mistakes.csv: 20 orders from 34 rows in ")
    assert mistakes["time"].endswith("Z")
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert lines[2]["run_id"] == run_dir.name and lines[2]["exit_code"] == 1
    assert "orders-with-mistakes.csv: 20 orders" in out  # the summary is still printed


def test_without_verbose_nothing_is_logged(tmp_path: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli("check", *SAMPLE_FILES, "--outbox", tmp_path)
    assert (code, err) == (1, "")


def test_text_log_format_on_request(tmp_path: Path, run_cli: RunCli) -> None:
    _, _, err = run_cli("check", *SAMPLE_FILES, "--outbox", tmp_path, "-v", "--log-format", "text")
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("INFO orders-2026-11-22.csv: 24 orders from 90 rows in ")
    assert lines[2].startswith("INFO run ")


def test_verbose_run_logs_one_line_per_batch_and_per_file(tmp_path: Path, run_cli: RunCli) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    for sample in SAMPLE_FILES:
        shutil.copy(sample, inbox / sample.name)
    code, _, err = run_cli(
        "run", "--sandbox", "--inbox", inbox, "--outbox", outbox, "--settle", "0", "-v"
    )
    assert code == 1
    lines = json_lines(err)
    batches = [line for line in lines if line["event"] == "batch"]
    files = [line for line in lines if line["event"] == "file"]
    (run,) = [line for line in lines if line["event"] == "run"]
    (run_dir,) = (outbox / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert len(batches) == summary["totals"]["requests"] == 4  # no isolation, one request each
    assert sum(b["accepted"] for b in batches) == summary["totals"]["outcomes"]["ACCEPTED"]
    assert {b["file"] for b in batches} == {s.name for s in SAMPLE_FILES}
    assert all(b["batch"] and b["requests"] == 1 for b in batches)
    assert [f["file"] for f in files] == [s.name for s in SAMPLE_FILES]
    assert files[1]["outcomes"] == {"ACCEPTED": 8, "INVALID": 12}
    assert run["outcomes"] == summary["totals"]["outcomes"] and run["exit_code"] == 1
    assert all(line["logger"] != "etl" for line in lines)  # sync's own batch line is not doubled


def test_the_cli_leaves_logging_as_it_found_it(tmp_path: Path, run_cli: RunCli) -> None:
    logger = logging.getLogger("etl")
    before = (list(logger.handlers), logger.level, logger.propagate)
    run_cli("check", *SAMPLE_FILES, "--outbox", tmp_path, "-v")
    assert (list(logger.handlers), logger.level, logger.propagate) == before
