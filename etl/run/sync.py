"""The online half of the pipeline (`etl run`): inbox -> claim -> read/map/validate -> ledger
check -> batch -> submit -> ledger -> report -> archive/failed.

Offline and online share ``pipeline.prepare`` and ``pipeline.iter_validated``. Crash safety comes
from the order of the steps: the ledger records a batch ``pending`` before it is sent and the
accepted orders after; reports are written before the input file moves; the move is one rename.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import os
import re
import sqlite3
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import orjson
import psycopg

from etl.core import failpoints
from etl.core.codes import Problem
from etl.core.errors import (
    ApiError,
    ApiMisconfigured,
    AuthFailed,
    RetriableApiError,
    UnreadableFile,
    UsageError,
)
from etl.core.events import Observer
from etl.core.files import atomic_writer, beside, write_json
from etl.core.inputs import InputFile, InputRefused, allowed_owners
from etl.core.kinds import KINDS
from etl.core.models import SETTLED, ItemResult, MappedItem, Outcome, Violation
from etl.core.printable import printable
from etl.core.schema import ORDERS
from etl.core.summary import FileSummary, RunSummary, new_run_id, now_text
from etl.deliver.batch import Batch, Batcher
from etl.deliver.client import ConnectClient
from etl.deliver.sending import SendingPipeline, Sent
from etl.deliver.submit import deliver
from etl.operations.actions import ActionContext, due_work
from etl.operations.kinds import OperationContext, operation_for
from etl.report.files import write_errors, write_items
from etl.run.check import (
    Prepared,
    empty_reason,
    iter_encoded,
    iter_validated,
    paused_gc,
    prefetched,
    prepare,
)
from etl.run.parallel import Workers, invalid_result
from etl.run.rejected import fixes_by_row, write_rejected
from etl.settings.config import Settings
from etl.state.claims import Claims, inbox_place
from etl.state.inbox import (
    PROCESSING,
    archive,
    claim,
    claimed_files,
    quarantine,
    release,
    stable_files,
    waiting_files,
)
from etl.state.leader import Leadership
from etl.state.ledger import Ledger, OrderVersion, ledger_for
from etl.state.witness import check_and_count
from etl.transform.fast.stream import scan_file

log = logging.getLogger("etl")
T = TypeVar("T")

EXIT_OK, EXIT_ITEMS, EXIT_CONFIG, EXIT_API, EXIT_INTERNAL = 0, 1, 2, 3, 4
# Errors of the machine, not of one file: every file would meet them; the run stops and the
# files wait where they are (claimed files are resumed by the next run).
MACHINE_ERRNOS = frozenset(
    {
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.EROFS,
        errno.EIO,
        errno.ENOMEM,
        errno.EMFILE,
        errno.ENFILE,
    }
)
# The API failures that stop a run: every later call would fail the same way.
STOPPING_ERRORS = (RetriableApiError, AuthFailed, ApiMisconfigured)
# A writer that kept the file open appended to it after the claim: what was read is not all of
# it. Orders already sent are fine (upserts; the ledger has them), the rest come next time.
CHANGED_WHILE_READ = "the file changed while it was read; it will be read again once it stays still"


UPDATED_AT = re.compile(rb'"channel_updated_at":"([^"]*)"')


def content_hash(item: MappedItem) -> str:
    """Identity of an order's content: the bytes sent for it, with its origin. The same order
    exported with its columns in another order hashes apart, and is sent once more (an upsert
    of the same content changes nothing); hashing a re-sorted copy cost a decode and an encode
    of every order."""
    digest = hashlib.sha256(orjson.dumps(item.origin.as_json() if item.origin else {}))
    digest.update(b"\n")
    digest.update(item.document or orjson.dumps(item.body, option=orjson.OPT_SORT_KEYS))
    return digest.hexdigest()


def updated_at(item: MappedItem) -> str:
    """The order's channel_updated_at. From its JSON when it has one: the schema names no other
    field so, and inside a string a quote is escaped, so the first match is the order's own."""
    if item.document is None:
        return str(item.body.get("channel_updated_at", ""))
    found = UPDATED_AT.search(item.document)
    return found.group(1).decode() if found else ""


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def is_older(candidate: str, stored: str) -> bool:
    """Connect ignores an update whose channel_updated_at is older than the stored one."""
    try:
        return _moment(candidate) < _moment(stored)
    except ValueError:
        return False


def _attempt(work: Callable[[], T]) -> Future[T]:
    """``work()`` done now, its value or its error kept for later, as a finished Future."""
    done: Future[T] = Future()
    try:
        done.set_result(work())
    except Exception as error:
        done.set_exception(error)
    return done


def _delivered_before(known: OrderVersion, file_sha256: str) -> str:
    if known.file_sha256 == file_sha256:
        run = f"run {known.run_id}" if known.run_id else "an earlier run"
        return f"already delivered from this same file by {run}"
    return "same content as the version already delivered to this API"


