"""The SQLite file: one transaction per request, the request log, orders; more tables plug in."""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .wire import OrdersWrite, iso_z, utc_now

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    channel_id TEXT NOT NULL,
    channel_order_id TEXT NOT NULL,
    channel_store_id TEXT NOT NULL,
    channel_updated_at TEXT NOT NULL,          -- as sent
    channel_updated_key TEXT NOT NULL,         -- same instant, sortable as text (see instant_key)
    body TEXT NOT NULL,                        -- the order object as JSON
    times_replaced INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,                  -- when the sandbox last stored it (UTC)
    PRIMARY KEY (channel_id, channel_order_id)
);
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,                        -- when it arrived
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER,                            -- NULL when the connection was dropped
    fault TEXT,                                -- the injected fault as JSON
    orders INTEGER,                            -- orders in the body, when it has a list of them
    orders_ignored INTEGER,                    -- of those, skipped as older than the stored one
    body TEXT,                                 -- request body (JSON when it parsed)
    response TEXT,                             -- response body
    client_id TEXT                             -- the client whose token it carried
);
"""

# Replace mode: the whole order is overwritten, unless the stored one is newer on the channel.
# The body comes as orjson's UTF-8 bytes, stored as TEXT by CAST (no decode in Python).
UPSERT = """
INSERT INTO orders (channel_id, channel_order_id, channel_store_id, channel_updated_at,
                    channel_updated_key, body, updated_at)
VALUES (?, ?, ?, ?, ?, CAST(? AS TEXT), ?)
ON CONFLICT (channel_id, channel_order_id) DO UPDATE SET
    channel_store_id = excluded.channel_store_id,
    channel_updated_at = excluded.channel_updated_at,
    channel_updated_key = excluded.channel_updated_key,
    body = excluded.body,
    times_replaced = orders.times_replaced + 1,
    updated_at = excluded.updated_at
WHERE excluded.channel_updated_key >= orders.channel_updated_key
"""

# A body given as bytes is UTF-8 text already: CAST stores it as TEXT, byte for byte, without
# decoding 360 KB in Python only for sqlite3 to encode it back. (CAST reads a BLOB in the file's
# encoding: the store never sets one, so it is SQLite's default, UTF-8.)
INSERT_REQUEST = """
INSERT INTO requests (time, method, path, status, fault, orders, orders_ignored, body, response,
                      client_id)
VALUES (?, ?, ?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ?)
"""

PAGE_SIZE = 65536  # bytes, SQLite's largest

DATE_TIME = re.compile(r"^(.+?[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?(.*)$")
YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)
ONE_DAY_NS = 86_400 * 10**9  # offsets can put an instant up to a day before year 1, 00:00 UTC


def instant_key(text: str) -> str:
    """A fixed-width text that sorts like the instant an RFC 3339 date-time stands for.

    Nanoseconds since 0001-01-01T00:00Z: offsets and up to 9 fraction digits are honoured, so
    ``10:00:00+01:00`` equals ``09:00:00Z``. Subtracting aware datetimes never overflows,
    unlike converting 9999-12-31T23:59-01:00 to UTC.
    """
    match = DATE_TIME.match(text.upper())
    if match is None:
        raise ValueError(f"not a date-time: {text!r}")
    whole = datetime.fromisoformat(match.group(1) + match.group(3))
    if whole.tzinfo is None:
        whole = whole.replace(tzinfo=UTC)
    seconds = (whole - YEAR_ONE) // timedelta(seconds=1)
    fraction = int((match.group(2) or "").ljust(9, "0")[:9])
    return f"{seconds * 10**9 + fraction + ONE_DAY_NS:022d}"


def _now() -> str:
    return iso_z(utc_now())


def parsed_json(text: str | None) -> Any:
    """Stored JSON back as a value; a body that was not JSON comes back as its text."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


@dataclass(frozen=True)
class Table:
    """A table another module keeps in the sandbox's file: created at start, emptied by reset."""

    name: str
    ddl: str  # CREATE TABLE IF NOT EXISTS ... (and its indexes)


@dataclass(frozen=True)
class RequestRecord:
    """One received request, as the log keeps it."""

    method: str
    path: str
    status: int | None
    fault: dict[str, Any] | None
    orders: int | None
    body: str | bytes | None  # bytes: UTF-8 text as received, stored as text
    response: str | None
    received: str | None = None  # when it came (UTC, ms); default: when it is logged
    client_id: str | None = None  # the client whose valid token it carried


