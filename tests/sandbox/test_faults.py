"""Scripted faults: 429 with both Retry-After forms, 5xx, delays, drops; next-N and seeded rates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests

from .conftest import TIMEOUT, Api, make_body, make_order

BODY = make_body([make_order()])


def test_429_with_retry_after_seconds(api: Api) -> None:
    api.faults(faults=[{"status": 429, "retry_after": "2"}], next=1)
    response = api.upsert(BODY)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert response.json()["code"] == "TOO_MANY_REQUESTS"
    assert api.upsert(BODY).status_code == 204


def test_429_with_retry_after_http_date(api: Api) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=5), usegmt=True)
    api.faults(faults=[{"status": 429, "retry_after": when}], next=1)
    response = api.upsert(BODY)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == when


def test_429_without_retry_after(api: Api) -> None:
    api.faults(faults=[{"status": 429}], next=1)
    response = api.upsert(BODY)
    assert response.status_code == 429
    assert "Retry-After" not in response.headers


@pytest.mark.parametrize(
    ("status", "code"), [(500, "INTERNAL_SERVER_ERROR"), (503, "SERVICE_UNAVAILABLE")]
)
def test_server_errors(api: Api, status: int, code: str) -> None:
    api.faults(faults=[{"status": status}], next=1)
    response = api.upsert(BODY)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert api.orders() == []  # a faulted request is not processed
    assert api.upsert(BODY).status_code == 204


def test_delay_then_normal_answer(api: Api) -> None:
    api.faults(faults=[{"delay": 0.3}], next=1)
    started = time.monotonic()
    response = api.upsert(BODY)
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 204
    assert len(api.orders()) == 1


def test_delay_longer_than_the_client_timeout(api: Api) -> None:
    api.faults(faults=[{"delay": 2}], next=1)
    with pytest.raises(requests.Timeout):
        api.upsert(BODY, timeout=0.2)
    # The sandbox still processes it after the delay, as a slow server would.


def test_drop_closes_the_connection_without_answering(api: Api) -> None:
    api.faults(faults=[{"drop": True}], next=1)
    with pytest.raises(requests.ConnectionError):
        api.upsert(BODY)
    assert api.orders() == []
    assert api.upsert(BODY).status_code == 204  # the next connection works
    dropped = api.requests_log()[-2]
    assert dropped["status"] is None
    assert dropped["fault"] == {"drop": True}
    assert dropped["orders"] == 1


def test_next_n_cycles_through_the_list(api: Api) -> None:
    api.faults(faults=[{"status": 429, "retry_after": "1"}, {"status": 503}], next=3)
    statuses = [api.upsert(BODY).status_code for _ in range(5)]
    assert statuses == [429, 503, 429, 204, 204]
    assert api.admin("GET", "faults")["plan"] is None


def test_faults_come_before_auth(api: Api) -> None:
    api.faults(faults=[{"status": 503}], next=1)
    assert api.upsert(BODY, token="bogus").status_code == 503
    assert api.upsert(BODY, token="bogus").status_code == 401


def _statuses_with_rate(api: Api, seed: int, count: int = 30) -> list[int]:
    api.admin("POST", "reset")
    api.faults(faults=[{"status": 429}, {"status": 500}], rate=0.4, seed=seed)
    token = api.http.post(
        api.sandbox.token_url,
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=TIMEOUT,
    ).json()["access_token"]
    return [api.upsert(BODY, token=token).status_code for _ in range(count)]


def test_seeded_rate_is_deterministic(api: Api) -> None:
    first = _statuses_with_rate(api, seed=7)
    assert _statuses_with_rate(api, seed=7) == first
    assert set(first) == {204, 429, 500}
    assert 0.15 < first.count(204) / len(first) < 0.85
    assert _statuses_with_rate(api, seed=8) != first
    log = api.requests_log(path=api.sandbox.orders_url.removeprefix(api.sandbox.url))
    assert [r["status"] for r in log] == _statuses_with_rate(api, seed=8)[: len(log)]


def test_rate_zero_and_one(api: Api) -> None:
    api.faults(faults=[{"status": 500}], rate=0, seed=1)
    assert api.upsert(BODY).status_code == 204
    api.faults(faults=[{"status": 500}], rate=1)
    assert [api.upsert(BODY).status_code for _ in range(3)] == [500] * 3


def test_without_next_or_rate_every_request_faults_until_cleared(api: Api) -> None:
    api.faults(faults=[{"status": 503}])
    assert [api.upsert(BODY).status_code for _ in range(3)] == [503] * 3
    api.admin("DELETE", "faults")
    assert api.upsert(BODY).status_code == 204


def test_token_route_is_spared_unless_the_prefix_says_so(api: Api) -> None:
    api.faults(faults=[{"status": 503}])
    credentials = {"grant_type": "client_credentials"}
    auth = ("sandbox-client", "sandbox-secret")
    url = api.sandbox.token_url
    assert api.http.post(url, data=credentials, auth=auth, timeout=5).status_code == 200
    api.faults(faults=[{"status": 503}], path_prefix="/oauth/token", next=1)
    assert api.http.post(url, data=credentials, auth=auth, timeout=5).status_code == 503
    assert api.upsert(BODY).status_code == 204


def test_path_prefix_limits_api_faults(api: Api) -> None:
    api.faults(faults=[{"status": 500}], path_prefix="/api/channel-platform/v1/other")
    assert api.upsert(BODY).status_code == 204


def test_admin_routes_are_never_faulted(api: Api) -> None:
    api.faults(faults=[{"drop": True}], path_prefix="/")
    assert api.admin("GET", "faults")["plan"]["mode"] == "all"


def test_faults_are_in_the_request_log(api: Api) -> None:
    api.faults(faults=[{"status": 429, "retry_after": "3"}, {"delay": 0.01}], next=2)
    api.upsert(BODY)
    api.upsert(BODY)
    api.upsert(BODY)
    log = api.requests_log()
    assert [(r["status"], r["fault"]) for r in log[-3:]] == [
        (429, {"status": 429, "retry_after": "3"}),
        (204, {"delay": 0.01}),
        (204, None),
    ]
    assert log[-3]["response"]["code"] == "TOO_MANY_REQUESTS"


@pytest.mark.parametrize(
    "plan",
    [
        {},
        {"faults": []},
        {"faults": [{"status": 200}]},
        {"faults": [{"status": 429, "drop": True}]},
        {"faults": [{"retry_after": "2"}]},
        {"faults": [{"delay": -1}]},
        {"faults": [{"explode": True}]},
        {"faults": [{"status": 500}], "next": 0},
        {"faults": [{"status": 500}], "rate": 1.5},
        {"faults": [{"status": 500}], "next": 2, "rate": 0.5},
        {"faults": [{"status": 500}], "path_prefix": "api"},
    ],
)
def test_malformed_plans_are_400(api: Api, plan: dict[str, object]) -> None:
    response = api.http.post(api.sandbox.admin_url + "/faults", json=plan, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
    assert api.admin("GET", "faults")["plan"] is None
