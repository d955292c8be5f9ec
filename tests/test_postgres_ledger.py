"""The ledger on both engines: the same behaviour from the same migrations, order versions kept
newest by the database under concurrent writers, and a state URL's password never shown.

PostgreSQL tests use ``ETL_TEST_POSTGRES`` (default postgresql://postgres@127.0.0.1:5432/test),
each in a schema of its own, dropped afterwards; they skip when no server answers, except under
``CI=true``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etl.core.errors import UsageError
from etl.settings.config import load_settings
from etl.state.ledger import MIGRATIONS, Ledger, version_key
from etl.state.sql import to_postgres

from .conftest import RunCli

Opener = Callable[[], Ledger]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the ledger anew each call (as each run does), on one engine or the other."""
    opened: list[Ledger] = []
    if request.param == "sqlite":

        def opener() -> Ledger:
            opened.append(Ledger.open(tmp_path / "ledger.sqlite3", target="T"))
            return opened[-1]

    else:
        url = request.getfixturevalue("postgres_url")

        def opener() -> Ledger:
            opened.append(Ledger.open_url(url, target="T"))
            return opened[-1]

    yield opener
    for ledger in opened:
        ledger.close()


KEY = ("CH", "S1", "0001")


def test_every_migration_is_applied_once_and_reopening_changes_nothing(
    open_ledger: Opener,
) -> None:
    first = open_ledger()
    assert first.version == len(MIGRATIONS)
    identity = first.identity()
    again = open_ledger()
    assert again.version == len(MIGRATIONS)
    assert again.identity() == identity
    assert again.next_generation() == identity[1] + 1


def test_files_go_through_their_states(open_ledger: Opener) -> None:
    ledger = open_ledger()
    assert ledger.file_record("abc") is None
    ledger.file_claimed("abc", "orders.csv", "run-1")
    assert ledger.file_record("abc").status == "claimed"  # type: ignore[union-attr]
    ledger.file_reported("abc", "failed", "2 invalid")
    record = ledger.file_record("abc")
    assert record is not None and (record.status, record.destination) == ("reported", "failed")
    ledger.file_finished("abc", "failed")
    ledger.file_claimed("abc", "orders.csv", "run-2")  # dropped again: judged again
    record = ledger.file_record("abc")
    assert record is not None and (record.status, record.run_id, record.reason) == (
        "claimed",
        "run-2",
        None,
    )
    ledger.file_released("abc")
    assert ledger.file_record("abc") is None


def test_accepted_orders_are_known_per_target_and_survive_reopening(open_ledger: Opener) -> None:
    ledger = open_ledger()
    ledger.batch_pending("b1", "sha", "run-1", 2)
    assert ledger.pending_batches() == ["b1"]
    other = ("CH", "S1", "0002")
    ledger.batch_finished(
        "b1",
        "sha",
        "accepted",
        [(KEY, "h1", "2026-11-02T10:00:00Z"), (other, "h2", "2026-11-02T10:00:00Z")],
        204,
        run_id="run-1",
    )
    assert ledger.pending_batches() == []
    found = open_ledger().versions([KEY, other, ("CH", "S1", "unknown")])
    assert {k: v.content_hash for k, v in found.items()} == {KEY: "h1", other: "h2"}
    assert found[KEY].run_id == "run-1"
    ledger.target = "another API"
    assert ledger.versions([KEY]) == {}


def test_an_older_version_never_replaces_a_newer_one_whatever_its_spelling(
    open_ledger: Opener,
) -> None:
    ledger = open_ledger()
    ledger.batch_finished("b1", "sha", "accepted", [(KEY, "new", "2026-11-02T11:00:00+01:00")])
    # The same moment, spelled in UTC, replaces it (same time: the newer content wins).
    ledger.batch_finished("b2", "sha", "accepted", [(KEY, "same", "2026-11-02T10:00:00.000Z")])
    ledger.batch_finished("b3", "sha", "accepted", [(KEY, "old", "2026-11-02T09:59:59.999Z")])
    assert ledger.versions([KEY])[KEY].content_hash == "same"


def test_queued_actions_are_queued_once_and_closed_once(open_ledger: Opener) -> None:
    ledger = open_ledger()
    assert ledger.queue_actions([("sha", 1, "O1", "{}"), ("sha", 2, "O2", "{}")], 10.0) == 2
    assert ledger.queue_actions([("sha", 1, "O1", "{}")], 11.0) == 0
    assert ledger.unsent_count() == 2
    (first, second) = ledger.unsent_actions(10)
    ledger.actions_sent([(first[0], "A1", "O1")], "sha", 12.5, 72.5)
    ledger.actions_closed([second[0]], 12.5, "unknown", "answer lost")
    assert ledger.unsent_count() == 0
    assert ledger.queued_action("sha", 1).action_id == "A1"
    assert ledger.queued_action("sha", 2).outcome == "unknown"
    assert ledger.due_actions(now=72.5) == ["A1"]
    assert ledger.due_actions(now=70.0) == []
    ledger.action_polled("A1", "SUCCESS", "[]", "c", "u", 999.0, 80.0)
    assert ledger.tracked()[0]["status"] == "SUCCESS"
    assert ledger.track(["A1", "A2"], "file.csv", 90.0) == 1


