"""`etl run` and `etl watch` on an object-store inbox (``s3://bucket/prefix/``).

Settled objects (size and ETag unchanged between two listings) are claimed, downloaded to a
staging folder under the outbox, and run through the usual pipeline (``Sync``) as a local inbox.
Then each finished copy is written to ``<prefix>/archive/<run_id>/`` or ``failed/<run_id>/``
(with its ``.reason.txt`` and ``.errors.csv``), and only after that is the source deleted. A
record per staged object (``etl/state/object_store.py``) lets the next run finish a move that a
crash cut in two.

Who may take an object: with a shared state (PostgreSQL), the database's claims, named by the
store's URL, so workers on any machine share one prefix; each worker stages into a folder of its
own. With the SQLite ledger, the process that holds the staging folder's inbox lock, as for a
local inbox: one machine and one process per prefix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.core import failpoints
from etl.core.errors import ObjectStoreError, UsageError
from etl.core.files import beside, write_json
from etl.core.printable import printable
from etl.core.store_urls import shown_url
from etl.core.summary import RunSummary, run_sequence
from etl.deliver.client import ConnectClient
from etl.run.sync import EXIT_API, EXIT_ITEMS, EXIT_OK, MACHINE_ERRNOS, Sync
from etl.settings.config import Settings
from etl.state.claims import Claims
from etl.state.inbox import PROCESSING, InboxLock
from etl.state.ledger import ledger_for
from etl.state.object_store import (
    ObjectEntry,
    ObjectStore,
    StagedObject,
    StagedObjects,
    file_sha256,
    settled,
)

log = logging.getLogger("etl.run.objects")

STAGING = ".staging"


def store_for(settings: Settings) -> ObjectStore:
    return ObjectStore(settings.inbox_url, settings.inbox_endpoint_url, settings.inbox_region)


def staging_root(settings: Settings) -> Path:
    """``<outbox>/.staging/<digest of the store's URL and endpoint>``: one per prefix."""
    place = f"{settings.inbox_url}\n{settings.inbox_endpoint_url}"
    return settings.outbox / STAGING / hashlib.sha256(place.encode()).hexdigest()[:16]


@contextmanager
def staged_settings(settings: Settings) -> Iterator[Settings]:
    """The settings with ``inbox`` set to the staging folder. With a shared state the folder
    is this worker's own, held by its lock while it lives, and removed when it stops with
    nothing left to finish; a folder whose worker died is finished by the next worker."""
    root = staging_root(settings)
    if not settings.shared_state:
        yield replace(settings, inbox=root)
        return
    folder = root / f"worker-{os.getpid()}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True, exist_ok=True)
    lock = InboxLock(folder, purpose=f"etl worker (pid {os.getpid()})")
    holder = lock.acquire()
    if holder is not None:
        raise UsageError(holder)
    try:
        yield replace(settings, inbox=folder)
    finally:
        lock.release()
        if not any(StagedObjects(folder)):
            shutil.rmtree(folder, ignore_errors=True)


