"""The other order operations against the sandbox: action statuses, the action log and its
once-a-minute flushes, tracking with an injected clock, documents (multipart and DELETE body)
and anonymization. Assertions are on what the sandbox received."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from etl.core.models import MappedItem, Outcome
from etl.core.schema import ANONYMIZATION
from etl.deliver.client import ConnectClient
from etl.operations.actions import (
    ActionContext,
    flush_action_log,
    poll_actions,
    queue_order_actions,
    send_action_statuses,
    track_actions,
)
from etl.operations.documents import DocumentRefused, check_documents, load_document, send_documents
from etl.operations.kinds import OperationContext, operation_for
from etl.sandbox import SandboxServer
from etl.state.ledger import Ledger

from .conftest import SECRET, FakeTime, RunCli, connect_env, settings_for

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ORIGIN = {"channel_id": "CH", "channel_store_id": "S"}


@pytest.fixture
def time_() -> FakeTime:
    return FakeTime()


@pytest.fixture
def clocked(tmp_path: Path, time_: FakeTime) -> Iterator[SandboxServer]:
    """A sandbox whose action delays and rate limits follow the test's clock."""
    with SandboxServer(
        db_path=tmp_path / "sandbox.sqlite3",
        client_secret=SECRET,
        clock=time_.clock,
        action_delay=30,
    ) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def open_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Ledger]:
    """Opens the ledger (anew each call, as after a crash) on one engine or the other: the
    action log behaves the same on both (tests/test_postgres_ledger.py)."""
    if request.param == "sqlite":
        return lambda: Ledger.open(tmp_path / "ledger.sqlite3")
    url = request.getfixturevalue("postgres_url")
    return lambda: Ledger.open_url(url)


@pytest.fixture
def ledger(open_ledger: Callable[[], Ledger]) -> Iterator[Ledger]:
    opened = open_ledger()
    yield opened
    opened.close()


def context(
    server: SandboxServer, tmp_path: Path, ledger: Ledger, time_: FakeTime
) -> ActionContext:
    settings = settings_for(server, tmp_path)
    client = ConnectClient(settings, clock=time_.clock, sleep=time_.sleep)
    return ActionContext(lambda: client, ledger, settings.outbox, "f" * 64, time_.clock)


def item(item_id: str, body: dict[str, Any], row: int = 2) -> MappedItem:
    return MappedItem(item_id, None, body, (row,), "file.csv")


def requests_to(server: SandboxServer, prefix: str) -> list[dict[str, Any]]:
    return [r for r in server.requests_log() if r["path"].startswith(prefix)]


def test_action_statuses_success_failed_unknown_and_already_final(
    clocked: SandboxServer, tmp_path: Path, ledger: Ledger, time_: FakeTime
) -> None:
    first, second = (a["id"] for a in clocked.create_actions(count=2))
    failure = {
        "status": "FAILED",
        "errors": [{"code": "ORDER_IN_WRONG_STATE", "message": "already shipped"}],
    }
    items = [
        item(first, {"action_id": first, "status": "SUCCESS"}),
        item(second, {"action_id": second, **failure}),
        item("no-such-action", {"action_id": "no-such-action", "status": "SUCCESS"}),
        item(first, {"action_id": first, "status": "SUCCESS"}),
    ]
    results = send_action_statuses(items, context(clocked, tmp_path, ledger, time_))
    assert [r.outcome for r in results] == [
        Outcome.ACCEPTED,
        Outcome.ACCEPTED,
        Outcome.REJECTED,
        Outcome.UNCHANGED,
    ]
    assert results[3].code == "ACTION_ALREADY_FINAL"
    assert "already final" in results[3].message
    states = {a["id"]: (a["status"], a["errors"]) for a in clocked.actions()}
    assert states[first] == ("SUCCESS", None)
    assert states[second] == ("FAILED", failure["errors"])
    sent = requests_to(clocked, "/api/channel-platform/v1/orders/actions/")
    assert [r["body"] for r in sent][:2] == [{"status": "SUCCESS"}, failure]  # no action_id


def reported(entity: str, row: int) -> MappedItem:
    return item(
        entity,
        {
            "entity_id": entity,
            "entity_type": "ORDER",
            "executed_at": "2026-11-22T10:00:00Z",
            "status": "SUCCESS",
            "type": "SYNCHRONIZE_ORDER",
        },
        row,
    )


