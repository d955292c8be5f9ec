"""`etl watch`: a folder watcher people can leave running for months.

watchdog events say *that* something happened; a start-up scan and a periodic rescan make sure
nothing is missed when events are lost (buffer overflows, network shares). A file is handed to
the pipeline only once its size and mtime have held still for the settle period. One watcher per
inbox (a lock file); SIGINT/SIGTERM finish the batch in flight and exit 0. A kill -9 is covered
by the ledger: the next start resumes the file left in ``.processing/``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer as NativeObserver
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from etl.core.errors import ObjectStoreError, UsageError
from etl.core.events import Observer
from etl.core.files import write_json
from etl.core.kinds import is_ignored
from etl.core.summary import RunSummary, now_text
from etl.deliver.client import ConnectClient
from etl.monitor.alerts import Alerts
from etl.monitor.notify import Notifier
from etl.operations.actions import ActionContext, flush_action_log, poll_actions
from etl.report.html import write_html_report
from etl.run.object_sync import publish_reports
from etl.run.sync import Sync
from etl.settings.config import Settings
from etl.state.claims import Claims, inbox_place
from etl.state.inbox import InboxLock, Snapshot, snapshot, waiting_files
from etl.state.leader import Leadership
from etl.state.ledger import ledger_for

log = logging.getLogger("etl.run.watch")

TICK_SECONDS = 0.25
HEARTBEAT_NAME = "watch.heartbeat.json"
BEAT_SECONDS = 5.0  # the heartbeat's pace during a run: a long file must not look like a hang
API_DOWN_PAUSE_SECONDS = 60.0
API_DOWN_PAUSE_MAX_SECONDS = 900.0


@dataclass
class Candidate:
    """A file seen in the inbox, waiting for its size and mtime to hold still."""

    snapshot: Snapshot
    still_since: float


@dataclass
class Periodic:
    """Work other features run from the watcher's loop at their own pace (action log flush...)."""

    name: str
    every_seconds: float
    action: Callable[[], object]
    next_at: float = 0.0


@dataclass
class Heartbeat:
    """What ``<outbox>/watch.heartbeat.json`` says, so a person or a monitor sees it is alive."""

    pid: int = field(default_factory=os.getpid)
    started_at: str = field(default_factory=now_text)
    state: str = "starting"
    last_scan_at: str = ""
    last_beat_at: str = ""
    files_queued: int = 0
    files_processed: int = 0
    runs: int = 0
    last_run_id: str = ""
    last_error: str = ""
    # When the API first stopped a run; '' once a run gets through (`etl health` reads it:
    # last_error stays for people to read, so it cannot say whether the API is down *now*).
    api_down_since: str = ""
    observer: str = ""
    observer_restarts: int = 0


class _Events(FileSystemEventHandler):
    """Turns watchdog events into candidate paths; the loop decides what to do with them."""

    def __init__(self, inbox: Path, seen: Callable[[Path], None]) -> None:
        self.inbox = inbox.resolve()
        self.seen = seen

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        # A file renamed or moved into the inbox arrives as the destination of a move.
        raw = getattr(event, "dest_path", "") or event.src_path
        path = Path(os.fsdecode(raw))
        if path.parent.resolve() == self.inbox:
            self.seen(path)


