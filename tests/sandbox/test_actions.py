"""Actions: updateActionStatus, v2-reportOrderActions, v2-getActionStatus; delays and rate limits.

The sandbox runs on a fake clock here, so the PENDING -> final move and both documented call
frequencies ("once per minute", "once per minute per action ID") are tested without waiting.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from etl.sandbox import SandboxServer

from .conftest import TIMEOUT, Api, FakeClock, fetch_token

REPORT = "/v2/orders/actions"


def update_path(action_id: str) -> str:
    return f"/channel-platform/v1/orders/actions/{action_id}"


def status_path(action_id: str) -> str:
    return f"/v2/orders/actions/{action_id}"


@pytest.fixture
def sandbox(db_path: Path, clock: FakeClock) -> Iterator[SandboxServer]:
    with SandboxServer(db_path=db_path, clock=clock) as server:
        yield server


def reported(entity_id: str = "0001_384722-A", **overrides: Any) -> dict[str, Any]:
    """One ActionItemRequest, as in the API document's first example."""
    item: dict[str, Any] = {
        "entity_id": entity_id,
        "entity_type": "ORDER",
        "executed_at": "2023-05-15T14:32:17Z",
        "status": "SUCCESS",
        "type": "SYNCHRONIZE_ORDER",
    }
    item.update(overrides)
    return item


def create(api: Api, **body: Any) -> list[dict[str, Any]]:
    created: list[dict[str, Any]] = api.admin("POST", "actions", body)["actions"]
    return created


def listed(api: Api) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in api.admin("GET", "actions")["actions"]}


def parse_z(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# -- updateActionStatus -------------------------------------------------------------------


def test_created_command_actions_are_pending_with_uuid4_ids(api: Api) -> None:
    created = create(api, count=2)
    assert len(created) == 2
    for action in created:
        assert uuid.UUID(action["id"]).version == 4
        assert action["kind"] == "command"
        assert action["status"] == "PENDING"
        assert action["errors"] is None
        assert action["created_at"] == action["updated_at"]
        parse_z(action["created_at"])
    assert list(listed(api)) == [a["id"] for a in created]
    [given] = create(api, action_ids=["1ba5fc4b-c4fd-4251-880b-3052e301bbd4"])
    assert given["id"] == "1ba5fc4b-c4fd-4251-880b-3052e301bbd4"
    assert len(create(api)) == 1  # neither: one action


def test_bad_create_requests_are_400(api: Api) -> None:
    create(api, action_ids=["A-1"])
    bodies: list[dict[str, Any]] = [
        {"count": 0},
        {"count": "2"},
        {"action_ids": []},
        {"action_ids": ["x", "x"]},
        {"action_ids": [""]},
        {"action_ids": ["A-1"]},  # exists already
        {"count": 1, "action_ids": ["B"]},
        {"ids": ["B"]},
    ]
    for body in bodies:
        response = api.http.post(api.sandbox.admin_url + "/actions", json=body, timeout=5)
        assert response.status_code == 400, body
        assert response.json()["code"] == "INVALID_INPUT"
    assert list(listed(api)) == ["A-1"]


def test_success_is_204_and_the_action_becomes_final(api: Api) -> None:
    [action] = create(api)
    response = api.call("PUT", update_path(action["id"]), {"status": "SUCCESS"})
    assert response.status_code == 204
    assert response.content == b""
    after = listed(api)[action["id"]]
    assert after["status"] == "SUCCESS"
    assert after["errors"] is None
    assert parse_z(after["updated_at"]) >= parse_z(after["created_at"])


def test_failed_keeps_its_errors(api: Api) -> None:
    [action] = create(api)
    errors = [
        {"code": "ORDER_IN_WRONG_STATE", "message": "Cannot cancel: already shipped"},
        {"code": "OTHER", "message": "and something else"},
    ]
    body = {"status": "FAILED", "errors": errors}
    assert api.call("PUT", update_path(action["id"]), body).status_code == 204
    after = listed(api)[action["id"]]
    assert (after["status"], after["errors"]) == ("FAILED", errors)


def test_a_second_update_is_action_already_final(api: Api) -> None:
    [action] = create(api)
    assert api.call("PUT", update_path(action["id"]), {"status": "SUCCESS"}).status_code == 204
    body = {"status": "FAILED", "errors": [{"code": "OTHER", "message": "late"}]}
    response = api.call("PUT", update_path(action["id"]), body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "ACTION_ALREADY_FINAL"
    assert answer["message"]
    assert listed(api)[action["id"]]["status"] == "SUCCESS"  # unchanged


def test_unknown_action_is_404(api: Api) -> None:
    response = api.call("PUT", update_path(str(uuid.uuid4())), {"status": "SUCCESS"})
    assert response.status_code == 404
    assert response.json()["code"] == "DATA_NOT_FOUND"
    assert response.json()["message"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"status": "FAILED"}, ["$.errors"]),  # errors required when FAILED
        ({"status": "FAILED", "errors": []}, ["$.errors"]),
        ({"status": "DONE"}, ["$.status"]),
        ({}, ["$.status"]),
        (
            {"status": "FAILED", "errors": [{"code": "NOPE"}, {"message": "m"}]},
            ["$.errors[0].code", "$.errors[0].message", "$.errors[1].code"],
        ),
        ([], ["$"]),
    ],
)
def test_invalid_update_is_400_with_fields(api: Api, body: Any, fields: list[str]) -> None:
    [action] = create(api)
    response = api.call("PUT", update_path(action["id"]), body)
    assert response.status_code == 400
    answer = response.json()
    assert answer["code"] == "INVALID_INPUT"
    assert [e["field"] for e in answer["errors"]] == fields
    assert all(e["message"] for e in answer["errors"])
    assert listed(api)[action["id"]]["status"] == "PENDING"


