"""Exactly one worker runs the once-a-minute jobs (order action log flush, action tracking).

The leader is whoever holds a PostgreSQL advisory lock. It is a session lock: it lives as long
as the leader's connection, so when the leader dies (kill -9, a lost machine: the server sees
the connection drop, with TCP keepalives for a silent machine) the lock is free and the next
worker that asks gets it. Nothing to expire, nothing to clean up. The jobs themselves pace by
the ledger (``pacing``), so a new leader never flushes sooner than the minute allows.
"""

from __future__ import annotations

import logging
from typing import Any

from etl.core.database_urls import redacted_url, scrubbed
from etl.core.errors import UsageError

log = logging.getLogger("etl.state.leader")

# A dead machine's connection is noticed within about idle + interval * count seconds.
KEEPALIVES: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class Leadership:
    """Ask ``leading()`` before each periodic job: True while this worker is the leader."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name  # one leader per name: e.g. per tenant
        self._leading = False
        self.db: Any = self._connect()

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10, **KEEPALIVES)
        except psycopg.Error as error:
            raise UsageError(
                f"cannot use the state database {redacted_url(self.url)}: "
                f"{scrubbed(str(error).strip(), self.url)}"
            ) from None

    @property
    def was_leading(self) -> bool:
        """What the last ``leading()`` said, without asking again."""
        return self._leading

    def leading(self) -> bool:
        import psycopg

        try:
            if self.db.closed:
                self.db = self._connect()
                self._leading = False
            if self._leading:
                self.db.execute("SELECT 1")  # still connected, so still holding the lock
                return True
            row = self.db.execute(
                "SELECT pg_try_advisory_lock(hashtext(%s || current_schema()))",
                (f"etl-leader:{self.name}:",),
            ).fetchone()
        except (psycopg.Error, UsageError) as error:
            # The connection (and with it the lock) is gone: someone else may lead now.
            if self._leading:
                log.error("no longer the leader: %s", type(error).__name__)
            self._leading = False
            return False
        if row[0] and not self._leading:
            log.warning("this worker now runs the periodic jobs (%s)", self.name)
        self._leading = bool(row[0])
        return self._leading

    def close(self) -> None:
        self.db.close()
        self._leading = False