class Watcher:
    """Watches one inbox and runs the pipeline on every file that has settled."""

    def __init__(
        self,
        settings: Settings,
        client_factory: Callable[[], ConnectClient],
        *,
        polling: bool = False,
        rescan_seconds: float = 30.0,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
        beat_seconds: float = BEAT_SECONDS,
        alerts: Alerts | None = None,
        api_down_pause: float = API_DOWN_PAUSE_SECONDS,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.client_factory = client_factory
        self.polling = polling
        self.rescan_seconds = rescan_seconds
        self.run_observer = observer
        self.clock = clock
        self.inbox = settings.inbox
        self.stopping = threading.Event()
        self.heartbeat = Heartbeat(observer="polling" if polling else "native")
        self.periodic: list[Periodic] = []
        # Called with each finished run (metrics count it); a listener's error is logged only.
        self.run_listeners: list[Callable[[RunSummary], None]] = []
        self._candidates: dict[Path, Candidate] = {}
        self._events: set[Path] = set()
        self._events_lock = threading.Lock()
        self._observer: BaseObserver | None = None
        self._next_rescan = 0.0
        self._paused_until = 0.0
        self.api_down_pause = api_down_pause
        self._pause = api_down_pause
        self.alerts = alerts if alerts is not None else Alerts.from_settings(settings, clock)
        self.exit_codes: list[int] = []
        self.beat_seconds = beat_seconds
        # systemd's Type=notify and watchdog (deploy/etl-watch@.service), when it started us.
        self.notifier = notifier or Notifier.from_environ(os.environ)
        self._beat_lock = threading.Lock()
        self.periodic.extend(
            [
                Periodic("order action log flush", settings.action_flush_seconds, self._flush),
                Periodic("action tracking", 60.0, self._poll),
            ]
        )
        if settings.events is not None:
            every = settings.events.every_seconds
            self.periodic.append(Periodic("order action events", every, self._read_events))
        # Many workers on one state database: files are claimed there, one worker (the leader)
        # runs the once-a-minute jobs, and files of a worker that died are taken over.
        self.claims: Claims | None = None
        self.leadership: Leadership | None = None
        if settings.shared_state:
            url = settings.state_url.reveal()
            self.claims = Claims(
                url, settings.state_key, inbox_place(settings.inbox), settings.lease_seconds
            )
            self.leadership = Leadership(url, settings.state_key)
            self.periodic.append(
                Periodic("take over", max(1.0, settings.lease_seconds / 3), self._take_over)
            )
            # Asked every second, so that a leader that died is replaced within about one.
            self.periodic.append(Periodic("leadership", 1.0, self._leading))

    def _take_over(self) -> None:
        """A dead worker's files wait in ``.processing/`` until their lease runs out; with no
        new file arriving, nothing else would start a run to resume them."""
        if self.claims is not None and self.claims.expired():
            self._process([])

    def _leading(self) -> bool:
        """Whether this watcher runs the once-a-minute jobs. One that just became the leader
        runs them at once: the ledger's pacing says whether a call is due."""
        if self.leadership is None:
            return True
        was = self.leadership.was_leading
        now = self.leadership.leading()
        if now and not was:
            for job in self.periodic:
                if job.action in (self._flush, self._poll):
                    job.next_at = 0.0
        return now

    def _action_work(self, work: Callable[[ActionContext], object]) -> None:
        """Periodic action work: a ledger of its own, and a client only if there is work."""
        ledger = ledger_for(self.settings)
        client: list[ConnectClient] = []

        def lazy_client() -> ConnectClient:
            if not client:
                client.append(self.client_factory())
            return client[0]

        try:
            work(
                ActionContext(
                    lazy_client,
                    ledger,
                    self.settings.outbox,
                    "",
                    time.time,
                    self.settings.action_poll_seconds,
                )
            )
        finally:
            ledger.close()
            if client:
                client[0].close()

    def _flush(self) -> None:
        if self._leading():
            self._action_work(flush_action_log)

    def _poll(self) -> None:
        if self._leading():
            self._action_work(poll_actions)

    def _read_events(self) -> None:
        """Connect's order action events into pending files (`etl events`, without waiting:
        the loop has files to watch)."""
        from etl.operations.queues import QueueUnavailable, SqsQueue
        from etl.run.events import consume_events

        assert self.settings.events is not None
        queue = SqsQueue(self.settings.events)
        try:
            consumed = consume_events(self.settings, queue, wait_seconds=0)
        except (QueueUnavailable, UsageError) as error:
            self.heartbeat.last_error = f"order action events: {error}"
            log.error("order action events: %s", error)
            return
        finally:
            queue.close()
        if consumed.received:
            log.info(
                "order action events: %d new action(s), %d already received or answered, "
                "%d unreadable",
                consumed.new,
                consumed.duplicates,
                consumed.unreadable,
            )

    # --- life cycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop: the batch in flight finishes, then run() returns."""
        self.stopping.set()

    def run(self) -> int:
        """Watch until stop(), then return 0; raise WatcherRefused when another watcher (or an
        `etl run`) already holds the inbox."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        lock = InboxLock(self.inbox)
        # With a shared state, claims in the database keep watchers apart, file by file.
        holder = None if self.settings.shared_state else lock.acquire()
        if holder is not None:
            log.error("%s", holder)
            raise WatcherRefused(holder)
        try:
            self._start_observer()
            self.heartbeat.state = "watching"
            if self.notifier is not None:
                self.notifier.ready()
            while not self.stopping.is_set():
                self._tick()
                self.stopping.wait(TICK_SECONDS)
        except BaseException as error:
            self.alerts.stopped(f"{type(error).__name__}, pid {os.getpid()}")
            raise
        else:
            self.alerts.stopped(f"asked to stop, pid {os.getpid()}")
        finally:
            if self.notifier is not None:
                self.notifier.stopping()
            self._stop_observer()
            self.heartbeat.state = "stopped"
            self._beat()
            lock.release()
            self.alerts.close()
            if self.claims is not None:
                self.claims.close()
            if self.leadership is not None:
                self.leadership.close()
        return 0

    def _start_observer(self) -> None:
        observer: BaseObserver = PollingObserver(timeout=1.0) if self.polling else NativeObserver()
        observer.schedule(_Events(self.inbox, self._seen), str(self.inbox), recursive=False)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def _stop_observer(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            if self._observer.is_alive():
                self._observer.join(timeout=5)
            self._observer = None

    def _seen(self, path: Path) -> None:
        with self._events_lock:
            self._events.add(path)

    # --- the loop -------------------------------------------------------------------------------

    def _tick(self) -> None:
        now = self.clock()
        if self._observer is None or not self._observer.is_alive():
            self.heartbeat.last_error = "the file-system observer stopped; restarted it"
            self.heartbeat.observer_restarts += 1
            log.error("the file-system observer thread died; restarting it (and rescanning)")
            self._stop_observer()
            self._start_observer()
            self._next_rescan = 0.0
        with self._events_lock:
            fresh, self._events = self._events, set()
        if now >= self._next_rescan:
            fresh.update(waiting_files(self.inbox))
            self.heartbeat.last_scan_at = now_text()
            self._next_rescan = now + self.rescan_seconds
        for path in fresh:
            if not is_ignored(path) and path not in self._candidates:
                found = snapshot(path)
                if found is not None:
                    self._candidates[path] = Candidate(found, now)
        ready = self._settled(now)
        self.heartbeat.files_queued = len(self._candidates)
        self._after_scan(ready, now)

    def _after_scan(self, ready: list[Path], now: float) -> None:
        """What every tick does once it knows the files ready: process them (unless the API's
        pause holds), run the periodic jobs that are due, write the heartbeat."""
        if ready and now >= self._paused_until:
            self._process(ready)
        for job in self.periodic:
            if now >= job.next_at and not self.stopping.is_set():
                job.next_at = now + job.every_seconds
                self._guarded(job.name, job.action)
        self._beat()

    def _settled(self, now: float) -> list[Path]:
        """Files unchanged for the settle period, in arrival (mtime) order."""
        ready: list[tuple[int, str, Path]] = []
        for path, candidate in list(self._candidates.items()):
            current = snapshot(path)
            if current is None:
                del self._candidates[path]  # taken, renamed away or deleted
            elif current != candidate.snapshot:
                candidate.snapshot, candidate.still_since = current, now
            elif now - candidate.still_since >= self.settings.settle_seconds:
                ready.append((current.mtime_ns, path.name, path))
        return [path for _, _, path in sorted(ready)]

    def _beating(self, done: threading.Event) -> None:
        """Beat every few seconds until ``done``: the loop is inside one run meanwhile."""
        while not done.wait(self.beat_seconds):
            self._beat()

    def _process(self, ready: list[Path]) -> None:
        done = threading.Event()
        heart = threading.Thread(target=self._beating, args=(done,), name="etl-heartbeat")
        self.heartbeat.state = "processing"
        heart.start()
        try:
            self._process_files(ready)
        finally:
            done.set()
            heart.join()
            self.heartbeat.state = "stopping" if self.stopping.is_set() else "watching"

    def _new_sync(self, ready: list[Path]) -> Sync:
        """The run over the files that settled (an object-store watcher makes its own)."""
        return Sync(
            self.settings,
            self.client_factory,
            observer=self.run_observer,
            stop_requested=self.stopping.is_set,
            paths=ready,
            claims=self.claims,
            leadership=self.leadership,
        )

    def _process_files(self, ready: list[Path]) -> None:
        sync = self._new_sync(ready)
        try:
            run = sync()
        except Exception as error:  # a watcher must outlive one bad run
            self.heartbeat.last_error = f"run failed: {type(error).__name__}: {error}"
            log.exception("run failed; the watcher goes on")
            self.alerts.run_crashed(error)
            self._paused_until = self.clock() + self._pause
            return
        # Told to start afresh once: the ledger now adopted, a later loss is noticed again.
        self.settings = replace(self.settings, fresh_ledger=False)
        for path in ready:
            self._candidates.pop(path, None)
        if run.files:
            self._guarded("report", lambda: write_html_report(sync.run_dir))
            self._guarded("report upload", lambda: self._publish(sync.run_dir))
        self.exit_codes.append(run.exit_code)
        self.heartbeat.runs += 1
        self.heartbeat.last_run_id = run.run_id
        self.heartbeat.files_processed += len(run.files)
        self.alerts.failed_files(run, self.settings.outbox)
        self.alerts.api_state(sync.api_down, run.run_id)
        if sync.api_down is not None:
            # The files went back to the inbox; wait before trying the API again (a wrong URL
            # too: someone must fix the settings, and hammering it helps nobody).
            self.heartbeat.last_error = f"API unavailable: {sync.api_down}"
            self.heartbeat.api_down_since = self.heartbeat.api_down_since or now_text()
            self._paused_until = self.clock() + self._pause
            self._pause = min(self._pause * 2, API_DOWN_PAUSE_MAX_SECONDS)
        else:
            self._pause = self.api_down_pause
            self.heartbeat.api_down_since = ""
        for listener in self.run_listeners:
            self._guarded("run listener", functools.partial(listener, run))
        log.info("run %s: %d file(s), exit %d", run.run_id, len(run.files), run.exit_code)

    def _publish(self, run_dir: Path) -> None:
        """``[report] url``: the run's reports uploaded; a failure is the heartbeat's error."""
        problem = publish_reports(self.settings, run_dir)
        if problem is not None:
            raise ObjectStoreError(problem)

    def _guarded(self, name: str, action: Callable[[], object]) -> None:
        try:
            action()
        except Exception as error:  # periodic work must not kill the watcher
            self.heartbeat.last_error = f"{name} failed: {type(error).__name__}: {error}"
            log.exception("periodic %s failed", name)

    def _beat(self) -> None:
        with self._beat_lock:  # the loop and, during a run, the heartbeat thread
            moment = datetime.now(UTC).isoformat(timespec="milliseconds")
            self.heartbeat.last_beat_at = moment.replace("+00:00", "Z")
            try:
                write_json(self.settings.outbox / HEARTBEAT_NAME, _as_json(self.heartbeat))
            except OSError as error:
                log.error("cannot write the heartbeat: %s", error)
            # The loop is alive even when the disk is full: a restart would not empty it.
            if self.notifier is not None:
                self.notifier.watchdog()


class WatcherRefused(Exception):
    """Another watcher holds the inbox."""


def _as_json(heartbeat: Heartbeat) -> dict[str, Any]:
    return dict(heartbeat.__dict__)