class ObjectSync(Sync):
    """One pass over an object-store inbox; ``settings.inbox`` is the staging folder
    (``staged_settings``). ``entries``: the objects the watcher saw settle (default: two
    listings ``settle_seconds`` apart). ``object_claims``: the watcher's, with a shared state."""

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[], ConnectClient],
        *,
        store: ObjectStore | None = None,
        entries: list[ObjectEntry] | None = None,
        object_claims: Claims | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(settings, client_factory, paths=[], **kwargs)
        self.store = store or store_for(settings)
        self.entries = entries
        self.object_claims = object_claims
        self.staged = StagedObjects(settings.inbox)
        self.pending_moves: list[str] = []
        self.refused_objects: list[str] = []  # could not be staged: moved to failed/ unread

    def __call__(self) -> RunSummary:
        self.settings.inbox.mkdir(parents=True, exist_ok=True)
        own_claims = False
        if self.settings.shared_state and self.object_claims is None:
            ledger_for(self.settings).close()  # its migrations make the claims' table
            self.object_claims = object_claims_for(self.settings, self.store)
            own_claims = True
        try:
            self._sweep_dead_workers()
            self._finish_objects(self.staged, self.settings.inbox, before_run=True)
            self.paths = self._stage()
            run = super().__call__()
            self._finish_objects(self.staged, self.settings.inbox, before_run=False)
        finally:
            if own_claims and self.object_claims is not None:
                self.object_claims.close()
        if self.refused_objects and run.exit_code == EXIT_OK:
            run.exit_code = EXIT_ITEMS  # as for a file refused unread
        if self.pending_moves and run.exit_code in (EXIT_OK, EXIT_ITEMS):
            run.exit_code = EXIT_API  # not finished: the next run moves them
        if (self.run_dir / "summary.json").exists():
            write_json(self.run_dir / "summary.json", run.as_json())
        return run

    # --- taking objects -------------------------------------------------------------------------

    def _settled_entries(self) -> list[ObjectEntry]:
        first = self.store.entries()
        if self.settings.settle_seconds <= 0 or not first:
            return first
        self.sleep(self.settings.settle_seconds)
        stable, changing = settled(first, self.store.entries())
        before = {entry.name for entry in first}
        for entry in changing:
            why = "its size or ETag changed" if entry.name in before else "it just arrived"
            log.info("%s is not settled (%s); the next run takes it", printable(entry.name), why)
        return stable

    def _stage(self) -> list[Path]:
        """Download the objects this worker may take; their staging copies, to be run."""
        staging = self.settings.inbox
        staged_names = {record.name for record in self.staged}
        paths = [staging / name for name in staged_names if (staging / name).exists()]
        for leftover in staging.iterdir():
            # A copy whose record was never written (killed between the two): taken again.
            known = leftover.name.startswith(".") or leftover.name in staged_names
            if leftover.is_file() and not known:
                leftover.unlink()
        if self.object_claims is not None:
            for name in self.object_claims.take_over():
                log.warning("%s: resuming it for a worker that stopped", printable(name))
                entry = self.store.current(name)
                resumed = self._download(entry) if entry is not None else None
                if resumed is None:
                    self.object_claims.done(name)
                else:
                    paths.append(resumed)
                    staged_names.add(name)
        entries = self.entries if self.entries is not None else self._settled_entries()
        for entry in entries:
            if self.api_down is not None or self.stop_requested():
                break
            if entry.name in staged_names:
                continue  # staged by a run that stopped before it finished: resumed
            if self.object_claims is not None and not self.object_claims.claim(entry.name):
                continue  # another worker has it
            taken = self._download(entry)
            if taken is not None:
                paths.append(taken)
            elif self.object_claims is not None:
                self.object_claims.done(entry.name)
        return paths

    def _download(self, entry: ObjectEntry) -> Path | None:
        target = self.settings.inbox / entry.name
        try:
            digest = self.store.download(entry.name, target)
        except OSError as error:
            if error.errno in MACHINE_ERRNOS:
                raise  # a full disk: every object would meet it; the run stops, none is lost
            # This object only (a name too long for the local file system): refused, said so.
            reason = f"refused: it cannot be copied to this machine to be read ({error.strerror})"
            self.store.refuse(entry.name, f"failed/{self.run.run_id}", reason)
            log.error("%s: %s; moved to failed/%s/", printable(entry.name), reason, self.run.run_id)
            self.refused_objects.append(entry.name)
            return None
        if digest is None:
            return None  # gone meanwhile: another worker finished it
        self.staged.add(StagedObject(entry.name, entry.version, entry.size, digest))
        return target

    # --- moving finished objects ----------------------------------------------------------------

    def _finish_objects(
        self, staged: StagedObjects, staging: Path, before_run: bool, dead: bool = False
    ) -> None:
        """Every staged object whose local copy left the staging folder: its outcome written
        under the prefix, then the source deleted. One a run put back (the API down, a stop)
        is dropped here and stays in the store for the next run; so is one a dead worker left
        half done (``dead``): its claim runs out and a live worker resumes it from the ledger."""
        for record in list(staged):
            waiting, processing = staging / record.name, staging / PROCESSING / record.name
            if waiting.exists() or processing.exists():
                if dead:
                    staged.drop(record.name)
                elif not before_run and waiting.exists() and not processing.exists():
                    waiting.unlink()  # put back: the object itself waits in the store
                    self._release(staged, record.name)
                continue
            found = self._local_outcome(record)
            if found is None:
                log.warning(
                    "%s: its staged copy is gone and no run archived it; the object stays in "
                    "the store and is taken again",
                    printable(record.name),
                )
                self._release(staged, record.name)
                continue
            try:
                self._move_object(staged, record, *found)
            except ObjectStoreError as error:
                log.error("%s: %s; the next run finishes the move", printable(record.name), error)
                self.pending_moves.append(record.name)

    def _release(self, staged: StagedObjects, name: str) -> None:
        staged.drop(name)
        if self.object_claims is not None and not self.object_claims.lost(name):
            self.object_claims.done(name)

    def _local_outcome(self, record: StagedObject) -> tuple[str, str, Path] | None:
        """Where the pipeline put the copy: (archive|failed, run id, path), this run's first,
        then the newest earlier run's holding the same bytes (a run killed after the move)."""
        outbox = self.settings.outbox
        for destination in ("archive", "failed"):
            mine = outbox / destination / self.run.run_id / record.name
            if mine.is_file():
                return destination, self.run.run_id, mine
        found: list[tuple[int, str, str, Path]] = []
        for destination in ("archive", "failed"):
            folder = outbox / destination
            for run in folder.iterdir() if folder.is_dir() else []:
                candidate = run / record.name
                if candidate.is_file() and candidate.stat().st_size == record.size:
                    found.append((run_sequence(run.name), run.name, destination, candidate))
        for _, run_id, destination, candidate in sorted(found, reverse=True):
            if file_sha256(candidate) == record.sha256:
                return destination, run_id, candidate
        return None

    def _move_object(
        self,
        staged: StagedObjects,
        record: StagedObject,
        destination: str,
        run_id: str,
        local: Path,
    ) -> None:
        name = record.name
        if self.object_claims is not None and self.object_claims.lost(name):
            staged.drop(name)  # another worker took it over: the object is theirs to move
            return
        key = f"{destination}/{run_id}/{name}"
        self.store.upload(local, key)
        if destination == "failed":
            for extra in (
                beside(local.parent, name, ".reason.txt"),
                beside(self.settings.outbox / "runs" / run_id, name, ".errors.csv"),
            ):
                if extra.is_file():
                    self.store.upload(extra, f"failed/{run_id}/{extra.name}")
        failpoints.reach("object.archived")
        now = self.store.current(name)
        if now is not None and (now.version, now.size) == (record.version, record.size):
            self.store.remove(name)
        elif now is not None:
            log.warning(
                "%s was replaced in the store after it was taken; the new version is left "
                "for the next run",
                printable(name),
            )
        self._release(staged, name)
        log.info("%s: moved to %s%s", printable(name), self.store.shown.rstrip("/") + "/", key)

    def _sweep_dead_workers(self) -> None:
        """With a shared state: the staging folders of workers that died on this machine (their
        lock is free) have their finished moves completed, then are removed."""
        if not self.settings.shared_state:
            return
        mine = self.settings.inbox
        for folder in mine.parent.iterdir():
            if folder == mine or not folder.name.startswith("worker-"):
                continue
            lock = InboxLock(folder, purpose="etl worker sweeping")
            if lock.acquire() is not None:
                continue  # alive
            try:
                self._finish_objects(StagedObjects(folder), folder, before_run=False, dead=True)
                if not any(StagedObjects(folder)):
                    shutil.rmtree(folder, ignore_errors=True)
            finally:
                lock.release()


