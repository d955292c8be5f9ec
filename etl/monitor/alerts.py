"""Alerts through apprise URLs: failed files, the API down past a threshold, the watcher stopping.

What an alert says is chosen here and only here: counts, file names (escaped), run ids and report
paths. Never order data, personal data or a secret; an apprise URL holds a token or a password,
so a URL is never logged either, only its scheme and its place in the list. Sending happens on
a background thread: a dead SMTP server or webhook must not hold up, or break, any processing.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from etl.core.kinds import rejected_companions
from etl.core.printable import printable

if TYPE_CHECKING:
    from etl.core.summary import RunSummary
    from etl.settings.config import Settings

log = logging.getLogger("etl.monitor.alerts")

CLOSE_SECONDS = 15.0  # a stopping watcher waits this long at most for its last alerts
MAX_NAMES = 50  # a message lists at most this many files; the report lists them all


@dataclass(frozen=True)
class Alert:
    title: str
    body: str


def masked(url: str) -> str:
    """What a log line may say of an apprise URL: its scheme. The rest (host included: for
    many services the "host" is the token) may be a credential."""
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep and scheme.isalnum() else "(an alert URL)"


class _Redact(logging.Filter):
    """Masks our URLs' secret parts in apprise's own log records: they go wherever the
    application's logs go, and some of apprise's messages name the URL they failed on."""

    def __init__(self, urls: Sequence[str]) -> None:
        super().__init__()
        parts: set[str] = set(urls)
        for url in urls:
            _, _, rest = url.partition("://")
            for piece in rest.replace("@", "/").replace("?", "/").replace("&", "/").split("/"):
                for token in (piece, *piece.split(":"), *piece.split("=")):
                    if len(token) >= 6:
                        parts.add(token)
        self.parts = sorted(parts, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(part in text for part in self.parts):
            for part in self.parts:
                text = text.replace(part, "***")
            record.msg, record.args = text, None
        return True


class Sender:
    """Delivers alerts to every URL from one background thread; never raises to the caller."""

    def __init__(self, urls: Sequence[str], tenant: str = "") -> None:
        self.urls = list(urls)
        self.tenant = tenant  # with several sellers, each alert says whose it is
        self._queue: queue.Queue[Alert | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._redact = _Redact(self.urls)
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        """Queue ``alert``; it goes out in the background (the caller never waits)."""
        if not self.urls:
            return
        if self.tenant:
            title = alert.title.removeprefix("etl: ")
            alert = Alert(title=f"etl: tenant {self.tenant}: {title}", body=alert.body)
        with self._lock:
            if self._thread is None:
                logging.getLogger("apprise").addFilter(self._redact)
                self._thread = threading.Thread(target=self._work, name="etl-alerts", daemon=True)
                self._thread.start()
        self._queue.put(alert)

    def close(self, seconds: float = CLOSE_SECONDS) -> None:
        """Send what is queued, waiting ``seconds`` at most: a daemon thread still busy then
        (a target that does not answer) does not keep the process alive."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(None)
        thread.join(seconds)
        if thread.is_alive():
            log.warning("alerts: gave up waiting for the last alert(s) after %.0f s", seconds)
        logging.getLogger("apprise").removeFilter(self._redact)

    def _work(self) -> None:
        while (alert := self._queue.get()) is not None:
            for index, url in enumerate(self.urls, start=1):
                self._deliver(index, url, alert)

    def _deliver(self, index: int, url: str, alert: Alert) -> None:
        # One Apprise per URL, so that one target's failure is logged as that target's and the
        # others are still tried. apprise's plugins bound their own connect and read timeouts
        # (a few seconds by default; `cto=` and `rto=` in a URL change them).
        import apprise

        try:
            notifier = apprise.Apprise()
            if not notifier.add(url):
                log.error("alerts: target %d (%s) is not a URL apprise knows", index, masked(url))
                return
            if not notifier.notify(title=alert.title, body=alert.body):
                log.error("alerts: target %d (%s) did not take the alert", index, masked(url))
        except Exception as error:  # an alert must never break what it reports on
            log.error("alerts: target %d (%s) failed: %s", index, masked(url), type(error).__name__)


