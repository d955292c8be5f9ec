"""Alerts through apprise, received by real servers on loopback: SMTP (aiosmtpd) and HTTP."""

from __future__ import annotations

import csv
import email
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from etl.core.errors import AuthFailed
from etl.deliver.client import ConnectClient
from etl.monitor.alerts import Alert, Alerts, Sender, masked
from etl.run.sync import ApiDown
from etl.run.watch import Watcher
from etl.sandbox import SandboxServer
from etl.settings.config import Secret, load_settings

from .conftest import SAMPLES, SECRET, RunCli, connect_env, settings_for

MAIL_PASSWORD = "m4il-pa55word-not-for-logs"
HOOK_TOKEN = "hook-t0ken-not-for-logs"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ours(caplog: pytest.LogCaptureFixture) -> str:
    """What etl and apprise logged (the test's own SMTP server logs the whole conversation)."""
    return "\n".join(
        r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("etl", "apprise")
    )


def readable(raw: str) -> str:
    """Subject and decoded body parts of one mail."""
    message = email.message_from_string(raw)
    parts = [str(message["Subject"])]
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            parts.append(payload.decode())
    return "\n".join(parts)


class Mailbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        content = envelope.content
        self.messages.append(content.decode() if isinstance(content, bytes) else str(content))
        return "250 OK"


