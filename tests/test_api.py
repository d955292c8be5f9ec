"""The Python API as a data engineer uses it from a notebook: a DataFrame of orders checked, its
problems read as a DataFrame, then synced to the sandbox (loopback HTTP), with nothing global
changed in the process on import or by any call (DESIGN.md section 10)."""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.queues
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

import etl
from etl.core import process_setup
from etl.core.process_setup import ENVIRONMENT
from etl.run.parallel import workers_for
from etl.sandbox import SandboxServer
from etl.state.inbox import InboxLock

from .conftest import REPO, SECRET, base_line, connect_env, settings_for, write_rows

# The orders made invalid, by position, with the problem each must come back with.
MISTAKES = {
    7: ({"status": "SHIPPING"}, "$.status", "NOT_ALLOWED_VALUE", "status"),
    250: (
        {"order_lines.quantity": "2.5"},
        "$.order_lines[0].quantity",
        "NOT_AN_INTEGER",
        "order_lines.quantity",
    ),
    500: (
        {"order_lines.price.amount": "-3"},
        "$.order_lines[0].price.amount",
        "NEGATIVE_AMOUNT",
        "order_lines.price.amount",
    ),
    999: (
        {"created_at": "2026-11-01 10:00:00"},
        "$.created_at",
        "NAIVE_DATE_TIME",
        "created_at",
    ),
}
ORDERS = 1000


def order_rows() -> list[dict[str, str]]:
    """One line per order; row n + 2 of the export is order n (the header is row 1)."""
    rows = []
    for n in range(ORDERS):
        row = base_line(f"PY-{n:04d}", f"PY-L{n:04d}")
        if n in MISTAKES:
            row.update(MISTAKES[n][0])
        rows.append(row)
    return rows


def expected_problems() -> set[tuple[int, str, str, str, str]]:
    return {
        (n + 2, f"PY-{n:04d}", path, code, column)
        for n, (_, path, code, column) in MISTAKES.items()
    }


