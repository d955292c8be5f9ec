"""The admin routes: the request log, stored orders, reset, config; and the SQLite file itself."""

from __future__ import annotations

import sqlite3

from etl.sandbox import SandboxApp
from etl.sandbox.wire import Request

from .conftest import TIMEOUT, Api, fetch_token, make_body, make_order

ORDERS_PATH = "/api/channel-platform/v1/orders"


def test_request_log_has_every_api_request(api: Api) -> None:
    body = make_body([make_order(1), make_order(2)])
    api.upsert(body)
    api.upsert(b"nope")
    log = api.requests_log()
    assert [r["path"] for r in log] == ["/oauth/token", ORDERS_PATH, ORDERS_PATH]
    assert [r["seq"] for r in log] == [1, 2, 3]
    accepted, rejected = log[1], log[2]
    assert accepted["method"] == "POST"
    assert accepted["status"] == 204
    assert accepted["fault"] is None
    assert accepted["orders"] == 2
    assert accepted["orders_ignored"] == 0
    assert accepted["body"] == body  # parsed, not a string
    assert accepted["response"] is None
    assert accepted["time"].endswith("Z")
    assert rejected["status"] == 400
    assert rejected["body"] == "nope"
    assert rejected["response"]["code"] == "INVALID_INPUT"
    assert rejected["orders"] is None


def test_request_log_filters(api: Api) -> None:
    api.upsert(make_body([make_order()]))
    assert [r["path"] for r in api.requests_log(path=ORDERS_PATH)] == [ORDERS_PATH]
    assert [r["seq"] for r in api.admin("GET", "requests?since=1")["requests"]] == [2]
    response = api.http.get(api.sandbox.admin_url + "/requests?since=x", timeout=TIMEOUT)
    assert response.status_code == 400


def test_counts_are_the_lengths_of_the_request_log_and_the_orders(api: Api) -> None:
    assert api.sandbox.counts() == {"requests": 1, "orders": 0, "last_seq": 1}  # the token
    api.upsert(make_body([make_order(1), make_order(2)]))
    api.upsert(b"nope")
    api.upsert(make_body([make_order(2), make_order(3)]))
    sandbox = api.sandbox
    for path, since in [(None, 0), (None, 2), (ORDERS_PATH, 0), (ORDERS_PATH, 3), (None, 9)]:
        expected = len(sandbox.requests_log(path=path, since=since))
        assert sandbox.counts(path=path, since=since)["requests"] == expected
    assert sandbox.counts()["orders"] == len(sandbox.stored_orders()) == 3
    assert sandbox.counts(since=9)["last_seq"] == sandbox.requests_log()[-1]["seq"] == 4


def test_counts_route(api: Api) -> None:
    api.upsert(make_body([make_order(1)]))
    assert api.admin("GET", "counts") == {"requests": 2, "orders": 1, "last_seq": 2}
    assert api.admin("GET", f"counts?since=1&path={ORDERS_PATH}") == api.sandbox.counts(
        path=ORDERS_PATH, since=1
    )
    assert api.admin("GET", "counts?path=/oauth/token")["requests"] == 1
    response = api.http.get(api.sandbox.admin_url + "/counts?since=-1", timeout=TIMEOUT)
    assert response.status_code == 400
    assert api.admin("GET", "counts")["requests"] == 2  # admin calls are not counted


def test_admin_routes_are_not_logged_and_need_no_token(api: Api) -> None:
    api.admin("GET", "orders")
    api.admin("GET", "config")
    assert [r["path"] for r in api.requests_log()] == ["/oauth/token"]


def test_orders_route(api: Api) -> None:
    orders = [make_order(1), make_order(2)]
    api.upsert(make_body(orders, channel="C", store="S"))
    stored = api.orders()
    assert [(o["channel_id"], o["channel_store_id"], o["channel_order_id"]) for o in stored] == [
        ("C", "S", "ORDER-1"),
        ("C", "S", "ORDER-2"),
    ]
    assert [o["body"] for o in stored] == orders
    assert all(o["updated_at"].endswith("Z") for o in stored)


def test_reset_forgets_orders_requests_tokens_and_faults(api: Api) -> None:
    api.upsert(make_body([make_order()]))
    api.faults(faults=[{"status": 503}])
    api.admin("POST", "reset")
    assert api.orders() == []
    assert api.requests_log() == []
    assert api.admin("GET", "faults")["plan"] is None
    assert api.upsert(make_body([make_order()])).status_code == 401  # token forgotten
    token = fetch_token(api.sandbox, api.http)
    assert api.upsert(make_body([make_order()]), token=token).status_code == 204
    assert [r["seq"] for r in api.requests_log()] == [1, 2, 3]


def test_config_route_never_shows_the_secret(api: Api) -> None:
    config = api.admin("GET", "config")
    assert config == {
        "client_id": "sandbox-client",
        "client_ids": ["sandbox-client"],
        "rate_limit": None,
        "static_token": False,
        "token_ttl": 3600.0,
        "known_stores": None,
        "omit_field": False,
        "action_delay": 2.0,
        "report_interval": 60.0,
        "status_interval": 60.0,
        "fail_entity_prefix": "UNKNOWN",
        "anonymize_tolerance": 300.0,
    }
    assert api.admin("POST", "config", {"token_ttl": 10})["token_ttl"] == 10.0
    token = api.http.post(
        api.sandbox.token_url,
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=TIMEOUT,
    )
    assert token.json()["expires_in"] == 10


def test_bad_config_is_400(api: Api) -> None:
    changes: list[object] = [{"client_secret": "x"}, {"omit_field": "yes"}, {"token_ttl": 0}, []]
    for change in changes:
        response = api.http.post(api.sandbox.admin_url + "/config", json=change, timeout=5)
        assert response.status_code == 400, change
        assert response.json()["code"] == "INVALID_INPUT"


def test_unknown_admin_route_and_method(api: Api) -> None:
    assert api.http.get(api.sandbox.admin_url + "/nothing", timeout=TIMEOUT).status_code == 404
    response = api.http.get(api.sandbox.admin_url + "/reset", timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_admin_answers_loopback_only(api: Api) -> None:
    app: SandboxApp = api.sandbox.app
    remote = Request("GET", "/_sandbox/orders", {}, {}, b"", client_host="192.0.2.10")
    response = app.handle(remote)
    assert response is not None
    assert response.status == 403


def test_the_sqlite_file_is_inspectable(api: Api) -> None:
    api.upsert(make_body([make_order(1), make_order(2)]))
    with sqlite3.connect(api.sandbox.db_path) as db:
        assert db.execute("SELECT count(*) FROM orders").fetchone() == (2,)
        rows = db.execute("SELECT path, status, orders FROM requests ORDER BY seq").fetchall()
    assert rows == [("/oauth/token", 200, None), (ORDERS_PATH, 204, 2)]


def test_python_api_matches_the_admin_routes(api: Api) -> None:
    api.upsert(make_body([make_order()]))
    assert api.sandbox.stored_orders() == api.orders()
    assert api.sandbox.requests_log() == api.requests_log()
    api.sandbox.set_faults({"faults": [{"status": 500}], "next": 1})
    assert api.upsert(make_body([make_order()])).status_code == 500
    api.sandbox.revoke_tokens()
    assert api.upsert(make_body([make_order()])).status_code == 401
    api.sandbox.reset()
    assert api.sandbox.requests_log() == []