def _failed_reason(file_run: FileRun, run_id: str) -> str:
    """What `.reason.txt` says of a file that goes to failed/: counts in the kind's words."""
    summary, name = file_run.summary, printable(file_run.path.name)
    noun = KINDS[summary.kind].plural if summary.kind in KINDS else "items"
    counts = Counter(summary.outcomes)
    problems = ", ".join(
        f"{counts[o.value]} {o.value.lower()}"
        for o in (Outcome.INVALID, Outcome.REJECTED, Outcome.UNKNOWN)
        if counts[o.value]
    )
    settled = sum(counts[o.value] for o in SETTLED)
    unsettled = summary.items - settled
    text = f"{unsettled} of {summary.items} {noun} were not accepted ({problems}). "
    if settled:
        text += f"The other {settled} were delivered, or need nothing more. "
    if counts[Outcome.UNKNOWN.value]:
        text += (
            "UNKNOWN: the request left but its answer was lost, so Connect may or may not have "
            "them; they are not sent again, to avoid reporting them twice: check in Connect. "
        )
    return text + (
        f"Every problem is listed in runs/{run_id}/{beside(Path(), name, '.errors.csv')} and "
        "items.csv; fix them "
        f"and drop the file again: {noun} already delivered are skipped as unchanged."
    )


def undocumented_answer(error: ApiError) -> ApiMisconfigured:
    """An answer the operation does not document (410, 415, 418...): nothing says the next
    call would fare better, and nothing says the items are wrong: stop, keep the files."""
    return ApiMisconfigured(
        f"{error}: an answer this call does not document; sending stopped and the files wait "
        "in the inbox (check api_url, a proxy in between, or the API's status)",
        status=error.status,
    )


class ApiDown(Exception):
    """The API stayed unreachable, refused our credentials, or is not where the settings say:
    stop sending for this run; the files go back to the inbox."""

    def __init__(self, cause: ApiError) -> None:
        super().__init__(str(cause))
        self.cause = cause

    @property
    def exit_code(self) -> int:
        """2 for settings to fix (a wrong URL): waiting will not help; 3 otherwise."""
        return EXIT_CONFIG if isinstance(self.cause, ApiMisconfigured) else EXIT_API


@dataclass
class FileRun:
    """One file being processed: its identity and what happened to its items so far."""

    path: Path
    sha256: str
    summary: FileSummary
    results: list[ItemResult] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)  # errors.csv, after the violations
    retries_before: int = 0
    stopped: bool = False  # a graceful stop left some batches unsent
    opened: InputFile | None = None  # what is read; None when only a move is left to do


@dataclass(frozen=True)
class FileReport:
    """What one file's items.csv and errors.csv say, kept for the Python API (``keep_reports``)."""

    name: str
    results: list[ItemResult]
    violations: list[Violation]
    warnings: list[Violation]


