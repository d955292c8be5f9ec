"""The store's SQLite file: new files take large pages; files of older sandboxes keep working."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import requests

from etl.sandbox import SandboxServer
from etl.sandbox.store import PAGE_SIZE

from .conftest import TIMEOUT, make_body, make_order

TOKEN = "static"


def page_size(path: Path) -> int:
    with sqlite3.connect(path) as db:
        (size,) = db.execute("PRAGMA page_size").fetchone()
    return int(size)


def upsert(server: SandboxServer, body: object) -> int:
    response = requests.post(
        f"{server.api_url}/channel-platform/v1/orders",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=TIMEOUT,
    )
    return response.status_code


def test_a_new_file_takes_large_pages(db_path: Path) -> None:
    with SandboxServer(db_path=db_path, static_token=TOKEN) as server:
        assert upsert(server, make_body([make_order(1)])) == 204
    assert page_size(db_path) == PAGE_SIZE


def test_a_file_of_an_older_sandbox_keeps_its_pages_and_its_rows(db_path: Path) -> None:
    # As an older sandbox made it: 4 KB pages (SQLite's default), WAL.
    with sqlite3.connect(db_path) as db:
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
    with SandboxServer(db_path=db_path, static_token=TOKEN) as server:
        assert upsert(server, make_body([make_order(1)])) == 204
    with SandboxServer(db_path=db_path, static_token=TOKEN) as server:
        assert upsert(server, make_body([make_order(2)])) == 204
        assert [o["channel_order_id"] for o in server.stored_orders()] == ["ORDER-1", "ORDER-2"]
        assert [r["status"] for r in server.requests_log()] == [204, 204]
    assert page_size(db_path) == 4096
