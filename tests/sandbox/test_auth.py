"""OAuth2 client credentials and the bearer check, as the API documents them."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from etl.sandbox import SandboxServer

from .conftest import TIMEOUT, Api, fetch_token, make_body, make_order

CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_from_form_credentials(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(sandbox.token_url, data=CREDENTIALS, timeout=TIMEOUT)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) >= 32
    assert response.headers["Cache-Control"] == "no-store"


def test_token_from_basic_auth(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(
        sandbox.token_url,
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


def test_tokens_are_random(sandbox: SandboxServer, http: requests.Session) -> None:
    assert fetch_token(sandbox, http) != fetch_token(sandbox, http)


def test_wrong_credentials_are_401_invalid_client(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    for wrong in ({"client_secret": "nope"}, {"client_id": "someone-else"}):
        response = http.post(sandbox.token_url, data={**CREDENTIALS, **wrong}, timeout=TIMEOUT)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
    response = http.post(
        sandbox.token_url,
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "nope"),
        timeout=TIMEOUT,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_other_grant_types_are_400(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(
        sandbox.token_url, data={**CREDENTIALS, "grant_type": "password"}, timeout=TIMEOUT
    )
    assert response.status_code == 400
    assert response.json() == {"error": "unsupported_grant_type"}


def test_configured_credentials_and_ttl(db_path: Path, http: requests.Session) -> None:
    with SandboxServer(
        db_path=db_path, client_id="me", client_secret="my-secret", token_ttl=120
    ) as sandbox:
        ok = {"grant_type": "client_credentials", "client_id": "me", "client_secret": "my-secret"}
        response = http.post(sandbox.token_url, data=ok, timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.json()["expires_in"] == 120
        assert http.post(sandbox.token_url, data=CREDENTIALS, timeout=TIMEOUT).status_code == 401


def _assert_unauthorized(response: requests.Response) -> None:
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "UNAUTHORIZED"
    assert body["message"]


def test_api_without_token_is_401(api: Api) -> None:
    response = api.http.post(api.sandbox.orders_url, json=make_body([make_order()]), timeout=5)
    _assert_unauthorized(response)
    assert api.orders() == []


def test_api_with_wrong_token_is_401(api: Api) -> None:
    _assert_unauthorized(api.upsert(make_body([make_order()]), token="not-a-token"))


def test_every_api_route_needs_a_token(api: Api) -> None:
    url = api.sandbox.api_url + "/channel-platform/v1/nothing-here"
    _assert_unauthorized(api.http.get(url, timeout=TIMEOUT))
    authorised = api.http.get(url, headers={"Authorization": f"Bearer {api.token}"}, timeout=5)
    assert authorised.status_code == 404
    # As a gateway answers an unknown path: not the API's Error body, which names a resource.
    assert authorised.json()["error"] == "Not Found" and "code" not in authorised.json()


def test_expired_token_is_401(db_path: Path, http: requests.Session) -> None:
    clock = FakeClock()
    with SandboxServer(db_path=db_path, token_ttl=60, clock=clock) as sandbox:
        api = Api(sandbox, http, fetch_token(sandbox, http))
        clock.now += 59
        assert api.upsert(make_body([make_order()])).status_code == 204
        clock.now += 1
        _assert_unauthorized(api.upsert(make_body([make_order()])))


def test_tiny_ttl_expires_in_real_time(api: Api) -> None:
    api.admin("POST", "config", {"token_ttl": 0.05})
    token = fetch_token(api.sandbox, api.http)
    time.sleep(0.1)
    _assert_unauthorized(api.upsert(make_body([make_order()]), token=token))


def test_revoked_tokens_are_401_and_a_new_one_works(api: Api) -> None:
    assert api.upsert(make_body([make_order()])).status_code == 204
    api.admin("POST", "tokens/revoke")
    _assert_unauthorized(api.upsert(make_body([make_order()])))
    fresh = fetch_token(api.sandbox, api.http)
    assert api.upsert(make_body([make_order()]), token=fresh).status_code == 204


def test_static_token_is_always_accepted(db_path: Path, http: requests.Session) -> None:
    with SandboxServer(db_path=db_path, static_token="fixed-token") as sandbox:
        api = Api(sandbox, http, "fixed-token")
        assert api.upsert(make_body([make_order()])).status_code == 204
        api.admin("POST", "tokens/revoke")
        api.admin("POST", "reset")
        assert api.upsert(make_body([make_order()])).status_code == 204


def test_secrets_and_tokens_never_reach_the_request_log(api: Api) -> None:
    api.http.post(
        api.sandbox.token_url,
        data={"grant_type": "client_credentials"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=TIMEOUT,
    )
    log = api.requests_log(path="/oauth/token")
    assert len(log) == 2
    text = str(log) + api.sandbox.db_path.read_bytes().decode("latin-1")
    assert "sandbox-secret" not in text
    assert api.token not in text
    assert log[0]["body"]["client_secret"] == "<redacted>"
    assert log[0]["response"]["access_token"] == "<redacted>"