class Sync:
    """Process every file waiting in the inbox once, then stop (`etl run`)."""

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[], ConnectClient],
        *,
        force: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        observer: Observer | None = None,
        stop_requested: Callable[[], bool] = lambda: False,
        paths: list[Path] | None = None,
        keep_reports: bool = False,
        claims: Claims | None = None,
        leadership: Leadership | None = None,
        workers: Workers | None = None,
    ) -> None:
        """``stop_requested`` is asked before each file and each batch (graceful stop: the batch
        in flight finishes, the rest waits for the next run); ``paths`` limits the run to those
        inbox files (the watcher hands over files it saw settle), default every waiting file;
        ``keep_reports`` keeps each file's results and problems in ``reports`` too.
        ``claims``: the watcher's own, when the state is shared (otherwise the run makes its
        own for a state URL). ``leadership``: the watcher's, which says whether this worker
        runs the once-a-minute jobs (a run asks for it once).
        ``workers``: processes that read and validate big files (as for `etl check`), so that
        a file whose orders were mostly delivered before is judged at `etl check`'s pace. They
        are used (and started) only while the file sends little (``_sending_little``): while
        the pacing is what a file waits for, they would only add processes and memory."""
        self.settings = settings
        self.client_factory = client_factory
        self.force = force
        self.sleep = sleep
        self.observer = observer or Observer()
        self.stop_requested = stop_requested
        self.paths = paths
        self.claims = claims
        self._own_claims = False
        self._holding: set[str] = set()  # names this run claimed and has not let go
        self.leadership = leadership
        self.workers = workers
        self._sending_little = False  # the last chunk sent under a quarter of its items
        self.run = RunSummary(
            run_id=new_run_id(settings.outbox),
            command="run",
            started_at=now_text(),
            target=settings.target,
            tenant=settings.tenant,
        )
        self.run_dir = settings.outbox / "runs" / self.run.run_id
        self._client: ConnectClient | None = None
        self.api_down: ApiDown | None = None
        self._ledger_lock = threading.Lock()  # the sender thread records batches pending
        self.keep_reports = keep_reports
        self.reports: list[FileReport] = []

    @property
    def client(self) -> ConnectClient:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def __call__(self) -> RunSummary:
        clock = time.perf_counter()
        ledger = ledger_for(self.settings)
        try:
            check_and_count(ledger, self.settings.outbox, self.settings.fresh_ledger)
        except BaseException:
            ledger.close()
            raise
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.settings.shared_state:
            # With workers sharing the outbox and the ledger, another run without a summary
            # yet, or with a batch pending, is most likely alive: a run that died is noticed
            # by its lease instead (etl/state/claims.py).
            self._recover_interrupted_runs()
            ledger.abandon_pending(self.run.run_id)
        try:
            if self.settings.shared_state and self.claims is None:
                self.claims = Claims(
                    self.settings.state_url.reveal(),
                    self.settings.state_key,
                    inbox_place(self.settings.inbox),
                    self.settings.lease_seconds,
                )
                self._own_claims = True
            for path in self._take_files():
                if self.api_down is not None or self.stop_requested():
                    release(path, self.settings.inbox)
                    self._unclaim(path)
                    self.run.left_in_inbox.append(path.name)
                    continue
                self.run.files.append(self._process_guarded(path, ledger))
                self._unclaim(path)
            if self.api_down is None and not self.stop_requested():
                self._due_work(ledger)
        finally:
            ledger.close()
            if self._client is not None:
                self._client.close()
            self._let_go()
            if self._own_claims and self.claims is not None:
                self.claims.close()
        self.run.exit_code = self._exit_code()
        self.run.finished_at = now_text()
        self.run.seconds = time.perf_counter() - clock
        if not self.run.files and not self.run.due_work and not any(self.run_dir.iterdir()):
            # Nothing was waiting: a cron job every minute must not fill runs/ with empty runs.
            self.run_dir.rmdir()
            return self.run
        write_json(self.run_dir / "summary.json", self.run.as_json())
        return self.run

    def _due_work(self, ledger: Ledger) -> None:
        """Queued order actions and tracked ids do not wait for a file of their kind: under
        cron, the next file may never come. With a shared state only the leader does it: two
        workers flushing at once would send the same actions twice."""
        if self.settings.shared_state:
            leadership = self.leadership or Leadership(
                self.settings.state_url.reveal(), self.settings.state_key
            )
            try:
                if not leadership.leading():
                    return
                self._leader_due_work(ledger)
            finally:
                if leadership is not self.leadership:
                    leadership.close()
            return
        self._leader_due_work(ledger)

    def _leader_due_work(self, ledger: Ledger) -> None:
        context = ActionContext(
            lambda: self.client,
            ledger,
            self.settings.outbox,
            "",
            time.time,
            self.settings.action_poll_seconds,
        )
        try:
            self.run.due_work = due_work(context)
        except STOPPING_ERRORS as error:
            self.api_down = ApiDown(error)
            log.error("order action log and tracking: %s", error)

    def _take_files(self) -> Iterable[Path]:
        inbox = self.settings.inbox
        if self.paths is not None:
            stable, changing = [p for p in self.paths if os.path.lexists(p)], list[Path]()
        else:
            stable, changing = stable_files(
                waiting_files(inbox), self.settings.settle_seconds, self.sleep
            )
        for path in changing:
            log.info(
                "%s is still being written; it will be taken by the next run", printable(path.name)
            )
        if self.claims is not None:
            return self._claimed_one_by_one(stable)
        resumed = claimed_files(inbox)
        return resumed + [c for c in (claim(p, inbox) for p in stable) if c is not None]

    def _claimed_one_by_one(self, stable: list[Path]) -> Iterator[Path]:
        """With a shared state: each file claimed in the database just before it is processed,
        so that workers share the inbox file by file instead of the first taking it all."""
        assert self.claims is not None
        for path in self._taken_over():
            self._holding.add(path.name)
            yield path
        for path in stable:
            if self.api_down is not None or self.stop_requested():
                return  # the files not claimed yet stay in the inbox, for others or later
            if not os.path.lexists(path) or not self.claims.claim(path.name):
                continue  # another worker took it
            taken = claim(path, self.settings.inbox)
            if taken is None:
                self.claims.done(path.name)
            else:
                self._holding.add(taken.name)
                yield taken

    def _taken_over(self) -> list[Path]:
        """Files whose worker died (its lease ran out), and files left in ``.processing/`` by
        a run from before the shared state, taken over to be resumed from the ledger."""
        assert self.claims is not None
        folder = self.settings.inbox / PROCESSING
        self.claims.register_orphans(path.name for path in claimed_files(self.settings.inbox))
        resumed = []
        for name in self.claims.take_over():
            path = folder / name
            if os.path.lexists(path):
                resumed.append(path)
            else:
                # Its worker died before moving it in, or after moving it out: nothing to
                # resume here (a file still in the inbox is claimed as new).
                self.claims.done(name)
        return resumed

    def _unclaim(self, path: Path) -> None:
        self._holding.discard(path.name)
        if self.claims is not None and not self.claims.lost(path.name):
            self.claims.done(path.name)

    def _let_go(self) -> None:
        """A run stopped by an error (the ledger, the machine) leaves files claimed in
        ``.processing/``. A watcher's claims outlive the run and would be renewed forever:
        dropped, the files are claimable at once (etl/state/claims.py, orphans) and resumed."""
        if self.claims is None:
            return
        for name in sorted(self._holding):
            try:
                self.claims.done(name)
            except psycopg.Error as error:  # its lease runs out instead
                log.error("cannot let go of the claim on %s: %s", printable(name), error)
        self._holding.clear()

    def _lost(self, file_run: FileRun) -> bool:
        """Our lease on the file ran out (this worker hung) and another worker took it over."""
        return self.claims is not None and self.claims.lost(file_run.path.name)

    def _retries(self) -> int:
        return 0 if self._client is None else self._client.stats.retries

    def _exit_code(self) -> int:
        if self.api_down is not None:
            return self.api_down.exit_code
        if any(file.status == "error" for file in self.run.files):
            return EXIT_INTERNAL  # a bug met one file; the others went on
        if self.run.left_in_inbox or any(file.unfinished for file in self.run.files):
            return EXIT_API  # stopped with work left: the inputs wait in the inbox
        bad = {Outcome.INVALID.value, Outcome.REJECTED.value, Outcome.UNKNOWN.value}
        for file in self.run.files:
            if file.status == "unreadable" or any(file.outcomes.get(o) for o in bad):
                return EXIT_ITEMS
        return EXIT_OK

    # --- one file -------------------------------------------------------------------------------

    def _process_guarded(self, path: Path, ledger: Ledger) -> FileSummary:
        """One file, whatever goes wrong with it: a bug or an error only this file meets puts it
        in failed/ with its reason, and the run goes on with the others (a poison pill must not
        hold the inbox behind it on every later run). The ledger and the machine's errors stop
        the run: every file would meet them."""
        try:
            return self._process(path, ledger)
        except (UsageError, sqlite3.Error, psycopg.Error):
            raise
        except UnreadableFile as error:
            # Met after the first orders went out (a corrupt row group late in a Parquet file):
            # the file's own problem, said in its words, not a bug.
            reason = (
                f"{error.reason}. Orders sent before this point are recorded and will be "
                "skipped as unchanged when the file comes back."
            )
            return self._failed_file(
                path, ledger, FileSummary(path.name, status="unreadable"), reason
            )
        except OSError as error:
            if error.errno in MACHINE_ERRNOS:
                raise
            return self._failed_by_error(path, ledger, error)
        except Exception as error:
            return self._failed_by_error(path, ledger, error)

    def _failed_by_error(self, path: Path, ledger: Ledger, error: Exception) -> FileSummary:
        name = path.name
        trace = beside(self.run_dir, name, ".traceback.txt")
        with atomic_writer(trace) as stream:
            stream.write("".join(traceback.format_exception(error)))
        reason = (
            f"internal error while processing this file ({type(error).__name__}: {error}); "
            f"the other files went on. Orders delivered before the error are recorded and "
            f"will be skipped as unchanged when the file comes back. The details are in "
            f"runs/{self.run.run_id}/{trace.name}: please report them."
        )
        log.error("%s: %s", printable(name), reason)
        return self._failed_file(path, ledger, FileSummary(name=name, status="error"), reason)

    def _failed_file(
        self, path: Path, ledger: Ledger, summary: FileSummary, reason: str
    ) -> FileSummary:
        """A file that could not be finished the usual way: to failed/ with its reason."""
        summary.reason = reason
        if path.is_file() and not path.is_symlink():  # never read through a link
            sha256 = scan_file(path).sha256
            summary.sha256 = sha256
            ledger.file_claimed(sha256, path.name, self.run.run_id)
            ledger.file_reported(sha256, "failed", reason)
            self._finish_move(path, sha256, "failed", reason, ledger)
        return summary

    def _process(self, path: Path, ledger: Ledger) -> FileSummary:
        """Open the claimed file once, as what it is (etl/core/inputs.py), and read only that."""
        summary = FileSummary(name=path.name)
        try:
            opened = InputFile.open(path, allowed_owners(self.settings.inbox))
        except InputRefused as refused:
            return self._refuse(path, summary, f"refused: {refused.reason}")
        except OSError as error:
            summary.status, summary.reason = "unreadable", f"cannot open the file: {error}"
            return summary
        with opened:
            return self._process_open(opened, ledger, summary)

    def _put_back(self, path: Path, summary: FileSummary, why: str) -> FileSummary:
        """Back to the inbox, not done: the next run (or the watcher) takes it again."""
        release(path, self.settings.inbox)
        summary.reason = f"left in the inbox for the next run: {why}"
        summary.unfinished = True
        if why == CHANGED_WHILE_READ:
            log.warning("%s: %s", printable(path.name), why)
        return summary

    def _refuse(self, path: Path, summary: FileSummary, reason: str) -> FileSummary:
        """A link, a pipe, another name for a file elsewhere: moved to failed/ unread."""
        summary.status, summary.reason = "unreadable", reason
        violation = Violation(path.name, (), None, "$", Problem.UNREADABLE_FILE, reason)
        write_errors(beside(self.run_dir, path.name, ".errors.csv"), path.name, [violation])
        quarantine(path, self.settings.outbox, self.run.run_id, reason)
        log.warning("%s: %s", printable(path.name), reason)
        return summary

    def _process_open(self, opened: InputFile, ledger: Ledger, summary: FileSummary) -> FileSummary:
        started = time.perf_counter()
        path = opened.path
        # One pass over the bytes (the fingerprint, and what the CSV reader checks) beside the
        # reading: a big file's first orders go out seconds sooner. Only the fingerprint says
        # whether the file is to be read at all (a duplicate is not), so a duplicate is read
        # for nothing: the price of not waiting for it on every other file.
        with ThreadPoolExecutor(1, thread_name_prefix="etl-scan") as scanner:
            scan = scanner.submit(scan_file, opened.data)
            reading = _attempt(lambda: prepare(path, self.settings, scan=scan, data=opened.data))
            try:
                scanned = scan.result()
            except OSError as error:
                summary.status, summary.reason = "unreadable", f"cannot open the file: {error}"
                return summary
        sha256 = scanned.sha256
        summary.sha256 = sha256
        record = ledger.file_record(sha256)
        if record is not None and record.status == "reported" and record.destination:
            # Killed between the reports and the move: only the move was left to do.
            self._finish_move(path, sha256, record.destination, record.reason or "", ledger)
            summary.status = "resumed"
            summary.reason = (
                f"reported by run {record.run_id} before an interruption; "
                f"now moved to {record.destination}/"
            )
            return summary
        if record is not None and record.status == "claimed" and record.run_id != self.run.run_id:
            self._drop_partial_reports(record.run_id, path.name)
        if opened.changed():
            return self._put_back(path, summary, CHANGED_WHILE_READ)
        if not self.force and record is not None and record.status == "delivered":
            archive(path, self.settings.outbox, self.run.run_id)
            summary.status = "duplicate"
            summary.reason = (
                "identical to a file already delivered whole to this API (use --force to send "
                "again)"
            )
            log.info(
                "%s: duplicate of a processed file; archived, nothing sent", printable(path.name)
            )
            return summary
        ledger.file_claimed(sha256, path.name, self.run.run_id)
        file_run = FileRun(path, sha256, summary, retries_before=self._retries(), opened=opened)
        try:
            prepared = reading.result()
        except UnreadableFile as error:
            if opened.changed():  # unreadable, maybe, only because it was being written
                ledger.file_released(sha256)
                return self._put_back(path, summary, CHANGED_WHILE_READ)
            summary.status, summary.reason = "unreadable", error.reason
            file_run.violations.append(
                Violation(path.name, (), None, "$", Problem.UNREADABLE_FILE, error.reason)
            )
            write_errors(
                beside(self.run_dir, path.name, ".errors.csv"), path.name, file_run.violations
            )
            ledger.file_reported(sha256, "failed", error.reason)
            self._finish_move(path, sha256, "failed", error.reason, ledger)
            summary.seconds = time.perf_counter() - started
            return summary
        failpoints.reach("read")
        file_run.violations.extend(prepared.user_columns.problems)  # a column the file lacks
        file_run.warnings.extend(prepared.warnings)  # merged cells of a workbook...
        summary.kind = prepared.kind.name
        summary.rows = prepared.rows
        if not prepared.rows:  # reported, then archived: it has nothing to fail on
            summary.status, summary.reason = "empty", empty_reason(prepared.kind)
        self.observer.file_started(path.name, summary.rows)
        if prepared.kind is not ORDERS:
            self._process_operation(prepared, file_run, ledger)
            self._finish(file_run, ledger)
            summary.seconds = time.perf_counter() - started
            self.observer.file_finished(summary)
            return summary
        batcher = Batcher(f"{sha256[:8]}-{self.run.run_id}", prepared.kind.max_items)
        items_property = prepared.kind.items_property
        # Three things at once: reading and validating run a few chunks ahead (a thread), one
        # batch is on the wire (the sender thread, batch after batch, as the pacing allows), and
        # this thread records what came back. What is recorded, and in which order, is what the
        # one-thing-at-a-time loop recorded: see SendingPipeline.
        # No cycle collection meanwhile: each one walks every live object (all the orders in
        # flight) and holds the GIL the while, which held requests back by up to 0.3 s.
        with (
            paused_gc(),
            SendingPipeline(
                lambda batch: self._deliver(batch, file_run, ledger, items_property),
                lambda batch, sent: self._record(batch, file_run, ledger, sent),
            ) as sending,
        ):
            self._sending_little = False
            encoded = iter_encoded(prepared, self.workers, wanted=lambda: self._sending_little)
            for chunk in prefetched(encoded):
                self.observer.items_validated(
                    path.name, len(chunk), sum(len(i.rows) for i in chunk)
                )
                screened = FileRun(path, sha256, summary)  # appended in turn, see above
                to_send = self._screen(chunk, screened, ledger)
                # At 20 requests/s a chunk's orders take longer to send than to judge, unless
                # most of them are not sent (delivered before, or invalid): then judging is what
                # the file waits for, and the workers judge the next chunks.
                self._sending_little = 4 * len(to_send) < len(chunk)
                sending.then(functools.partial(self._merge, file_run, screened))
                for batch in batcher.add(to_send):
                    sending.send(batch)
            for batch in batcher.flush():
                sending.send(batch)
        self._finish(file_run, ledger)
        summary.seconds = time.perf_counter() - started
        self.observer.file_finished(summary)
        return summary

    @staticmethod
    def _report_invalid(item: MappedItem, file_run: FileRun) -> None:
        """An item caught locally: every violation reported, the first in its items.csv line
        (the file's own problems, which every item carries, are reported once, by _process_open)."""
        file_run.violations.extend(v for v in item.violations if not v.whole_file)
        file_run.results.append(invalid_result(item))

    def _screen(
        self, chunk: list[MappedItem], file_run: FileRun, ledger: Ledger
    ) -> list[MappedItem]:
        """Invalid items are reported; unchanged and stale ones are not sent (ledger)."""
        candidates: list[MappedItem] = []
        for item in chunk:
            file_run.warnings.extend(item.warnings)
            if item.violations:
                self._report_invalid(item, file_run)
            else:
                candidates.append(item)
        if self.force:
            return candidates
        with self._ledger_lock:
            versions = ledger.versions(item.key for item in candidates)
        to_send: list[MappedItem] = []
        for item in candidates:
            known = versions.get(item.key)
            if known is None:
                to_send.append(item)
            elif known.content_hash == content_hash(item):
                # Accepted already: by this very file in an earlier run that was stopped or
                # killed, or by another file. Either way this run did not deliver it, and says
                # so: totals over runs count each delivery once.
                file_run.results.append(
                    ItemResult(
                        item.item_id,
                        item.origin,
                        item.rows,
                        Outcome.UNCHANGED,
                        known.batch_id,
                        message=_delivered_before(known, file_run.sha256),
                    )
                )
            elif is_older(updated_at(item), known.channel_updated_at):
                file_run.results.append(
                    ItemResult(
                        item.item_id,
                        item.origin,
                        item.rows,
                        Outcome.STALE,
                        known.batch_id,
                        code=Problem.STALE,
                        message=(
                            f"channel_updated_at {updated_at(item)} is older "
                            f"than the version already accepted ({known.channel_updated_at}); "
                            "Connect would ignore it"
                        ),
                    )
                )
            else:
                to_send.append(item)
        return to_send

    def _merge(self, file_run: FileRun, screened: FileRun) -> None:
        file_run.results.extend(screened.results)
        file_run.violations.extend(screened.violations)
        file_run.warnings.extend(screened.warnings)

    def _deliver(
        self, batch: Batch, file_run: FileRun, ledger: Ledger, items_property: str
    ) -> Sent:
        """What a sender thread does with a batch: decide to send, record it pending, send it,
        record what Connect accepted."""
        if self.api_down is not None:
            return Sent(skipped=str(self.api_down))
        if self.stop_requested() or self._lost(file_run):
            return Sent(stopped=True)
        with self._ledger_lock:
            ledger.batch_pending(batch.batch_id, file_run.sha256, self.run.run_id, len(batch.items))
        failpoints.reach("batch.pending")
        try:
            delivery = deliver(
                self.client.upsert_orders,
                batch.batch_id,
                batch.origin,
                list(batch.items),
                items_property,
            )
        except STOPPING_ERRORS as error:
            self.api_down = ApiDown(error)  # now, so that the next batch is not sent
            return Sent(error=error)
        except ApiError as error:
            unexpected = undocumented_answer(error)
            self.api_down = ApiDown(unexpected)
            return Sent(error=unexpected)
        failpoints.reach("batch.sent")
        # In the ledger as soon as answered, not in the file's turn: a crash then leaves
        # pending (to send again) only the batches that were on the wire.
        accepted = [
            (d.item.key, content_hash(d.item), updated_at(d.item))
            for d in delivery.results
            if d.outcome is Outcome.ACCEPTED
        ]
        status = "accepted" if len(accepted) == len(batch.items) else "rejected"
        with self._ledger_lock:
            ledger.batch_finished(
                batch.batch_id,
                file_run.sha256,
                status,
                accepted,
                204 if accepted else None,
                run_id=self.run.run_id,
            )
        return Sent(delivery=delivery)

    def _record(self, batch: Batch, file_run: FileRun, ledger: Ledger, sent: Sent) -> None:
        """What a batch came to: the results, the log line, the observer (and the ledger, for a
        batch not answered: a delivered one is there already)."""
        if sent.skipped is not None:
            self._mark_failed(batch.items, batch.batch_id, file_run, sent.skipped)
            return
        if sent.stopped:
            file_run.stopped = True
            self._mark_failed(batch.items, batch.batch_id, file_run, "the tool was stopped")
            return
        if sent.error is not None:
            error = sent.error
            with self._ledger_lock:
                ledger.batch_finished(
                    batch.batch_id, file_run.sha256, "failed", [], error.status, str(error)
                )
            log.error("batch %s: giving up: %s", batch.batch_id, error)
            self._mark_failed(batch.items, batch.batch_id, file_run, str(error))
            return
        delivery = sent.delivery
        assert delivery is not None  # in the ledger already (_deliver)
        accepted = [d for d in delivery.results if d.outcome is Outcome.ACCEPTED]
        file_run.summary.requests += delivery.requests
        file_run.summary.extra_requests += delivery.extra_requests
        for result in delivery.results:
            item = result.item
            file_run.results.append(
                ItemResult(
                    item.item_id,
                    item.origin,
                    item.rows,
                    result.outcome,
                    batch.batch_id,
                    result.http_status,
                    result.code,
                    result.message,
                )
            )
            if result.outcome is Outcome.REJECTED:
                file_run.violations.append(
                    Violation(
                        file=item.source,
                        rows=item.rows,
                        item_id=item.item_id,
                        path="$",
                        code=result.code or "REJECTED",
                        message=f"rejected by Connect: {result.message}",
                    )
                )
        log.info(
            "batch %s: %d orders, %d accepted, %d request(s)",
            batch.batch_id,
            len(batch.items),
            len(accepted),
            delivery.requests,
        )
        self.observer.batch_finished(
            file_run.path.name, batch.batch_id, len(batch.items), len(accepted), delivery.requests
        )

    def _mark_failed(
        self, items: Iterable[MappedItem], batch_id: str, file_run: FileRun, reason: str
    ) -> None:
        file_run.results.extend(
            ItemResult(
                i.item_id,
                i.origin,
                i.rows,
                Outcome.FAILED,
                batch_id,
                code=Problem.NOT_SENT,
                message=f"not delivered, will be retried by the next run: {reason}",
            )
            for i in items
        )

    def _finish_move(
        self,
        path: Path,
        sha256: str,
        destination: str,
        reason: str,
        ledger: Ledger,
    ) -> None:
        """The last step of a file: one rename to archive/ or failed/, then the ledger says so.
        A file goes to archive/ only when every item was settled (``SETTLED``): it is then
        ``delivered``, and a later copy of it is a duplicate; any other is judged again."""
        outbox, run_id = self.settings.outbox, self.run.run_id
        if destination == "failed":
            quarantine(path, outbox, run_id, reason)
        else:
            archive(path, outbox, run_id)
        ledger.file_finished(sha256, "delivered" if destination == "archive" else "failed")

    def _drop_partial_reports(self, run_id: str, name: str) -> None:
        """A run killed while reporting a file left half its reports: this run writes them anew."""
        folder = self.settings.outbox / "runs" / run_id
        for suffix in (".items.csv", ".errors.csv"):
            beside(folder, name, suffix).unlink(missing_ok=True)

    def _recover_interrupted_runs(self) -> None:
        """Runs killed before their summary: say so in a summary.json, drop their temp files."""
        runs = self.settings.outbox / "runs"
        if not runs.is_dir():
            return
        for folder in runs.iterdir():
            if not folder.is_dir() or folder == self.run_dir or (folder / "summary.json").exists():
                continue
            for temp in folder.glob(".*.tmp"):
                temp.unlink(missing_ok=True)
            write_json(
                folder / "summary.json",
                {
                    "run_id": folder.name,
                    "interrupted": True,
                    "note": (
                        "this run was stopped before it finished (killed or crashed); the files "
                        f"it had claimed were resumed by run {self.run.run_id} or later"
                    ),
                    "reports": sorted(p.name for p in folder.iterdir() if p.name != "summary.json"),
                },
            )

    def _finish(self, file_run: FileRun, ledger: Ledger) -> None:
        """Reports first, then the ledger, then the one rename that moves the input file."""
        summary = file_run.summary
        results = sorted(file_run.results, key=lambda r: r.rows[0] if r.rows else 0)
        summary.items = len(results)
        summary.outcomes = dict(Counter(r.outcome.value for r in results))
        summary.violations = len(file_run.violations)
        summary.warnings = len(file_run.warnings)
        summary.retries = self._retries() - file_run.retries_before
        name = file_run.path.name
        write_items(beside(self.run_dir, name, ".items.csv"), name, results)
        failpoints.reach("report")
        problems = file_run.violations + file_run.warnings
        write_errors(beside(self.run_dir, name, ".errors.csv"), name, problems)
        if self.keep_reports:
            self.reports.append(FileReport(name, results, file_run.violations, file_run.warnings))
        changed = file_run.opened is not None and file_run.opened.changed()
        if self._lost(file_run):
            # Another worker resumes the file from the ledger: it is theirs to report and move.
            summary.reason = "taken over by another worker (this one stopped renewing its claim)"
            summary.unfinished = True
            log.error("%s: %s", printable(name), summary.reason)
            return
        if self.api_down is not None or file_run.stopped or changed:
            ledger.file_released(file_run.sha256)
            why = self.api_down or "the tool was stopped before every batch was sent"
            self._put_back(file_run.path, summary, CHANGED_WHILE_READ if changed else str(why))
            return
        unsettled = sum(n for o, n in summary.outcomes.items() if Outcome(o) not in SETTLED)
        destination, reason = "archive", ""
        if unsettled:
            destination = "failed"
            reason = _failed_reason(file_run, self.run.run_id)
            rejected = self._write_rejected(file_run)
            if rejected is not None:
                noun = KINDS[summary.kind].plural if summary.kind in KINDS else "items"
                reason += (
                    f" Or take {printable(rejected.name)}, beside this file: it holds only the "
                    f"rows of those {noun}, with what to fix in each; fix them and drop it in the "
                    "inbox."
                )
        ledger.file_reported(file_run.sha256, destination, reason)
        failpoints.reach("move")
        self._finish_move(file_run.path, file_run.sha256, destination, reason, ledger)

    def _write_rejected(self, file_run: FileRun) -> Path | None:
        """``<input>.rejected.csv`` in failed/<run_id>/, where the input is going: the rows of
        its invalid and rejected orders, to fix and drop again. A file that cannot be read again
        (it changed, it went) gets none; the reports say everything anyway."""
        fixes = fixes_by_row(file_run.results, file_run.violations)
        if not fixes:
            return None
        source = self.settings.source_for(file_run.path)
        data = file_run.opened.data if file_run.opened is not None else file_run.path
        folder = self.settings.outbox / "failed" / self.run.run_id
        try:
            return write_rejected(
                data, file_run.path.name, folder, source.read, source.mapping.ignore, fixes
            )
        except UnreadableFile as error:
            log.warning("%s: no rejected file: %s", printable(file_run.path.name), error.reason)
        except OSError as error:
            if error.errno in MACHINE_ERRNOS:
                raise
            log.warning("%s: no rejected file: %s", printable(file_run.path.name), error)
        return None

    # --- the other operations -------------------------------------------------------------------

    def _process_operation(self, prepared: Prepared, file_run: FileRun, ledger: Ledger) -> None:
        """Files of the other kinds: every row validated and checked, then the kind's calls."""
        kind, name = prepared.kind, prepared.path.name
        items = [item for chunk in iter_validated(prepared) for item in chunk]
        self.observer.items_validated(name, len(items), prepared.rows)
        context = OperationContext(
            client=lambda: self.client,
            ledger=ledger,
            outbox=self.settings.outbox,
            inbox=self.settings.inbox,
            file_sha256=file_run.sha256,
            source_name=name,
            batch_prefix=f"{file_run.sha256[:8]}-{self.run.run_id}",
            poll_seconds=self.settings.action_poll_seconds,
        )
        operation = operation_for(kind)
        operation.precheck(items, context)
        prepared.user_columns.restate(items)  # the precheck's problems too
        valid = []
        for item in items:
            file_run.warnings.extend(item.warnings)
            if item.violations:
                self._report_invalid(item, file_run)
            else:
                valid.append(item)
        if not valid:
            return
        if self.api_down is not None or self.stop_requested():
            file_run.stopped = self.api_down is None
            reason = str(self.api_down) if self.api_down else "the tool was stopped"
            self._mark_failed(valid, "", file_run, reason)
            return
        try:
            results, requests = operation.send(valid, context)
        except (*STOPPING_ERRORS, ApiError) as caught:
            error = caught if isinstance(caught, STOPPING_ERRORS) else undocumented_answer(caught)
            # Calls already made are repeated by the next run, harmlessly: a status already
            # final is UNCHANGED, uploads replace, queued actions are queued once.
            self.api_down = ApiDown(error)
            log.error("%s: giving up: %s", printable(name), error)
            self._mark_failed(valid, "", file_run, str(error))
            return
        file_run.summary.requests += requests
        for result in results:
            file_run.results.append(result)
            if result.outcome is Outcome.REJECTED:
                file_run.violations.append(
                    Violation(
                        name,
                        result.rows,
                        result.item_id,
                        "$",
                        result.code or "REJECTED",
                        f"rejected by Connect: {result.message}",
                    )
                )