def test_update_body_not_json_is_400(api: Api) -> None:
    [action] = create(api)
    response = api.call("PUT", update_path(action["id"]), b"{")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"


def test_update_honours_omit_field(api: Api) -> None:
    [action] = create(api)
    api.admin("POST", "config", {"omit_field": True})
    errors = api.call("PUT", update_path(action["id"]), {"status": "X"}).json()["errors"]
    assert errors == [{"message": "must be one of SUCCESS, FAILED"}]


def test_reported_actions_cannot_be_updated(api: Api) -> None:
    [created] = api.call("POST", REPORT, {"actions": [reported()]}).json()["actions"]
    response = api.call("PUT", update_path(created["action_id"]), {"status": "SUCCESS"})
    assert response.status_code == 404


# -- v2-reportOrderActions ----------------------------------------------------------------


def test_report_answers_one_id_per_action_in_request_order(api: Api) -> None:
    items = [
        reported("E-1"),
        reported(
            "E-2",
            status="FAILED",
            errors=[{"code": "INVALID_PRODUCT_ID", "message": "The product ID does not exist"}],
        ),
        reported("E-3", type="SYNCHRONIZE_ORDER_UPDATE"),
    ]
    response = api.call("POST", REPORT, {"actions": items})
    assert response.status_code == 200
    answer = response.json()
    assert list(answer) == ["actions"]
    ids = [a["action_id"] for a in answer["actions"]]
    assert [set(a) for a in answer["actions"]] == [{"action_id"}] * 3
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert len(set(ids)) == 3
    actions = listed(api)
    assert [actions[i]["report"] for i in ids] == items
    assert {actions[i]["kind"] for i in ids} == {"reported"}
    assert {actions[i]["status"] for i in ids} == {"PENDING"}


def test_reported_actions_turn_final_after_the_delay(api: Api, clock: FakeClock) -> None:
    body = {"actions": [reported("0001-A"), reported("UNKNOWN-7")]}
    ok, bad = (a["action_id"] for a in api.call("POST", REPORT, body).json()["actions"])
    clock.advance(1.75)
    assert {a["status"] for a in listed(api).values()} == {"PENDING"}
    clock.advance(0.25)  # action_delay, 2 s by default
    actions = listed(api)
    assert (actions[ok]["status"], actions[ok]["errors"]) == ("SUCCESS", None)
    assert actions[bad]["status"] == "FAILED"
    assert actions[bad]["errors"] == [
        {"code": "DATA_NOT_FOUND", "message": "order UNKNOWN-7 is unknown to Connect"}
    ]
    created = parse_z(actions[ok]["created_at"])
    assert parse_z(actions[ok]["updated_at"]) - created == timedelta(seconds=2)


