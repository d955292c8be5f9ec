"""upsertOrders: 204, all-or-nothing 400 with JSONPath fields, limits, stores, the update guard."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import requests

from etl.sandbox import SandboxServer

from .conftest import CHANNEL, STORE, Api, fetch_token, make_body, make_order


def test_valid_request_is_204_and_the_order_is_stored(api: Api) -> None:
    order = make_order(1, lines=2)
    response = api.upsert(make_body([order]))
    assert response.status_code == 204
    assert response.content == b""
    [stored] = api.orders()
    assert stored["channel_id"] == CHANNEL
    assert stored["channel_store_id"] == STORE
    assert stored["channel_order_id"] == "ORDER-1"
    assert stored["channel_updated_at"] == order["channel_updated_at"]
    assert stored["times_replaced"] == 0
    assert stored["body"] == order


def test_default_accepts_any_store(api: Api) -> None:
    assert api.upsert(make_body([make_order()], channel="any", store="thing")).status_code == 204


def _invalid_orders() -> tuple[list[dict[str, Any]], list[str]]:
    """Six orders, the first valid, each other with one documented rule broken."""
    orders = [make_order(n, lines=2) for n in range(6)]
    orders[1]["order_lines"][0]["status"] = "LOST"  # not in the enum
    del orders[2]["order_lines"][1]["product"]["title"]  # required
    orders[3]["order_lines"][0]["price"]["amount"] = -1  # Money: zero or positive
    orders[4]["created_at"] = "2024-13-01T09:00:00Z"  # no month 13
    orders[5]["custom_attributes"] = [{"id": "gift", "type": "BOOLEAN", "value": "yes"}]
    fields = [
        "$.orders[1].order_lines[0].status",
        "$.orders[2].order_lines[1].product.title",
        "$.orders[3].order_lines[0].price.amount",
        "$.orders[4].created_at",
        "$.orders[5].custom_attributes[0].value",
    ]
    return orders, fields


def test_any_invalid_order_rejects_the_whole_request_with_jsonpath_fields(api: Api) -> None:
    orders, fields = _invalid_orders()
    response = api.upsert(make_body(orders))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_INPUT"
    assert body["message"]
    assert [e["field"] for e in body["errors"]] == fields
    assert all(e["message"] for e in body["errors"])
    assert api.orders() == []  # not even the valid first order


def test_error_messages_do_not_echo_values(api: Api) -> None:
    orders = [make_order()]
    orders[0]["shipping_info"] = {"email": "jane.doe-at-example"}
    errors = api.upsert(make_body(orders)).json()["errors"]
    assert errors == [
        {"field": "$.orders[0].shipping_info.email", "message": "must be a valid email string"}
    ]


def test_several_errors_in_one_order_each_get_an_item(api: Api) -> None:
    order = make_order()
    del order["fulfillment"]
    del order["order_lines"][0]["quantity"]
    order["order_lines"][0]["can_cancel"] = "yes"
    order["custom_attributes"] = [{"id": "n", "type": "NUMERIC", "value": "12"}]
    errors = api.upsert(make_body([order])).json()["errors"]
    assert [e["field"] for e in errors] == [
        "$.orders[0].custom_attributes[0].value",
        "$.orders[0].fulfillment",
        "$.orders[0].order_lines[0].can_cancel",
        "$.orders[0].order_lines[0].quantity",
    ]


def test_request_level_errors(api: Api) -> None:
    body = make_body([])
    del body["origin"]["channel_store_id"]
    errors = api.upsert(body).json()["errors"]
    assert [e["field"] for e in errors] == ["$.orders", "$.origin.channel_store_id"]
    errors = api.upsert([1, 2]).json()["errors"]
    assert [e["field"] for e in errors] == ["$"]


def test_omit_field_switch(api: Api) -> None:
    orders, fields = _invalid_orders()
    config = api.admin("POST", "config", {"omit_field": True})
    assert config["omit_field"] is True
    response = api.upsert(make_body(orders))
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == len(fields)
    assert all(set(e) == {"message"} for e in errors)
    api.admin("POST", "config", {"omit_field": False})
    assert "field" in api.upsert(make_body(orders)).json()["errors"][0]


def test_omit_field_from_the_constructor(db_path: Path, http: requests.Session) -> None:
    with SandboxServer(db_path=db_path, omit_field=True) as sandbox:
        api = Api(sandbox, http, fetch_token(sandbox, http))
        assert "field" not in api.upsert(make_body([make_order()] * 101)).json()["errors"][0]


def test_more_than_100_orders_is_400(api: Api) -> None:
    orders = [make_order(n) for n in range(101)]
    response = api.upsert(make_body(orders))
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "INVALID_INPUT"
    assert body["errors"][0]["field"] == "$.orders"
    assert api.upsert(make_body(orders[:100])).status_code == 204
    assert len(api.orders()) == 100


def test_body_not_json_is_400(api: Api) -> None:
    for junk in (b"{not json", b""):
        response = api.upsert(junk)
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_INPUT"


def test_repeated_line_id_points_at_the_second_occurrence(api: Api) -> None:
    orders = [make_order(1), make_order(2, lines=2)]
    orders[1]["order_lines"][1]["channel_order_line_id"] = "ORDER-1-L0"
    response = api.upsert(make_body(orders))
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "$.orders[1].order_lines[1].channel_order_line_id"
    assert "$.orders[0].order_lines[0].channel_order_line_id" in error["message"]
    # Only within the request: the same id in a later request is the same order again.
    assert api.upsert(make_body(orders[:1])).status_code == 204
    assert api.upsert(make_body(orders[:1])).status_code == 204


def test_unknown_store_is_404_when_stores_are_configured(
    db_path: Path, http: requests.Session
) -> None:
    with SandboxServer(db_path=db_path, known_stores=[(CHANNEL, STORE)]) as sandbox:
        api = Api(sandbox, http, fetch_token(sandbox, http))
        assert api.upsert(make_body([make_order()])).status_code == 204
        for channel, store in ((CHANNEL, "OTHER"), ("OTHER", STORE)):
            response = api.upsert(make_body([make_order()], channel=channel, store=store))
            assert response.status_code == 404
            body = response.json()
            assert body["code"] == "DATA_NOT_FOUND"
            assert body["message"]
        assert len(api.orders()) == 1


def test_known_stores_at_run_time(api: Api) -> None:
    stores = [{"channel_id": CHANNEL, "channel_store_id": "S2"}]
    assert api.admin("POST", "config", {"known_stores": stores})["known_stores"] == stores
    assert api.upsert(make_body([make_order()])).status_code == 404
    assert api.upsert(make_body([make_order()], store="S2")).status_code == 204
    api.admin("POST", "config", {"known_stores": None})
    assert api.upsert(make_body([make_order()])).status_code == 204


def _version(order: dict[str, Any], updated_at: str, status: str) -> dict[str, Any]:
    copied = copy.deepcopy(order)
    copied["channel_updated_at"] = updated_at
    copied["status"] = status
    return copied


def test_channel_updated_at_guard(api: Api) -> None:
    first = make_order(1, updated_at="2024-05-01T10:00:00Z")
    assert api.upsert(make_body([first])).status_code == 204

    older = _version(first, "2024-05-01T09:59:59.999Z", "SHIPPED")
    assert api.upsert(make_body([older])).status_code == 204  # silently ignored
    [stored] = api.orders()
    assert stored["body"]["status"] == "AWAITING_SHIPMENT"
    assert stored["times_replaced"] == 0
    assert api.requests_log()[-1]["orders_ignored"] == 1

    # Equal as an instant, though written differently: replaces.
    equal = _version(first, "2024-05-01T12:00:00+02:00", "SHIPPED")
    assert api.upsert(make_body([equal])).status_code == 204
    [stored] = api.orders()
    assert stored["body"] == equal
    assert stored["times_replaced"] == 1

    newer = _version(first, "2024-05-01T10:00:00.000000001Z", "DELIVERED")
    assert api.upsert(make_body([newer])).status_code == 204
    [stored] = api.orders()
    assert stored["body"] == newer
    assert stored["channel_updated_at"] == "2024-05-01T10:00:00.000000001Z"
    assert stored["times_replaced"] == 2
    assert api.requests_log()[-1]["orders_ignored"] == 0


def test_guard_compares_instants_not_strings(api: Api) -> None:
    # As text "09:30+00:00" > "10:00+02:00"; as instants it is the later one.
    first = make_order(1, updated_at="2024-05-01T10:00:00+02:00")
    assert api.upsert(make_body([first])).status_code == 204
    later = _version(first, "2024-05-01T09:30:00+00:00", "SHIPPED")
    assert api.upsert(make_body([later])).status_code == 204
    assert api.orders()[0]["body"]["status"] == "SHIPPED"
    earlier = _version(first, "2024-05-01T10:30:00+05:00", "CLOSED")
    assert api.upsert(make_body([earlier])).status_code == 204
    assert api.orders()[0]["body"]["status"] == "SHIPPED"


def test_replace_mode_drops_fields_left_out(api: Api) -> None:
    first = make_order(1, has_incident=True, sub_channel_code="FR")
    assert api.upsert(make_body([first])).status_code == 204
    second = make_order(1)  # same channel_updated_at, no has_incident/sub_channel_code
    assert api.upsert(make_body([second])).status_code == 204
    assert api.orders()[0]["body"] == second


def test_orders_are_keyed_by_channel_and_order_id(api: Api) -> None:
    assert api.upsert(make_body([make_order(1)], channel="A")).status_code == 204
    assert api.upsert(make_body([make_order(1)], channel="B")).status_code == 204
    assert api.upsert(make_body([make_order(1)], channel="A", store="S9")).status_code == 204
    stored = {(o["channel_id"], o["channel_store_id"]) for o in api.orders()}
    assert stored == {("A", "S9"), ("B", STORE)}


def test_format_answers_remembered_across_requests_stay_right(api: Api) -> None:
    """Issue 16: the sandbox remembers each format answer by value (dates repeat across an
    order's lines and across requests); a value refused once is refused again, on any order."""
    orders, fields = _invalid_orders()
    for _ in range(2):
        response = api.upsert(make_body(orders))
        assert [e["field"] for e in response.json()["errors"]] == fields
    again = make_order(7, lines=2)
    again["created_at"] = orders[4]["created_at"]  # refused above, by the memo now
    response = api.upsert(make_body([make_order(8, lines=1), again]))
    assert [e["field"] for e in response.json()["errors"]] == ["$.orders[1].created_at"]
    assert api.upsert(make_body([orders[0]])).status_code == 204


def test_format_memo_is_bounded(monkeypatch: Any) -> None:
    from etl.sandbox import validation

    monkeypatch.setattr(validation.RememberedFormat, "LIMIT", 3)
    validator = validation.OrdersValidator()
    memo = validator.memos["date-time"]
    for day in range(1, 10):
        assert memo[f"2026-11-{day:02d}T10:00:00Z"] is True
        assert len(memo) <= 3
    assert memo["2026-11-31T10:00:00Z"] is False
