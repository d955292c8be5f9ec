"""updateAnonymizeAfterDate: 1..100 orders, all or nothing, no past date beyond a tolerance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from etl.sandbox import SandboxServer

from .conftest import CHANNEL, Api, fetch_token

PATH = "/channel-platform/v1/orders/anonymize-after"
LOG_PATH = "/api" + PATH
FUTURE = "2999-10-01T00:00:00Z"


def item(order_id: str = "COMMERCIAL_ID-A", when: str = FUTURE, **extra: Any) -> dict[str, Any]:
    return {"channel_order_id": order_id, "channel_id": CHANNEL, "anonymize_after": when, **extra}


def ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def put(api: Api, orders: Any) -> requests.Response:
    return api.call("PUT", PATH, {"orders": orders})


def stored(api: Api) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api.admin("GET", "anonymizations")["anonymizations"]
    return rows


def fields(response: requests.Response) -> list[str]:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_INPUT"
    return [e["field"] for e in response.json()["errors"]]


def test_valid_request_is_204_and_each_date_is_stored(api: Api) -> None:
    orders = [item("A", sub_channel_code="FR"), item("B", "2999-01-01T10:00:00+02:00")]
    response = put(api, orders)
    assert response.status_code == 204
    assert response.content == b""
    rows = stored(api)
    assert [(r["channel_id"], r["channel_order_id"], r["anonymize_after"]) for r in rows] == [
        (CHANNEL, "A", FUTURE),
        (CHANNEL, "B", "2999-01-01T10:00:00+02:00"),  # as sent
    ]
    assert [r["sub_channel_code"] for r in rows] == ["FR", None]
    assert [r["times_updated"] for r in rows] == [0, 0]
    assert all(r["updated_at"].endswith("Z") for r in rows)
    [entry] = api.requests_log(path=LOG_PATH)
    assert (entry["method"], entry["status"], entry["orders"]) == ("PUT", 204, 2)
    assert entry["body"] == {"orders": orders}


def test_a_new_date_replaces_the_old_one(api: Api) -> None:
    put(api, [item("A")])
    assert put(api, [item("A", "2998-01-01T00:00:00Z")]).status_code == 204
    [row] = stored(api)
    assert (row["anonymize_after"], row["times_updated"]) == ("2998-01-01T00:00:00Z", 1)
    put(api, [item("A", channel_id="CH-2")])  # another channel, another order
    assert len(stored(api)) == 2


def test_any_invalid_order_rejects_the_whole_request(api: Api) -> None:
    orders = [item(f"O-{n}") for n in range(5)]
    del orders[1]["channel_id"]
    orders[2]["anonymize_after"] = "2999-02-30T00:00:00Z"  # no such day
    orders[3]["channel_id"] = 1234  # as in the API document's example, but the schema says string
    orders[4]["anonymize_after"] = "2999-10-01"  # a date, not a date-time
    assert fields(put(api, orders)) == [
        "$.orders[1].channel_id",
        "$.orders[2].anonymize_after",
        "$.orders[3].channel_id",
        "$.orders[4].anonymize_after",
    ]
    assert stored(api) == []  # not even the valid first one


def test_size_limits(api: Api) -> None:
    assert fields(put(api, [])) == ["$.orders"]
    assert fields(put(api, [item(f"O-{n}") for n in range(101)])) == ["$.orders"]
    assert fields(api.call("PUT", PATH, {})) == ["$.orders"]
    assert put(api, [item(f"O-{n}") for n in range(100)]).status_code == 204
    assert len(stored(api)) == 100


def test_a_date_in_the_past_rejects_the_whole_request(api: Api) -> None:
    orders = [item("A"), item("B", ago(3600)), item("C", ago(400)), item("D", ago(60))]
    response = put(api, orders)
    assert fields(response) == ["$.orders[1].anonymize_after", "$.orders[2].anonymize_after"]
    assert "past" in response.json()["errors"][0]["message"]
    assert stored(api) == []


def test_a_few_minutes_in_the_past_are_tolerated(api: Api) -> None:
    assert put(api, [item("A", ago(240))]).status_code == 204  # default tolerance: 300 s
    api.admin("POST", "config", {"anonymize_tolerance": 0})
    assert fields(put(api, [item("B", ago(5))])) == ["$.orders[0].anonymize_after"]


def test_tolerance_from_the_constructor(db_path: Path, http: requests.Session) -> None:
    with SandboxServer(db_path=db_path, anonymize_tolerance=3600) as sandbox:
        api = Api(sandbox, http, fetch_token(sandbox, http))
        assert put(api, [item("A", ago(3000))]).status_code == 204
        assert sandbox.anonymizations()[0]["channel_order_id"] == "A"


def test_omit_field_and_bad_json(api: Api) -> None:
    api.admin("POST", "config", {"omit_field": True})
    errors = put(api, [item("A", ago(3600))]).json()["errors"]
    assert len(errors) == 1
    assert set(errors[0]) == {"message"}
    response = api.call("PUT", PATH, b"{orders")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
