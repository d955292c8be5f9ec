"""Nothing outside the inbox, ever (issue 13): links, pipes, hard links and files swapped under
the tool are refused, never followed; names are printed escaped; a file that grows while it is
read goes back to the inbox. Real files in tmp folders, the real sandbox over loopback."""

from __future__ import annotations

import csv
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.cli.main import seed_pending_actions
from etl.core.events import Observer
from etl.deliver.client import ConnectClient
from etl.monitor.status import collect_status
from etl.operations.documents import DocumentRefused, load_document
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import Settings

from .conftest import RunCli, base_line, connect_env, settings_for, write_rows

ORDERS_PATH = "/api/channel-platform/v1/orders"
SECRET_ID = "SECRET-1"


def outside_orders(tmp_path: Path, order_id: str = SECRET_ID) -> Path:
    """A valid orders export outside the inbox, readable by everyone (as /etc/passwd is)."""
    folder = tmp_path / "outside"
    folder.mkdir(exist_ok=True)
    path = write_rows(folder / "orders-outside.csv", [base_line(order_id)])
    path.chmod(0o644)
    return path


def run_once(settings: Settings, sleep: object = None) -> Sync:
    sync = Sync(
        settings,
        lambda: ConnectClient(settings, sleep=lambda s: None),
        **({"sleep": sleep} if sleep is not None else {}),
    )
    sync()
    return sync


def sent_order_ids(sandbox: SandboxServer) -> set[str]:
    return {o["channel_order_id"] for o in sandbox.stored_orders()}


def outbox_text(outbox: Path) -> str:
    """Every report and reason the tool wrote (not the refused inputs it moved)."""
    written = [*(outbox / "runs").rglob("*"), *outbox.rglob("*.reason.txt")]
    return "\n".join(p.read_text(encoding="utf-8") for p in written if p.is_file())


def failed_entry(settings: Settings, sync: Sync, name: str) -> tuple[Path, str]:
    folder = settings.outbox / "failed" / sync.run.run_id
    reason = (folder / f"{name}.reason.txt").read_text(encoding="utf-8")
    return folder / name, reason


def assert_untouched(outside: Path, before: os.stat_result) -> None:
    after = outside.stat()
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode) == 0o644
    assert after.st_mtime_ns == before.st_mtime_ns


# --- item 1: links, pipes and other names for outside files ----------------------------------


