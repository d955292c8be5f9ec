"""Connect's rate budget per credential: at most N requests per client in any 1-second window,
else 429 with Retry-After, so that a test proves from the server's side that a seller's budget
was kept."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 1.0
# A request exactly a second after another is in the next window; this absorbs the rounding of
# clocks that add 1/30 thirty times (0.9999999999999999).
ROUNDING = 1e-9


class ClientBudget:
    """When each client's admitted requests of the last second came; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}

    def admit(self, client: str, limit: float) -> float:
        """0 and the request counted when ``client`` has had fewer than ``limit`` requests
        admitted in the last second; else the seconds until the oldest of them leaves it.

        A refused request is not counted: a client that waits as told gets through."""
        with self._lock:
            now = self._clock()
            window = self._admitted.setdefault(client, deque())
            while window and window[0] <= now - WINDOW_SECONDS + ROUNDING:
                window.popleft()
            if len(window) >= limit:
                return window[0] + WINDOW_SECONDS - now
            window.append(now)
            return 0.0

    def clear(self) -> None:
        """Forget every request."""
        with self._lock:
            self._admitted.clear()
