"""sd_notify for `etl watch` under systemd (``Type=notify``, ``WatchdogSec=``), stdlib only.

systemd passes a unix datagram socket in ``$NOTIFY_SOCKET`` (a path, or an abstract name
starting with ``@``). The watcher says ``READY=1`` once it watches, ``WATCHDOG=1`` as its
heartbeat beats, ``STOPPING=1`` when it stops. A message that cannot be sent is logged once
and dropped: a watcher must never stop because its supervisor's socket went away.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("etl.monitor.notify")

# Spaced so that a loop beating every few hundred milliseconds does not flood systemd; far
# below any sensible WatchdogSec (the unit in deploy/ says 60).
WATCHDOG_SECONDS = 5.0


class Notifier:
    """Sends sd_notify messages to one socket; never raises."""

    def __init__(
        self,
        address: str,
        *,
        watchdog_seconds: float = WATCHDOG_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # Linux writes an abstract socket name with a leading NUL; systemd spells it "@".
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_seconds = watchdog_seconds
        self.clock = clock
        self._last_watchdog: float | None = None
        self._warned = False
        self._stopping = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Notifier | None:
        """A notifier for ``$NOTIFY_SOCKET``, or None when not started by systemd."""
        address = environ.get("NOTIFY_SOCKET", "")
        return cls(address) if address else None

    def ready(self) -> None:
        self.send("READY=1")

    def watchdog(self) -> None:
        """``WATCHDOG=1``, at most once every ``watchdog_seconds``."""
        now = self.clock()
        if self._stopping:  # the last beats of a stopping watcher are not news to systemd
            return
        if self._last_watchdog is not None and now - self._last_watchdog < self.watchdog_seconds:
            return
        self._last_watchdog = now
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self._stopping = True
        self.send("STOPPING=1")

    def send(self, message: str) -> None:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self.address)
        except OSError as error:
            if not self._warned:  # once: a gone socket stays gone, the log must not fill
                self._warned = True
                log.warning("cannot notify systemd (%s): %s", message, error)
