"""Batches sent by sender threads, several on the wire at once, while the caller records the
answers in file order.

At 20 requests/s a batch has 50 ms: the decision to send and the ``pending`` mark must fit in
them; recording the answer (the ledger's ``accepted``, the results, the log line) need not, and
neither can the answer itself: Connect takes longer than 50 ms to answer an upsert of 100 orders,
and a loaded machine's sandbox too. So sender threads do the first part and wait for the answers,
several batches on the wire at once (the pacing, shared by the threads, decides when each
starts), and the caller the second, in file order, whatever order the answers came in. Actions
given to ``then`` (results of the screening) run in their turn among the recordings, so reports
list everything in exactly the order sending one batch at a time did.
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from etl.core.errors import ApiError
from etl.deliver.batch import Batch
from etl.deliver.submit import Delivery

# Requests on the wire at once: at 20 requests/s, four keep the pace while answers take up to
# 200 ms. More would only hold more orders in memory; the pacing, not this, sets the rate.
SENDERS = 4


@dataclass(frozen=True)
class Sent:
    """What the sender did with a batch: delivered it, gave up, or did not send it."""

    delivery: Delivery | None = None
    error: ApiError | None = None  # the API stayed down or refused the credentials
    skipped: str | None = None  # not sent, for this reason (the API went down before)
    stopped: bool = False  # not sent: the tool was asked to stop


class SendingPipeline:
    """``send`` batches and ``then`` actions in file order; leave the block to wait for all."""

    def __init__(
        self,
        deliver: Callable[[Batch], Sent],
        record: Callable[[Batch, Sent], None],
        senders: int = SENDERS,
    ) -> None:
        self._deliver = deliver
        self._record = record
        self._sender = ThreadPoolExecutor(senders, thread_name_prefix="etl-send")
        # Batches handed to the senders and not yet recorded: those on the wire, and two more
        # answered and waiting for their turn to be recorded.
        self._most_in_flight = senders + 2
        self._queue: deque[tuple[Batch, Future[Sent]] | Callable[[], None]] = deque()
        self._in_flight = 0
        self._recorded = 0
        self._broken = False  # something went wrong: send nothing more
        # Slow start: the first batch goes alone, and each answered batch lets one more on the
        # wire, up to ``senders``; a batch that failed (the API down, the credentials refused)
        # brings it back to one. So wrong credentials or a dead API cost one batch's attempts,
        # not one per sender.
        self._most_on_the_wire = senders
        self._allowed = 1
        self._on_the_wire = 0
        self._turn = threading.Condition()

    def send(self, batch: Batch) -> None:
        self._queue.append((batch, self._sender.submit(self._send, batch)))
        self._in_flight += 1
        self._drain(wait=False)

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` once every batch sent before it has been recorded."""
        self._queue.append(action)
        self._drain(wait=False)

    def _send(self, batch: Batch) -> Sent:
        with self._turn:
            self._turn.wait_for(lambda: self._on_the_wire < self._allowed)
            self._on_the_wire += 1
        answered = False
        try:
            if self._broken:
                return Sent(skipped="an earlier batch failed")  # never recorded: caller raised
            sent = self._deliver(batch)
            answered = sent.error is None
            return sent
        except BaseException:
            self._broken = True
            raise
        finally:
            with self._turn:
                self._on_the_wire -= 1
                grown = min(self._most_on_the_wire, self._allowed + 1)
                self._allowed = grown if answered else 1
                self._turn.notify_all()

    def _drain(self, wait: bool) -> None:
        """Record what is ready at the head of the queue; with ``wait`` (or too many batches in
        flight) wait for each head in turn."""
        while self._queue:
            head = self._queue[0]
            if not isinstance(head, tuple):
                self._queue.popleft()
                head()
                continue
            batch, future = head
            if not (wait or self._in_flight >= self._most_in_flight or future.done()):
                return
            sent = future.result()  # an error of the sender is raised here, in its turn
            self._queue.popleft()
            self._in_flight -= 1
            self._record(batch, sent)
            self._recorded += 1
            if self._recorded % 256 == 0 and not gc.isenabled():
                gc.collect(1)  # the young garbage only (the caller pauses the collector)

    def __enter__(self) -> SendingPipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        try:
            if kind is None:
                self._drain(wait=True)
        finally:
            if kind is not None or self._queue:
                self._broken = True
            self._sender.shutdown(wait=True, cancel_futures=True)
