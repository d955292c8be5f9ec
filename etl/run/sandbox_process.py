"""`etl run --sandbox`: the local API double as a child process, started for a run, always stopped.

Its own process, so serving and storing never compete with the client for the GIL, and what it
holds is counted in its SQLite file, never loaded here. Only its command line, its banner, its
admin routes and its demo credentials are used: no code runs on both sides.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol

import requests

from etl.core.errors import SandboxFailed
from etl.operations.actions import named_action_ids
from etl.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from etl.settings.config import Secret, Settings

READY_TIMEOUT = 15.0  # seconds from spawn to the banner; a cold start takes about one
STOP_TIMEOUT = 10.0  # seconds after SIGTERM before SIGKILL; it stops within one poll (0.5 s)
ADMIN_TIMEOUT = 60.0  # seconds for one admin call: counting a few million rows is well under
KEPT_LINES = 20  # of the child's output, quoted when it fails

# The sandbox's banner (etl/sandbox/server.py `main`), printed once it listens.
BANNER = re.compile(r"^Mirakl Connect sandbox on (?P<url>\S+)$")
ADDRESS = re.compile(r"^\s*(?P<name>CONNECT_API_URL|CONNECT_TOKEN_URL)=(?P<url>\S+)$")


@dataclass(frozen=True)
class SandboxCounts:
    """What ``GET /_sandbox/counts`` answers: counted in SQL, no body read."""

    requests: int  # API requests logged after the ``since`` asked for
    orders: int  # orders stored, over the database's lifetime
    last_seq: int  # the newest request's seq: pass it as ``since`` to count what comes next


class _Output:
    """The child's stdout and stderr, drained on a thread so it never blocks on a full pipe;
    keeps the banner's addresses and the last lines."""

    def __init__(self, stream: IO[str]) -> None:
        self.addresses: dict[str, str] = {}
        self._last: deque[str] = deque(maxlen=KEPT_LINES)
        self._ended = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._drain, args=(stream,), name="sandbox-output", daemon=True
        )
        self._thread.start()

    def _drain(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                with self._changed:
                    self._last.append(line.rstrip())
                    if len(self.addresses) < 3:
                        self._parse(line.rstrip())
                    self._changed.notify_all()
        finally:
            with self._changed:
                self._ended = True
                self._changed.notify_all()

    def _parse(self, line: str) -> None:
        banner, address = BANNER.match(line), ADDRESS.match(line)
        if banner is not None and not self.addresses:
            self.addresses["url"] = banner["url"]
        elif address is not None and self.addresses:
            self.addresses[address["name"]] = address["url"]

    def wait_for_banner(self, deadline: float) -> bool:
        """True once the banner's three addresses are in; False at EOF or at the deadline."""
        with self._changed:
            while len(self.addresses) < 3 and not self._ended:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            return len(self.addresses) == 3

    @property
    def ended(self) -> bool:
        """The child closed its output (it exited)."""
        with self._changed:
            return self._ended

    def last_lines(self) -> str:
        """The child's last lines, indented, for an error message."""
        with self._changed:
            lines = list(self._last)
        if not lines:
            return "it printed nothing"
        return "its last lines:\n" + "\n".join(f"  | {line}" for line in lines)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


class SandboxProcess:
    """A running ``python -m etl.sandbox``: where to send, the demo credentials, its admin routes.

    The credentials are the sandbox's built-in development ones (not a real secret, still never
    printed: ``client_secret`` is a ``Secret``).
    """

    client_id = DEFAULT_CLIENT_ID

    def __init__(self, process: subprocess.Popen[str], output: _Output) -> None:
        self._process = process
        self._output = output
        self.url = output.addresses["url"]
        self.api_url = output.addresses["CONNECT_API_URL"]
        self.token_url = output.addresses["CONNECT_TOKEN_URL"]
        self._http = requests.Session()
        self._http.trust_env = False  # a proxy from the environment must not see loopback calls

    def __repr__(self) -> str:
        return f"SandboxProcess(url={self.url!r}, pid={self.pid})"

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def client_secret(self) -> Secret:
        return Secret(DEFAULT_CLIENT_SECRET)

    def counts(self, path: str | None = None, since: int = 0) -> SandboxCounts:
        """Requests received after seq ``since`` (on ``path``), orders stored, the last seq."""
        params: dict[str, str | int] = {"since": since}
        if path is not None:
            params["path"] = path
        answer = self._admin("GET", "counts", params=params)
        return SandboxCounts(answer["requests"], answer["orders"], answer["last_seq"])

    def create_actions(
        self, count: int | None = None, action_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """New PENDING command actions, as Connect's order action events would hand out."""
        body: dict[str, Any] = {}
        if count is not None:
            body["count"] = count
        if action_ids is not None:
            body["action_ids"] = list(action_ids)
        created: list[dict[str, Any]] = self._admin("POST", "actions", json=body)["actions"]
        return created

    def actions(self) -> list[dict[str, Any]]:
        """Every action the sandbox knows, command and reported, oldest first."""
        listed: list[dict[str, Any]] = self._admin("GET", "actions")["actions"]
        return listed

    def _admin(self, method: str, route: str, **kwargs: Any) -> dict[str, Any]:
        where = f"{method} /_sandbox/{route}"
        try:
            response = self._http.request(
                method, f"{self.url}/_sandbox/{route}", timeout=ADMIN_TIMEOUT, **kwargs
            )
        except requests.RequestException as error:
            raise SandboxFailed(self._failure(f"did not answer {where} ({error})")) from error
        if response.status_code != 200:
            detail = response.text[:300]
            raise SandboxFailed(f"the sandbox answered {response.status_code} to {where}: {detail}")
        answer: dict[str, Any] = response.json()
        return answer

    def _failure(self, what: str) -> str:
        code = self._process.poll()
        state = "is still running" if code is None else f"exited with code {code}"
        return f"the sandbox (process {self.pid}) {what}; it {state}; {self._output.last_lines()}"

    def _close(self) -> None:
        self._http.close()


def sandbox_command(db_path: Path, options: Sequence[str] = ()) -> list[str]:
    """``python -m etl.sandbox`` on a free loopback port, storing in ``db_path``, stopping when
    its stdin closes (our end of the pipe closes when this process ends, even by SIGKILL);
    ``options``: more of its command line (the bench turns its rate limit off)."""
    return [
        *(sys.executable, "-m", "etl.sandbox"),
        *("--host", "127.0.0.1", "--port", "0", "--db", str(db_path), "--stop-on-stdin-close"),
        *options,
    ]


def _child_env() -> dict[str, str]:
    # The child must import this very `etl`, also when it runs from a checkout that is not the
    # installed one (a worktree, the tests); unbuffered, so its lines arrive as it prints them.
    root = str(Path(__file__).resolve().parents[2])  # the folder holding etl/
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "PYTHONUNBUFFERED": "1"}


@contextmanager
def started_sandbox(
    db_path: Path, *, options: Sequence[str] = (), ready_timeout: float = READY_TIMEOUT
) -> Iterator[SandboxProcess]:
    """Run the sandbox as a child process for the ``with`` block, then stop it, whatever happens.

    Raises ``SandboxFailed`` (with the child's last lines) if it exits or does not print its
    banner within ``ready_timeout`` seconds. Its output is kept, never shown otherwise.
    """
    deadline = time.monotonic() + ready_timeout
    process = subprocess.Popen(
        sandbox_command(db_path, options),
        stdin=subprocess.PIPE,  # never written: its end of file tells the child to stop
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_child_env(),
        text=True,
        encoding="utf-8",
        errors="replace",
    )
    stream = process.stdout
    assert stream is not None
    output = _Output(stream)
    sandbox: SandboxProcess | None = None
    try:
        if not output.wait_for_banner(deadline):
            raise SandboxFailed(_not_ready(process, output, ready_timeout))
        sandbox = SandboxProcess(process, output)
        yield sandbox
    finally:
        if sandbox is not None:
            sandbox._close()
        _stop(process)
        output.join(timeout=STOP_TIMEOUT)
        stream.close()


def _not_ready(process: subprocess.Popen[str], output: _Output, timeout: float) -> str:
    if output.ended:  # its output closed: it is exiting, and its code follows at once
        try:
            code = process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        else:
            return f"the sandbox exited (code {code}) before it was ready; {output.last_lines()}"
    return f"the sandbox was not ready within {timeout:g} s; {output.last_lines()}"


def _stop(process: subprocess.Popen[str]) -> None:
    """Close its stdin and SIGTERM it (either way the sandbox closes its store cleanly), then
    SIGKILL if it lingers."""
    if process.stdin is not None:
        process.stdin.close()
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def sandbox_db(settings: Settings) -> Path:
    """Where `--sandbox` keeps what the local double received: beside the outbox's runs."""
    return settings.outbox / ".sandbox" / "sandbox.sqlite3"


def sandbox_settings(settings: Settings, sandbox: SandboxProcess, db_path: Path) -> Settings:
    """``settings`` pointed at a started sandbox, with its demo credentials."""
    return replace(
        settings,
        api_url=sandbox.api_url,
        token_url=sandbox.token_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        token=Secret(""),
        # The sandbox is a target of its own, with a history of its own: what the demo
        # delivered says nothing about the real API (DESIGN.md section 9).
        target_name=f"sandbox {db_path}",
        state=settings.state or db_path.parent / "ledger.sqlite3",
    )


class ActionDouble(Protocol):
    """What seeding needs of a sandbox: the started process's admin routes, or the in-process
    server of the tests."""

    def actions(self) -> list[dict[str, Any]]: ...

    def create_actions(
        self, count: int | None = None, action_ids: Sequence[str] | None = None
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Seeded:
    created: int  # pending actions created
    skipped: tuple[tuple[str, str], ...]  # (file name, why) of files not read


def seed_pending_actions(sandbox: ActionDouble, inbox: Path) -> Seeded:
    """The demo's stand-in for Connect's command events: the actions the inbox's action-status
    files report on are created, PENDING, in the sandbox."""
    named = named_action_ids(inbox)
    known = {action["id"] for action in sandbox.actions()}
    missing = sorted(named.ids - known)
    if missing:
        sandbox.create_actions(action_ids=missing)
    return Seeded(len(missing), named.skipped)