def test_a_symlink_left_in_processing_is_refused_never_followed(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    outside = outside_orders(tmp_path)
    before = outside.stat()
    processing = settings.inbox / ".processing"
    processing.mkdir()
    os.symlink(outside, processing / "orders-link.csv")
    sync = run_once(settings)
    assert sent_order_ids(sandbox) == set()
    assert not [r for r in sandbox.requests_log() if r["path"] == ORDERS_PATH]
    assert_untouched(outside, before)
    moved, reason = failed_entry(settings, sync, "orders-link.csv")
    assert moved.is_symlink() and os.readlink(moved) == str(outside)  # the link itself moved
    assert "symbolic link" in reason
    assert SECRET_ID not in outbox_text(settings.outbox)
    assert sync.run.exit_code == 1
    assert list(processing.iterdir()) == []


def test_a_symlink_dropped_in_the_inbox_goes_to_failed_with_its_reason(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    outside = outside_orders(tmp_path)
    before = outside.stat()
    os.symlink(outside, settings.inbox / "orders-link.csv")
    sync = run_once(settings)
    assert sent_order_ids(sandbox) == set()
    assert_untouched(outside, before)
    moved, reason = failed_entry(settings, sync, "orders-link.csv")
    assert moved.is_symlink()
    assert reason.startswith("refused: a symbolic link, not a regular file")
    assert [f.status for f in sync.run.files] == ["unreadable"]
    assert sync.run.exit_code == 1


def test_a_file_swapped_for_a_link_during_the_settle_window_is_not_read(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The swap keeps size and mtime (what stat() through the link sees): only the entry
    itself (lstat: its type and inode) tells that another thing now stands there."""
    settings = settings_for(sandbox, tmp_path, settle_seconds=1.0)
    outside = outside_orders(tmp_path, "SECRET-1")
    own = write_rows(settings.inbox / "orders-a.csv", [base_line("OWNED-01")])
    assert own.stat().st_size == outside.stat().st_size
    os.utime(own, ns=(outside.stat().st_atime_ns, outside.stat().st_mtime_ns))
    before = outside.stat()

    def swap(seconds: float) -> None:
        link = settings.inbox / ".swap"
        os.symlink(outside, link)
        os.replace(link, own)

    first = run_once(settings, sleep=swap)
    assert first.run.files == []  # it changed during the settle period: not taken
    assert own.is_symlink()
    second = run_once(settings, sleep=lambda s: None)
    assert sent_order_ids(sandbox) == set()
    assert_untouched(outside, before)
    moved, reason = failed_entry(settings, second, "orders-a.csv")
    assert moved.is_symlink() and "symbolic link" in reason


def test_a_hard_link_to_an_outside_file_is_refused_and_its_mode_kept(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    outside = outside_orders(tmp_path)
    before = outside.stat()
    os.link(outside, settings.inbox / "orders-hard.csv")
    sync = run_once(settings)
    assert sent_order_ids(sandbox) == set()
    assert_untouched(outside, before)  # no chmod 0600 through the other name
    moved, reason = failed_entry(settings, sync, "orders-hard.csv")
    assert moved.stat().st_ino == before.st_ino
    assert "2 names (hard links)" in reason
    assert SECRET_ID not in outbox_text(settings.outbox)


def test_a_file_owned_by_someone_else_is_refused(sandbox: SandboxServer, tmp_path: Path) -> None:
    """The file must belong to the user running the tool or to the inbox's owner. Root may
    give a file away; anyone else cannot, so the check cannot be arranged without root."""
    settings = settings_for(sandbox, tmp_path)
    path = write_rows(settings.inbox / "orders-foreign.csv", [base_line("FOREIGN-1")])
    try:
        os.chown(path, 4242, 4242)
    except PermissionError:
        pytest.skip("only root can give a file to another user")
    sync = run_once(settings)
    assert sent_order_ids(sandbox) == set()
    _, reason = failed_entry(settings, sync, "orders-foreign.csv")
    assert "belongs to user 4242" in reason


def open_fifo_writer_to_unblock(path: Path) -> None:
    """Let a reader blocked on opening the FIFO go (a failed test must not hang the suite)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def test_fifos_are_refused_and_never_hang_the_run(sandbox: SandboxServer, tmp_path: Path) -> None:
    settings = settings_for(sandbox, tmp_path, settle_seconds=1.0)
    processing = settings.inbox / ".processing"
    processing.mkdir()
    os.mkfifo(settings.inbox / "orders-pipe.csv")
    os.mkfifo(processing / "orders-left.csv")
    # An empty file swapped for a FIFO with its mtime: size and mtime alone do not tell.
    swapped = settings.inbox / "orders-empty.csv"
    swapped.write_bytes(b"")
    times = (swapped.stat().st_atime_ns, swapped.stat().st_mtime_ns)

    def swap(seconds: float) -> None:
        fifo = settings.inbox / ".fifo"
        os.mkfifo(fifo)
        os.utime(fifo, ns=times)
        os.replace(fifo, swapped)

    runs: list[Sync] = []

    def both_runs() -> None:
        runs.append(run_once(settings, sleep=swap))
        runs.append(run_once(settings, sleep=lambda s: None))

    worker = threading.Thread(target=both_runs, daemon=True)
    worker.start()
    worker.join(30)
    hung = worker.is_alive()
    for fifo in (processing / "orders-left.csv", swapped, settings.inbox / "orders-pipe.csv"):
        open_fifo_writer_to_unblock(fifo)
    for path in settings.inbox.glob(".processing/*"):
        open_fifo_writer_to_unblock(path)
    worker.join(10)
    assert not hung, "a FIFO blocked the run"
    assert len(runs) == 2
    failed = settings.outbox / "failed"
    names = {p.name for p in failed.rglob("*") if not p.name.endswith(".reason.txt")}
    assert {"orders-pipe.csv", "orders-left.csv", "orders-empty.csv"} <= names
    reasons = [p.read_text() for p in failed.rglob("*.reason.txt")]
    assert all("named pipe (FIFO)" in r for r in reasons) and len(reasons) == 3
    assert all(stat.S_ISFIFO(p.lstat().st_mode) for p in failed.rglob("orders-*.csv"))


def test_a_device_node_is_refused_without_being_opened(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    device = settings.inbox / "orders-null.csv"
    try:
        os.mknod(device, stat.S_IFCHR | 0o644, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("only root can make a device node")
    sync = run_once(settings)
    moved, reason = failed_entry(settings, sync, "orders-null.csv")
    assert stat.S_ISCHR(moved.lstat().st_mode)
    assert reason.startswith("refused: a character device, not a regular file")


@pytest.fixture
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    """A folder on another file system than tmp_path (renames across fail: EXDEV)."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system to move across")
    folder = Path(tempfile.mkdtemp(prefix="etl-outbox-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_link_moved_across_file_systems_stays_a_link(
    sandbox: SandboxServer, tmp_path: Path, other_file_system: Path
) -> None:
    """Inbox and outbox on two file systems: the move is a copy, of the link, not its target."""
    settings = settings_for(sandbox, tmp_path, outbox=other_file_system / "outbox")
    outside = outside_orders(tmp_path)
    before = outside.stat()
    os.symlink(outside, settings.inbox / "orders-link.csv")
    write_rows(settings.inbox / "orders-own.csv", [base_line("OWN-1")])
    sync = run_once(settings)
    moved, _ = failed_entry(settings, sync, "orders-link.csv")
    assert moved.is_symlink() and os.readlink(moved) == str(outside)
    assert not (settings.inbox / "orders-link.csv").exists()
    assert_untouched(outside, before)
    archived = settings.outbox / "archive" / sync.run.run_id / "orders-own.csv"
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    assert sent_order_ids(sandbox) == {"OWN-1"}


# --- item 1: documents named by a manifest ---------------------------------------------------

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
SECRET_PDF = b"%PDF-1.7\n% SECRET outside the inbox\n%%EOF\n"


def test_a_document_swapped_for_a_link_is_never_read_through_it(tmp_path: Path) -> None:
    """A race, as a writer would run it: the name flips between a file of the inbox and a link
    to one outside, while the tool loads it again and again. Whatever it loads must be the
    inbox's file or a refusal, never the outside file's bytes."""
    inbox = tmp_path / "inbox"
    files = inbox / "files"
    files.mkdir(parents=True)
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(SECRET_PDF)
    document = files / "doc.pdf"
    document.write_bytes(PDF)
    stop = threading.Event()

    def flip() -> None:
        while not stop.is_set():
            link, plain = files / ".link", files / ".plain"
            os.symlink(outside, link)
            os.replace(link, document)
            plain.write_bytes(PDF)
            os.replace(plain, document)

    flipper = threading.Thread(target=flip, daemon=True)
    flipper.start()
    leaked = refused = loaded = 0
    try:
        for _ in range(3000):
            try:
                data, _ = load_document(inbox, "files/doc.pdf")
            except DocumentRefused as refusal:
                assert refusal.code in {"DOCUMENT_PATH_REFUSED", "DOCUMENT_MISSING"}
                refused += 1
                continue
            if data == SECRET_PDF:
                leaked += 1
            else:
                assert data == PDF
                loaded += 1
    finally:
        stop.set()
        flipper.join(5)
    assert leaked == 0, f"{leaked} of 3000 loads read the file outside the inbox"
    assert loaded and refused  # the race did happen both ways


def test_a_document_hard_linked_to_an_outside_file_is_refused(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "files").mkdir(parents=True)
    outside = tmp_path / "secret.pdf"
    outside.write_bytes(SECRET_PDF)
    os.link(outside, inbox / "files" / "doc.pdf")
    with pytest.raises(DocumentRefused) as refused:
        load_document(inbox, "files/doc.pdf")
    assert refused.value.code == "DOCUMENT_PATH_REFUSED"
    assert "2 names (hard links)" in refused.value.message


def test_a_document_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "files").mkdir(parents=True)
    os.mkfifo(inbox / "files" / "doc.pdf")
    with pytest.raises(DocumentRefused) as refused:
        load_document(inbox, "files/doc.pdf")
    assert refused.value.code == "DOCUMENT_PATH_REFUSED"
    assert "named pipe (FIFO)" in refused.value.message


def test_status_shows_links_as_links_never_what_they_point_to(tmp_path: Path) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    outside = outside_orders(tmp_path)
    os.symlink(outside, inbox / "orders-link.csv")
    failed = outbox / "failed" / "20261201T000000Z-abcd"
    failed.mkdir(parents=True)
    os.symlink(outside, failed / "orders-gone.csv")
    (failed / "orders-gone.csv.reason.txt").write_text("refused: a symbolic link\n")
    status = collect_status(inbox, outbox)
    link_size = len(str(outside))  # a link's own size: the length of what it names
    assert [(e["name"], e["bytes"]) for e in status["inbox_waiting"]] == [
        ("orders-link.csv", link_size)
    ]
    assert [(e["name"], e["bytes"], e["reason"]) for e in status["failed"]] == [
        ("orders-gone.csv", link_size, "refused: a symbolic link")
    ]


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_the_inbox_lock_never_writes_through_a_link(
    sandbox: SandboxServer,
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    link: str,
) -> None:
    """The lock file is truncated and rewritten: through a link, that would be another file."""
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (os.symlink if link == "symbolic" else os.link)(outside, inbox / ".etl.lock")
    code, _, err = run_cli("run", "--inbox", inbox, "--outbox", tmp_path / "outbox")
    assert outside.read_text() == "root:x:0:0:root:/root:/bin/bash\n"
    assert code == 2
    assert "not a regular file of its own" in err


# --- item 2: ids that would be URL dot segments ----------------------------------------------


def items_csv(sync: Sync, name: str) -> dict[str, dict[str, str]]:
    with (sync.run_dir / f"{name}.items.csv").open(encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def api_paths(sandbox: SandboxServer) -> list[str]:
    return [f"{r['method']} {r['path']}" for r in sandbox.requests_log() if "/api/" in r["path"]]


def test_an_action_id_dot_dot_is_invalid_and_nothing_goes_to_another_path(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli
) -> None:
    """`.../orders/actions/..` is `.../orders`: the id must never reach a URL."""
    (pending,) = (a["id"] for a in sandbox.create_actions(count=1))
    settings = settings_for(sandbox, tmp_path)
    rows = [{"action_id": "..", "status": "SUCCESS"}, {"action_id": pending, "status": "SUCCESS"}]
    path = write_rows(settings.inbox / "action-status-dots.csv", rows)
    code, _, _ = run_cli("check", path, "--outbox", tmp_path / "checked")
    assert code == 1  # caught offline, by `etl check` too
    sync = run_once(settings)
    items = items_csv(sync, "action-status-dots.csv")
    assert items[".."]["outcome"] == "INVALID"
    assert items[".."]["code"] == "INVALID_ID"
    assert "'..' cannot be used as an id" in items[".."]["message"]
    assert items[pending]["outcome"] == "ACCEPTED"
    assert api_paths(sandbox) == [f"PUT /api/channel-platform/v1/orders/actions/{pending}"]


def test_a_document_id_dot_in_a_delete_is_invalid_and_nothing_is_deleted(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    row = {
        "operation": "DELETE",
        "channel_order_id": "O-1",
        "origin.channel_id": "CH",
        "origin.channel_store_id": "S",
        "metadata.channel_document_id": ".",
    }
    write_rows(settings.inbox / "documents-dots.csv", [row])
    sync = run_once(settings)
    items = items_csv(sync, "documents-dots.csv")
    assert items["."]["outcome"] == "INVALID"
    assert items["."]["code"] == "INVALID_ID"
    assert api_paths(sandbox) == []


# --- item 3: names that would forge output lines ---------------------------------------------

FORGED = "orders-\x1b[2K\rok\nrun 1: exit 0.csv"
SHOWN = "orders-\\x1b[2K\\rok\\nrun 1: exit 0.csv"


def assert_clean(text: str) -> None:
    """No control character but the line ends, and no line a name could have forged."""
    assert "\x1b" not in text and "\r" not in text
    assert not [line for line in text.splitlines() if line.startswith("run 1: exit 0")]


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_file_names_are_printed_escaped_on_the_terminal_and_in_logs(
    sandbox: SandboxServer,
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    log_format: str,
) -> None:
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    inbox.mkdir()
    write_rows(inbox / FORGED, [base_line("A-1"), base_line("A-2", "L2", status="SHIPPING")])
    args = ("--inbox", inbox, "--outbox", outbox, "--settle", "0", "-v", "--log-format")
    code, out, err = run_cli("run", *args, log_format)
    assert code == 1
    assert_clean(out)
    assert_clean(err)
    assert SHOWN in out
    if log_format == "json":
        lines = [json.loads(line) for line in err.splitlines()]
        assert {line["file"] for line in lines if "file" in line} == {SHOWN}
    else:
        assert f"INFO {SHOWN}: 2 orders from 2 rows" in err
    reasons = list((outbox / "failed").rglob("*.reason.txt"))
    assert len(reasons) == 1
    reason = reasons[0].read_text(encoding="utf-8")
    assert_clean(reason)
    assert reason.count("\n") == 1 and SHOWN in reason


def test_status_prints_names_and_reasons_escaped(tmp_path: Path, run_cli: RunCli) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    (inbox / ".processing").mkdir(parents=True)
    (inbox / FORGED).write_text("x")
    (inbox / ".processing" / FORGED).write_text("x")
    failed = outbox / "failed" / "20261201T000000Z-abcd"
    failed.mkdir(parents=True)
    (failed / FORGED).write_text("x")
    (failed / f"{FORGED}.reason.txt").write_text("refused \x1b[31mred\x1b[0m here\n")
    code, out, err = run_cli("status", "--inbox", inbox, "--outbox", outbox)
    assert (code, err) == (0, "")
    assert_clean(out)
    assert out.count(SHOWN) == 3
    assert "refused \\x1b[31mred\\x1b[0m here" in out


# --- item 4: a file written to while it is read -----------------------------------------------


class LateWriter(Observer):
    """The export program, still appending through the descriptor it opened before the claim
    renamed the file: it writes the rest once the tool has begun reading."""

    def __init__(self, path: Path, rows: list[dict[str, str]]) -> None:
        self.handle = path.open("a", encoding="utf-8", newline="")
        self.rows = rows

    def file_started(self, name: str, rows: int) -> None:
        if self.rows:
            writer = csv.DictWriter(self.handle, fieldnames=list(self.rows[0]))
            writer.writerows(self.rows)
            self.handle.flush()
            self.rows = []
            self.handle.close()


def test_a_file_appended_to_while_it_is_read_goes_back_to_the_inbox(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = settings_for(sandbox, tmp_path)
    first = [base_line(f"O-{n:03}", f"L{n}") for n in range(100)]
    late = [base_line(f"O-{n:03}", f"L{n}") for n in range(100, 120)]
    path = write_rows(settings.inbox / "orders-growing.csv", first)
    writer = LateWriter(path, late)
    sync = Sync(settings, lambda: ConnectClient(settings), observer=writer)
    run = sync()
    (summary,) = run.files
    assert "the file changed while it was read; it will be read again once it stays still" in (
        summary.reason
    )
    assert run.exit_code == 3  # not finished: the file waits in the inbox
    assert path.is_file() and len(path.read_text().splitlines()) == 121  # back, whole
    assert not (settings.outbox / "archive").exists()
    assert not (settings.outbox / "failed").exists()
    again = run_once(settings)
    (second,) = again.run.files
    assert second.status == "processed"
    assert second.outcomes == {"UNCHANGED": len(sent_order_ids(sandbox)) - 20, "ACCEPTED": 20}
    assert sent_order_ids(sandbox) == {f"O-{n:03}" for n in range(120)}
    assert (settings.outbox / "archive" / again.run.run_id / "orders-growing.csv").is_file()
    assert again.run.exit_code == 0


# --- item 5: another run's summary.json, malformed --------------------------------------------

MALFORMED = {
    "20261201T000001Z-aaaa": '{"run_id": "20261201T000001Z-aaaa", "command": "ru',  # truncated
    "20261201T000002Z-bbbb": '["not", "an", "object"]',
    "20261201T000003Z-cccc": json.dumps(
        {
            "run_id": "20261201T000003Z-cccc",
            "command": "run",
            "duration_seconds": "fast",
            "exit_code": "zero",
            "totals": {"outcomes": ["ACCEPTED"], "files": "two"},
            "files": ["orders.csv"],
        }
    ),
    "20261201T000004Z-dddd": json.dumps(
        {"run_id": "20261201T000004Z-dddd", "files": [{"name": "../../../etc/passwd"}]}
    ),
}


def malformed_runs(outbox: Path) -> None:
    for run_id, text in MALFORMED.items():
        folder = outbox / "runs" / run_id
        folder.mkdir(parents=True)
        (folder / "summary.json").write_text(text, encoding="utf-8")


def test_status_shows_malformed_summaries_as_unreadable(tmp_path: Path, run_cli: RunCli) -> None:
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    malformed_runs(outbox)
    code, out, err = run_cli("status", "--inbox", inbox, "--outbox", outbox)
    assert (code, err) == (0, "")
    for run_id in MALFORMED:
        (line,) = [line for line in out.splitlines() if run_id in line]
        assert "summary.json is unreadable" in line
    code, out, err = run_cli("status", "--json", "--inbox", inbox, "--outbox", outbox)
    assert (code, err) == (0, "")
    runs = json.loads(out)["runs"]
    assert [r["run_id"] for r in runs] == sorted(MALFORMED, reverse=True)
    assert all(r["unreadable"] and r["exit_code"] is None for r in runs)


@pytest.mark.parametrize("run_id", [*MALFORMED, "latest"])
def test_report_of_a_malformed_summary_says_so_and_never_crashes(
    tmp_path: Path, run_cli: RunCli, run_id: str
) -> None:
    outbox = tmp_path / "outbox"
    malformed_runs(outbox)
    code, _, err = run_cli("report", run_id, "--outbox", outbox)
    assert code == 2
    assert "internal error" not in err
    assert "summary.json is unreadable" in err


# --- item 6: `etl run --sandbox` seeding the actions the inbox names --------------------------


def test_seeding_skips_a_fifo_and_a_file_that_is_not_utf8(
    sandbox: SandboxServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_rows(inbox / "action-status-good.csv", [{"action_id": "A-1", "status": "SUCCESS"}])
    os.mkfifo(inbox / "action-status-pipe.csv")
    (inbox / "action-status-latin1.csv").write_bytes(
        "action_id,status\nÉ-1,SUCCESS\n".encode("cp1252")
    )
    outside = tmp_path / "outside.csv"
    write_rows(outside, [{"action_id": "OUTSIDE-1", "status": "SUCCESS"}])
    os.symlink(outside, inbox / "action-status-link.csv")
    created: list[int] = []
    worker = threading.Thread(
        target=lambda: created.append(seed_pending_actions(sandbox, inbox)), daemon=True
    )
    worker.start()
    worker.join(20)
    hung = worker.is_alive()
    open_fifo_writer_to_unblock(inbox / "action-status-pipe.csv")
    worker.join(10)
    assert not hung, "a FIFO blocked the seeding"
    assert created == [1]
    assert [a["id"] for a in sandbox.actions()] == ["A-1"]
    err = capsys.readouterr().err
    assert "action-status-latin1.csv" in err and "not UTF-8" in err
