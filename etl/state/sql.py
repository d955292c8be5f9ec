"""The two engines the ledger runs on, and the one place where their SQL differs.

The ledger's statements and migrations are written once, in the SQL SQLite speaks (``?``
parameters, ``INSERT OR IGNORE``, ``INTEGER PRIMARY KEY AUTOINCREMENT``...). SQLite runs them
as written; ``PostgresDialect.translate`` rewrites the few spellings PostgreSQL does not share.
A migration added to ``MIGRATIONS`` therefore applies to both engines without being written
twice, as long as it keeps to what ``translate`` knows (the test of both engines says so).
"""

from __future__ import annotations

import functools
import re
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from etl.core.database_urls import redacted_url, scrubbed


class Cursor(Protocol):
    """What both drivers' cursors give the ledger."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(ABC):
    """One connection, seen the same way whatever the engine: ``execute`` and ``executemany``
    take the ledger's SQL, ``transaction`` is one atomic step. Not for concurrent use by
    threads: its owner serializes (the run's ledger lock)."""

    engine = "sqlite"

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Database]: ...

    @abstractmethod
    def schema_version(self) -> int: ...

    @abstractmethod
    def set_schema_version(self, number: int) -> None: ...

    @contextmanager
    def migrating(self) -> Iterator[None]:
        """Held while migrations run: with many workers, one migrates and the others wait."""
        yield

    @abstractmethod
    def close(self) -> None: ...


class SqliteDatabase(Database):
    engine = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        return self.connection.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        # IMMEDIATE: the write lock now, so two writers queue instead of deadlocking.
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def schema_version(self) -> int:
        return int(self.connection.execute("PRAGMA user_version").fetchone()[0])

    def set_schema_version(self, number: int) -> None:
        self.connection.execute(f"PRAGMA user_version = {int(number)}")

    def close(self) -> None:
        self.connection.close()


# The spellings that differ, SQLite's on the left. Types first (DDL), then statements.
_TYPES = (
    (re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", re.I), "BIGSERIAL PRIMARY KEY"),
    # PostgreSQL's REAL is 4 bytes: epoch seconds would lose whole minutes.
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (
        re.compile(r"lower\(hex\(randomblob\(16\)\)\)", re.I),
        "md5(random()::text || clock_timestamp()::text)",
    ),
)
_INSERT_OR_IGNORE = re.compile(r"\bINSERT OR IGNORE INTO\b", re.I)


@functools.lru_cache(maxsize=512)
def to_postgres(sql: str) -> str:
    """The ledger's SQL in PostgreSQL's spelling (cached: the same few statements recur)."""
    text = sql.replace("%", "%%").replace("?", "%s")
    for pattern, replacement in _TYPES:
        text = pattern.sub(replacement, text)
    if _INSERT_OR_IGNORE.search(text):
        text = _INSERT_OR_IGNORE.sub("INSERT INTO", text).rstrip().rstrip(";")
        text += " ON CONFLICT DO NOTHING"
    if re.search(r"\bOR (IGNORE|REPLACE)\b", text, re.I):
        raise ValueError(f"no PostgreSQL spelling for this statement: {sql.strip()[:80]}")
    return text


class PostgresDatabase(Database):
    """A psycopg 3 connection in autocommit mode: every statement outside ``transaction`` is
    its own transaction, as with SQLite's ``isolation_level=None``."""

    engine = "postgresql"

    def __init__(self, connection: Any, where: str) -> None:
        self.connection = connection
        self.where = where

    @classmethod
    def connect(cls, url: str, timeout: float) -> PostgresDatabase:
        import psycopg

        from etl.core.errors import UsageError

        where = redacted_url(url)
        try:
            connection = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, int(timeout)),
                application_name="mirakl-connect-etl",
            )
        except psycopg.Error as error:
            raise UsageError(
                f"cannot use the state database {where}: {scrubbed(str(error).strip(), url)}"
            ) from None
        return cls(connection, where)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        cursor: Cursor = self.connection.execute(to_postgres(sql), tuple(params))
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Cursor:
        cursor = self.connection.cursor()
        batch = [tuple(row) for row in rows]
        if batch:
            cursor.executemany(to_postgres(sql), batch)
        return _Counted(cursor.rowcount if batch else 0)

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self.connection.transaction():
            yield self

    def schema_version(self) -> int:
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS ledger_schema (version INTEGER NOT NULL)"
        )
        row = self.connection.execute("SELECT max(version) FROM ledger_schema").fetchone()
        return int(row[0] or 0)

    def set_schema_version(self, number: int) -> None:
        self.connection.execute("DELETE FROM ledger_schema")
        self.connection.execute("INSERT INTO ledger_schema (version) VALUES (%s)", (number,))

    @contextmanager
    def migrating(self) -> Iterator[None]:
        # A session lock for the schema this connection writes in: two workers starting at
        # once must not both create the tables.
        key = "etl-ledger-migrations"
        self.connection.execute("SELECT pg_advisory_lock(hashtext(%s || current_schema()))", (key,))
        try:
            yield
        finally:
            self.connection.execute(
                "SELECT pg_advisory_unlock(hashtext(%s || current_schema()))", (key,)
            )

    def close(self) -> None:
        self.connection.close()


class _Counted:
    """executemany's answer: how many rows it changed, summed over its statements."""

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())