def test_delay_and_fail_prefix_are_settings(api: Api, clock: FakeClock) -> None:
    config = api.admin("POST", "config", {"action_delay": 0, "fail_entity_prefix": "BAD-"})
    assert (config["action_delay"], config["fail_entity_prefix"]) == (0.0, "BAD-")
    body = {"actions": [reported("BAD-1"), reported("UNKNOWN-1")]}
    bad, fine = (a["action_id"] for a in api.call("POST", REPORT, body).json()["actions"])
    actions = listed(api)
    assert (actions[bad]["status"], actions[fine]["status"]) == ("FAILED", "SUCCESS")
    api.admin("POST", "config", {"fail_entity_prefix": None})
    clock.advance(60)
    [last] = api.call("POST", REPORT, {"actions": [reported("BAD-2")]}).json()["actions"]
    assert listed(api)[last["action_id"]]["status"] == "SUCCESS"


def test_delay_is_fixed_when_reported(
    db_path: Path, http: requests.Session, clock: FakeClock
) -> None:
    with SandboxServer(db_path=db_path, clock=clock, action_delay=10) as sandbox:
        api = Api(sandbox, http, fetch_token(sandbox, http))
        [command] = sandbox.create_actions()
        [created] = api.call("POST", REPORT, {"actions": [reported()]}).json()["actions"]
        clock.advance(9.75)
        sandbox.configure(action_delay=0)  # applies to later reports only
        statuses = {a["id"]: a["status"] for a in sandbox.actions()}
        assert statuses == {command["id"]: "PENDING", created["action_id"]: "PENDING"}
        clock.advance(0.25)
        statuses = {a["id"]: a["status"] for a in sandbox.actions()}
        assert statuses[created["action_id"]] == "SUCCESS"
        clock.advance(3600)
        assert {a["id"]: a["status"] for a in sandbox.actions()}[command["id"]] == "PENDING"


def _report_fields(api: Api, items: list[Any]) -> list[str]:
    response = api.call("POST", REPORT, {"actions": items})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
    return [e["field"] for e in response.json()["errors"]]


def test_any_invalid_action_rejects_the_whole_report(api: Api, clock: FakeClock) -> None:
    items = [reported(f"E-{n}") for n in range(6)]
    del items[1]["entity_type"]
    items[2]["executed_at"] = "2023-05-15 14:32"
    items[3]["status"] = "DONE"
    items[4]["status"] = "FAILED"  # without errors
    items[5]["errors"] = [{"code": "OUT_OF_STOCK", "message": ""}]
    assert _report_fields(api, items) == [
        "$.actions[1].entity_type",
        "$.actions[2].executed_at",
        "$.actions[3].status",
        "$.actions[4].errors",
        "$.actions[5].errors[0].message",
    ]
    assert listed(api) == {}
    # A rejected report is not an accepted one: the next valid call is not rate limited.
    assert api.call("POST", REPORT, {"actions": items[:1]}).status_code == 200


def test_report_size_limits(api: Api, clock: FakeClock) -> None:
    assert _report_fields(api, [reported(f"E-{n}") for n in range(101)]) == ["$.actions"]
    assert _report_fields(api, []) == ["$.actions"]
    response = api.call("POST", REPORT, {"actions": [reported(f"E-{n}") for n in range(100)]})
    assert response.status_code == 200
    assert len(response.json()["actions"]) == 100


def test_report_honours_omit_field(api: Api) -> None:
    api.admin("POST", "config", {"omit_field": True})
    response = api.call("POST", REPORT, {"actions": [reported(status="DONE")]})
    assert response.json()["errors"] == [{"message": "must be one of FAILED, SUCCESS"}]


def test_report_is_limited_to_once_a_minute(api: Api, clock: FakeClock) -> None:
    assert api.call("POST", REPORT, {"actions": [reported("E-1")]}).status_code == 200
    # Seconds left, rounded up: 50, 49.5, 0.25.
    for step, retry_after in ((10, "50"), (0.5, "50"), (49.25, "1")):
        clock.advance(step)
        response = api.call("POST", REPORT, {"actions": [reported("E-2")]})
        assert response.status_code == 429
        assert response.headers["Retry-After"] == retry_after
        assert response.json()["code"] == "TOO_MANY_REQUESTS"
    # 429s are not accepted calls: no action, and the minute still counts from the first.
    assert len(listed(api)) == 1
    clock.advance(0.25)
    assert api.call("POST", REPORT, {"actions": [reported("E-2")]}).status_code == 200
    assert len(listed(api)) == 2
    log = api.requests_log(path="/api/v2/orders/actions")
    assert [r["status"] for r in log] == [200, 429, 429, 429, 200]


def test_report_limit_comes_before_validation(api: Api, clock: FakeClock) -> None:
    assert api.call("POST", REPORT, {"actions": [reported()]}).status_code == 200
    clock.advance(30)
    response = api.call("POST", REPORT, {"actions": []})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "30"


