"""The Excel, JSON lines and rejected-file samples, run as `scripts/demo` runs them: every order's
body as the sandbox received it is the one its rows make, not only the counts."""

from __future__ import annotations

import csv
import importlib.util
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest

from etl.core.kinds import FIX_COLUMN
from etl.run.check import iter_validated, prepare
from etl.sandbox import SandboxServer
from etl.settings.config import Settings

from .conftest import REPO, SAMPLES, RunCli, connect_env


def make_samples() -> ModuleType:
    """scripts/make_samples.py, whose rows the samples were written from."""
    spec = importlib.util.spec_from_file_location("make_samples", REPO / "scripts/make_samples.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bodies(rows: list[dict[str, str]], folder: Path) -> dict[str, dict[str, Any]]:
    """The orders flat rows make (the CSV path), as Connect should receive them."""
    path = folder / "orders-expected.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    items = [i for chunk in iter_validated(prepare(path, Settings())) for i in chunk]
    assert all(not i.violations for i in items)
    return {i.item_id: i.body for i in items}


def received(sandbox: SandboxServer, prefix: str) -> dict[str, dict[str, Any]]:
    return {
        o["channel_order_id"]: o["body"]
        for o in sandbox.stored_orders()
        if o["channel_order_id"].startswith(prefix)
    }


@pytest.fixture
def demo(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """`etl run --config samples/etl.toml` on an inbox of the given samples, as the demo does."""
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()

    def run(*files: Path) -> tuple[int, str]:
        for file in files:
            shutil.copy(file, inbox / file.name)
        code, out, err = run_cli(
            "run", "--config", SAMPLES / "etl.toml", "--inbox", inbox, "--outbox", outbox,
            "--settle", "0",
        )  # fmt: skip
        return code, out + err

    return run


def test_the_workbook_sample_sends_what_its_rows_make(
    demo: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    code, out = demo(SAMPLES / "orders-2026-11-23.xlsx")
    assert code == 0, out
    assert "orders-2026-11-23.xlsx: 24 orders from 125 rows: 24 accepted" in out
    expected = bodies(make_samples().workbook_rows(), tmp_path)
    assert len(expected) == 24
    assert received(sandbox, "XL-") == expected


def test_the_json_lines_sample_sends_each_line_as_written(
    demo: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    code, out = demo(SAMPLES / "orders-2026-11-23.jsonl")
    assert code == 0, out
    lines = [
        orjson.loads(line)
        for line in (SAMPLES / "orders-2026-11-23.jsonl").read_bytes().split(b"\n")
        if line
    ]
    written = {
        line["channel_order_id"]: {k: v for k, v in line.items() if k != "origin"} for line in lines
    }
    assert len(written) == 24
    assert received(sandbox, "JL-") == written
    assert written == bodies(make_samples().json_lines_rows(), tmp_path)


def test_the_rejected_file_round_trip_delivers_every_order_of_the_file_with_mistakes(
    demo: Any, sandbox: SandboxServer, tmp_path: Path
) -> None:
    code, out = demo(SAMPLES / "orders-with-mistakes.csv")
    assert code == 1, out
    (rejected,) = (tmp_path / "outbox" / "failed").glob("*/orders-with-mistakes.rejected.csv")
    with rejected.open(encoding="utf-8", newline="") as handle:
        to_fix = list(csv.DictReader(handle))
    with (SAMPLES / "orders-with-mistakes.csv").open(encoding="utf-8", newline="") as handle:
        original = list(csv.DictReader(handle))
    fixed_sample = SAMPLES / "fixed" / "orders-with-mistakes.rejected.csv"
    with fixed_sample.open(encoding="utf-8", newline="") as handle:
        fixed = list(csv.DictReader(handle))
    invalid = {r["channel_order_id"] for r in to_fix}
    assert len(invalid) == 12 and all(r[FIX_COLUMN] for r in to_fix)
    # Exactly the rows of those orders, as the export wrote them...
    assert [{k: v for k, v in r.items() if k != FIX_COLUMN} for r in to_fix] == [
        r for r in original if r["channel_order_id"] in invalid
    ]
    # ... and the shipped fix is a fix of those very rows (a line id among the fixes).
    assert [r["channel_order_id"] for r in fixed] == [r["channel_order_id"] for r in to_fix]
    accepted_before = received(sandbox, "MX-")
    assert len(accepted_before) == 8

    code, out = demo(fixed_sample)
    assert code == 0, out
    assert "orders-with-mistakes.rejected.csv: 12 orders from 22 rows: 12 accepted" in out
    expected = bodies(make_samples().mistake_rows(), tmp_path)
    assert len(expected) == 20
    assert received(sandbox, "MX-") == expected