def object_claims_for(settings: Settings, store: ObjectStore) -> Claims:
    """Claims named by the store's URL: every worker, on any machine, sees the same names."""
    return Claims(
        settings.state_url.reveal(),
        settings.state_key,
        f"object {store.place}",
        settings.lease_seconds,
    )


def publish_reports(settings: Settings, run_dir: Path) -> str | None:
    """Upload a run's report folder to ``[report] url`` (``<url>/runs/<run_id>/``): None when
    done (or nothing to do), else a sentence saying why not (the reports stay in the outbox)."""
    if not settings.report_url or not run_dir.is_dir():
        return None
    try:
        store = ObjectStore(settings.report_url, settings.inbox_endpoint_url, settings.inbox_region)
        for path in sorted(run_dir.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                store.upload(path, f"runs/{run_dir.name}/{path.name}")
    except ObjectStoreError as error:
        return f"the reports stay in {run_dir}: {error}"
    log.info("reports of run %s uploaded to %s", run_dir.name, shown_url(settings.report_url))
    return None


def object_inbox_status(settings: Settings, listed: int) -> dict[str, Any]:
    """What `etl status` says of an object-store inbox: the objects waiting under the prefix
    (one listing) and the ones staged on this machine, in the keys of a folder's status."""
    entries = store_for(settings).entries()
    root = staging_root(settings)
    staged = [
        record
        for folder in [root, *(root.glob("worker-*") if root.is_dir() else [])]
        for record in StagedObjects(folder)
    ]
    return {
        "inbox": shown_url(settings.inbox_url),
        "inbox_waiting_count": len(entries),
        "inbox_waiting": [
            {"name": e.name, "bytes": e.size, "modified_at": _moment(e.modified)}
            for e in entries[:listed]
        ],
        "inbox_processing_count": len(staged),
        "inbox_processing": [{"name": r.name, "bytes": r.size} for r in staged[:listed]],
    }


def _moment(modified: str) -> str:
    try:
        moment = datetime.fromtimestamp(float(modified), UTC)
    except ValueError:
        return modified
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
