"""One send budget per credential, kept in the database every worker shares.

Each worker's client paces its own requests (``etl/send/client.py``, ``Pacer``); with N workers
sending for one seller that would be N times the seller's budget. Here the pace is a row per
(tenant, operation) in ``rate_buckets``: ``next_at``, when the next request may start. Taking a
turn is one statement, atomic under the row's lock: the turn starts at ``next_at`` or now,
whichever is later, and moves ``next_at`` one interval on. It is a token bucket holding one
token (no bursts), the same rule as the in-process ``Pacer``, shared. Times are the database's
clock: the workers' clocks need not agree.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from etl.core.database_urls import redacted_url, scrubbed
from etl.core.errors import UsageError

NOW = "extract(epoch from clock_timestamp())"
# Requests leave a little under the budget: a request's arrival at the API differs from its
# turn by the network's jitter (a millisecond or two), and at exactly the budget that jitter
# alone would put budget + 1 requests in some 1-second window. 3% is 29 ms at 20/s.
MARGIN = 1.03


class SharedBudget:
    """The budgets of one tenant's credential: one turn-taker per operation."""

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

    def turn(self, operation: str, rate: float) -> float:
        """Take the next turn for ``operation`` at ``rate`` requests per second: the seconds to
        wait before sending (0: now)."""
        interval = MARGIN / rate
        with self._lock:
            row = self.db.execute(
                "INSERT INTO rate_buckets (tenant, operation, next_at) "
                f"VALUES (%s, %s, {NOW} + %s) ON CONFLICT (tenant, operation) DO UPDATE SET "
                f"next_at = greatest(rate_buckets.next_at, {NOW}) + %s "
                f"RETURNING next_at - %s - {NOW}",
                (self.tenant, operation, interval, interval, interval),
            ).fetchone()
        return max(0.0, float(row[0]))

    def pacer(self, operation: str, rate: float, sleep: Callable[[float], None]) -> SharedPacer:
        return SharedPacer(self, operation, rate, sleep)

    def close(self) -> None:
        with self._lock:
            self.db.close()


class SharedPacer:
    """``Pacer``'s ``wait()``, with the turn taken in the database."""

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
        seconds = self.budget.turn(self.operation, self.rate)
        if seconds > 0:
            self.sleep(seconds)