@pytest.fixture(autouse=True)
def as_a_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process imported the command line (conftest), which owns its process: the
    calls here run as they do where ``etl`` is a library, so that ``untouched`` means it."""
    monkeypatch.setattr(process_setup, "_owned", False)


@contextmanager
def untouched() -> Iterator[None]:
    """The block changes neither the environment, nor the collector, nor the switch interval."""
    environment = dict(os.environ)
    collecting = gc.isenabled()
    interval = sys.getswitchinterval()
    yield
    assert dict(os.environ) == environment
    assert gc.isenabled() == collecting
    assert sys.getswitchinterval() == interval


def test_a_dataframe_of_orders_is_checked_then_synced_like_a_notebook_would(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(sandbox, tmp_path)
    orders = pd.DataFrame(order_rows())

    with untouched():
        checked = etl.check(orders, settings=settings)
    counts = checked.counts.to_pandas().set_index("outcome")["items"].to_dict()
    assert counts == {"VALID": ORDERS - len(MISTAKES), "INVALID": len(MISTAKES)}
    problems = checked.problems.to_pandas()
    assert list(problems.columns) == [
        "file",
        "row",
        "rows",
        "id",
        "field",
        "column",
        "code",
        "message",
        "value",
        "warning",
    ]
    found = set(
        problems[["row", "id", "field", "code", "column"]].itertuples(index=False, name=None)
    )
    assert found == expected_problems()
    assert set(problems["file"]) == {"orders-from-python.parquet"}
    # The would-be requests: every valid order once, at most 100 per request, one origin.
    assert len(checked.requests) == 10
    sent_ids = [o["channel_order_id"] for r in checked.requests for o in r["orders"]]
    assert len(sent_ids) == ORDERS - len(MISTAKES)
    assert not {f"PY-{n:04d}" for n in MISTAKES} & set(sent_ids)
    assert all(
        r["origin"] == {"channel_id": "CH", "channel_store_id": "S1"} for r in checked.requests
    )
    items = checked.items.to_pandas()
    assert len(items) == ORDERS and items["batch"][items["outcome"] == "VALID"].str.len().min() > 0
    with pytest.raises(etl.ProblemsFound) as raised:
        checked.raise_for_problems()
    assert raised.value.problems.num_rows == len(MISTAKES)
    assert "4 invalid of 1000 orders" in str(raised.value)
    assert "row 9, order PY-0007, $.status: NOT_ALLOWED_VALUE" in str(raised.value)

    with untouched():
        synced = etl.sync(orders, settings)
    assert synced.exit_code == 1 and synced.stopped is None
    assert synced.counts.to_pylist() == [
        {"file": "orders-from-python.parquet", "outcome": "ACCEPTED", "items": 996},
        {"file": "orders-from-python.parquet", "outcome": "INVALID", "items": 4},
    ]
    stored = {o["channel_order_id"] for o in sandbox.stored_orders()}
    assert stored == set(sent_ids), "what the API received, not what the client says"
    synced_problems = synced.problems.to_pandas()
    assert (
        set(
            synced_problems[["row", "id", "field", "code", "column"]].itertuples(
                index=False, name=None
            )
        )
        == expected_problems()
    )
    # The same reports as `etl run`, and the source kept where etl run keeps a failed file.
    assert (synced.run_dir / "orders-from-python.parquet.errors.csv").is_file()
    assert synced.html == synced.run_dir / "report.html" and synced.html.is_file()
    assert "PY-0007" in synced.html.read_text(encoding="utf-8")
    failed = settings.outbox / "failed" / synced.summary.run_id / "orders-from-python.parquet"
    assert failed.is_file()
    upserts = len(sandbox.requests_log(path="/api/channel-platform/v1/orders"))

    with untouched():
        again = etl.sync(orders, settings)
    # Judged again order by order (it had invalid orders): nothing is sent twice.
    assert again.counts.to_pandas().set_index("outcome")["items"].to_dict() == {
        "UNCHANGED": 996,
        "INVALID": 4,
    }
    assert len(sandbox.requests_log(path="/api/channel-platform/v1/orders")) == upserts
    assert capsys.readouterr() == ("", ""), "the library prints nothing"


def test_a_path_a_table_and_a_dataframe_give_the_same_problems(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "orders-export.csv", order_rows())
    as_text = pacsv.ConvertOptions(strings_can_be_null=False, column_types=None)
    header = path.read_text().splitlines()[0].split(",")
    as_text.column_types = {name: pa.string() for name in header}
    table = pacsv.read_csv(path, convert_options=as_text)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)

    results = [etl.check(source) for source in (path, table, frame)]
    located = [r.problems.drop_columns(["file"]).to_pylist() for r in results]
    assert located[0] == located[1] == located[2]
    assert {(p["row"], p["id"], p["field"], p["code"]) for p in located[0]} == {
        (row, order, field, code) for row, order, field, code, _ in expected_problems()
    }
    assert [r.summary.outcomes for r in results] == [{"VALID": 996, "INVALID": 4}] * 3
    assert results[0].requests == results[1].requests == results[2].requests


def test_importing_etl_and_calling_it_changes_nothing_in_the_process(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """In a fresh interpreter, as a notebook's (the test process imported the command line,
    which tunes its own): the calls that would change the process are recorded, not made."""
    path = write_rows(tmp_path / "orders-1.csv", order_rows()[:20])
    code = f"""
        import gc, os, sys
        import pandas as pd
        changes = []
        gc.disable = lambda: changes.append("gc.disable")
        gc.enable = lambda: changes.append("gc.enable")
        sys.setswitchinterval = lambda seconds: changes.append("setswitchinterval")
        def state():
            return dict(os.environ), gc.isenabled(), sys.getswitchinterval()
        before = state()
        import etl
        after_import = state()
        settings = etl.Settings.load(inbox="inbox", outbox="outbox")
        checked = etl.check({str(path)!r}, settings=settings)
        synced = etl.sync(pd.read_csv({str(path)!r}, dtype=str), settings, create=True)
        after_calls = state()
        print(before == after_import, before == after_calls, changes)
        print(checked.summary.outcomes, synced.summary.files[0].outcomes)
        print("etl.cli" in sys.modules)
    """
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT}
    env.update(connect_env(sandbox), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "True True []",
        "{'VALID': 19, 'INVALID': 1} {'ACCEPTED': 19, 'INVALID': 1}",
        "False",  # the command line's package, which tunes its process, is not loaded
    ]
    assert len(sandbox.stored_orders()) == 19


def test_an_unreadable_source_and_wrong_arguments_say_what_to_fix(tmp_path: Path) -> None:
    frame = pd.DataFrame([{**base_line(), "order_lines.statuss": "SHIPPED"}])
    with pytest.raises(etl.UnreadableFile) as unreadable:
        etl.check(frame)
    assert str(unreadable.value).startswith("orders-from-python.parquet: ")
    assert "did you mean 'status'?" in str(unreadable.value)
    assert "etl-check-" not in str(unreadable.value), "never a temporary path"
    with pytest.raises(etl.UsageError, match="kind 'order' is not one of action-status"):
        etl.check(frame, kind="order")
    with pytest.raises(etl.UsageError, match=r"name 'export\.parquet' does not say orders"):
        etl.check(frame, name="export.parquet")
    with pytest.raises(etl.UsageError, match="no such file: "):
        etl.check(tmp_path / "orders-missing.csv")
    with pytest.raises(etl.UsageError, match="cannot check a list"):
        etl.check([base_line()])  # type: ignore[arg-type]
    with pytest.raises(etl.UsageError, match="documents come as CSV files only"):
        etl.check(frame, kind="documents")
    mixed = pd.DataFrame([base_line(), {**base_line("0002"), "order_lines.quantity": 2}])
    with pytest.raises(etl.UnreadableFile, match="cannot be read as a table of cells"):
        etl.check(mixed)


def test_a_dataframe_of_an_erp_export_goes_through_its_mapping_file(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Its own column names, decimal commas and local times: read through the mapping file, as
    `etl check --mapping` reads the CSV."""
    from .conftest import SAMPLES

    export, mapping = SAMPLES / "orders-eu-erp.csv", SAMPLES / "eu-erp.mapping.toml"
    frame = pd.read_csv(export, sep=";", dtype=str, keep_default_na=False)
    assert "Bestellnummer" in frame.columns
    from_file = etl.check(export, mapping=mapping)
    from_frame = etl.check(frame, mapping=mapping)
    assert from_frame.summary.outcomes == from_file.summary.outcomes == {"VALID": 22}
    assert from_frame.requests == from_file.requests
    with pytest.raises(etl.UnreadableFile, match="'Bestellnummer'"):
        etl.check(frame)  # without its mapping, its columns mean nothing

    settings = settings_for(sandbox, tmp_path)
    synced = etl.sync(frame, settings, mapping=mapping, name="orders-erp-2026-12-02.parquet")
    assert synced.exit_code == 0
    assert synced.summary.files[0].outcomes == {"ACCEPTED": 22}
    assert len(sandbox.stored_orders()) == 22
    archived = settings.outbox / "archive" / synced.summary.run_id
    assert [p.name for p in archived.iterdir()] == ["orders-erp-2026-12-02.parquet"]


