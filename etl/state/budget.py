"""One send budget per credential, kept in the database every worker shares.

Each worker's client paces its own requests (``etl/deliver/client.py``, ``Pacer``); with N workers
sending for one seller that would be N times the seller's budget. Here a worker asks the
database for each request: it may go when fewer than ``rate`` requests of that (tenant,
operation) went in the last second and the last one went at least half an interval ago (no
bursts); otherwise it learns how long to wait, and asks again then. The question and the
record of the answer are one transaction under the bucket row's lock, so two workers never
take the same place. Turns are not reserved ahead: a worker that wakes late cannot then send
right before another's turn, which is how reserved turns put ``rate + 1`` requests in a second.
Times are the database's clock: the workers' clocks need not agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from etl.core.database_urls import redacted_url, scrubbed
from etl.core.errors import UsageError

NOW = "extract(epoch from clock_timestamp())::float8"
# The window is a little longer than a second: between the database's yes and the request's
# arrival at the API lie a few milliseconds, and far more when the machine is busy (a worker
# descheduled between the yes and the send; the API's own threads). With 0.1 s, 2 and 4
# workers on 2 busy cores put 5 requests in one second of the sandbox's log at a budget of 4
# (bench/workers.py); 0.25 s costs a fifth of the budget (20/s sends 16/s) and keeps to it.
JITTER_SECONDS = 0.25
GAP = 0.5  # the least time between two requests, in intervals (1 / rate): no bursts


class SharedBudget:
    """The budgets of one tenant's credential, for every operation."""

    def __init__(self, url: str, tenant: str) -> None:
        import psycopg

        self.tenant = tenant
        self._lock = threading.Lock()
        try:
            self.db: Any = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as error:
            raise UsageError(
                f"cannot use the state database {redacted_url(url)}: "
                f"{scrubbed(str(error).strip(), url)}"
            ) from None

    def try_send(self, operation: str, rate: float) -> float:
        """0 when a request of ``operation`` may go now (and it is counted), else the seconds
        to wait before asking again."""
        key = (self.tenant, operation)
        # No second may hold more than ``rate`` requests: 20.5/s allows 20 in a second. Below
        # one a second (the once-a-minute calls), one per 1 / rate seconds.
        window = (1.0 if rate >= 1 else 1.0 / rate) + JITTER_SECONDS
        allowed = int(rate) if rate >= 1 else 1
        with self._lock, self.db.transaction():
            self.db.execute(
                "INSERT INTO rate_buckets (tenant, operation, next_at) VALUES (%s, %s, 0) "
                "ON CONFLICT (tenant, operation) DO NOTHING",
                key,
            )
            (now, next_at) = self.db.execute(
                f"SELECT {NOW}, next_at FROM rate_buckets WHERE tenant = %s AND operation = %s "
                "FOR UPDATE",
                key,
            ).fetchone()
            self.db.execute(
                "DELETE FROM rate_log WHERE tenant = %s AND operation = %s AND sent_at < %s",
                (*key, now - window),
            )
            (count, oldest) = self.db.execute(
                "SELECT count(*), min(sent_at) FROM rate_log WHERE tenant = %s AND operation = %s",
                key,
            ).fetchone()
            if count >= allowed:
                return max(0.001, float(oldest) + window - float(now))
            if now < next_at:
                return max(0.001, float(next_at) - float(now))
            self.db.execute(
                "INSERT INTO rate_log (tenant, operation, sent_at) VALUES (%s, %s, %s)",
                (*key, now),
            )
            self.db.execute(
                "UPDATE rate_buckets SET next_at = %s WHERE tenant = %s AND operation = %s",
                (now + GAP / rate, *key),
            )
        return 0.0

    def pacer(self, operation: str, rate: float, sleep: Callable[[float], None]) -> SharedPacer:
        return SharedPacer(self, operation, rate, sleep)

    def close(self) -> None:
        with self._lock:
            self.db.close()


class SharedPacer:
    """``Pacer``'s ``wait()``, with the budget kept in the database."""

    def __init__(
        self, budget: SharedBudget, operation: str, rate: float, sleep: Callable[[float], None]
    ) -> None:
        self.budget = budget
        self.operation = operation
        self.rate = rate
        self.sleep = sleep

    def wait(self) -> None:
        if self.rate <= 0:
            return
        while (seconds := self.budget.try_send(self.operation, self.rate)) > 0:
            self.sleep(seconds)
