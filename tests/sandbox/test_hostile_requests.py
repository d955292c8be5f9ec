"""The sandbox keeps what it received to its owner, and its admin routes to this machine's own
programs: a web page (DNS rebinding, a cross-site form) cannot read or change it (issue 13)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import requests

from etl.sandbox import SandboxServer

from .conftest import TIMEOUT, Api, make_body, make_order


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_wal_files_are_for_their_owner_only(tmp_path: Path) -> None:
    """Order bodies hold names and addresses: the reports are 0600, the database must be too."""
    previous = os.umask(0o022)  # the usual umask: files 0644 unless the tool says otherwise
    try:
        db_path = tmp_path / "new" / "sandbox.sqlite3"
        with SandboxServer(db_path=db_path) as sandbox, requests.Session() as http:
            Api(sandbox, http, "").admin("GET", "orders")
            files = [db_path, db_path.with_name(db_path.name + "-wal")]
            files.append(db_path.with_name(db_path.name + "-shm"))
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
            assert mode(db_path.parent) == 0o700  # made by the sandbox: its own
    finally:
        os.umask(previous)


def test_a_database_left_world_readable_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o755)
    db_path = folder / "sandbox.sqlite3"
    for path in (db_path, folder / "sandbox.sqlite3-wal"):
        path.touch()
        path.chmod(0o644)
    with SandboxServer(db_path=db_path):
        assert mode(db_path) == mode(folder / "sandbox.sqlite3-wal") == 0o600
        assert mode(folder) == 0o755  # a folder the sandbox did not make is left as it is


def test_admin_routes_refuse_another_host_name(api: Api) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 calls the
    sandbox with its own name in Host. Only the sandbox's own address is answered."""
    port = api.sandbox.url.rsplit(":", 1)[1]
    url = api.sandbox.admin_url + "/orders"
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1:1", ""):
        response = api.http.get(url, headers={"Host": host}, timeout=TIMEOUT)
        assert response.status_code == 403, host
        assert response.json()["code"] == "FORBIDDEN"
        assert "Host" in response.json()["message"]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert api.http.get(url, headers={"Host": host}, timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize(
    ("method", "route", "content_type"),
    [
        ("POST", "reset", None),
        ("POST", "reset", "text/plain"),
        ("POST", "faults", "application/x-www-form-urlencoded"),
        ("POST", "config", "multipart/form-data; boundary=x"),
        ("DELETE", "faults", None),
        ("POST", "tokens/revoke", "text/plain;charset=UTF-8"),
    ],
)
def test_admin_writes_need_a_json_content_type(
    api: Api, method: str, route: str, content_type: str | None
) -> None:
    """A cross-site form or a no-cors fetch can POST without asking, but never as JSON."""
    api.upsert(make_body([make_order()]))
    api.faults(faults=[{"status": 503}], path_prefix="/api/v2/")
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = b'{"omit_field": true}' if route in ("faults", "config") else b""
    response = api.http.request(
        method, f"{api.sandbox.admin_url}/{route}", data=body, headers=headers, timeout=TIMEOUT
    )
    assert response.status_code == 415
    assert response.json()["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert "application/json" in response.json()["message"]
    assert len(api.orders()) == 1  # nothing was changed
    assert api.admin("GET", "faults")["plan"] is not None
    assert api.admin("GET", "config")["omit_field"] is False
    assert api.upsert(make_body([make_order(2)])).status_code == 204  # token not revoked


def test_admin_writes_with_json_still_work(api: Api) -> None:
    api.upsert(make_body([make_order()]))
    response = api.http.post(
        api.sandbox.admin_url + "/reset",
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert api.orders() == []