def accept_login(server: Any, session: Any, envelope: Any, mechanism: str, auth: Any) -> Any:
    ok = isinstance(auth, LoginPassword) and auth.password.decode() == MAIL_PASSWORD
    return AuthResult(success=ok)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=accept_login,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.received.append(json.loads(self.rfile.read(length) or b"{}"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[list[dict[str, Any]], int]]:
    received: list[dict[str, Any]] = []
    handler = type("Receiving", (Hook,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="alert-hook")
    thread.start()
    try:
        yield received, server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def wait_for(condition: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def dead_port_url() -> str:
    # Nothing listens there: the alert to it fails while the others still go out.
    return f"json://127.0.0.1:{free_port()}/dead"


def test_etl_run_mails_its_failed_file_without_order_data_or_secrets(
    sandbox: SandboxServer,
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    smtp: tuple[Mailbox, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    mailbox, port = smtp
    settings = settings_for(sandbox, tmp_path)
    shutil.copy(SAMPLES / "orders-with-mistakes.csv", settings.inbox / "orders-with-mistakes.csv")
    mail_url = (
        f"mailto://ops:{MAIL_PASSWORD}@127.0.0.1:{port}?from=etl@example.com&to=ops@example.com"
    )
    config = tmp_path / "etl.toml"
    config.write_text(f'[alerts]\nurls = ["{dead_port_url()}", "{mail_url}"]\n')
    config.chmod(0o600)  # it holds the SMTP password
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    caplog.set_level("DEBUG")
    args = ("run", "--config", config, "--inbox", settings.inbox, "--outbox", settings.outbox)
    code, out, err = run_cli(*args, "--settle", "0")
    assert code == 1
    run_id = next((settings.outbox / "failed").iterdir()).name
    wait_for(lambda: len(mailbox.messages) == 1)
    message = readable(mailbox.messages[0])
    assert run_id in message.splitlines()[0]  # the subject
    assert "orders-with-mistakes.csv" in message and run_id in message
    assert str(settings.outbox / "runs" / run_id) in message
    with (SAMPLES / "orders-with-mistakes.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    personal = {row["channel_order_id"] for row in rows} | {
        row["shipping_info.email"] for row in rows if row["shipping_info.email"]
    }
    said = [mailbox.messages[0], message, out, err, ours(caplog)]
    for text in said:
        assert not any(value in text for value in personal)
        assert SECRET not in text and MAIL_PASSWORD not in text
    time.sleep(0.2)
    assert len(mailbox.messages) == 1  # one message per run, listing the files


def test_the_watcher_says_once_that_the_api_is_down_and_once_that_it_is_back(
    sandbox: SandboxServer,
    tmp_path: Path,
    hook: tuple[list[dict[str, Any]], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    received, port = hook
    url = f"json://127.0.0.1:{port}/{HOOK_TOKEN}"
    settings = settings_for(
        sandbox,
        tmp_path,
        alert_urls=(Secret(dead_port_url()), Secret(url)),
        alert_api_down_minutes=0.005,  # 0.3 s: down for a few runs, not for the first one
    )
    caplog.set_level("DEBUG")
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    shutil.copy(SAMPLES / "orders-2026-11-22.csv", settings.inbox / "orders-2026-11-22.csv")
    watcher = Watcher(
        settings,
        lambda: ConnectClient(settings, sleep=lambda s: None),
        rescan_seconds=0.2,
        api_down_pause=0.05,  # doubled after each run the API is down: 0.2 made it 8 s
    )
    thread = threading.Thread(target=watcher.run, name="watcher-under-test")
    thread.start()
    try:
        wait_for(lambda: len(received) == 1)
        assert "unreachable" in received[0]["title"]
        runs_down = watcher.heartbeat.runs
        wait_for(lambda: watcher.heartbeat.runs >= runs_down + 2)
        assert len(received) == 1  # one alert per incident, not one per run
        sandbox.clear_faults()
        wait_for(lambda: len(received) == 2)
        assert "back" in received[1]["title"]
    finally:
        watcher.stop()
        thread.join(timeout=30)
    wait_for(lambda: len(received) == 3)
    assert "stopped" in received[2]["title"]
    assert not thread.is_alive()
    for text in [ours(caplog), *(json.dumps(r) for r in received)]:
        assert HOOK_TOKEN not in text and SECRET not in text


def test_a_dead_target_neither_blocks_nor_breaks_the_sender(
    hook: tuple[list[dict[str, Any]], int],
) -> None:
    received, port = hook
    settings = load_settings(
        None,
        environ={"CONNECT_ALERT_URLS": f"{dead_port_url()}  json://127.0.0.1:{port}/x"},
    )
    assert [masked(url.reveal()) for url in settings.alert_urls] == ["json://…", "json://…"]
    alerts = Alerts.from_settings(replace(settings, alert_api_down_minutes=15.0))
    started = time.monotonic()
    alerts.stopped("test")
    assert time.monotonic() - started < 0.5  # sent from a background thread
    alerts.close()
    assert len(received) == 1


def test_alert_settings_are_checked(tmp_path: Path) -> None:
    config = tmp_path / "etl.toml"
    config.write_text("[alerts]\nurls = []\napi_down_minutes = 2.5\n")
    config.chmod(0o644)
    with pytest.raises(Exception, match=r"holds \[alerts\] urls and others can read it"):
        load_settings(config, environ={})
    config.chmod(0o600)
    assert load_settings(config, environ={}).alert_api_down_minutes == 2.5
    config.write_text("[alerts]\nurl = []\n")
    with pytest.raises(Exception, match="did you mean urls"):
        load_settings(config, environ={})
    config.write_text('[alerts]\nurls = "json://x"\n')
    with pytest.raises(Exception, match="list"):
        load_settings(config, environ={})


class Kept(Sender):
    """A Sender that keeps what it is given (the thresholds below need no network)."""

    def __init__(self) -> None:
        super().__init__([])
        self.kept: list[Alert] = []

    def send(self, alert: Alert) -> None:
        self.kept.append(alert)


def test_refused_credentials_are_said_once_after_the_threshold_then_the_recovery() -> None:
    now = [1000.0]
    sender = Kept()
    alerts = Alerts(sender, api_down_minutes=15, clock=lambda: now[0])
    refused = ApiDown(AuthFailed("401 from https://user:pw@example.com"))
    alerts.api_state(refused, "R1")
    now[0] += 14 * 60
    alerts.api_state(refused, "R2")
    assert sender.kept == []  # a short outage says nothing
    now[0] += 2 * 60
    alerts.api_state(refused, "R3")
    alerts.api_state(refused, "R4")
    assert [a.title for a in sender.kept] == ["etl: the API is refusing the credentials"]
    assert "R3" in sender.kept[0].body and "pw" not in sender.kept[0].body
    alerts.api_state(None, "R5")
    alerts.api_state(None, "R6")
    assert [a.title for a in sender.kept][1:] == ["etl: the API is back"]
