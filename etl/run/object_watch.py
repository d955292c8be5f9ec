"""`etl watch` on an object-store inbox: the prefix is listed every ``rescan_seconds`` (an
object store sends no file-system events), and an object is taken once two listings at least
``settle_seconds`` apart show it with the same size and ETag. The rest is the local watcher's:
heartbeat, pauses while the API is down, the once-a-minute jobs, take-overs, graceful stop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.core.errors import ObjectStoreError
from etl.core.summary import now_text
from etl.deliver.client import ConnectClient
from etl.run.object_sync import ObjectSync, object_claims_for, store_for
from etl.run.sync import Sync
from etl.run.watch import Periodic, Watcher
from etl.settings.config import Settings
from etl.state.claims import Claims
from etl.state.ledger import ledger_for
from etl.state.object_store import ObjectEntry

log = logging.getLogger("etl.run.watch")


@dataclass
class Listed:
    """An object as the last listing showed it, since when, and in how many listings."""

    entry: ObjectEntry
    since: float
    listings: int = 1


class ObjectWatcher(Watcher):
    """Watches one object-store prefix; ``settings.inbox`` is its staging folder."""

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[], ConnectClient],
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, client_factory, **kwargs)
        self.store = store_for(settings)
        self.heartbeat.observer = "listing"
        self._listed: dict[str, Listed] = {}
        self.object_claims: Claims | None = None
        if settings.shared_state:
            ledger_for(settings).close()  # its migrations make the claims' table
            self.object_claims = object_claims_for(settings, self.store)
            self.periodic.append(
                Periodic(
                    "object take over",
                    max(1.0, settings.lease_seconds / 3),
                    self._take_over_objects,
                )
            )

    def _take_over_objects(self) -> None:
        """Objects whose worker died wait in the store until their lease runs out; with no new
        object arriving, nothing else would start a run to resume them."""
        if self.object_claims is not None and self.object_claims.expired():
            self._process([])

    def run(self) -> int:
        try:
            return super().run()
        finally:
            if self.object_claims is not None:
                self.object_claims.close()

    # No file-system events from a store: the listing is all there is.
    def _start_observer(self) -> None:
        return None

    def _stop_observer(self) -> None:
        return None

    def _tick(self) -> None:
        now = self.clock()
        if now >= self._next_rescan:
            self._next_rescan = now + self.rescan_seconds
            self._list(now)
        ready = [
            self.settings.inbox / name
            for name, listed in self._listed.items()
            if listed.listings >= 2 and now - listed.since >= self.settings.settle_seconds
        ]
        self.heartbeat.files_queued = len(self._listed)
        self._after_scan(ready, now)

    def _list(self, now: float) -> None:
        try:
            entries = self.store.entries()
        except ObjectStoreError as error:
            self.heartbeat.last_error = str(error)
            log.error("%s; listing again in %.0f s", error, self.rescan_seconds)
            return
        self.heartbeat.last_scan_at = now_text()
        current = {entry.name: entry for entry in entries}
        for name in list(self._listed):
            if name not in current:
                del self._listed[name]  # taken by another worker, or deleted
        for name, entry in current.items():
            listed = self._listed.get(name)
            if listed is None or listed.entry != entry:
                self._listed[name] = Listed(entry, now)  # new, or changed: settle anew
            else:
                listed.listings += 1

    def _new_sync(self, ready: list[Path]) -> Sync:
        entries = [self._listed[p.name].entry for p in ready if p.name in self._listed]
        for path in ready:
            self._listed.pop(path.name, None)  # taken now, or listed anew if it comes back
        return ObjectSync(
            self.settings,
            self.client_factory,
            store=self.store,
            entries=entries,
            object_claims=self.object_claims,
            observer=self.run_observer,
            stop_requested=self.stopping.is_set,
            claims=self.claims,
            leadership=self.leadership,
        )
