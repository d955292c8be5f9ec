"""Issue 12 ("never silently undelivered"): each test names the item it guards and failed on the
main of 2026-12-02 before its fix."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from etl.config import Settings
from etl.pipeline import check_file

from .conftest import base_line, write_rows


def _items_csv(run_dir: Path, name: str) -> list[dict[str, str]]:
    with (run_dir / f"{name}.items.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_item4_each_file_gets_its_own_column_plan_in_one_process(tmp_path: Path) -> None:
    """Two headers alternating under one path, in one process (as `etl watch` is): the column
    plan of one file is never reused for the next (it was cached on ``id()`` of a freed object)."""
    path = tmp_path / "orders.csv"
    settings = Settings(inbox=tmp_path, outbox=tmp_path / "outbox")
    plain = [base_line("A", "LA", order_lines__product__title="Mug")]
    wider = base_line("A", "LA", order_lines__product__title="Cup")
    wider["order_lines.product.thumbnail_url"] = "https://img.example/cup.png"
    reordered = [dict(reversed(list(wider.items())))]  # other columns, in another order
    for round_ in range(300):
        write_rows(path, plain if round_ % 2 == 0 else reordered)
        run_dir = tmp_path / "runs" / str(round_)
        run_dir.mkdir(parents=True)
        summary = check_file(path, settings, run_dir)
        assert summary.status == "processed", summary.reason
        assert summary.outcomes == {"VALID": 1}, (round_, summary.outcomes)
        (line,) = (run_dir / "orders.csv.requests.jsonl").read_text().splitlines()
        product = json.loads(line)["orders"][0]["order_lines"][0]["product"]
        expected = (
            {"id": "00123", "title": "Mug"}
            if round_ % 2 == 0
            else {"id": "00123", "title": "Cup", "thumbnail_url": "https://img.example/cup.png"}
        )
        assert product == expected, round_
