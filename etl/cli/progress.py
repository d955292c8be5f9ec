"""Progress bars on a terminal while files are validated and sent (tqdm); nothing otherwise.

One bar per file, counting rows against the file's total: the rate and the ETA cover the whole
work on the file (mapping, validating and, for `etl run`, sending, which happen chunk by chunk),
and the postfix counts orders validated, sent and accepted.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any, TextIO

from tqdm import tqdm

from etl.core.events import Observer
from etl.core.printable import printable
from etl.core.summary import FileSummary


def wants_progress(quiet: bool, stdout: TextIO | None = None, stderr: TextIO | None = None) -> bool:
    """Bars only for a person watching: both streams on a terminal and not --quiet."""
    if quiet:
        return False
    streams = (stdout or sys.stdout, stderr or sys.stderr)
    return all(callable(getattr(s, "isatty", None)) and s.isatty() for s in streams)


class ProgressObserver(Observer):
    """Draws the bars on ``stream`` (stderr by default, so stdout stays the summary)."""

    def __init__(self, stream: TextIO | None = None, mininterval: float = 0.2) -> None:
        self.stream = stream
        self.mininterval = mininterval
        self.bar: tqdm[Any] | None = None
        self.started = 0.0
        self.orders = 0
        self.sent = 0

    def file_started(self, name: str, rows: int) -> None:
        self.close()
        self.started = time.perf_counter()
        self.orders = self.sent = 0
        stream = self.stream if self.stream is not None else sys.stderr
        self.bar = tqdm(
            total=rows,
            desc=printable(name),
            unit=" rows",
            unit_scale=rows >= 100_000,
            file=stream,
            leave=False,
            **_shape(stream),
            mininterval=self.mininterval,
            smoothing=0.1,
        )

    def items_validated(self, name: str, items: int, rows: int) -> None:
        self.orders += items
        if self.bar is not None:
            self._postfix()
            self.bar.update(rows)

    def batch_finished(
        self, name: str, batch_id: str, items: int, accepted: int, requests: int
    ) -> None:
        self.sent += items
        if self.bar is not None:
            self._postfix()

    def file_finished(self, summary: FileSummary) -> None:
        self.close()

    def _postfix(self) -> None:
        assert self.bar is not None
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        text = f"{_count(self.orders)} orders ({_count(self.orders / elapsed)}/s)"
        if self.sent:
            text += f", {_count(self.sent)} sent"
        self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _count(number: float) -> str:
    """1234 -> '1.23k': short enough to leave the bar some room."""
    if number < 1000:
        return f"{number:.0f}"
    return str(tqdm.format_sizeof(number, divisor=1000)).strip()


def _shape(stream: TextIO) -> dict[str, Any]:
    """Follow the terminal's width; a terminal that reports no size (some ptys, serial
    consoles) would make tqdm hide every bar, so it gets a fixed 80x24 instead."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        size = os.terminal_size((0, 0))
    if size.columns > 0 and size.lines > 0:
        return {"dynamic_ncols": True}
    fallback = shutil.get_terminal_size()
    return {"ncols": fallback.columns, "nrows": fallback.lines}


def progress_observer(quiet: bool) -> Observer:
    """The bars when someone is watching, an observer that does nothing otherwise."""
    return ProgressObserver() if wants_progress(quiet) else Observer()
