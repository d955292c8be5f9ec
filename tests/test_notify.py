"""sd_notify: a real unix datagram socket stands in for systemd."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.deliver.client import ConnectClient
from etl.monitor.notify import Notifier
from etl.run.watch import Watcher
from etl.sandbox import SandboxServer

from .conftest import connect_env, settings_for


@pytest.fixture
def systemd() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket; its path is short (sun_path holds 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="etl-notify-")
    path = str(Path(folder) / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(0.1)
    try:
        yield listener, path
    finally:
        listener.close()
        Path(path).unlink(missing_ok=True)
        Path(folder).rmdir()


def received(listener: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(listener.recv(4096).decode())
        except TimeoutError:
            return messages


def test_the_watcher_says_ready_watchdog_and_stopping(
    sandbox: SandboxServer, tmp_path: Path, systemd: tuple[socket.socket, str]
) -> None:
    listener, path = systemd
    settings = settings_for(sandbox, tmp_path)
    watcher = Watcher(
        settings,
        lambda: ConnectClient(settings),
        notifier=Notifier(path, watchdog_seconds=0.2),
    )
    thread = threading.Thread(target=watcher.run)
    thread.start()
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and messages.count("WATCHDOG=1") < 2:
            messages += received(listener)
    finally:
        watcher.stop()
        thread.join(timeout=30)
    messages += received(listener)
    assert messages[0] == "READY=1"
    assert messages.count("READY=1") == 1
    assert messages.count("WATCHDOG=1") >= 2
    assert messages[-1].startswith("STOPPING=1")


def test_watchdog_pings_are_spaced(systemd: tuple[socket.socket, str]) -> None:
    listener, path = systemd
    now = [100.0]
    notifier = Notifier(path, watchdog_seconds=5.0, clock=lambda: now[0])
    for _ in range(10):
        notifier.watchdog()
    now[0] += 5.0
    notifier.watchdog()
    assert received(listener) == ["WATCHDOG=1", "WATCHDOG=1"]


def test_from_environ_reads_notify_socket(systemd: tuple[socket.socket, str]) -> None:
    listener, path = systemd
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier is not None
    notifier.ready()
    assert received(listener) == ["READY=1"]
    assert Notifier.from_environ({}) is None


def test_an_abstract_socket_name_is_supported() -> None:
    name = f"@etl-test-{time.monotonic_ns()}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name[1:])
    listener.settimeout(0.1)
    try:
        Notifier(name).ready()
        assert received(listener) == ["READY=1"]
    finally:
        listener.close()


def test_a_socket_that_is_gone_never_fails_the_caller(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    notifier.ready()
    notifier.watchdog()
    notifier.stopping()


def test_etl_watch_under_a_notify_socket_says_ready_then_stopping_on_sigterm(
    sandbox: SandboxServer, tmp_path: Path, systemd: tuple[socket.socket, str]
) -> None:
    """The wiring `etl watch` has under systemd: $NOTIFY_SOCKET alone turns it on."""
    listener, path = systemd
    (tmp_path / "inbox").mkdir()
    env = {**connect_env(sandbox, process=True), "NOTIFY_SOCKET": path}
    command = [sys.executable, "-m", "etl", "watch", "--inbox", str(tmp_path / "inbox")]
    process = subprocess.Popen(
        [*command, "--outbox", str(tmp_path / "outbox"), "--settle", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    messages: list[str] = []
    try:
        deadline = time.monotonic() + 30
        while "WATCHDOG=1" not in messages and time.monotonic() < deadline:
            messages += received(listener)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    messages += received(listener)
    assert messages[:2] == ["READY=1", "WATCHDOG=1"]
    assert messages[-1] == "STOPPING=1"
