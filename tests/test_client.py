"""The HTTP seam against the sandbox over loopback: auth, retries, pacing, error mapping."""

from __future__ import annotations

import email.utils
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import monotonic, sleep

import pytest

from etl.core.errors import ApiError, AuthFailed, NotFound, RejectedRequest, RetriableApiError
from etl.deliver.client import ConnectClient, Verdict, classify, parse_retry_after
from etl.sandbox import SandboxServer
from etl.settings.config import Secret

from .conftest import FakeTime, settings_for

ORDERS_PATH = "/api/channel-platform/v1/orders"
TOKEN_PATH = "/oauth/token"


def order(number: int = 1, status: str = "SHIPPED") -> dict[str, object]:
    return {
        "channel_order_id": f"O-{number}",
        "channel_updated_at": "2026-11-01T10:00:00Z",
        "created_at": "2026-11-01T09:00:00Z",
        "fulfillment": {"type": "FULFILLED_BY_SELLER"},
        "shipping_info": {},
        "status": "SHIPPED",
        "order_lines": [
            {
                "channel_order_line_id": f"O-{number}-1",
                "created_at": "2026-11-01T09:00:00Z",
                "updated_at": "2026-11-01T09:00:00Z",
                "status": status,
                "quantity": 1,
                "can_cancel": True,
                "can_refund": True,
                "product": {"id": "P", "title": "Mug"},
                "price": {"amount": 19.99, "currency": "EUR"},
                "total_shipping_price": {"amount": 0, "currency": "EUR"},
            }
        ],
    }


def body(*orders: dict[str, object]) -> dict[str, object]:
    return {"origin": {"channel_id": "CH", "channel_store_id": "S"}, "orders": list(orders)}


def client_for(
    sandbox: SandboxServer, tmp_path: Path, time: FakeTime, **changes: object
) -> ConnectClient:
    settings = settings_for(sandbox, tmp_path, **changes)
    return ConnectClient(
        settings,
        clock=time.clock,
        sleep=time.sleep,
        rng=random.Random(1),
        wall_clock=lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
    )


def sent(sandbox: SandboxServer, path: str = ORDERS_PATH, at_least: int = 0) -> int:
    """Requests the sandbox logged; a delayed one is logged when it is answered, so wait a bit."""
    deadline = monotonic() + 5
    while len(sandbox.requests_log(path=path)) < at_least and monotonic() < deadline:
        sleep(0.05)
    return len(sandbox.requests_log(path=path))


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.OK),
        (204, Verdict.OK),
        (400, Verdict.REJECTED),
        (401, Verdict.REFRESH_TOKEN),
        (403, Verdict.AUTH_FAILED),
        (404, Verdict.NOT_FOUND),
        (409, Verdict.REJECTED),
        (418, Verdict.FATAL),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
    ],
)
def test_classify(status: int, verdict: Verdict) -> None:
    assert classify(status) is verdict


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    date = email.utils.format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now) == 30.0
    assert parse_retry_after("garbage", now) is None
    assert parse_retry_after(None, now) is None


def test_token_is_fetched_once_and_reused(sandbox: SandboxServer, tmp_path: Path) -> None:
    time = FakeTime()
    with client_for(sandbox, tmp_path, time) as client:
        client.upsert_orders(body(order(1)))
        client.upsert_orders(body(order(2)))
    assert sent(sandbox, TOKEN_PATH) == 1
    assert sent(sandbox) == 2
    assert {o["channel_order_id"] for o in sandbox.stored_orders()} == {"O-1", "O-2"}


