"""SQLite state that survives crashes: files, batches, the last accepted version of each order.

Every state transition is one function and one transaction. A batch is written ``pending``
before its request is sent and ``accepted``/``rejected``/``failed`` after, so a run killed at any
moment leaves the ledger saying exactly what Connect has acknowledged; nothing else is trusted.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from etl.core.errors import UsageError
from etl.settings.config import Settings
from etl.state.sql import Database, PostgresDatabase, SqliteDatabase

# Each entry migrates the ledger from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE files (
        sha256 TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL,            -- claimed | done | failed
        run_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT
    );
    CREATE TABLE batches (
        batch_id TEXT PRIMARY KEY,
        file_sha256 TEXT NOT NULL,
        run_id TEXT NOT NULL,
        status TEXT NOT NULL,            -- pending | accepted | rejected | failed
        items INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        finished_at TEXT,
        http_status INTEGER,
        message TEXT
    );
    CREATE TABLE orders (
        channel_id TEXT NOT NULL,
        channel_store_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        channel_updated_at TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        accepted_at TEXT NOT NULL,
        PRIMARY KEY (channel_id, channel_store_id, item_id)
    );
    """,
    """
    CREATE INDEX batches_by_file ON batches (file_sha256);
    CREATE TABLE pacing (operation TEXT PRIMARY KEY, last_sent_at TEXT NOT NULL);
    """,
    # Reports written but the file not yet moved: a run killed there only has the move left.
    """
    ALTER TABLE files ADD COLUMN destination TEXT;
    ALTER TABLE files ADD COLUMN reason TEXT;
    """,
    # The order action log waits here between flushes (at most one a minute), so a crash
    # between two flushes loses nothing; tracked actions are polled until final.
    """
    CREATE TABLE action_log (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        file_sha256 TEXT NOT NULL,
        row INTEGER NOT NULL,
        entity_id TEXT NOT NULL,
        body TEXT NOT NULL,
        queued_at REAL NOT NULL,
        sent_at REAL,
        action_id TEXT,
        UNIQUE (file_sha256, row)
    );
    CREATE TABLE tracked_actions (
        action_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        entity_id TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'PENDING',
        errors TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL DEFAULT '',
        tracked_at REAL NOT NULL,
        next_poll_at REAL NOT NULL,
        polls INTEGER NOT NULL DEFAULT 0,
        finished_at REAL
    );
    CREATE INDEX tracked_due ON tracked_actions (status, next_poll_at);
    """,
    # Deliveries are per target (DESIGN.md section 9): the API base URL and the credential. An
    # order accepted by the sandbox says nothing about the real API. Rows from before targets
    # were recorded get the target '' and so match no target: their orders are sent once more
    # (upserts are idempotent); queued and tracked actions are adopted by the first target that
    # opens the ledger (``Ledger.adopt_untargeted``), as they would have been before.
    """
    CREATE TABLE files_by_target (
        sha256 TEXT NOT NULL,
        target TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,            -- claimed | reported | delivered | failed | done (old)
        run_id TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        destination TEXT,
        reason TEXT,
        PRIMARY KEY (sha256, target)
    );
    INSERT INTO files_by_target SELECT sha256, '', name, status, run_id, started_at,
        finished_at, destination, reason FROM files;
    DROP TABLE files;
    ALTER TABLE files_by_target RENAME TO files;
    ALTER TABLE batches ADD COLUMN target TEXT NOT NULL DEFAULT '';
    CREATE TABLE orders_by_target (
        target TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        channel_store_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        channel_updated_at TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        accepted_at TEXT NOT NULL,
        run_id TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (target, channel_id, channel_store_id, item_id)
    );
    INSERT INTO orders_by_target (target, channel_id, channel_store_id, item_id, content_hash,
        channel_updated_at, batch_id, file_sha256, accepted_at)
        SELECT '', channel_id, channel_store_id, item_id, content_hash, channel_updated_at,
        batch_id, file_sha256, accepted_at FROM orders;
    DROP TABLE orders;
    ALTER TABLE orders_by_target RENAME TO orders;
    CREATE TABLE pacing_by_target (
        target TEXT NOT NULL,
        operation TEXT NOT NULL,
        last_sent_at TEXT NOT NULL,
        PRIMARY KEY (target, operation)
    );
    INSERT INTO pacing_by_target SELECT '', operation, last_sent_at FROM pacing;
    DROP TABLE pacing;
    ALTER TABLE pacing_by_target RENAME TO pacing;
    CREATE TABLE action_log_by_target (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        target TEXT NOT NULL,
        file_sha256 TEXT NOT NULL,
        row INTEGER NOT NULL,
        entity_id TEXT NOT NULL,
        body TEXT NOT NULL,
        queued_at REAL NOT NULL,
        sent_at REAL,
        action_id TEXT,
        outcome TEXT,                    -- accepted | rejected | unknown, once sent
        message TEXT,
        UNIQUE (target, file_sha256, row)
    );
    INSERT INTO action_log_by_target (seq, target, file_sha256, row, entity_id, body,
        queued_at, sent_at, action_id, outcome)
        SELECT seq, '', file_sha256, row, entity_id, body, queued_at, sent_at, action_id,
        CASE WHEN sent_at IS NULL THEN NULL WHEN action_id IS NULL THEN 'rejected'
        ELSE 'accepted' END FROM action_log;
    DROP TABLE action_log;
    ALTER TABLE action_log_by_target RENAME TO action_log;
    CREATE TABLE tracked_by_target (
        target TEXT NOT NULL,
        action_id TEXT NOT NULL,
        source TEXT NOT NULL,
        entity_id TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'PENDING',
        errors TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL DEFAULT '',
        tracked_at REAL NOT NULL,
        next_poll_at REAL NOT NULL,
        polls INTEGER NOT NULL DEFAULT 0,
        finished_at REAL,
        PRIMARY KEY (target, action_id)
    );
    INSERT INTO tracked_by_target SELECT '', action_id, source, entity_id, status, errors,
        created_at, updated_at, tracked_at, next_poll_at, polls, finished_at
        FROM tracked_actions;
    DROP TABLE tracked_actions;
    ALTER TABLE tracked_by_target RENAME TO tracked_actions;
    CREATE INDEX tracked_due ON tracked_actions (target, status, next_poll_at);
    """,
    # Who this ledger is and how many runs it has seen: a ledger deleted (and so created anew)
    # or restored from an old copy must not pass for the one that knows what was delivered.
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(16))));
    INSERT INTO meta (key, value) VALUES ('generation', '0');
    """,
    # Order action events (Connect's questions) as received from a queue: delivery is at
    # least once, so an event id is recorded once and a redelivered one is dropped; the pending
    # file a row went to is named before it is written (etl/state/action_events.py); the
    # answers sent for actions (action-status files), whether an event named them or not. Not per
    # target: reading the queue needs no Connect credential, and action ids are Connect's
    # UUIDs, which an answer sent to whichever target finds by themselves. Times are epoch
    # seconds as DOUBLE PRECISION: PostgreSQL's REAL (4 bytes) would round them to minutes.
    """
    CREATE TABLE action_events (
        event_id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        action_id TEXT NOT NULL,
        type TEXT NOT NULL,
        channel_order_id TEXT NOT NULL,
        event_time TEXT NOT NULL,
        received_at DOUBLE PRECISION NOT NULL,
        pending_row TEXT NOT NULL,
        pending_file TEXT NOT NULL,
        written_at DOUBLE PRECISION
    );
    CREATE INDEX action_events_by_action ON action_events (action_id);
    CREATE INDEX action_events_unwritten ON action_events (written_at);
    CREATE TABLE action_answers (
        action_id TEXT PRIMARY KEY,
        answer TEXT NOT NULL,
        answered_at DOUBLE PRECISION NOT NULL,
        answered_by TEXT NOT NULL
    );
    """,
    # Many workers on one database (issue 17). ``version_key`` is channel_updated_at in one
    # spelling (UTC, microseconds), so that the database itself keeps an order's newest version
    # whatever order concurrent writers commit in ('' before: any version replaces it).
    # ``work`` holds the claims on input files: who holds one, and until when (a lease); a
    # dead worker's file is taken over once its lease has run out. ``rate_buckets`` and
    # ``rate_log`` are the send budget of one credential shared by every worker: the requests
    # of the last second, and when the next one may start.
    """
    ALTER TABLE orders ADD COLUMN version_key TEXT NOT NULL DEFAULT '';
    CREATE TABLE work (
        tenant TEXT NOT NULL,
        place TEXT NOT NULL,             -- the inbox: host and folder, or a bucket prefix
        name TEXT NOT NULL,
        holder TEXT NOT NULL,            -- the worker: host, pid and a random part
        lease_until REAL NOT NULL,
        claimed_at REAL NOT NULL,
        takeovers INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, place, name)
    );
    CREATE TABLE rate_buckets (
        tenant TEXT NOT NULL,
        operation TEXT NOT NULL,
        next_at REAL NOT NULL,
        PRIMARY KEY (tenant, operation)
    );
    CREATE TABLE rate_log (
        tenant TEXT NOT NULL,
        operation TEXT NOT NULL,
        sent_at REAL NOT NULL
    );
    CREATE INDEX rate_log_window ON rate_log (tenant, operation, sent_at);
    """,
)
UNTARGETED = ""  # the target of rows written before targets were recorded
BUSY_TIMEOUT_SECONDS = 10.0
LOOKUP_CHUNK = 500  # orders asked about in one query to a database server


@dataclass(frozen=True, slots=True)
class FileRecord:
    """Where one input file stands with one target."""

    status: str  # claimed | reported | delivered | failed (| done: before targets)
    run_id: str
    destination: str | None  # archive | failed, once reported
    reason: str | None


@dataclass(frozen=True, slots=True)
class OrderVersion:
    """What one target last acknowledged for one order."""

    content_hash: str
    channel_updated_at: str
    batch_id: str
    file_sha256: str
    run_id: str  # the run that delivered it ('' before runs were recorded)


@dataclass(frozen=True, slots=True)
class QueuedAction:
    """Where one row of an order action log stands."""

    sent_at: float | None
    action_id: str | None
    outcome: str | None  # accepted | rejected | unknown, once sent
    message: str


UTC_SPELLING = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?Z\Z")


def version_key(channel_updated_at: str) -> str:
    """channel_updated_at in one spelling that sorts as time does (UTC, microseconds):
    ``2026-11-02T11:00:00+01:00`` and ``2026-11-02T10:00:00.000Z`` are one moment. A value
    that is no date (never valid: the schema requires one) sorts before every date."""
    utc = UTC_SPELLING.match(channel_updated_at)
    if utc is not None:  # most exports: already UTC; spelled out without parsing (8x faster)
        return f"{utc.group(1)}.{(utc.group(2) or '').ljust(6, '0')}Z"
    try:
        moment = datetime.fromisoformat(channel_updated_at.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ledger_stamp() -> str:
    """Now, to the millisecond (run summaries say seconds): rows of one second keep their order."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Ledger:
    """The ledger, seen by one target (the API base URL and credential every delivery recorded
    through it went to): a SQLite file (``Ledger.open(path, target=...)``, the embedded
    default) or a PostgreSQL database many workers share (``Ledger.open_url``); close when
    done. Both hold the same tables, made by the same ``MIGRATIONS``."""

    def __init__(
        self, database: Database, where: str, target: str, path: Path | None = None
    ) -> None:
        self.db = database
        self.where = where  # what messages call it: the file, or the URL without password
        self.path = path if path is not None else Path(where)
        self.target = target

    @property
    def engine(self) -> str:
        return self.db.engine

    @classmethod
    def open(
        cls, path: Path, timeout: float = BUSY_TIMEOUT_SECONDS, *, target: str = UNTARGETED
    ) -> Ledger:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            connection = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=FULL")
            ledger = cls(SqliteDatabase(connection), str(path.resolve()), target, path)
            ledger.migrate()
            ledger.adopt_untargeted()
            # Prove now that we can write: a held lock should fail here, not mid-file.
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("ROLLBACK")
        except sqlite3.OperationalError as error:
            raise UsageError(
                f"cannot use the ledger {path}: {error} (is another run holding it?)"
            ) from None
        except sqlite3.DatabaseError as error:
            raise UsageError(f"the ledger {path} is not a readable SQLite file: {error}") from None
        return ledger

    @classmethod
    def open_url(
        cls, url: str, timeout: float = BUSY_TIMEOUT_SECONDS, *, target: str = UNTARGETED
    ) -> Ledger:
        """The ledger in a PostgreSQL database (``postgresql://...``); the URL's password is
        never repeated, in a message or anywhere else."""
        import psycopg

        database = PostgresDatabase.connect(url, timeout)
        ledger = cls(database, database.where, target)
        try:
            ledger.migrate()
            ledger.adopt_untargeted()
        except psycopg.Error as error:
            database.close()
            raise UsageError(f"cannot use the state database {database.where}: {error}") from None
        return ledger

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        with self.db.transaction() as db:
            yield db

    @property
    def version(self) -> int:
        return self.db.schema_version()

    def migrate(self) -> None:
        """Bring the ledger to the newest schema, one migration per transaction."""
        with self.db.migrating():
            current = self.version
            if current > len(MIGRATIONS):
                raise UsageError(
                    f"the ledger {self.where} was written by a newer version of the tool "
                    f"(schema {current}); upgrade the tool"
                )
            for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
                with self.transaction() as db:
                    if self.version >= number:
                        # Another run opening the same ledger (a tenant beside this one)
                        # migrated it between our look and our write lock.
                        continue
                    for statement in script.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.set_schema_version(number)

    def adopt_untargeted(self) -> None:
        """Actions queued or tracked before targets were recorded go to the first target that
        opens the ledger, as they would have before: left untargeted, nobody would send them.
        A row the target already has stays untargeted (what ``UPDATE OR IGNORE`` did, spelled
        so that PostgreSQL runs it too)."""
        if self.target == UNTARGETED:
            return
        with self.transaction() as db:
            db.execute(
                "UPDATE action_log SET target = ? WHERE target = ? AND sent_at IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM action_log AS mine WHERE mine.target = ? "
                "AND mine.file_sha256 = action_log.file_sha256 AND mine.row = action_log.row)",
                (self.target, UNTARGETED, self.target),
            )
            db.execute(
                "UPDATE tracked_actions SET target = ? WHERE target = ? AND status = 'PENDING' "
                "AND NOT EXISTS (SELECT 1 FROM tracked_actions AS mine WHERE mine.target = ? "
                "AND mine.action_id = tracked_actions.action_id)",
                (self.target, UNTARGETED, self.target),
            )

    # --- identity -------------------------------------------------------------------------------

    def identity(self) -> tuple[str, int]:
        """(ledger id, generation): who this ledger is, and how many runs it has counted."""
        rows = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        return str(rows["ledger_id"]), int(rows["generation"])

    def next_generation(self) -> int:
        """Count one more run; the new generation."""
        with self.transaction() as db:
            db.execute(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
            )
        return self.identity()[1]

    # --- files ----------------------------------------------------------------------------------

    def file_record(self, sha256: str) -> FileRecord | None:
        row = self.db.execute(
            "SELECT status, run_id, destination, reason FROM files WHERE sha256 = ? AND target = ?",
            (sha256, self.target),
        ).fetchone()
        return None if row is None else FileRecord(*row)

    def file_reported(self, sha256: str, destination: str, reason: str) -> None:
        """Reports are on disk; only the move to ``destination`` (archive | failed) is left."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET status = 'reported', destination = ?, reason = ? "
                "WHERE sha256 = ? AND target = ?",
                (destination, reason, sha256, self.target),
            )

    def file_claimed(self, sha256: str, name: str, run_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO files (sha256, target, name, status, run_id, started_at) "
                "VALUES (?, ?, ?, 'claimed', ?, ?) ON CONFLICT (sha256, target) DO UPDATE SET "
                "name = excluded.name, status = 'claimed', run_id = excluded.run_id, "
                "started_at = excluded.started_at, finished_at = NULL, destination = NULL, "
                "reason = NULL",
                (sha256, self.target, name, run_id, ledger_stamp()),
            )

    def file_finished(self, sha256: str, status: str) -> None:
        """``delivered`` (every item settled: a later copy is a duplicate) or ``failed``."""
        with self.transaction() as db:
            db.execute(
                "UPDATE files SET status = ?, finished_at = ? WHERE sha256 = ? AND target = ?",
                (status, ledger_stamp(), sha256, self.target),
            )

    def file_released(self, sha256: str) -> None:
        """The file goes back to the inbox (API down): the next run processes it again."""
        with self.transaction() as db:
            db.execute("DELETE FROM files WHERE sha256 = ? AND target = ?", (sha256, self.target))

    # --- orders ---------------------------------------------------------------------------------

    def versions(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], OrderVersion]:
        """The last version this target accepted of each order asked about (unknown ones are
        left out)."""
        found: dict[tuple[str, str, str], OrderVersion] = {}
        columns = "content_hash, channel_updated_at, batch_id, file_sha256, run_id"
        if self.engine == "sqlite":
            # In-process: one indexed look-up per order costs microseconds.
            query = (
                f"SELECT {columns} FROM orders WHERE target = ? AND channel_id = ? "
                "AND channel_store_id = ? AND item_id = ?"
            )
            for key in keys:
                row = self.db.execute(query, (self.target, *key)).fetchone()
                if row is not None:
                    found[key] = OrderVersion(*row)
            return found
        # Over the network a round trip per order would cost more than sending it: ask for
        # a few hundred at once.
        wanted = list(dict.fromkeys(keys))
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            values = ", ".join(["(?, ?, ?)"] * len(chunk))
            rows = self.db.execute(
                f"SELECT channel_id, channel_store_id, item_id, {columns} FROM orders "
                f"WHERE target = ? AND (channel_id, channel_store_id, item_id) IN ({values})",
                (self.target, *(part for key in chunk for part in key)),
            ).fetchall()
            for row in rows:
                found[(row[0], row[1], row[2])] = OrderVersion(*row[3:])
        return found

    # --- batches --------------------------------------------------------------------------------

    def batch_pending(self, batch_id: str, file_sha256: str, run_id: str, items: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (batch_id, file_sha256, run_id, status, items, created_at, "
                "target) VALUES (?, ?, ?, 'pending', ?, ?, ?) ON CONFLICT (batch_id) DO UPDATE "
                "SET status = 'pending', run_id = excluded.run_id, items = excluded.items, "
                "target = excluded.target",
                (batch_id, file_sha256, run_id, items, ledger_stamp(), self.target),
            )

    def batch_finished(
        self,
        batch_id: str,
        file_sha256: str,
        status: str,
        accepted: Iterable[tuple[tuple[str, str, str], str, str]],
        http_status: int | None = None,
        message: str = "",
        run_id: str = "",
    ) -> None:
        """Close a batch and record the orders Connect accepted: ((key), hash, updated_at)."""
        stamp = ledger_stamp()
        with self.transaction() as db:
            db.execute(
                "UPDATE batches SET status = ?, finished_at = ?, http_status = ?, message = ? "
                "WHERE batch_id = ?",
                (status, stamp, http_status, message, batch_id),
            )
            # Only a version at least as new replaces the stored one, by the database's own
            # rule: two workers committing two versions of one order in either order leave the
            # newer (Connect keeps the newer too: it ignores an older channel_updated_at).
            db.executemany(
                "INSERT INTO orders (target, channel_id, channel_store_id, item_id, "
                "content_hash, channel_updated_at, batch_id, file_sha256, accepted_at, run_id, "
                "version_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (target, channel_id, channel_store_id, item_id) DO UPDATE SET "
                "content_hash = excluded.content_hash, "
                "channel_updated_at = excluded.channel_updated_at, batch_id = excluded.batch_id, "
                "file_sha256 = excluded.file_sha256, accepted_at = excluded.accepted_at, "
                "run_id = excluded.run_id, version_key = excluded.version_key "
                "WHERE orders.version_key <= excluded.version_key",
                [
                    (
                        self.target,
                        *key,
                        content_hash,
                        updated_at,
                        batch_id,
                        file_sha256,
                        stamp,
                        run_id,
                        version_key(updated_at),
                    )
                    for key, content_hash, updated_at in accepted
                ],
            )

    def abandon_pending(self, current_run_id: str) -> int:
        """Batches left pending by a killed run: their orders are resent by whoever comes next."""
        with self.transaction() as db:
            cursor = db.execute(
                "UPDATE batches SET status = 'abandoned', finished_at = ? "
                "WHERE status = 'pending' AND run_id != ? AND target = ?",
                (ledger_stamp(), current_run_id, self.target),
            )
        return int(cursor.rowcount)

    # --- order action log and tracked actions ---------------------------------------------------

    def queue_actions(self, rows: Iterable[tuple[str, int, str, str]], at: float) -> int:
        """Queue reported actions (file sha, row, entity id, JSON body); a row queued once stays."""
        with self.transaction() as db:
            cursor = db.executemany(
                "INSERT OR IGNORE INTO action_log (target, file_sha256, row, entity_id, body, "
                "queued_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(self.target, *row, at) for row in rows],
            )
        return int(cursor.rowcount)

    def unsent_actions(self, limit: int) -> list[tuple[int, str, str, int]]:
        """(seq, JSON body, file sha, row) of the oldest queued actions not yet sent."""
        rows = self.db.execute(
            "SELECT seq, body, file_sha256, row FROM action_log "
            "WHERE target = ? AND sent_at IS NULL ORDER BY seq LIMIT ?",
            (self.target, limit),
        ).fetchall()
        return [(int(s), str(b), str(f), int(r)) for s, b, f, r in rows]

    def unsent_count(self) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM action_log WHERE target = ? AND sent_at IS NULL", (self.target,)
        ).fetchone()
        return int(row[0])

    def queued_action(self, file_sha256: str, row: int) -> QueuedAction:
        """Where one queued row stands."""
        found = self.db.execute(
            "SELECT sent_at, action_id, outcome, message FROM action_log "
            "WHERE target = ? AND file_sha256 = ? AND row = ?",
            (self.target, file_sha256, row),
        ).fetchone()
        if found is None:
            return QueuedAction(None, None, None, "")
        return QueuedAction(found[0], found[1], found[2], found[3] or "")

    def actions_sent(
        self, sent: list[tuple[int, str, str]], source: str, at: float, next_poll_at: float
    ) -> None:
        """Record the ids Connect gave (seq, action_id, entity id) and start tracking them."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE action_log SET sent_at = ?, action_id = ?, outcome = 'accepted' "
                "WHERE seq = ?",
                [(at, action_id, seq) for seq, action_id, _ in sent],
            )
            db.executemany(
                "INSERT OR IGNORE INTO tracked_actions (target, action_id, source, entity_id, "
                "tracked_at, next_poll_at) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (self.target, action_id, source, entity, at, next_poll_at)
                    for _, action_id, entity in sent
                ],
            )

    def actions_closed(self, seqs: list[int], at: float, outcome: str, message: str) -> None:
        """Queued actions that are sent and never sent again: Connect refused them
        (``rejected``), or whether it got them cannot be known (``unknown``: resending could
        report them twice)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE action_log SET sent_at = ?, outcome = ?, message = ? WHERE seq = ?",
                [(at, outcome, message, s) for s in seqs],
            )

    def track(self, action_ids: Iterable[str], source: str, at: float) -> int:
        """Follow these action ids until final (ids already tracked are left as they are)."""
        with self.transaction() as db:
            cursor = db.executemany(
                "INSERT OR IGNORE INTO tracked_actions (target, action_id, source, tracked_at, "
                "next_poll_at) VALUES (?, ?, ?, ?, ?)",
                [(self.target, action_id, source, at, at) for action_id in action_ids],
            )
        return int(cursor.rowcount)

    def due_actions(self, now: float, horizon: float = 3600.0) -> list[str]:
        """Pending actions whose poll is due; one planned more than ``horizon`` ahead was
        planned by a clock since set back, and is due now rather than in hours."""
        rows = self.db.execute(
            "SELECT action_id FROM tracked_actions WHERE target = ? AND status = 'PENDING' "
            "AND (next_poll_at <= ? OR next_poll_at > ?) ORDER BY next_poll_at",
            (self.target, now, now + horizon),
        )
        return [str(row[0]) for row in rows]

    def action_polled(
        self,
        action_id: str,
        status: str,
        errors: str,
        created_at: str,
        updated_at: str,
        next_poll_at: float,
        finished_at: float | None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE tracked_actions SET status = ?, errors = ?, created_at = ?, "
                "updated_at = ?, next_poll_at = ?, finished_at = ?, polls = polls + 1 "
                "WHERE target = ? AND action_id = ?",
                (
                    status,
                    errors,
                    created_at,
                    updated_at,
                    next_poll_at,
                    finished_at,
                    self.target,
                    action_id,
                ),
            )

    def tracked(self, action_ids: Iterable[str] | None = None) -> list[dict[str, object]]:
        """Tracked actions (all, or those asked for), newest first, as plain dicts."""
        query = (
            "SELECT action_id, source, entity_id, status, errors, created_at, updated_at, "
            "tracked_at, next_poll_at, polls, finished_at FROM tracked_actions WHERE target = ?"
        )
        names = [
            "action_id",
            "source",
            "entity_id",
            "status",
            "errors",
            "created_at",
            "updated_at",
            "tracked_at",
            "next_poll_at",
            "polls",
            "finished_at",
        ]
        rows = self.db.execute(
            query + " ORDER BY tracked_at DESC, action_id", (self.target,)
        ).fetchall()
        wanted = None if action_ids is None else set(action_ids)
        return [
            dict(zip(names, row, strict=True)) for row in rows if wanted is None or row[0] in wanted
        ]

    def last_sent(self, operation: str) -> float | None:
        """When an operation with a documented maximum frequency was last called with this
        target's credential (survives restarts, so a restart cannot send twice within the
        minute)."""
        row = self.db.execute(
            "SELECT last_sent_at FROM pacing WHERE target = ? AND operation = ?",
            (self.target, operation),
        ).fetchone()
        return None if row is None else float(row[0])

    def sent_now(self, operation: str, at: float) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO pacing (target, operation, last_sent_at) VALUES (?, ?, ?) "
                "ON CONFLICT (target, operation) DO UPDATE SET "
                "last_sent_at = excluded.last_sent_at",
                (self.target, operation, str(at)),
            )

    def pending_batches(self) -> list[str]:
        rows = self.db.execute(
            "SELECT batch_id FROM batches WHERE status = 'pending' AND target = ?", (self.target,)
        )
        return [str(row[0]) for row in rows]


def ledger_for(settings: Settings) -> Ledger:
    """The ledger the settings name: the database many workers share (``state_url``), or the
    SQLite file (the embedded default)."""
    if settings.state_url:
        return Ledger.open_url(
            settings.state_url.reveal(), settings.ledger_timeout, target=settings.target
        )
    return Ledger.open(settings.ledger_path, settings.ledger_timeout, target=settings.target)
