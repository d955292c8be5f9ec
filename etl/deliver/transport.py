"""The HTTP session under the client: a whole-call deadline on every read, and a size cap.

requests' timeout bounds each read from the socket, not the call: a server that sends a byte
now and then, in its headers or its body, holds a call for ever, and an endless body (or a
gzip bomb) fills the memory. Here every read of an answer made inside ``deadline(seconds)``
waits no longer than the call has left, headers included, and ``read_whole`` reads a streamed
answer up to a cap. Both raise ``AnswerNotRead``: the request left, the answer did not come.
"""

from __future__ import annotations

import http.client
import io
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import ProxyManager
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import PoolManager

READ_CHUNK = 64 * 1024

# The monotonic time by which the answer being read must be whole; set per thread (contextvars
# are per thread), so the sender thread and the caller's calls each keep their own.
_DEADLINE: ContextVar[float | None] = ContextVar("etl_answer_deadline", default=None)


class AnswerNotRead(Exception):
    """The request left but its answer was not read whole: past the call's deadline, or over
    the size cap. The server may have acted on the request."""


@contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Every answer this thread reads in the block is whole ``seconds`` from now, or its read
    fails with a socket timeout (requests' ReadTimeout or ConnectionError). Yields the time."""
    at = time.monotonic() + seconds
    token = _DEADLINE.set(at)
    try:
        yield at
    finally:
        _DEADLINE.reset(token)


def read_whole(response: requests.Response, cap: int) -> bytes:
    """The body of a ``stream=True`` answer, decoded, read to its end (then ``content`` holds
    it), or AnswerNotRead past ``cap`` bytes (the connection is then closed, never reused)."""
    body = bytearray()
    try:
        for chunk in response.iter_content(READ_CHUNK):
            body += chunk
            if len(body) > cap:
                raise AnswerNotRead(f"an answer over {_size(cap)}, which no call of the API gives")
    except BaseException:
        response.close()
        raise
    response._content = bytes(body)
    return response._content


def _size(count: int) -> str:
    return f"{count >> 20} MiB" if count % (1 << 20) == 0 else f"{count} bytes"


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each waiting no longer than the per-read timeout or the time the call
    has left, whichever is shorter."""

    def __init__(self, raw: io.RawIOBase, sock: socket.socket, at: float) -> None:
        super().__init__()
        self._raw = raw
        self._sock = sock
        self._at = at
        self._per_read = sock.gettimeout()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        left = self._at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the call's deadline passed")  # socket.timeout, to urllib3
        self._sock.settimeout(left if self._per_read is None else min(self._per_read, left))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()  # the socket file's own close: the socket outlives it if pooled
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    """http.client's response, reading its status line, headers and body through a
    _DeadlineReader when a deadline is set."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        at = _DEADLINE.get()
        if at is not None:
            # Nothing was read yet: the buffered file's socket file goes under the reader
            # (detached, not closed: closing it would close a socket the pool may reuse).
            raw = self.fp.detach()
            self.fp = io.BufferedReader(_DeadlineReader(raw, sock, at))


class _HTTPConnection(HTTPConnection):
    response_class = _DeadlineResponse


class _HTTPSConnection(HTTPSConnection):
    response_class = _DeadlineResponse


class _HTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


POOLS = {"http": _HTTPConnectionPool, "https": _HTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections read answers within the deadline (direct, or through
    an HTTP proxy; a SOCKS proxy keeps its own connections)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> PoolManager:
        manager: PoolManager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if type(manager) is ProxyManager:
            manager.pool_classes_by_scheme = POOLS
        return manager


def with_deadlines(session: requests.Session) -> requests.Session:
    """``session``, its HTTP and HTTPS calls going through a DeadlineAdapter."""
    for prefix in ("https://", "http://"):
        session.mount(prefix, DeadlineAdapter())
    return session
