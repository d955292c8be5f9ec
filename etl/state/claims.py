"""Which worker holds which input file, when many workers share one state database.

With a state URL the database's claim is the authority, not the rename into ``.processing/``:
a worker first claims a file's name in ``work`` (one row per tenant, inbox and name), and only
then moves it. The claim is a lease the holder renews every third of its length from a thread
of its own; a worker that dies (kill -9, a lost machine) stops renewing, and once its lease has
run out another worker takes the file over with ``SELECT ... FOR UPDATE SKIP LOCKED`` (two
workers looking at once never take the same one) and resumes it from the ledger. Leases are
measured with the database's clock, so the machines' clocks need not agree.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from etl.core.database_urls import redacted_url, scrubbed
from etl.core.errors import UsageError

log = logging.getLogger("etl.state.claims")

NOW = "extract(epoch from clock_timestamp())::float8"


def worker_name() -> str:
    """This worker, as other workers see it in the claims: host, pid and a random part (a pid
    is reused after a restart; the random part is not)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def inbox_place(inbox: Path) -> str:
    """A local inbox is only seen by workers on its machine: its claims are named by both."""
    return f"{socket.gethostname()}:{inbox.resolve()}"


class Claims:
    """This worker's claims on one inbox's files, for one tenant."""

    def __init__(
        self,
        url: str,
        tenant: str,
        place: str,
        lease_seconds: float,
        holder: str | None = None,
    ) -> None:
        import psycopg

        self.tenant = tenant
        self.place = place
        self.lease_seconds = lease_seconds
        self.holder = holder or worker_name()
        self._held: set[str] = set()
        self._lost: set[str] = set()
        self._lock = threading.Lock()  # the connection: the renewer thread and the run
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        try:
            # A connection of its own: renewals must not wait for a ledger transaction.
            self.db: Any = psycopg.connect(url, autocommit=True, connect_timeout=10)
        except psycopg.Error as error:
            raise UsageError(
                f"cannot use the state database {redacted_url(url)}: "
                f"{scrubbed(str(error).strip(), url)}"
            ) from None

    # --- claiming -------------------------------------------------------------------------------

    def claim(self, name: str) -> bool:
        """Claim a file that arrived in the inbox; False when another worker holds that name
        (it claimed the same file first, or a file of that name is still in progress)."""
        with self._lock:
            row = self.db.execute(
                "INSERT INTO work (tenant, place, name, holder, lease_until, claimed_at) "
                f"VALUES (%s, %s, %s, %s, {NOW} + %s, {NOW}) "
                "ON CONFLICT (tenant, place, name) DO NOTHING RETURNING name",
                (self.tenant, self.place, name, self.holder, self.lease_seconds),
            ).fetchone()
        if row is not None:
            self._hold(name)
        return row is not None

    def register_orphans(self, names: Iterable[str]) -> None:
        """Files found in ``.processing/`` that no claim names (left by a run before the state
        moved to the database): claimable at once, as if their holder's lease had run out."""
        rows = [(self.tenant, self.place, name, "") for name in names]
        if not rows:
            return
        with self._lock, self.db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO work (tenant, place, name, holder, lease_until, claimed_at) "
                f"VALUES (%s, %s, %s, %s, 0, {NOW}) ON CONFLICT (tenant, place, name) DO NOTHING",
                rows,
            )

    def take_over(self) -> list[str]:
        """Take every file whose holder's lease ran out (its holder died or hung): the names,
        oldest claim first. SKIP LOCKED: a row another worker is taking right now is left to
        it, never waited for, never taken twice."""
        taken: list[str] = []
        while True:
            with self._lock, self.db.transaction():
                row = self.db.execute(
                    "SELECT name, holder FROM work WHERE tenant = %s AND place = %s "
                    f"AND lease_until < {NOW} ORDER BY claimed_at LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED",
                    (self.tenant, self.place),
                ).fetchone()
                if row is None:
                    return taken
                self.db.execute(
                    f"UPDATE work SET holder = %s, lease_until = {NOW} + %s, "
                    "takeovers = takeovers + 1 WHERE tenant = %s AND place = %s AND name = %s",
                    (self.holder, self.lease_seconds, self.tenant, self.place, row[0]),
                )
            log.warning(
                "took over %s: the lease of %s ran out (it stopped or hung)",
                row[0],
                row[1] or "a run before the shared state",
            )
            self._hold(row[0])
            taken.append(row[0])

    def expired(self) -> int:
        """How many claims on this inbox wait to be taken over (a cheap look, no lock)."""
        with self._lock:
            row = self.db.execute(
                f"SELECT count(*) FROM work WHERE tenant = %s AND place = %s "
                f"AND lease_until < {NOW}",
                (self.tenant, self.place),
            ).fetchone()
        return int(row[0])

    def done(self, name: str) -> None:
        """The file left ``.processing/`` (archive, failed, or back to the inbox): the name is
        free. Only our own claim is dropped: one taken over meanwhile is the new holder's."""
        with self._lock:
            self.db.execute(
                "DELETE FROM work WHERE tenant = %s AND place = %s AND name = %s AND holder = %s",
                (self.tenant, self.place, name, self.holder),
            )
            self._held.discard(name)
            self._lost.discard(name)

    def lost(self, name: str) -> bool:
        """Our lease on ``name`` ran out and another worker holds it now: stop touching it."""
        with self._lock:
            return name in self._lost

    # --- the lease ------------------------------------------------------------------------------

    def _hold(self, name: str) -> None:
        with self._lock:
            self._held.add(name)
            self._lost.discard(name)
        if self._renewer is None:
            self._renewer = threading.Thread(
                target=self._renew_loop, name="etl-lease-renewer", daemon=True
            )
            self._renewer.start()

    def renew(self) -> None:
        """Extend the lease of every file we hold; one we no longer hold is marked lost."""
        with self._lock:
            if not self._held:
                return
            rows = self.db.execute(
                f"UPDATE work SET lease_until = {NOW} + %s WHERE tenant = %s AND place = %s "
                "AND holder = %s RETURNING name",
                (self.lease_seconds, self.tenant, self.place, self.holder),
            ).fetchall()
            still = {row[0] for row in rows}
            for name in self._held - still:
                log.error("lost the claim on %s: another worker took it over", name)
                self._lost.add(name)
            self._held &= still

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                self.renew()
            except Exception as error:  # the database away for a moment: try again later
                log.error("cannot renew the file leases: %s", type(error).__name__)

    def close(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        with self._lock:
            self.db.close()
