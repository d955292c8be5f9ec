"""The sandbox knows several sellers: each client id with its secret, each held to 30
requests per second in any 1-second window (429 + Retry-After past it), each request logged
with its client and when it came. The clock is a fake one: no test waits for a window."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from etl.sandbox import SandboxServer
from etl.sandbox.server import build_parser

from .conftest import TIMEOUT, Api, FakeClock, make_body, make_order

SELLERS = [("acme-client", "acme-secret"), ("bolt-client", "bolt-secret")]


@pytest.fixture
def sellers(db_path: Path, clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(
        db_path=db_path, clock=clock, extra_clients=SELLERS, rate_limit=30
    ) as server:
        yield server


def token_for(server: SandboxServer, http: requests.Session, client: str, secret: str) -> str:
    response = http.post(
        server.token_url,
        data={"grant_type": "client_credentials", "client_id": client, "client_secret": secret},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def test_every_sellers_credentials_are_accepted_and_no_others(
    sellers: SandboxServer, http: requests.Session
) -> None:
    for client, secret in [("sandbox-client", "sandbox-secret"), *SELLERS]:
        assert token_for(sellers, http, client, secret)
    # One seller's id with another's secret is no one's credential.
    response = http.post(
        sellers.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "acme-client",
            "client_secret": "bolt-secret",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 401


def test_each_request_is_logged_with_its_client(
    sellers: SandboxServer, http: requests.Session
) -> None:
    api = Api(sellers, http, token_for(sellers, http, *SELLERS[0]))
    bolt = token_for(sellers, http, *SELLERS[1])
    assert api.upsert(make_body([make_order(1)])).status_code == 204
    assert api.upsert(make_body([make_order(2)]), token=bolt).status_code == 204
    assert api.upsert(make_body([make_order(3)]), token="forged").status_code == 401
    log = sellers.requests_log(path="/api/channel-platform/v1/orders")
    assert [entry["client_id"] for entry in log] == ["acme-client", "bolt-client", None]
    assert all(entry["time"].endswith("Z") and "." in entry["time"] for entry in log)


def test_a_client_over_30_requests_in_a_second_gets_429_with_retry_after_alone(
    sellers: SandboxServer, http: requests.Session, clock: FakeClock
) -> None:
    api = Api(sellers, http, token_for(sellers, http, *SELLERS[0]))
    bolt = token_for(sellers, http, *SELLERS[1])
    body = make_body([make_order(1)])
    for _ in range(30):
        assert api.upsert(body).status_code == 204
        clock.advance(0.01)  # 30 requests within 0.3 s
    refused = api.upsert(body)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert api.upsert(body, token=bolt).status_code == 204  # another seller's budget
    clock.advance(0.7)  # the first request of the window is now a second old
    assert api.upsert(body).status_code == 204
    assert api.upsert(body).status_code == 429  # the second one is not yet
    clock.advance(0.01)
    assert api.upsert(body).status_code == 204


def test_a_client_at_30_requests_a_second_is_never_refused(
    sellers: SandboxServer, http: requests.Session, clock: FakeClock
) -> None:
    api = Api(sellers, http, token_for(sellers, http, *SELLERS[0]))
    body = make_body([make_order(1)])
    statuses = []
    for _ in range(95):
        statuses.append(api.upsert(body).status_code)
        clock.advance(1 / 30)
    assert set(statuses) == {204}


def test_without_a_rate_limit_nothing_is_refused(
    sandbox: SandboxServer, api: Api, clock: FakeClock
) -> None:
    body = make_body([make_order(1)])
    assert {api.upsert(body).status_code for _ in range(40)} == {204}


def test_the_limit_can_be_changed_at_run_time(api: Api) -> None:
    assert api.admin("POST", "config", {"rate_limit": 2})["rate_limit"] == 2
    body = make_body([make_order(1)])
    assert [api.upsert(body).status_code for _ in range(3)] == [204, 204, 429]
    assert api.admin("POST", "config", {"rate_limit": None})["rate_limit"] is None


def test_a_request_log_written_before_tenants_gains_the_client_column(db_path: Path) -> None:
    with SandboxServer(db_path=db_path):
        pass
    db = sqlite3.connect(db_path)
    db.execute("ALTER TABLE requests DROP COLUMN client_id")
    db.close()
    with SandboxServer(db_path=db_path) as server:
        assert server.requests_log() == []
        columns = {
            row[1] for row in sqlite3.connect(db_path).execute("PRAGMA table_info(requests)")
        }
        assert "client_id" in columns


def test_the_command_line_takes_more_clients_and_the_limit() -> None:
    args = build_parser().parse_args(["--client", "acme:s1", "--client", "bolt:s2"])
    assert args.client == [("acme", "s1"), ("bolt", "s2")]
    assert args.rate_limit == 30
    assert build_parser().parse_args(["--rate-limit", "0"]).rate_limit is None


def test_the_request_log_and_counts_are_kept_per_client(
    sellers: SandboxServer, http: requests.Session
) -> None:
    api = Api(sellers, http, token_for(sellers, http, *SELLERS[0]))
    bolt = token_for(sellers, http, *SELLERS[1])
    for token in (None, None, bolt):
        assert api.upsert(make_body([make_order(1)]), token=token).status_code == 204
    assert api.admin("GET", "counts?client_id=acme-client")["requests"] == 2
    assert sellers.counts(client_id="bolt-client")["requests"] == 1
    logged = api.admin("GET", "requests?client_id=bolt-client")["requests"]
    assert [entry["client_id"] for entry in logged] == ["bolt-client"]