def test_the_action_log_is_durable_and_flushed_at_most_once_a_minute(
    clocked: SandboxServer,
    tmp_path: Path,
    ledger: Ledger,
    time_: FakeTime,
    open_ledger: Callable[[], Ledger],
) -> None:
    work = context(clocked, tmp_path, ledger, time_)
    items = [reported(f"O-{n}" if n % 10 else f"UNKNOWN-{n}", n + 2) for n in range(150)]
    results, requests = queue_order_actions(items, work)
    assert requests == 1
    assert [r.outcome for r in results].count(Outcome.ACCEPTED) == 100
    assert [r.outcome for r in results].count(Outcome.QUEUED) == 50
    time_.now += 30
    assert flush_action_log(work).sent == 0  # within the minute: nothing goes
    reopened = open_ledger()  # as after a crash: the queue is stored
    assert len(reopened.unsent_actions(1000)) == 50
    reopened.close()
    time_.now += 31
    flushed = flush_action_log(work)
    assert (flushed.sent, flushed.waiting) == (50, 0)
    posts = requests_to(clocked, "/api/v2/orders/actions")
    assert [len(p["body"]["actions"]) for p in posts] == [100, 50]
    assert [p["status"] for p in posts] == [200, 200]
    assert len(ledger.tracked()) == 150


def test_tracked_actions_are_polled_until_final_never_twice_a_minute(
    clocked: SandboxServer, tmp_path: Path, ledger: Ledger, time_: FakeTime
) -> None:
    work = context(clocked, tmp_path, ledger, time_)
    queue_order_actions([reported("O-1", 2), reported("UNKNOWN-9", 3)], work)
    command = clocked.create_actions(count=1)[0]["id"]
    from_file, polls = track_actions(
        [item(command, {"action_id": command})], work, "track-actions.csv"
    )
    assert polls == 1
    assert [r.outcome for r in from_file] == [Outcome.QUEUED]  # polled once: still pending
    assert poll_actions(work) == []  # nothing due yet: no request at all
    gets_before = len(requests_to(clocked, "/api/v2/orders/actions/"))
    time_.now += 300
    finished = poll_actions(work)
    assert {str(f["status"]) for f in finished} == {"SUCCESS", "FAILED"}
    gets = requests_to(clocked, "/api/v2/orders/actions/")
    assert len(gets) - gets_before == 3  # two reported ids and the command action
    assert all(r["status"] == 200 for r in gets)
    (written,) = (tmp_path / "outbox" / "actions").glob("final-*.csv")
    with written.open() as handle:
        rows = {row["entity_id"]: row for row in csv.DictReader(handle)}
    assert rows["UNKNOWN-9"]["status"] == "FAILED"
    assert "DATA_NOT_FOUND: order UNKNOWN-9 is unknown to Connect" in rows["UNKNOWN-9"]["errors"]
    assert rows["O-1"]["status"] == "SUCCESS"
    pending = [a for a in ledger.tracked() if a["status"] == "PENDING"]
    assert [a["action_id"] for a in pending] == [command]
    assert stat_private(written)


def stat_private(path: Path) -> bool:
    return path.stat().st_mode & 0o077 == 0


def document_row(operation: str, document_id: str, **extra: Any) -> MappedItem:
    body: dict[str, Any] = {
        "operation": operation,
        "origin": ORIGIN,
        "metadata": {"channel_document_id": document_id},
        **extra,
    }
    if operation == "UPLOAD":
        body["metadata"].update({"filename": "invoice.pdf", "type": "CUSTOMER_INVOICE"})
    return item(document_id, body)


