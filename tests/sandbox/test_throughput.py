"""Throughput: upsertOrders must sustain 40 requests/s of 100-order batches (DESIGN.md section 6).

Bounded: at most REQUESTS requests or TIME_LIMIT seconds. One client, one keep-alive connection,
one request at a time (the client paces itself at 20-30/s, so this is the shape that matters),
in the same process as the server: a pessimistic setting, since both share one GIL.
Run ``pytest tests/sandbox/test_throughput.py -s`` to see the measured rate.
"""

from __future__ import annotations

import time

import orjson
import pytest

from .conftest import Api, make_body, make_order

REQUESTS = 200
BATCH = 100
TIME_LIMIT = 15.0
REQUIRED_RATE = 40.0


@pytest.mark.slow  # a wall-clock rate: measured where a busy machine cannot fail the suite
def test_sustains_40_requests_per_second_of_100_order_batches(api: Api) -> None:
    bodies = [
        orjson.dumps(make_body([make_order(i * BATCH + k, lines=2) for k in range(BATCH)]))
        for i in range(REQUESTS)
    ]
    started = time.perf_counter()
    sent = 0
    for body in bodies:
        response = api.upsert(body)
        assert response.status_code == 204, response.text
        sent += 1
        if time.perf_counter() - started > TIME_LIMIT:
            break
    elapsed = time.perf_counter() - started
    rate = sent / elapsed
    print(
        f"\nupsertOrders: {sent} requests x {BATCH} orders ({len(bodies[0]) // 1024} KiB each)"
        f" in {elapsed:.2f} s = {rate:.0f} requests/s"
    )
    assert rate >= REQUIRED_RATE
    assert len(api.orders()) == sent * BATCH
