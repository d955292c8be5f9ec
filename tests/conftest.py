"""Shared fixtures: real files in temporary folders, the shipped samples, a CLI runner."""

from __future__ import annotations

import csv
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.cli.main import main
from etl.sandbox import SandboxServer
from etl.settings.config import Secret, Settings

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"


def write_rows(path: Path, rows: list[dict[str, str]], delimiter: str = ",") -> Path:
    """A CSV with the union of the rows' keys as header (first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def base_line(order_id: str = "0001", line_id: str = "L1", **extra: str) -> dict[str, str]:
    """One valid row of an orders export; keyword arguments override columns (use __ for .)."""
    row = {
        "origin.channel_id": "CH",
        "origin.channel_store_id": "S1",
        "channel_order_id": order_id,
        "created_at": "2026-11-01T10:00:00+01:00",
        "channel_updated_at": "2026-11-02T10:00:00Z",
        "status": "SHIPPED",
        "fulfillment.type": "FULFILLED_BY_SELLER",
        "order_lines.channel_order_line_id": line_id,
        "order_lines.created_at": "2026-11-01T09:00:00Z",
        "order_lines.updated_at": "2026-11-02T09:00:00Z",
        "order_lines.status": "SHIPPED",
        "order_lines.quantity": "2",
        "order_lines.can_cancel": "false",
        "order_lines.can_refund": "true",
        "order_lines.product.id": "00123",
        "order_lines.product.title": "Mug",
        "order_lines.price.amount": "19.99",
        "order_lines.price.currency": "EUR",
        "order_lines.total_shipping_price.amount": "0",
        "order_lines.total_shipping_price.currency": "EUR",
    }
    row.update({key.replace("__", "."): value for key, value in extra.items()})
    return row


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run `etl ...` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


SECRET = "s3cr3t-client-secret-do-not-print"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxServer]:
    """The API double on an ephemeral loopback port, with a secret tests can look for."""
    with SandboxServer(db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET) as server:
        yield server


def settings_for(server: SandboxServer, tmp_path: Path, **changes: Any) -> Settings:
    """Settings pointing at the sandbox, with folders in tmp_path and no settle wait."""
    values: dict[str, Any] = {
        "inbox": tmp_path / "inbox",
        "outbox": tmp_path / "outbox",
        "api_url": server.api_url,
        "token_url": server.token_url,
        "client_id": "sandbox-client",
        "client_secret": Secret(SECRET),
        "settle_seconds": 0.0,
        "timeout": 5.0,
        "max_attempts": 4,
        "requests_per_second": 0.0,
    }
    values.update(changes)
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return Settings(**values)


def connect_env(
    server: SandboxServer, secret: str = SECRET, process: bool = False
) -> dict[str, str]:
    """CONNECT_* variables pointing at the sandbox; with ``process``, the whole environment a
    subprocess `python -m etl.cli.main` needs (this checkout on its path)."""
    env = {
        "CONNECT_API_URL": server.api_url,
        "CONNECT_TOKEN_URL": server.token_url,
        "CONNECT_CLIENT_ID": "sandbox-client",
        "CONNECT_CLIENT_SECRET": secret,
    }
    return {**os.environ, "PYTHONPATH": str(REPO), **env} if process else env


def etl_run_command(settings: Settings) -> list[str]:
    """`etl run` on the settings' folders, as a subprocess argv (no settle wait)."""
    return [
        sys.executable,
        "-m",
        "etl",
        "run",
        "--inbox",
        str(settings.inbox),
        "--outbox",
        str(settings.outbox),
        "--settle",
        "0",
    ]


def reported_actions(rows: int) -> list[dict[str, str]]:
    """Rows of an order-actions file (v2-reportOrderActions), one order each."""
    return [
        {
            "entity_id": f"O{n}",
            "entity_type": "ORDER",
            "type": "SYNCHRONIZE_ORDER",
            "status": "SUCCESS",
            "executed_at": "2026-11-22T09:00:00Z",
        }
        for n in range(rows)
    ]


def age_pacing(settings: Settings, seconds: float, polls: bool = False) -> None:
    """As if ``seconds`` had passed since the last flush of the order action log (and, with
    ``polls``, since the tracked actions' last polls): the ledger holds wall-clock times, so the
    test moves them back instead of waiting."""
    db = sqlite3.connect(settings.ledger_path)
    with db:
        db.execute("UPDATE pacing SET last_sent_at = last_sent_at - ?", (seconds,))
        if polls:
            db.execute("UPDATE tracked_actions SET next_poll_at = next_poll_at - ?", (seconds,))
    db.close()


class FakeTime:
    """An injected clock: sleeping advances it instantly and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def no_real_docker_secrets(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings never read the machine's /run/secrets in a test (etl/settings/secret_files.py)."""
    from etl.settings import secret_files

    monkeypatch.setattr(secret_files, "DOCKER_SECRETS", tmp_path_factory.mktemp("no-secrets"))


POSTGRES_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_base_url() -> str:
    """The server the PostgreSQL tests use (``ETL_TEST_POSTGRES``); skips the test when none
    answers, except under ``CI=true``, where a missing server must fail the build."""
    url = os.environ.get("ETL_TEST_POSTGRES", POSTGRES_DEFAULT)
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as error:  # no driver, no server, refused: the test cannot run here
        from etl.state.sql import redacted_url, scrubbed

        why = f"no PostgreSQL at {redacted_url(url)} ({scrubbed(str(error).strip(), url)})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why}; under CI=true the PostgreSQL tests must run", pytrace=False)
        pytest.skip(f"{why}; set ETL_TEST_POSTGRES to a server to run this test")
    return url


def in_schema(url: str, schema: str) -> str:
    """The URL with every connection made through it working in ``schema``."""
    option = f"options=-csearch_path%3D{schema}"
    return url + ("&" if "?" in url else "?") + option


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A URL to a schema of this test's own on the test server, dropped afterwards."""
    import uuid

    import psycopg

    base = postgres_base_url()
    schema = f"etl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield in_schema(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