def test_documents_upload_then_delete_as_the_sandbox_received_them(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "files").mkdir(parents=True)
    (inbox / "files" / "invoice.pdf").write_bytes(PDF)
    settings = settings_for(sandbox, tmp_path)
    client = ConnectClient(settings)
    items = [
        document_row("UPLOAD", "D-1", channel_order_id="O-1", file="files/invoice.pdf"),
        document_row("DELETE", "D-1"),
        document_row("DELETE", "D-1"),
    ]
    folder = check_documents(items, inbox)
    assert all(not i.violations for i in items)
    results = send_documents(items, folder, lambda: client)
    client.close()
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED, Outcome.UNCHANGED]
    upload, delete, _ = requests_to(sandbox, "/api/channel-platform/v1/orders/")
    assert upload["path"] == "/api/channel-platform/v1/orders/O-1/documents"
    parts = {p["name"]: p for p in upload["body"]["parts"]}
    assert set(parts) == {"file", "origin", "metadata"}
    assert parts["file"]["filename"] == "invoice.pdf"
    assert parts["file"]["content_type"] == "application/pdf"
    assert parts["file"]["size"] == len(PDF)
    assert parts["origin"]["json"] == ORIGIN
    assert parts["metadata"]["json"]["channel_document_id"] == "D-1"
    assert delete["method"] == "DELETE"
    assert delete["path"] == "/api/channel-platform/v1/orders/documents/D-1"
    assert delete["body"] == {"origin": ORIGIN}
    assert sandbox.documents() == []


@pytest.mark.parametrize(
    ("name", "prepare", "code"),
    [
        ("../outside.pdf", None, "DOCUMENT_PATH_REFUSED"),
        ("/etc/passwd", None, "DOCUMENT_PATH_REFUSED"),
        ("link.pdf", "symlink", "DOCUMENT_PATH_REFUSED"),
        ("missing.pdf", None, "DOCUMENT_MISSING"),
        ("big.pdf", "big", "DOCUMENT_TOO_LARGE"),
        ("program.pdf", "binary", "DOCUMENT_TYPE_REFUSED"),
    ],
)
def test_document_files_are_refused_before_any_upload(
    tmp_path: Path, name: str, prepare: str | None, code: str
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "outside.pdf").write_bytes(PDF)
    if prepare == "symlink":
        os.symlink(tmp_path / "outside.pdf", inbox / name)
    elif prepare == "big":
        (inbox / name).write_bytes(PDF + b"0" * (10 * 1024 * 1024))
    elif prepare == "binary":
        (inbox / name).write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64)
    with pytest.raises(DocumentRefused) as refused:
        load_document(inbox, name)
    assert refused.value.code == code
    row = document_row("UPLOAD", "D-9", channel_order_id="O-1", file=name)
    check_documents([row], inbox)
    assert [v.code for v in row.violations] == [code]


def test_png_jpeg_and_csv_are_recognised_by_content(tmp_path: Path) -> None:
    for name, data in {
        "a.bin": b"\x89PNG\r\n\x1a\n" + b"\x00" * 8,
        "b.bin": b"\xff\xd8\xff\xe0" + b"\x00" * 8,
        "c.bin": "id;name\n1;Zoë\n".encode(),
    }.items():
        (tmp_path / name).write_bytes(data)
    assert load_document(tmp_path, "a.bin")[1] == "image/png"
    assert load_document(tmp_path, "b.bin")[1] == "image/jpeg"
    assert load_document(tmp_path, "c.bin")[1] == "text/csv"


def test_anonymization_in_batches_and_past_dates_refused_locally(
    sandbox: SandboxServer, tmp_path: Path, ledger: Ledger
) -> None:
    settings = settings_for(sandbox, tmp_path)
    client = ConnectClient(settings)
    future, past = "2030-01-01T00:00:00Z", "2020-01-01T00:00:00Z"
    items = [
        item(
            f"O-{n}",
            {
                "channel_id": "CH",
                "channel_order_id": f"O-{n}",
                "anonymize_after": past if n == 7 else future,
            },
            n + 2,
        )
        for n in range(130)
    ]
    work = OperationContext(
        lambda: client, ledger, settings.outbox, settings.inbox, "f" * 64, "anonymize.csv", "b"
    )
    operation = operation_for(ANONYMIZATION)
    operation.precheck(items, work)
    invalid = [i for i in items if i.violations]
    assert [i.item_id for i in invalid] == ["O-7"]
    assert invalid[0].violations[0].code == "ANONYMIZE_DATE_IN_PAST"
    results, requests = operation.send([i for i in items if not i.violations], work)
    client.close()
    assert {r.outcome for r in results} == {Outcome.ACCEPTED} and len(results) == 129
    puts = requests_to(sandbox, "/api/channel-platform/v1/orders/anonymize-after")
    assert [len(p["body"]["orders"]) for p in puts] == [100, 29] and requests == 2
    assert all("origin" not in p["body"] for p in puts)
    assert len(sandbox.anonymizations()) == 129