def test_pacing_survives_reopening_to_the_millisecond(open_ledger: Opener) -> None:
    open_ledger().sent_now("reportOrderActions", 1_795_000_000.125)
    assert open_ledger().last_sent("reportOrderActions") == 1_795_000_000.125


def test_every_migration_has_a_postgresql_spelling() -> None:
    # A migration added later in SQLite's spelling is applied to PostgreSQL as translated: a
    # construct the translation does not know fails here, not on a user's server.
    for script in MIGRATIONS:
        for statement in script.split(";"):
            if statement.strip():
                translated = to_postgres(statement)
                assert "AUTOINCREMENT" not in translated and " REAL" not in translated


def test_version_keys_sort_as_time_does() -> None:
    spelled = ["2026-11-02T11:00:00+01:00", "2026-11-02T10:00:00.5Z", "2026-11-02T10:00:01Z"]
    assert [version_key(s) for s in spelled] == sorted(version_key(s) for s in spelled)
    assert version_key("2026-11-02T11:00:00+01:00") == version_key("2026-11-02T10:00:00Z")
    # UTC spellings take a shortcut; it must agree with parsing.
    assert version_key("2026-11-02T10:00:00.5Z") == version_key("2026-11-02T11:00:00.5+01:00")
    assert version_key("not a date") < version_key("0001-01-01T00:00:00Z")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_concurrent_writers_leave_each_orders_newest_version(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Eight writers, each with its own connection, record interleaved versions of the same
    orders in random order: whatever order they commit in, the newest version stays."""
    url = request.getfixturevalue("postgres_url") if engine == "postgresql" else ""

    def connect() -> Ledger:
        if url:
            return Ledger.open_url(url, target="T")
        return Ledger.open(tmp_path / "ledger.sqlite3", 30.0, target="T")

    connect().close()  # migrated once, before the race
    orders = [("CH", "S1", f"{n:04d}") for n in range(20)]
    versions = [f"2026-11-02T10:00:{second:02d}Z" for second in range(40)]
    work = [(key, moment) for key in orders for moment in versions]
    random.Random(17).shuffle(work)
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def writer(share: list[tuple[tuple[str, str, str], str]]) -> None:
        ledger = connect()
        try:
            start.wait()
            for number, (key, moment) in enumerate(share):
                ledger.batch_finished(f"b{number}", "sha", "accepted", [(key, moment, moment)])
        except BaseException as error:  # reported by the test, not lost in a thread
            errors.append(error)
        finally:
            ledger.close()

    threads = [threading.Thread(target=writer, args=(work[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    ledger = connect()
    try:
        stored = ledger.versions(orders)
    finally:
        ledger.close()
    assert {key: v.channel_updated_at for key, v in stored.items()} == dict.fromkeys(
        orders, versions[-1]
    )


# --- the URL's password ---------------------------------------------------------------------------

PASSWORD = "hunter2-do-not-print"


def test_a_database_that_refuses_never_hears_its_password_repeated() -> None:
    url = f"postgresql://etl:{PASSWORD}@127.0.0.1:9/ledger?connect_timeout=1"
    with pytest.raises(UsageError) as raised:
        Ledger.open_url(url, 1.0)
    assert PASSWORD not in str(raised.value)
    assert "postgresql://etl:***@127.0.0.1:9/ledger" in str(raised.value)


def test_a_password_on_the_command_line_is_refused_without_being_repeated(
    run_cli: RunCli, tmp_path: Path
) -> None:
    (tmp_path / "inbox").mkdir()
    code, out, err = run_cli(
        "run",
        "--inbox",
        tmp_path / "inbox",
        "--outbox",
        tmp_path / "outbox",
        "--state",
        f"postgresql://etl:{PASSWORD}@db.example/ledger",
    )
    assert code == 2
    assert PASSWORD not in out + err
    assert "CONNECT_STATE_URL" in err


def test_the_state_url_comes_from_the_environment_and_shows_without_its_password(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECT_STATE_URL", f"postgresql://etl:{PASSWORD}@db.example/ledger")
    settings = load_settings(None)
    assert settings.shared_state
    assert PASSWORD not in repr(settings)
    code, out, err = run_cli("config", "show")
    assert code == 0, err
    assert PASSWORD not in out + err
    assert "state_url = postgresql://etl:***@db.example/ledger  (env CONNECT_STATE_URL)" in out
    assert "state = (not set)" in out  # no ledger file is used
    code, out, err = run_cli("config", "show", "--state", "postgresql://etl@db.example/other")
    assert "state_url = postgresql://etl@db.example/other  (flag --state)" in out


def test_a_config_file_with_the_state_url_password_must_be_private(tmp_path: Path) -> None:
    config = tmp_path / "etl.toml"
    config.write_text(
        f'[state]\nstate_url = "postgresql://etl:{PASSWORD}@db.example/ledger"\n'
        "lease_seconds = 12\n"
    )
    config.chmod(0o644)
    with pytest.raises(UsageError) as raised:
        load_settings(config, environ={})
    assert "chmod 600" in str(raised.value) and PASSWORD not in str(raised.value)
    config.chmod(0o600)
    settings = load_settings(config, environ={})
    assert settings.lease_seconds == 12 and settings.shared_state


def test_a_state_url_that_is_not_postgresql_is_refused_in_words() -> None:
    with pytest.raises(UsageError, match="not a PostgreSQL URL"):
        load_settings(None, environ={"CONNECT_STATE_URL": "mysql://db.example/ledger"})
