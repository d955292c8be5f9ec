"""The interpreter's GIL switch interval, shortened while files are read and put back after."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from etl.core.process_setup import owns_process


class SwitchInterval:
    """The interpreter's GIL switch interval is the process's: with several tenants' files read
    at once, the first reader shortens it and the last one to finish puts back what it was."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readers = 0
        self._saved = 0.0

    @contextmanager
    def held(self, seconds: float) -> Iterator[None]:
        if not owns_process():  # a library's host: the interpreter is its user's
            yield
            return
        with self._lock:
            if self._readers == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, seconds))
            self._readers += 1
        try:
            yield
        finally:
            with self._lock:
                self._readers -= 1
                if self._readers == 0:
                    sys.setswitchinterval(self._saved)


SHORT_SWITCHES = SwitchInterval()