def test_settings_load_from_file_env_and_keywords_strictly(tmp_path: Path) -> None:
    config = tmp_path / "etl.toml"
    config.write_text('[paths]\ninbox = "drop"\n[connect]\nchannel_id = "FILE"\ntimeout = 12\n')
    settings = etl.Settings.load(
        config, environ={"CONNECT_CHANNEL_ID": "ENV", "CONNECT_CLIENT_SECRET": SECRET}, timeout=7
    )
    assert settings.inbox == tmp_path / "drop"
    assert (settings.channel_id, settings.timeout) == ("ENV", 7)
    assert settings.client_secret.reveal() == SECRET and SECRET not in repr(settings)
    with pytest.raises(etl.UsageError, match=r"inbx is not a setting \(did you mean inbox\?\)"):
        etl.Settings.load(config, environ={}, inbx="x")
    with pytest.raises(etl.UsageError, match="timeout must be a number of seconds above 0"):
        etl.Settings.load(config, environ={}, timeout=0)
    with pytest.raises(etl.UsageError) as wrong:
        etl.Settings.load(config, environ={}, token=12345)
    assert str(wrong.value) == "token cannot be int"


def test_send_refuses_a_file_changed_since_it_was_checked(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # The whole pipeline is loaded by now: etl.send is still the API's function.
    assert etl.send is etl.api.send
    settings = settings_for(sandbox, tmp_path)
    path = write_rows(tmp_path / "orders-a.csv", order_rows()[:3])
    checked = etl.check(path, settings=settings)
    write_rows(path, order_rows()[:4])
    with pytest.raises(etl.UsageError, match=r"orders-a\.csv changed since it was checked"):
        etl.send(checked, settings)
    assert sandbox.stored_orders() == []
    assert sorted(p.name for p in settings.inbox.iterdir()) == [".etl.lock"], "nothing left"


def test_run_inbox_is_etl_run_and_respects_the_inbox_lock(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = settings_for(sandbox, tmp_path)
    write_rows(settings.inbox / "orders-b.csv", order_rows()[:5])
    lock = InboxLock(settings.inbox, purpose="etl watch")
    assert lock.acquire() is None
    try:
        with pytest.raises(etl.UsageError, match="already taken by etl watch"):
            etl.run_inbox(settings)
    finally:
        lock.release()
    done = etl.run_inbox(settings)
    assert done.exit_code == 0
    assert [(f.name, f.outcomes) for f in done.summary.files] == [("orders-b.csv", {"ACCEPTED": 5})]
    assert done.items.column("outcome").to_pylist() == ["ACCEPTED"] * 5
    done.raise_for_problems()  # nothing to raise
    assert len(sandbox.stored_orders()) == 5
    assert capsys.readouterr() == ("", "")
    with pytest.raises(etl.UsageError, match="no Connect credentials"):
        etl.run_inbox(etl.Settings(inbox=settings.inbox, outbox=settings.outbox))


def _pool_in_a_daemon(answers: multiprocessing.queues.Queue[str]) -> None:
    answers.put(repr(workers_for(2)))


def test_worker_processes_only_when_asked_and_never_in_a_daemonic_process() -> None:
    assert workers_for(None) is None and workers_for(0) is None
    pool = workers_for(2)
    assert pool is not None and pool.processes == 2
    pool.close()
    # An Airflow or Celery task runs in a daemonic process, which may not start children.
    context = multiprocessing.get_context("fork")
    answers: multiprocessing.queues.Queue[str] = context.Queue()
    daemon = context.Process(target=_pool_in_a_daemon, args=(answers,), daemon=True)
    daemon.start()
    try:
        assert answers.get(timeout=30) == "None"
    finally:
        daemon.join(10)


def test_an_api_that_stays_down_is_said_and_the_next_run_inbox_delivers(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, max_attempts=2)
    orders = pd.DataFrame(order_rows()[10:40])  # all valid
    sandbox.set_faults({"faults": [{"status": 503}], "path_prefix": "/api/"})
    synced = etl.sync(orders, settings)
    assert synced.exit_code == 3
    assert synced.stopped is not None and "503" in synced.stopped
    assert set(synced.items.column("outcome").to_pylist()) == {"FAILED"}
    with pytest.raises(etl.ProblemsFound) as raised:
        synced.raise_for_problems()
    assert str(raised.value) == (
        f"orders-from-python.parquet: 30 failed of 30 orders; left in the inbox for the next "
        f"run: {synced.stopped}"
    )
    assert (settings.inbox / "orders-from-python.parquet").is_file()
    assert sandbox.stored_orders() == []

    sandbox.clear_faults()
    later = etl.run_inbox(settings)
    assert later.exit_code == 0 and later.stopped is None
    assert later.counts.to_pylist() == [
        {"file": "orders-from-python.parquet", "outcome": "ACCEPTED", "items": 30}
    ]
    assert len(sandbox.stored_orders()) == 30


def test_a_refused_ledger_leaves_no_copy_in_the_inbox(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    orders = pd.DataFrame(order_rows()[10:15])
    assert etl.sync(orders, settings).exit_code == 0
    settings.ledger_path.unlink()  # deleted: every order would be sent again as new
    with pytest.raises(etl.UsageError, match="is not the one this outbox's runs used"):
        etl.sync(orders, settings)
    assert [p.name for p in settings.inbox.iterdir() if p.is_file()] == [".etl.lock"]
    assert list((settings.inbox / ".processing").iterdir()) == []
    assert len(sandbox.requests_log(path="/api/channel-platform/v1/orders")) == 1


def test_a_file_outside_the_inbox_is_copied_and_one_inside_is_taken_where_it_is(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    outside = write_rows(tmp_path / "export.csv", order_rows()[10:13])
    with pytest.raises(etl.UsageError, match=r"the name export\.csv says no known kind"):
        etl.check(outside)
    sent = etl.sync(outside, settings, kind="orders")
    assert [(f.name, f.outcomes) for f in sent.summary.files] == [
        ("orders-export.csv", {"ACCEPTED": 3})
    ]
    assert outside.is_file(), "the caller's file stays where it is"
    archive = settings.outbox / "archive"
    assert (archive / sent.summary.run_id / "orders-export.csv").read_bytes() == (
        outside.read_bytes()
    )

    inside = write_rows(settings.inbox / "orders-in.csv", order_rows()[13:15])
    sent = etl.sync(inside, settings)
    assert sent.summary.files[0].outcomes == {"ACCEPTED": 2}
    assert not inside.exists()
    assert [p.name for p in (archive / sent.summary.run_id).iterdir()] == ["orders-in.csv"]
    assert len(sandbox.stored_orders()) == 5


def test_a_missing_inbox_is_refused_unless_create_says_to_make_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path, inbox=tmp_path / "drop")
    orders = pd.DataFrame(order_rows()[10:12])
    with pytest.raises(etl.UsageError) as refused:
        etl.sync(orders, settings)
    assert str(refused.value) == (
        f"the inbox {tmp_path / 'drop'} does not exist (a typo?); create it, or pass --create "
        "(create=True from Python) to let the tool make it"
    )
    assert etl.sync(orders, settings, create=True).exit_code == 0