class Store:
    """One SQLite connection shared by the request threads, serialised by a lock.

    SQLite takes one writer at a time anyway; one connection keeps every request a single
    transaction (its orders and its log line) without busy-retry loops.
    """

    def __init__(self, path: Path, tables: Iterable[Table] = ()) -> None:
        self.path = path
        self._tables = tuple(tables)
        self._lock = threading.Lock()
        _make_private(path)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # A 100-order request writes ~360 KB of log body and 100 orders of ~3.6 KB: with 4 KB
        # pages that is ~200 overflow pages, each its own WAL frame and write. Only a new file
        # takes it (before WAL is set); an older file keeps its page size.
        self._db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        self._db.execute("PRAGMA journal_mode=WAL")
        # Each COMMIT has handed its pages to the OS, so a crash of the sandbox's process
        # loses nothing; no fsync means an OS crash could damage the file, which a test double
        # can afford: with NORMAL the fsyncs of each checkpoint, taken under the store's lock,
        # cost more wall time per request than the rest of the store.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        if "client_id" not in columns:  # a file written by a sandbox before tenants
            self._db.execute("ALTER TABLE requests ADD COLUMN client_id TEXT")
        for table in self._tables:
            self._db.executescript(table.ddl)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection inside one write transaction, alone (the other threads wait)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def commit(self, record: RequestRecord, write: OrdersWrite | None = None) -> int:
        """Store the orders (if any) and log the request in one transaction; returns its seq."""
        # Serialised before the lock: the other request threads need not wait for it.
        rows = None if write is None else order_rows(write)
        with self.transaction() as db:
            return self._log(db, record, rows)

    def log(self, db: sqlite3.Connection, record: RequestRecord, write: OrdersWrite | None) -> int:
        """Inside a transaction: store the orders (if any) and log the request; its seq."""
        return self._log(db, record, None if write is None else order_rows(write))

    def _log(
        self, db: sqlite3.Connection, record: RequestRecord, rows: list[OrderRow] | None
    ) -> int:
        now = _now()
        ignored = None if rows is None else _upsert(db, rows, now)
        cursor = db.execute(
            INSERT_REQUEST,
            (
                record.received or now,
                record.method,
                record.path,
                record.status,
                None if record.fault is None else orjson.dumps(record.fault).decode(),
                record.orders,
                ignored,
                record.body,
                record.response,
                record.client_id,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def requests(
        self, path: str | None = None, since: int = 0, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Logged requests after ``since`` (a seq), oldest first, bodies parsed."""
        query, params = _log_query("SELECT * FROM requests", path, since, client_id)
        with self._lock:
            cursor = self._db.execute(query + " ORDER BY seq", params)
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            for key in ("fault", "body", "response"):
                item[key] = parsed_json(item[key])
            out.append(item)
        return out

    def counts(
        self, path: str | None = None, since: int = 0, client_id: str | None = None
    ) -> dict[str, int]:
        """How many requests came after ``since`` (on ``path``, from ``client_id``), how many
        orders are stored, and the newest seq (0 before any request): counted in SQL, no body
        is read."""
        query, params = _log_query("SELECT count(*) FROM requests", path, since, client_id)
        with self._lock:  # one snapshot: the three numbers agree with each other
            (requests,) = self._db.execute(query, params).fetchone()
            (last_seq,) = self._db.execute("SELECT coalesce(max(seq), 0) FROM requests").fetchone()
            (orders,) = self._db.execute("SELECT count(*) FROM orders").fetchone()
        return {"requests": requests, "orders": orders, "last_seq": last_seq}

    def orders(self) -> list[dict[str, Any]]:
        """Stored orders in the order they were first received, bodies parsed."""
        with self._lock:
            rows = self._db.execute(
                "SELECT channel_id, channel_store_id, channel_order_id, channel_updated_at,"
                " times_replaced, updated_at, body FROM orders ORDER BY rowid"
            ).fetchall()
        keys = (
            "channel_id",
            "channel_store_id",
            "channel_order_id",
            "channel_updated_at",
            "times_replaced",
            "updated_at",
        )
        return [
            {**dict(zip(keys, row[:-1], strict=True)), "body": orjson.loads(row[-1])}
            for row in rows
        ]

    def reset(self) -> None:
        """Forget every order, request and row of the other tables; seqs start again at 1."""
        names = ["orders", "requests", *(t.name for t in self._tables)]
        with self.transaction() as db:
            for name in names:
                db.execute(f'DELETE FROM "{name}"')  # names are ours, never a request's
            db.execute(
                f"DELETE FROM sqlite_sequence WHERE name IN ({', '.join('?' * len(names))})",
                names,
            )

    def close(self) -> None:
        """Close the connection (SQLite folds the WAL back into the file)."""
        with self._lock:
            self._db.close()


def _log_query(
    select: str, path: str | None, since: int, client_id: str | None
) -> tuple[str, list[Any]]:
    """``select`` with the request log's filters: after seq ``since``, on ``path``, from
    ``client_id`` (None: any)."""
    query, params = select + " WHERE seq > ?", list[Any]([since])
    for column, value in (("path", path), ("client_id", client_id)):
        if value is not None:
            query += f" AND {column} = ?"  # column names are ours, values are parameters
            params.append(value)
    return query, params


# SQLite gives the -wal and -shm files the mode of the database file itself.
SIDE_FILES = ("-wal", "-shm", "-journal")


def _make_private(path: Path) -> None:
    """The database (created if need be) and the side files a crash left, readable by their
    owner only: they hold every order received, names and addresses included."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags | os.O_CREAT, 0o600)
    except OSError as error:  # a folder there, a link: said as SQLite would say it
        raise sqlite3.OperationalError(
            f"unable to open database file {path}: {error.strerror}"
        ) from None
    os.fchmod(fd, 0o600)  # one left readable by everyone by an older sandbox
    os.close(fd)
    for suffix in SIDE_FILES:
        try:
            fd = os.open(path.with_name(path.name + suffix), flags)
        except FileNotFoundError:
            continue
        os.fchmod(fd, 0o600)
        os.close(fd)


# (channel_id, channel_order_id, channel_store_id, channel_updated_at, its instant_key, body)
OrderRow = tuple[str, str, str, str, str, bytes]


def order_rows(write: OrdersWrite) -> list[OrderRow]:
    """The orders as the orders table keeps them, but for the time they are stored."""
    return [
        (
            write.channel_id,
            order["channel_order_id"],
            write.channel_store_id,
            order["channel_updated_at"],
            instant_key(order["channel_updated_at"]),
            orjson.dumps(order),
        )
        for order in write.orders
    ]


def _upsert(db: sqlite3.Connection, rows: list[OrderRow], now: str) -> int:
    """Apply the upsert; returns how many orders the channel_updated_at guard ignored."""
    # rowcount counts inserted and updated rows; a guarded-out conflict changes none.
    changed = db.executemany(UPSERT, [(*row, now) for row in rows]).rowcount
    return len(rows) - changed
