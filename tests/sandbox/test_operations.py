"""What every new operation shares: bearer auth, faults, routing by method, the log, reset."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api, fetch_token

# (method, path below /api, a body) for each operation beside upsertOrders.
OPERATIONS: list[tuple[str, str, Any]] = [
    ("PUT", "/channel-platform/v1/orders/actions/A-1", {"status": "SUCCESS"}),
    ("POST", "/v2/orders/actions", {"actions": []}),
    ("GET", "/v2/orders/actions/A-1", None),
    ("POST", "/channel-platform/v1/orders/ORDER-1/documents", None),
    ("DELETE", "/channel-platform/v1/orders/documents/DOC-1", {"origin": {}}),
    ("PUT", "/channel-platform/v1/orders/anonymize-after", {"orders": []}),
]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_every_operation_needs_a_bearer_token(api: Api, method: str, path: str, body: Any) -> None:
    for token in ("", "not-a-token"):
        response = api.call(method, path, body, token=token)
        assert response.status_code == 401
        assert response.json()["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert [r["status"] for r in api.requests_log(path="/api" + path)] == [401, 401]


@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_faults_apply_to_every_operation(api: Api, method: str, path: str, body: Any) -> None:
    api.faults(faults=[{"status": 503}], next=1)
    response = api.call(method, path, body)
    assert response.status_code == 503
    assert response.json()["code"] == "SERVICE_UNAVAILABLE"
    [entry] = api.requests_log(path="/api" + path)
    assert entry["fault"] == {"status": 503}
    assert api.call(method, path, body).status_code != 503


def test_a_path_prefix_faults_one_api_only(api: Api) -> None:
    api.faults(faults=[{"status": 429, "retry_after": "7"}], path_prefix="/api/v2/")
    response = api.call("GET", "/v2/orders/actions/A-1")
    assert (response.status_code, response.headers["Retry-After"]) == (429, "7")
    [action] = api.admin("POST", "actions", {"action_ids": ["A-1"]})["actions"]
    update = api.call("PUT", "/channel-platform/v1/orders/actions/A-1", {"status": "SUCCESS"})
    assert update.status_code == 204
    assert action["id"] == "A-1"


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    cases = [
        ("DELETE", "/v2/orders/actions/A-1", "GET"),
        ("GET", "/v2/orders/actions", "POST"),
        ("POST", "/channel-platform/v1/orders/actions/A-1", "PUT"),
        ("GET", "/channel-platform/v1/orders/anonymize-after", "PUT"),
        ("PUT", "/channel-platform/v1/orders/documents/DOC-1", "DELETE"),
        ("GET", "/channel-platform/v1/orders/ORDER-1/documents", "POST"),
    ]
    for method, path, allowed in cases:
        response = api.call(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["Allow"] == allowed


def test_paths_with_an_empty_or_extra_segment_are_404(api: Api) -> None:
    for path in (
        "/v2/orders/actions/",
        "/channel-platform/v1/orders/actions/A/B",
        "/channel-platform/v1/orders//documents",
    ):
        response = api.call("GET", path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Not Found", "a gateway's 404, not the API's Error"


def test_one_path_two_templates_resolved_by_method(api: Api) -> None:
    # /orders/actions/{action_id} (PUT) and /orders/{channel_order_id}/documents (POST) both
    # match /orders/actions/documents; the method decides which operation it is.
    api.admin("POST", "actions", {"action_ids": ["documents"]})
    path = "/channel-platform/v1/orders/actions/documents"
    assert api.call("PUT", path, {"status": "SUCCESS"}).status_code == 204
    response = api.call("POST", path, {"not": "multipart"})
    assert response.status_code == 400  # the upload operation, for order "actions"


def test_reset_forgets_actions_documents_anonymizations_and_rate_limits(api: Api) -> None:
    api.admin("POST", "actions", {"count": 1})
    item = {"entity_id": "E", "entity_type": "ORDER", "executed_at": "2023-05-15T14:32:17Z"}
    report = {"actions": [{**item, "status": "SUCCESS", "type": "SYNCHRONIZE_ORDER"}]}
    assert api.call("POST", "/v2/orders/actions", report).status_code == 200
    files = {
        "file": ("a.csv", b"a,b\n1,2\n", "text/csv"),
        "origin": (None, b'{"channel_id": "C", "channel_store_id": "S"}', "application/json"),
        "metadata": (
            None,
            b'{"channel_document_id": "D", "filename": "a", "type": "DELIVERY_SLIP"}',
        ),
    }
    path = "/channel-platform/v1/orders/O/documents"
    assert api.call("POST", path, files=files).status_code == 204
    order = {"channel_id": "C", "channel_order_id": "O", "anonymize_after": "2999-01-01T00:00:00Z"}
    anonymize = api.call("PUT", "/channel-platform/v1/orders/anonymize-after", {"orders": [order]})
    assert anonymize.status_code == 204
    assert api.call("POST", "/v2/orders/actions", report).status_code == 429
    sandbox = api.sandbox
    assert len(sandbox.actions()) == 2
    assert len(sandbox.documents()) == 1
    assert len(sandbox.anonymizations()) == 1

    api.admin("POST", "reset")
    assert api.admin("GET", "actions") == {"actions": []}
    assert api.admin("GET", "documents") == {"documents": []}
    assert api.admin("GET", "anonymizations") == {"anonymizations": []}
    api.token = fetch_token(sandbox, api.http)  # tokens are forgotten too
    assert api.call("POST", "/v2/orders/actions", report).status_code == 200  # limit forgotten
    assert [r["seq"] for r in api.requests_log()] == [1, 2]


def test_python_api_matches_the_admin_routes(api: Api) -> None:
    created = api.sandbox.create_actions(action_ids=["X-1", "X-2"])
    assert [a["id"] for a in created] == ["X-1", "X-2"]
    assert api.sandbox.actions() == api.admin("GET", "actions")["actions"]
    assert api.sandbox.documents() == api.admin("GET", "documents")["documents"]
    assert api.sandbox.anonymizations() == api.admin("GET", "anonymizations")["anonymizations"]
    with pytest.raises(ValueError, match="exists already"):
        api.sandbox.create_actions(action_ids=["X-1"])
    assert len(api.sandbox.create_actions(count=3)) == 3


def test_new_settings_in_config(api: Api) -> None:
    changes = {
        "action_delay": 0.5,
        "report_interval": 1,
        "status_interval": 2,
        "fail_entity_prefix": "NOPE-",
        "anonymize_tolerance": 10,
    }
    config = api.admin("POST", "config", changes)
    assert {k: config[k] for k in changes} == changes
    assert api.sandbox.configure(fail_entity_prefix=None)["fail_entity_prefix"] is None
    bad: list[dict[str, Any]] = [
        {"action_delay": -1},
        {"report_interval": "60"},
        {"status_interval": True},
        {"fail_entity_prefix": ""},
        {"fail_entity_prefix": 3},
        {"anonymize_tolerance": None},
    ]
    for change in bad:
        response = api.http.post(api.sandbox.admin_url + "/config", json=change, timeout=5)
        assert response.status_code == 400, change
