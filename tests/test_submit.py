"""All-or-nothing batches against the sandbox: the bad orders are isolated, the good delivered."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from etl.core.errors import RejectedRequest
from etl.core.models import MappedItem, Origin, Outcome
from etl.deliver.client import ConnectClient
from etl.deliver.submit import blamed_items, deliver
from etl.sandbox import SandboxServer

from .conftest import FakeTime, settings_for
from .test_client import order

ORIGIN = Origin("CH", "S")


def items(count: int, bad: set[int]) -> list[MappedItem]:
    return [
        MappedItem(
            item_id=f"O-{n}",
            origin=ORIGIN,
            body=order(n, status="SHIPPING" if n in bad else "SHIPPED"),
            rows=(n + 2,),
            source="orders.csv",
        )
        for n in range(count)
    ]


def client(sandbox: SandboxServer, tmp_path: Path) -> ConnectClient:
    time = FakeTime()
    return ConnectClient(
        settings_for(sandbox, tmp_path), clock=time.clock, sleep=time.sleep, rng=random.Random(2)
    )


@pytest.mark.parametrize("omit_field", [False, True], ids=["with-field", "halving"])
def test_only_the_bad_orders_are_rejected_and_every_good_one_arrives(
    sandbox: SandboxServer, tmp_path: Path, omit_field: bool
) -> None:
    sandbox.configure(omit_field=omit_field)
    bad = {3, 17, 18, 60}
    with client(sandbox, tmp_path) as api:
        delivery = deliver(api.upsert_orders, "b-1", ORIGIN, items(64, bad), "orders")
    outcomes = {d.item.item_id: d.outcome for d in delivery.results}
    assert len(delivery.results) == 64 == len(outcomes)
    assert {i for i, o in outcomes.items() if o is Outcome.REJECTED} == {f"O-{n}" for n in bad}
    stored = {o["channel_order_id"] for o in sandbox.stored_orders()}
    assert stored == {f"O-{n}" for n in range(64) if n not in bad}
    requests = len(sandbox.requests_log(path="/api/channel-platform/v1/orders"))
    assert delivery.requests == requests
    if omit_field:
        assert 8 < requests <= 1 + 2 * len(bad) * 6  # halving: about 2 * bad * log2(64)
    else:
        assert requests == 2  # the rejected request, then the good ones in one resend
        rejected = next(d for d in delivery.results if d.item.item_id == "O-3")
        assert rejected.code == "INVALID_INPUT"
        assert rejected.message.startswith("$.order_lines[0].status:")
    assert delivery.extra_requests == requests - 1


def test_an_unknown_store_rejects_the_batch_without_isolation(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.configure(known_stores=[{"channel_id": "OTHER", "channel_store_id": "X"}])
    with client(sandbox, tmp_path) as api:
        delivery = deliver(api.upsert_orders, "b-1", ORIGIN, items(10, set()), "orders")
    assert {d.outcome for d in delivery.results} == {Outcome.REJECTED}
    assert {d.code for d in delivery.results} == {"DATA_NOT_FOUND"}
    assert delivery.requests == 1


def test_blame_reads_item_indexes_from_jsonpaths() -> None:
    error = RejectedRequest(
        "400",
        status=400,
        body={
            "errors": [
                {"field": "$.orders[3].order_lines[0].status", "message": "bad status"},
                {"field": "$.orders[3].created_at", "message": "bad date"},
                {"field": "$.orders[250].status", "message": "out of range"},
                {"field": "$.origin.channel_id", "message": "request level"},
                {"message": "no field"},
            ]
        },
    )
    assert blamed_items(error, "orders", 10) == {
        3: ["$.order_lines[0].status: bad status", "$.created_at: bad date"]
    }
