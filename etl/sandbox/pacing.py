"""Documented call frequencies: 429 with Retry-After when a key is called again too soon."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable

from .wire import Response, error_response

PRUNE_ABOVE = 4096  # keys kept before forgetting the ones whose interval has passed


class Pacer:
    """When each key (an operation, or an operation and an id) was last served; thread-safe.

    The interval is given at each call, so a changed setting applies at once.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._served: dict[Hashable, tuple[float, float]] = {}  # key -> (at, interval then)

    def wait(self, key: Hashable, interval: float) -> float:
        """Seconds before ``key`` may be served again; 0 when it may be now."""
        with self._lock:
            return max(0.0, self._left(key, interval, self._clock()))

    def admit(self, key: Hashable, interval: float) -> float:
        """0 and ``key`` marked served when it may be served now, else the seconds to wait.

        Check and mark are one step, so two racing calls cannot both get through.
        """
        with self._lock:
            now = self._clock()
            left = self._left(key, interval, now)
            if left > 0:
                return left
            if len(self._served) > PRUNE_ABOVE:
                self._served = {k: v for k, v in self._served.items() if v[0] + v[1] > now}
            self._served[key] = (now, interval)
            return 0.0

    def _left(self, key: Hashable, interval: float, now: float) -> float:
        served = self._served.get(key)
        return -math.inf if served is None else served[0] + interval - now

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._served.clear()


def too_many_requests(left: float, what: str) -> Response:
    """429 with ``Retry-After`` = the seconds left, rounded up (at least 1)."""
    retry_after = str(max(1, math.ceil(left)))
    message = f"{what}; retry in {retry_after} s"
    headers = (("Retry-After", retry_after),)
    return error_response(429, "TOO_MANY_REQUESTS", message, headers=headers)