def test_report_interval_is_a_setting(api: Api, clock: FakeClock) -> None:
    api.admin("POST", "config", {"report_interval": 5})
    assert api.call("POST", REPORT, {"actions": [reported()]}).status_code == 200
    assert api.call("POST", REPORT, {"actions": [reported()]}).headers["Retry-After"] == "5"
    clock.advance(5)
    assert api.call("POST", REPORT, {"actions": [reported()]}).status_code == 200
    api.admin("POST", "config", {"report_interval": 0})
    assert api.call("POST", REPORT, {"actions": [reported()]}).status_code == 200


# -- v2-getActionStatus -------------------------------------------------------------------


def test_status_of_a_reported_action(api: Api, clock: FakeClock) -> None:
    body = {"actions": [reported("UNKNOWN-9")]}
    [created] = api.call("POST", REPORT, body).json()["actions"]
    action_id = created["action_id"]
    pending = api.call("GET", status_path(action_id))
    assert pending.status_code == 200
    answer = pending.json()
    assert answer == {
        "id": action_id,
        "status": "PENDING",
        "created_at": answer["created_at"],
        "updated_at": answer["created_at"],
    }
    parse_z(answer["created_at"])
    clock.advance(60)
    final = api.call("GET", status_path(action_id)).json()
    assert final["status"] == "FAILED"
    assert final["errors"] == [
        {"code": "DATA_NOT_FOUND", "message": "order UNKNOWN-9 is unknown to Connect"}
    ]
    assert parse_z(final["updated_at"]) == parse_z(final["created_at"]) + timedelta(seconds=2)


def test_status_of_a_command_action(api: Api, clock: FakeClock) -> None:
    [action] = create(api)
    assert api.call("GET", status_path(action["id"])).json()["status"] == "PENDING"
    errors = [{"code": "MISSING_CARRIER", "message": "no carrier"}]
    api.call("PUT", update_path(action["id"]), {"status": "FAILED", "errors": errors})
    clock.advance(60)
    answer = api.call("GET", status_path(action["id"])).json()
    assert (answer["status"], answer["errors"]) == ("FAILED", errors)
    assert "errors" not in api.call("GET", status_path(create(api)[0]["id"])).json()


def test_status_of_an_unknown_action_is_404(api: Api) -> None:
    for _ in range(2):  # a 404 does not count against the per-id limit
        response = api.call("GET", status_path("1ba5fc4b-c4fd-4251-880b-3052e301bbd4"))
        assert response.status_code == 404
        assert response.json()["code"] == "DATA_NOT_FOUND"


def test_status_is_limited_to_once_a_minute_per_action(api: Api, clock: FakeClock) -> None:
    first, second = (a["id"] for a in create(api, count=2))
    assert api.call("GET", status_path(first)).status_code == 200
    again = api.call("GET", status_path(first))
    assert again.status_code == 429
    assert again.headers["Retry-After"] == "60"
    assert again.json()["code"] == "TOO_MANY_REQUESTS"
    assert api.call("GET", status_path(second)).status_code == 200  # another id: its own minute
    clock.advance(59.5)
    assert api.call("GET", status_path(first)).headers["Retry-After"] == "1"
    clock.advance(0.5)
    assert api.call("GET", status_path(first)).status_code == 200
    api.admin("POST", "config", {"status_interval": 300})
    clock.advance(60)
    assert api.call("GET", status_path(first)).headers["Retry-After"] == "240"


# -- races: the check and the change are one step ------------------------------------------


def _race(api: Api, method: str, path: str, body: Any, racers: int = 8) -> list[int]:
    """``racers`` identical requests at once, each on its own connection; their statuses."""
    start = threading.Barrier(racers)
    statuses: list[int] = []

    def send() -> None:
        with requests.Session() as http:
            racer = Api(api.sandbox, http, api.token)
            start.wait(TIMEOUT)
            statuses.append(racer.call(method, path, body).status_code)

    threads = [threading.Thread(target=send) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
    return sorted(statuses)


def test_racing_updates_finish_an_action_once(api: Api) -> None:
    [action] = create(api)
    statuses = _race(api, "PUT", update_path(action["id"]), {"status": "SUCCESS"})
    assert statuses == [204] + [400] * 7


def test_racing_reports_get_one_call_through(api: Api) -> None:
    statuses = _race(api, "POST", REPORT, {"actions": [reported()]})
    assert statuses == [200] + [429] * 7
    assert len(listed(api)) == 1