def test_token_is_fetched_again_shortly_before_it_expires(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.configure(token_ttl=600)
    time = FakeTime()
    with client_for(sandbox, tmp_path, time) as client:
        client.upsert_orders(body(order(1)))
        time.now += 600 - 59  # inside the safety margin
        client.upsert_orders(body(order(2)))
    assert sent(sandbox, TOKEN_PATH) == 2


def test_a_401_fetches_a_new_token_once_and_retries(sandbox: SandboxServer, tmp_path: Path) -> None:
    time = FakeTime()
    with client_for(sandbox, tmp_path, time) as client:
        client.upsert_orders(body(order(1)))
        sandbox.revoke_tokens()
        client.upsert_orders(body(order(2)))
        assert client.stats.token_fetches == 2
    statuses = [r["status"] for r in sandbox.requests_log(path=ORDERS_PATH)]
    assert statuses == [204, 401, 204]


def test_refused_credentials_are_auth_failed_without_retries(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    time = FakeTime()
    with (
        client_for(sandbox, tmp_path, time, client_secret=Secret("wrong")) as client,
        pytest.raises(AuthFailed, match="refused the client credentials") as raised,
    ):
        client.upsert_orders(body(order(1)))
    assert "wrong" not in str(raised.value)
    assert sent(sandbox, TOKEN_PATH) == 1 and sent(sandbox) == 0


def test_a_static_token_is_used_as_is(tmp_path: Path) -> None:
    with SandboxServer(db_path=tmp_path / "s.sqlite3", static_token="static-abc") as server:
        time = FakeTime()
        with client_for(server, tmp_path, time, token=Secret("static-abc"), client_id="") as client:
            client.upsert_orders(body(order(1)))
        with (
            client_for(server, tmp_path, time, token=Secret("bad"), client_id="") as client,
            pytest.raises(AuthFailed),
        ):
            client.upsert_orders(body(order(1)))
        assert sent(server, TOKEN_PATH) == 0
        assert [r["status"] for r in server.requests_log(path=ORDERS_PATH)] == [204, 401]


@pytest.mark.parametrize("retry_after", ["7", "http-date"])
def test_429_waits_at_least_retry_after(
    sandbox: SandboxServer, tmp_path: Path, retry_after: str
) -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    if retry_after == "http-date":
        retry_after = email.utils.format_datetime(now + timedelta(seconds=7), usegmt=True)
    sandbox.set_faults({"faults": [{"status": 429, "retry_after": retry_after}], "next": 2})
    time = FakeTime()
    with client_for(sandbox, tmp_path, time) as client:
        client.upsert_orders(body(order(1)))
        assert client.stats.retries == 2
    assert [r["status"] for r in sandbox.requests_log(path=ORDERS_PATH)] == [429, 429, 204]
    assert len(time.sleeps) == 2 and all(wait >= 7 for wait in time.sleeps)


@pytest.mark.parametrize(
    "fault",
    [{"status": 500}, {"status": 503}, {"status": 429}, {"drop": True}, {"delay": 1.0}],
    ids=["500", "503", "429-no-retry-after", "dropped", "timeout"],
)
def test_transient_faults_are_retried_with_backoff(
    sandbox: SandboxServer, tmp_path: Path, fault: dict[str, object]
) -> None:
    sandbox.set_faults({"faults": [fault], "next": 2})
    time = FakeTime()
    with client_for(sandbox, tmp_path, time, timeout=0.3) as client:
        client.upsert_orders(body(order(1)))
        assert client.stats.retries == 2
    assert sent(sandbox, at_least=3) == 3
    assert [o["channel_order_id"] for o in sandbox.stored_orders()] == ["O-1"]
    assert time.sleeps[0] <= 1.0 < time.sleeps[1] * 2 + 1  # exponential, jittered, capped


def test_giving_up_after_max_attempts(sandbox: SandboxServer, tmp_path: Path) -> None:
    sandbox.set_faults({"faults": [{"status": 503}]})
    time = FakeTime()
    with (
        client_for(sandbox, tmp_path, time, max_attempts=3) as client,
        pytest.raises(RetriableApiError, match="gave up after 3 attempts"),
    ):
        client.upsert_orders(body(order(1)))
    assert sent(sandbox) == 3


def test_400_and_404_are_not_retried(sandbox: SandboxServer, tmp_path: Path) -> None:
    time = FakeTime()
    with client_for(sandbox, tmp_path, time) as client:
        with pytest.raises(RejectedRequest) as rejected:
            client.upsert_orders(body(order(1, status="SHIPPING")))
        assert rejected.value.status == 400
        assert rejected.value.body["errors"][0]["field"] == "$.orders[0].order_lines[0].status"
        sandbox.configure(known_stores=[{"channel_id": "OTHER", "channel_store_id": "X"}])
        with pytest.raises(NotFound) as missing:
            client.upsert_orders(body(order(2)))
        assert missing.value.code == "DATA_NOT_FOUND"
    assert sent(sandbox) == 2 and time.sleeps == []


def test_other_statuses_are_api_errors_not_retried(sandbox: SandboxServer, tmp_path: Path) -> None:
    sandbox.set_faults({"faults": [{"status": 418}], "next": 1})
    time = FakeTime()
    with client_for(sandbox, tmp_path, time) as client, pytest.raises(ApiError, match="418"):
        client.upsert_orders(body(order(1)))
    assert sent(sandbox) == 1


def test_pacing_spaces_request_starts(sandbox: SandboxServer, tmp_path: Path) -> None:
    time = FakeTime()
    with client_for(sandbox, tmp_path, time, requests_per_second=20.0) as client:
        for number in range(5):
            client.upsert_orders(body(order(number)))
    assert time.sleeps == pytest.approx([0.05] * 4)
