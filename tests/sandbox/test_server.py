"""The HTTP server itself: keep-alive framing, clean shutdown, the command line."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from etl.sandbox import SandboxServer
from etl.sandbox.server import main

from .conftest import TIMEOUT, Api, make_body, make_order


def test_urls(sandbox: SandboxServer) -> None:
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert sandbox.api_url == sandbox.url + "/api"
    assert sandbox.token_url == sandbox.url + "/oauth/token"
    assert sandbox.orders_url == sandbox.url + "/api/channel-platform/v1/orders"


def test_framing_for_keep_alive(api: Api) -> None:
    rejected = api.upsert(b"{")
    assert rejected.headers["Content-Length"] == str(len(rejected.content))
    assert rejected.headers["Content-Type"] == "application/json"
    accepted = api.upsert(make_body([make_order()]))
    assert accepted.status_code == 204
    assert "Content-Length" not in accepted.headers  # RFC 9110: never on a 204
    assert accepted.headers.get("Connection", "").lower() != "close"


def test_close_ends_open_keep_alive_connections(db_path: Path) -> None:
    session = requests.Session()
    with SandboxServer(db_path=db_path) as sandbox:
        session.get(sandbox.admin_url + "/orders", timeout=TIMEOUT)
        assert any(t.name == "sandbox-connection" for t in threading.enumerate())
    # The session still holds its socket; the sandbox's thread must be gone regardless.
    assert not [t for t in threading.enumerate() if t.name.startswith("sandbox-")]
    session.close()


def test_close_cuts_a_scripted_delay_short(db_path: Path) -> None:
    def post(url: str) -> None:
        with contextlib.suppress(requests.RequestException):
            requests.post(url, json={}, headers={"Authorization": "Bearer t"}, timeout=10)

    sandbox = SandboxServer(db_path=db_path, static_token="t").start()
    try:
        sandbox.set_faults({"faults": [{"delay": 30}]})
        worker = threading.Thread(target=post, args=(sandbox.orders_url,), daemon=True)
        worker.start()
        deadline = time.monotonic() + 5
        while not any(t.name == "sandbox-connection" for t in threading.enumerate()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        time.sleep(0.1)  # let the request reach its delay
    finally:
        started = time.monotonic()
        sandbox.close()
    assert time.monotonic() - started < 2
    worker.join(5)
    assert not worker.is_alive()


def test_temporary_database_is_removed(http: requests.Session) -> None:
    with SandboxServer() as sandbox:
        path = sandbox.db_path
        assert path.exists()
    assert not path.exists()
    assert not path.parent.exists()


def test_database_path_is_kept(db_path: Path) -> None:
    with SandboxServer(db_path=db_path):
        pass
    assert db_path.exists()


def test_main_rejects_a_malformed_known_store(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--known-store", "no-colon"])
    assert exit_info.value.code == 2
    assert "CHANNEL:STORE" in capsys.readouterr().err


SETTINGS = (
    "action_delay",
    "report_interval",
    "status_interval",
    "fail_entity_prefix",
    "anonymize_tolerance",
)


@pytest.mark.parametrize(
    "flag", ["--action-delay", "--report-interval", "--status-interval", "--anonymize-tolerance"]
)
def test_main_rejects_negative_seconds(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([flag, "-1"])
    assert exit_info.value.code == 2
    assert "seconds" in capsys.readouterr().err


def test_help_shows_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--client-secret" in out
    assert "sandbox-secret" not in out


def test_main_returns_2_when_the_port_is_taken(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--db", str(tmp_path / "db.sqlite3")]) == 2
    assert "cannot listen" in capsys.readouterr().out


def test_cli_serves_until_sigterm_and_never_prints_secrets(tmp_path: Path) -> None:
    db = tmp_path / "cli.sqlite3"
    command = [
        sys.executable,
        "-m",
        "etl.sandbox",
        "--port",
        "0",
        "--db",
        str(db),
        "--client-secret",
        "cli-secret-value",
        "--static-token",
        "cli-static-token",
        "--known-store",
        "CH-1:STORE-1",
        "--action-delay",
        "0.5",
        "--report-interval",
        "0",
        "--status-interval",
        "30",
        "--fail-entity-prefix",
        "NOPE-",
        "--anonymize-tolerance",
        "0",
        "--verbose",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = first.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:")
        response = requests.post(
            url + "/api/channel-platform/v1/orders",
            json=make_body([make_order()]),
            headers={"Authorization": "Bearer cli-static-token"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 204
        config = requests.get(url + "/_sandbox/config", timeout=TIMEOUT).json()
        assert {k: config[k] for k in SETTINGS} == {
            "action_delay": 0.5,
            "report_interval": 0.0,
            "status_interval": 30.0,
            "fail_entity_prefix": "NOPE-",
            "anonymize_tolerance": 0.0,
        }
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 0
    output = first + out + err
    assert "cli-secret-value" not in output
    assert "cli-static-token" not in output
    assert "sandbox stopped" in output
    assert "POST /api/channel-platform/v1/orders -> 204" in err
    assert db.exists()


def test_cli_stops_when_its_stdin_closes(tmp_path: Path) -> None:
    # What a launching process relies on: if it dies, even by SIGKILL, the pipe closes.
    command = [sys.executable, "-m", "etl.sandbox", "--port", "0", "--db", str(tmp_path / "s.db")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [*command, "--stop-on-stdin-close"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        watchdog = threading.Timer(TIMEOUT, process.kill)  # bounds the readline below
        watchdog.start()
        try:
            url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        finally:
            watchdog.cancel()
        assert requests.get(url + "/_sandbox/counts", timeout=TIMEOUT).status_code == 200
        out, _ = process.communicate(timeout=TIMEOUT)  # closes stdin, nothing else
    assert process.returncode == 0
    assert "sandbox stopped" in out
