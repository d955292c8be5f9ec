"""A live sandbox on loopback per test, and valid upsertOrders bodies from the API documents."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from etl.sandbox import SandboxServer

CHANNEL = "CH-1"
STORE = "STORE-1"
UPDATED_AT = "2024-05-01T10:00:00Z"
TIMEOUT = 10  # seconds; a hung sandbox fails the test instead of the whole run


def make_line(line_id: str, **overrides: Any) -> dict[str, Any]:
    """An order line with every required field (OrderLineRequest)."""
    line: dict[str, Any] = {
        "can_cancel": True,
        "can_refund": False,
        "channel_order_line_id": line_id,
        "created_at": "2024-05-01T09:00:00Z",
        "price": {"amount": 19.9, "currency": "EUR"},
        "product": {"id": "SKU-1", "title": "Blue mug"},
        "quantity": 1,
        "status": "AWAITING_SHIPMENT",
        "total_shipping_price": {"amount": 4.5, "currency": "EUR"},
        "updated_at": "2024-05-01T09:30:00Z",
    }
    line.update(overrides)
    return line


def make_order(
    number: int = 1, *, lines: int = 1, updated_at: str = UPDATED_AT, **overrides: Any
) -> dict[str, Any]:
    """An order with every required field (OrderRequest); line ids unique per order number."""
    order_id = f"ORDER-{number}"
    order: dict[str, Any] = {
        "channel_order_id": order_id,
        "channel_updated_at": updated_at,
        "created_at": "2024-05-01T09:00:00Z",
        "fulfillment": {"type": "FULFILLED_BY_SELLER"},
        "order_lines": [make_line(f"{order_id}-L{j}") for j in range(lines)],
        "shipping_info": {},
        "status": "AWAITING_SHIPMENT",
    }
    order.update(overrides)
    return order


def make_body(
    orders: list[dict[str, Any]], channel: str = CHANNEL, store: str = STORE
) -> dict[str, Any]:
    """An UpsertOrdersRequest."""
    return {"origin": {"channel_id": channel, "channel_store_id": store}, "orders": orders}


@dataclass
class Api:
    """Plain HTTP against the sandbox: the API with a bearer token, and the admin routes."""

    sandbox: SandboxServer
    http: requests.Session
    token: str

    def upsert(self, body: Any, token: str | None = None, **kwargs: Any) -> requests.Response:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {
            "Authorization": f"Bearer {self.token if token is None else token}",
            "Content-Type": "application/json",
        }
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.post(self.sandbox.orders_url, data=data, headers=headers, **kwargs)

    def call(
        self, method: str, path: str, body: Any = None, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        """Any API operation: ``path`` below the API root, ``body`` sent as JSON."""
        headers = {"Authorization": f"Bearer {self.token if token is None else token}"}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            kwargs["data"] = body if isinstance(body, bytes) else orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        kwargs.setdefault("timeout", TIMEOUT)
        return self.http.request(method, self.sandbox.api_url + path, headers=headers, **kwargs)

    def admin(self, method: str, route: str, body: Any = None) -> Any:
        # Admin writes are JSON, even without a body (a web page cannot send that cross-site).
        headers = {} if method == "GET" else {"Content-Type": "application/json"}
        response = self.http.request(
            method, f"{self.sandbox.admin_url}/{route}", json=body, headers=headers, timeout=TIMEOUT
        )
        assert response.status_code == 200, response.text
        return response.json()

    def requests_log(self, path: str | None = None) -> list[dict[str, Any]]:
        query = "" if path is None else f"?path={path}"
        log: list[dict[str, Any]] = self.admin("GET", f"requests{query}")["requests"]
        return log

    def orders(self) -> list[dict[str, Any]]:
        stored: list[dict[str, Any]] = self.admin("GET", "orders")["orders"]
        return stored

    def faults(self, **plan: Any) -> None:
        self.admin("POST", "faults", plan)


class FakeClock:
    """The sandbox's injectable clock, moved by hand so delays and rate limits never wait."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fetch_token(sandbox: SandboxServer, http: requests.Session) -> str:
    response = http.post(
        sandbox.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
        },
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture(autouse=True)
def no_threads_left_behind() -> Iterator[None]:
    """Every sandbox a test starts must be gone, threads and all, when the test ends."""
    yield
    leftover = [t.name for t in threading.enumerate() if t.name.startswith("sandbox-")]
    assert not leftover, f"threads left behind: {leftover}"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.sqlite3"


@pytest.fixture
def sandbox(db_path: Path) -> Iterator[SandboxServer]:
    with SandboxServer(db_path=db_path) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def api(sandbox: SandboxServer, http: requests.Session) -> Api:
    return Api(sandbox, http, fetch_token(sandbox, http))
