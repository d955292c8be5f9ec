"""The store's SQLite file: new files take large pages; files of older sandboxes keep working."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
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


def test_a_json_body_is_logged_as_the_text_sent(db_path: Path) -> None:
    # Spaced and non-ASCII, so that a re-dump or a byte-for-byte BLOB would both show.
    order = make_order(1)
    order["order_lines"][0]["product"]["title"] = "Tasse bleue, été"
    text = orjson.dumps(make_body([order]), option=orjson.OPT_INDENT_2).decode()
    with SandboxServer(db_path=db_path, static_token=TOKEN) as server:
        response = requests.post(
            f"{server.api_url}/channel-platform/v1/orders",
            data=text.encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 204
        (logged,) = server.requests_log(path="/api/channel-platform/v1/orders")
        assert logged["body"] == orjson.loads(text)
        with sqlite3.connect(db_path) as db:
            rows = db.execute(
                "SELECT typeof(body), body FROM requests WHERE seq = ?", [logged["seq"]]
            )
            assert rows.fetchall() == [("text", text)]


def test_an_order_is_stored_as_json_text(db_path: Path) -> None:
    order = make_order(1)
    order["order_lines"][0]["product"]["title"] = "Tasse bleue, été"
    with SandboxServer(db_path=db_path, static_token=TOKEN) as server:
        assert upsert(server, make_body([order])) == 204
        (stored,) = server.stored_orders()
        assert stored["body"] == order
    with sqlite3.connect(db_path) as db:
        ((kind, text),) = db.execute("SELECT typeof(body), body FROM orders").fetchall()
    assert kind == "text" and orjson.loads(text) == order