def test_every_sample_runs_end_to_end_through_etl_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    import shutil

    from etl.cli.main import seed_pending_actions
    from etl.run.sync import Sync

    from .conftest import SAMPLES

    settings = settings_for(sandbox, tmp_path)
    for sample in sorted(SAMPLES.glob("*-2026-11-22.csv")):  # arrival order = name order
        shutil.copy(sample, settings.inbox / sample.name)
    shutil.copytree(SAMPLES / "files", settings.inbox / "files")
    assert seed_pending_actions(sandbox, settings.inbox) == 3
    run = Sync(settings, lambda: ConnectClient(settings))()
    outcomes = {f.name: f.outcomes for f in run.files}
    # The second tracked action ends FAILED (its status file says so): tracking reports the
    # action's own final status, and a failed action is not an accepted one.
    assert run.exit_code == 1
    assert outcomes == {
        "action-status-2026-11-22.csv": {"ACCEPTED": 3},
        "anonymize-2026-11-22.csv": {"ACCEPTED": 3},
        "documents-2026-11-22.csv": {"ACCEPTED": 2, "UNCHANGED": 1},
        "order-actions-2026-11-22.csv": {"ACCEPTED": 4},
        "orders-2026-11-22.csv": {"ACCEPTED": 24},
        "track-actions-2026-11-22.csv": {"ACCEPTED": 1, "REJECTED": 1},
    }
    statuses = {a["id"]: a["status"] for a in sandbox.actions() if a["kind"] == "command"}
    assert sorted(statuses.values()) == ["FAILED", "SUCCESS", "SUCCESS"]
    assert {d["channel_document_id"] for d in sandbox.documents()} == {
        "INV-SH-00000000",
        "SLIP-MA-00000001",
    }
    assert {a["channel_order_id"] for a in sandbox.anonymizations()} == {
        "SH-00000000",
        "SH-00000002",
        "MA-00000001",
    }
    (report,) = requests_to(sandbox, "/api/v2/orders/actions")[:1]
    assert [a["entity_id"] for a in report["body"]["actions"]] == [
        "SH-00000000",
        "MA-00000001",
        "SH-00000002",
        "UNKNOWN-ORDER-42",
    ]
    assert {p.name for p in (settings.outbox / "archive" / run.run_id).iterdir()} == {
        f.name for f in run.files if f.kind != "track-actions"
    }
    tracked = settings.outbox / "failed" / run.run_id / "track-actions-2026-11-22.csv"
    reason = tracked.with_name(tracked.name + ".reason.txt").read_text()
    assert reason.startswith("1 of 2 tracked actions were not accepted (1 rejected)"), reason
    assert "orders" not in reason
    assert list((settings.outbox / "actions").glob("final-*.csv")), "tracked finals written"


def test_items_of_kinds_without_an_origin_show_none_even_with_a_default_one(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from etl.cli.main import seed_pending_actions

    from .conftest import SAMPLES

    settings = settings_for(sandbox, tmp_path)
    names = [
        "action-status-2026-11-22.csv",
        "anonymize-2026-11-22.csv",
        "order-actions-2026-11-22.csv",
        "track-actions-2026-11-22.csv",
    ]
    for name in names:
        shutil.copy(SAMPLES / name, settings.inbox / name)
    seed_pending_actions(sandbox, settings.inbox)
    env = {**connect_env(sandbox), "CONNECT_CHANNEL_ID": "DEF", "CONNECT_STORE_ID": "S9"}
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    code, _, err = run_cli(
        "run", "--inbox", settings.inbox, "--outbox", settings.outbox, "--settle", "0"
    )
    # Exit 1: one tracked action ends FAILED, as its action-status row says.
    assert (code, err) == (1, "")
    (run_dir,) = (settings.outbox / "runs").iterdir()
    for name in names:
        with (run_dir / f"{name}.items.csv").open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        final = {"ACCEPTED", "REJECTED"} if name.startswith("track") else {"ACCEPTED"}
        assert rows and {r["outcome"] for r in rows} == final, name
        assert {(r["channel_id"], r["channel_store_id"]) for r in rows} == {("", "")}, name
    bodies = [r["body"] for r in requests_to(sandbox, "/api/")]
    assert bodies and all("origin" not in b for b in bodies if isinstance(b, dict))