class Alerts:
    """Decides what deserves an alert, once per incident, and hands it to a Sender."""

    def __init__(
        self,
        sender: Sender,
        api_down_minutes: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sender = sender
        self.api_down_seconds = api_down_minutes * 60
        self.clock = clock
        self._down_since: float | None = None
        self._down_said = False
        self._reported: set[tuple[str, str]] = set()

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> Alerts:
        return cls(
            Sender([url.reveal() for url in settings.alert_urls], settings.tenant),
            settings.alert_api_down_minutes,
            clock,
        )

    def close(self) -> None:
        self.sender.close()

    def failed_files(self, run: RunSummary, outbox: Path) -> None:
        """One alert for the files this run put in failed/ (or met a bug on), each only once."""
        quarantined = outbox / "failed" / run.run_id
        names = {f.name for f in run.files if f.status == "error"}
        if quarantined.is_dir():
            kept = {p.name for p in quarantined.iterdir() if not p.name.endswith(".reason.txt")}
            names |= kept - rejected_companions(kept)  # advice beside an input, not one
        new = sorted(n for n in names if (run.run_id, n) not in self._reported)
        if not new:
            return
        self._reported.update((run.run_id, name) for name in new)
        errors = sorted(f.name for f in run.files if f.status == "error" and f.name in new)
        lines = [f"- {printable(name)}" for name in new[:MAX_NAMES]]
        if len(new) > MAX_NAMES:
            lines.append(f"- and {len(new) - MAX_NAMES} more")
        self.sender.send(
            Alert(
                title=f"etl: {len(new)} file(s) failed in run {run.run_id}",
                body="\n".join(
                    [
                        f"Run {run.run_id} ({run.command}) moved {len(new)} file(s) to failed/"
                        + (f", {len(errors)} of them after an internal error" if errors else "")
                        + ":",
                        *lines,
                        f"Reasons: {printable(str(quarantined))}/*.reason.txt",
                        f"Reports: {printable(str(outbox / 'runs' / run.run_id))}",
                    ]
                ),
            )
        )

    def run_crashed(self, error: BaseException) -> None:
        """A run that raised: a bug, or the machine (disk, ledger); the watcher goes on."""
        self.sender.send(
            Alert(
                title="etl: a run failed with an internal error",
                body=f"The watcher's run raised {type(error).__name__}; its log has the "
                "traceback. The files wait in the inbox or in .processing/.",
            )
        )

    def api_state(self, down: BaseException | None, run_id: str) -> None:
        """After each run: say once that the API has been down past the threshold, and once
        that it is back; a short outage says nothing."""
        now = self.clock()
        if down is None:
            if self._down_said and self._down_since is not None:
                minutes = (now - self._down_since) / 60
                self.sender.send(
                    Alert(
                        title="etl: the API is back",
                        body=f"Run {run_id} reached the API again after {minutes:.1f} minute(s). "
                        "The files that waited in the inbox are being sent.",
                    )
                )
            self._down_since, self._down_said = None, False
            return
        if self._down_since is None:
            self._down_since = now
        minutes = (now - self._down_since) / 60
        if not self._down_said and now - self._down_since >= self.api_down_seconds:
            self._down_said = True
            self.sender.send(
                Alert(
                    title=f"etl: the API is {_what_is_wrong(down)}",
                    body=f"For {minutes:.1f} minute(s) now (last run {run_id}). The files wait "
                    "in the inbox and are sent when it answers again.",
                )
            )

    def load_api_state(self, path: Path) -> None:
        """What an earlier process knew of the outage (`etl run` under cron: one process a run,
        so "down for longer than the threshold" must outlive each). The clock must be wall time."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self._down_since, self._down_said = float(data["since"]), bool(data["said"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            self._down_since, self._down_said = None, False

    def save_api_state(self, path: Path) -> None:
        if self._down_since is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"since": self._down_since, "said": self._down_said}))

    def health(self, healthy: bool, line: str, outbox: Path) -> None:
        """`etl health` run by cron or a supervisor: a watcher that stopped, hung or was killed
        cannot say so itself. One alert when it turns unhealthy, one when it is well again; the
        incident is kept in the outbox, for each check is a process of its own."""
        state = outbox / ".state" / "health-alert.json"
        open_incident = state.is_file()
        if not healthy and not open_incident:
            self.sender.send(
                Alert(
                    title="etl: the watcher is not healthy",
                    body=f"etl health: {printable(line)}. Nothing is taken from the inbox while "
                    "this lasts; see `etl status`.",
                )
            )
            state.parent.mkdir(parents=True, exist_ok=True)
            state.write_text(json.dumps({"since": time.time(), "line": line}))
        elif healthy and open_incident:
            self.sender.send(
                Alert(title="etl: the watcher is healthy again", body=f"etl health: {line}")
            )
            state.unlink(missing_ok=True)

    def stopped(self, why: str) -> None:
        """The watcher is stopping: nothing is taken from the inbox until it is started again."""
        self.sender.send(
            Alert(
                title="etl: the watcher stopped",
                body=f"etl watch stopped ({why}). Files dropped in the inbox wait until it is "
                "started again.",
            )
        )


def _what_is_wrong(down: BaseException) -> str:
    """The incident in a few words, from the error's class only: its text may hold a URL."""
    from etl.core.errors import ApiMisconfigured, AuthFailed

    cause = getattr(down, "cause", down)
    if isinstance(cause, AuthFailed):
        return "refusing the credentials"
    if isinstance(cause, ApiMisconfigured):
        return "not where the settings say (check api_url)"
    return "unreachable"
