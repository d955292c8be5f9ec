"""Issue 19 part 3: order action events from an SQS queue -> pending files -> answers.

The queue is moto's SQS-compatible server, started on loopback by these tests and stopped
after; `etl events` reaches it through the real boto3 client, as it would reach AWS.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from etl.operations.action_events import PENDING_COLUMNS, Unreadable, parse_event

from .conftest import REPO, RunCli

WEBHOOKS = Path("/work/shared/api/openapi/mirakl-connect-channel-webhooks-openapi.yaml")
REGION = "us-east-1"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials for the standard chain (moto takes any); never the machine's own."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


class Queue:
    """A fresh queue on the moto server, and a real boto3 client to feed and inspect it."""

    def __init__(self, endpoint: str, name: str) -> None:
        self.endpoint = endpoint
        self.client: Any = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
        # A second of visibility: a message received by a killed process comes back soon.
        self.url = self.client.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})[
            "QueueUrl"
        ]

    def send(self, body: dict[str, Any] | str) -> None:
        text = body if isinstance(body, str) else json.dumps(body)
        self.client.send_message(QueueUrl=self.url, MessageBody=text)

    def waiting(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def queue(moto_url: str, request: pytest.FixtureRequest) -> Queue:
    name = "actions-" + "".join(c for c in request.node.name if c.isalnum())[-60:]
    return Queue(moto_url, name)


def config_for(tmp_path: Path, queue: Queue, **extra: str) -> Path:
    """etl.toml reading ``queue``; folders in tmp_path."""
    lines = [
        "[paths]",
        f'inbox = "{tmp_path / "inbox"}"',
        f'outbox = "{tmp_path / "outbox"}"',
        "[events]",
        f'queue_url = "{queue.url}"',
        f'endpoint_url = "{queue.endpoint}"',
        f'region = "{REGION}"',
        "wait_seconds = 0",
        *(f"{key} = {value}" for key, value in extra.items()),
    ]
    (tmp_path / "inbox").mkdir(exist_ok=True)
    path = tmp_path / "etl.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def accept_event(number: int, event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or f"01HGXNJ6VTZR5KJBBQT28YZ{number:03d}",
        "time": "2026-12-02T10:15:30.500Z",
        "type": "ACCEPT",
        "data": {
            "action_id": f"accept-{number}",
            "channel_id": "CH",
            "channel_store_id": "S1",
            "channel_order_id": f"ORDER-{number}",
            "order_lines": [
                {"accepted": True, "channel_order_line_id": f"ORDER-{number}-1"},
                {"accepted": False, "channel_order_line_id": f"ORDER-{number}-2"},
            ],
        },
    }


def pending_rows(outbox: Path) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for path in sorted((outbox / "actions").glob("pending-*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            assert tuple(reader.fieldnames or ()) == PENDING_COLUMNS
            rows.extend(reader)
    return rows


# --- the events, as the API documents them ----------------------------------------------------


def webhook_examples() -> list[dict[str, Any]]:
    document = yaml.safe_load(WEBHOOKS.read_text(encoding="utf-8"))
    examples = document["webhooks"]["OrderActionEvent"]["post"]["requestBody"]["content"][
        "application/json"
    ]["examples"]
    return [e["value"] for e in examples.values() if isinstance(e["value"].get("data"), dict)]


@pytest.mark.skipif(not WEBHOOKS.is_file(), reason="the shared API files are not here")
def test_every_documented_order_action_event_becomes_a_row_saying_what_to_do() -> None:
    examples = webhook_examples()
    assert {e["type"] for e in examples} == {
        "ACCEPT",
        "CANCEL",
        "REFUND",
        "CREATE_SHIPMENT",
        "ACCEPT_RETURN",
        "UPDATE_RETURN_TRACKING_INFORMATION",
        "ACKNOWLEDGE_RETURN_RECEPTION",
        "CLOSE_RETURN",
        "UPLOAD_DOCUMENT",
    }
    todo = {}
    for example in examples:
        event = parse_event(json.dumps(example))
        assert not isinstance(event, Unreadable), example
        assert event.event_id == example["id"]
        assert event.action_id == example["data"]["action_id"]
        assert event.row["channel_order_id"] == "ORDER-12345"
        assert json.loads(event.row["details"]) == example["data"]
        todo[(example["type"], example["data"].get("accepted"))] = event.row
    assert todo[("ACCEPT", None)]["todo"] == (
        "accept line(s) 0002_3202630-A-1; refuse line(s) 0002_3202630-A-2"
    )
    assert todo[("ACCEPT", None)]["lines"] == "0002_3202630-A-1 0002_3202630-A-2"
    assert todo[("CANCEL", None)]["todo"] == (
        "cancel: 1 x 10000 (line 0002_3202630-A-1) at 15 USD + shipping 8 USD, reason "
        "CUSTOMER_CANCELATION"
    )
    # The refund example writes order_line_id where the schema says channel_order_line_id.
    assert todo[("REFUND", None)]["lines"] == "0002_3202630-A-1"
    assert todo[("CREATE_SHIPMENT", None)]["todo"] == (
        "ship 10 x SELLER_ID_1 (line 0024_COMMERCIAL_ID-A-1) with UPS, tracking number 123456"
    )
    assert todo[("ACCEPT_RETURN", True)]["todo"] == "accept return RETURN-67890"
    assert todo[("ACCEPT_RETURN", False)]["todo"] == (
        "refuse return RETURN-67890, reason NOT_ELIGIBLE_FOR_RETURN"
    )
    assert todo[("CLOSE_RETURN", None)]["todo"] == "close return RETURN-67890"
    assert "RETURN_LABEL" in todo[("UPLOAD_DOCUMENT", None)]["todo"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('{"id": "E1", "time": "t", "type": "ACCEPT"}', "lacks data"),
        ('{"id": "E1", "time": "t", "type": "ACCEPT", "data": {}}', "lacks data.action_id"),
    ],
)
def test_a_message_that_is_no_event_says_why(body: str, reason: str) -> None:
    event = parse_event(body)
    assert isinstance(event, Unreadable) and reason in event.reason


def test_an_event_inside_an_sns_notification_is_read() -> None:
    wrapped = {"Type": "Notification", "Message": json.dumps(accept_event(1))}
    event = parse_event(json.dumps(wrapped))
    assert not isinstance(event, Unreadable) and event.action_id == "accept-1"


# --- etl events against the queue ---------------------------------------------------------------


def test_an_event_delivered_twice_appears_once(
    tmp_path: Path, queue: Queue, run_cli: RunCli
) -> None:
    config = config_for(tmp_path, queue)
    queue.send(accept_event(1))
    queue.send(accept_event(1))  # at least once: the same event again
    queue.send(accept_event(2))
    code, out, err = run_cli("events", "--config", config)
    assert (code, err) == (0, "")
    assert "3 message(s)" in out and "2 new action(s), 1 already received or answered" in out
    rows = pending_rows(tmp_path / "outbox")
    assert [r["action_id"] for r in rows] == ["accept-1", "accept-2"]
    assert rows[0]["todo"] == "accept line(s) ORDER-1-1; refuse line(s) ORDER-1-2"
    assert rows[0]["lines"] == "ORDER-1-1 ORDER-1-2"
    assert queue.waiting() == 0, "every message deleted once kept"
    # Delivered again a day later (a new event id for the same action, too): still once.
    queue.send(accept_event(1))
    queue.send(accept_event(2, event_id="01HGXNJ6VTZR5KJBBQT28YZOTHER"))
    code, out, _ = run_cli("events", "--config", config)
    assert code == 0 and "0 new action(s), 2 already received or answered" in out
    assert len(pending_rows(tmp_path / "outbox")) == 2
    assert queue.waiting() == 0


def test_a_message_that_is_no_event_is_kept_and_explained(
    tmp_path: Path, queue: Queue, run_cli: RunCli
) -> None:
    config = config_for(tmp_path, queue)
    queue.send("not json at all")
    queue.send(accept_event(1))
    code, out, err = run_cli("events", "--config", config)
    assert code == 1
    assert "1 new action(s)" in out and "1 unreadable" in out
    kept = list((tmp_path / "outbox" / "actions").glob("*.unreadable.jsonl"))
    assert len(kept) == 1 and str(kept[0]) in err
    line = json.loads(kept[0].read_text(encoding="utf-8"))
    assert line["body"] == "not json at all" and "not JSON" in line["reason"]
    assert queue.waiting() == 0


@pytest.mark.parametrize(
    "failpoint", ["action-events-kept", "action-events-written", "action-events-acknowledge"]
)
def test_a_kill_between_writing_and_deleting_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, queue: Queue, failpoint: str
) -> None:
    config = config_for(tmp_path, queue)
    for number in range(5):
        queue.send(accept_event(number))
    env = {**os.environ, "PYTHONPATH": str(REPO), "ETL_FAILPOINTS": f"{failpoint}=1"}
    command = [sys.executable, "-m", "etl.cli.main", "events", "--config", str(config)]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    env.pop("ETL_FAILPOINTS")
    # The killed process deleted nothing: the messages come back once their second is up.
    finished = subprocess.run(
        [*command, "--wait", "3"], env=env, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    rows = pending_rows(tmp_path / "outbox")
    assert sorted(r["action_id"] for r in rows) == [f"accept-{n}" for n in range(5)]
    assert queue.waiting() == 0


def test_events_settings_are_checked_strictly(
    tmp_path: Path, queue: Queue, run_cli: RunCli
) -> None:
    config = config_for(tmp_path, queue, wait_secnds="1")
    code, _, err = run_cli("events", "--config", config)
    assert code == 2 and "[events] wait_secnds is not a setting of [events]" in err
    assert "did you mean wait_seconds?" in err
    plain = tmp_path / "plain.toml"
    plain.write_text('[events]\nqueue_url = "http://sqs.example.com/1/q"\n', encoding="utf-8")
    code, _, err = run_cli("events", "--config", plain)
    assert code == 2 and "is not HTTPS" in err
    none = tmp_path / "none.toml"
    none.write_text("[paths]\n", encoding="utf-8")
    code, _, err = run_cli("events", "--config", none)
    assert code == 2 and "no [events] section" in err


def test_a_secret_from_a_file_is_used_and_never_printed(
    tmp_path: Path, queue: Queue, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "aws-secret"
    secret.write_text("a-secret-from-a-file\n", encoding="utf-8")
    secret.chmod(0o600)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY_FILE", str(secret))
    config = config_for(tmp_path, queue)
    queue.send(accept_event(1))
    code, out, err = run_cli("events", "--config", config)
    assert code == 0 and "1 new action(s)" in out
    code, out, err = run_cli("config", "show", "--config", config, "--json")
    assert "a-secret-from-a-file" not in out + err
    shown = json.loads(out)["events"]
    assert shown["from"] == f"file {config} [events]"
    assert shown["value"]["secret_access_key"] == "***"
    assert shown["value"]["credentials_from"] == f"file {secret} (AWS_SECRET_ACCESS_KEY_FILE)"
    assert shown["value"]["access_key_id"] == "testing-key-id"


def test_an_unreachable_queue_exits_3_and_deletes_nothing(
    tmp_path: Path, queue: Queue, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two tries, not the 5 `etl events` makes by default: the backoff between five was 11 s
    # of waiting for a port where nothing will ever listen.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    config = config_for(tmp_path, queue)
    text = config.read_text(encoding="utf-8").replace(queue.endpoint, "http://127.0.0.1:9")
    config.write_text(text, encoding="utf-8")
    code, _, err = run_cli("events", "--config", config)
    assert code == 3 and "cannot be reached" in err and "nothing was deleted" in err


# --- end to end: the sandbox asks, the ERP answers ----------------------------------------------


def errors_of(outbox: Path, name: str) -> dict[str, set[str]]:
    (run_dir,) = [p for p in (outbox / "runs").iterdir() if (p / f"{name}.errors.csv").exists()]
    codes: dict[str, set[str]] = {}
    with (run_dir / f"{name}.errors.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            codes.setdefault(row["id"], set()).add(row["code"])
    return codes


def test_sandbox_actions_to_pending_file_to_answers_to_none_waiting(
    tmp_path: Path, queue: Queue, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from etl.sandbox import SandboxServer
    from etl.sandbox.action_events import EventQueue

    from .conftest import SECRET, base_line, connect_env, write_rows

    config = config_for(tmp_path, queue)
    inbox, outbox = tmp_path / "inbox", tmp_path / "outbox"
    events = EventQueue(queue.url, queue.endpoint, REGION)
    with SandboxServer(
        db_path=tmp_path / "sandbox.sqlite3", client_secret=SECRET, events_queue=events
    ) as sandbox:
        for name, value in connect_env(sandbox).items():
            monkeypatch.setenv(name, value)
        # The order exists in Connect; Connect then asks for actions on it.
        write_rows(inbox / "orders-1.csv", [base_line("0001", "L1"), base_line("0001", "L2")])
        assert run_cli("run", "--config", config, "--settle", "0")[0] == 0
        accepts = sandbox.create_actions(count=2, channel_order_id="0001")
        (shipment,) = sandbox.create_actions(event_type="CREATE_SHIPMENT", channel_order_id="0001")
        asked = sorted([a["id"] for a in accepts] + [shipment["id"]])

        with monkeypatch.context() as without_connect:
            # Reading the queue needs no Connect credentials (cron may not give it any); the
            # answers sent with them later still find the actions.
            for name in connect_env(sandbox):
                without_connect.delenv(name)
            code, out, err = run_cli("events", "--config", config)
        assert (code, err) == (0, ""), out
        rows = pending_rows(outbox)
        assert sorted(r["action_id"] for r in rows) == asked
        for row in rows:
            assert (row["channel_id"], row["channel_store_id"]) == ("CH", "S1")
            assert (row["channel_order_id"], row["lines"]) == ("0001", "L1 L2")
        by_id = {r["action_id"]: r for r in rows}
        assert by_id[shipment["id"]]["todo"].startswith("ship 2 x 00123 (line L1), 2 x 00123")
        assert by_id[accepts[0]["id"]]["todo"] == "accept line(s) L1, L2"

        status = json.loads(run_cli("status", "--config", config, "--json")[1])
        assert status["awaiting_answer"]["count"] == 3
        text = run_cli("status", "--config", config)[1]
        assert "actions asked by Connect, waiting for an answer: 3" in text
        assert f"  {shipment['id']}  CREATE_SHIPMENT  order 0001  waiting " in text
        assert {a["action_id"] for a in status["awaiting_answer"]["actions"]} == set(asked)

        # The ERP did what the pending file says and answers every row.
        answers = [{"action_id": r["action_id"], "status": "SUCCESS"} for r in rows]
        write_rows(inbox / "action-status-1.csv", answers)
        code, out, err = run_cli("run", "--config", config, "--settle", "0")
        assert code == 0, out + err
        received = sandbox.requests_log()
        put = sorted(r["path"].rsplit("/", 1)[1] for r in received if r["method"] == "PUT")
        assert put == asked
        assert {a["id"]: a["status"] for a in sandbox.actions()} == dict.fromkeys(asked, "SUCCESS")

        code, out, _ = run_cli("status", "--config", config)
        assert "actions asked by Connect, waiting for an answer: 0" in out
        status = json.loads(run_cli("status", "--config", config, "--json")[1])
        assert status["awaiting_answer"] == {"count": 0, "actions": []}

        # Answering again, or an action no event named, is sent and warned about.
        write_rows(
            inbox / "action-status-2.csv",
            [
                {"action_id": asked[0], "status": "SUCCESS"},
                {"action_id": "nobody-asked", "status": "SUCCESS"},
            ],
        )
        code, out, err = run_cli("run", "--config", config, "--settle", "0")
        assert code == 1  # Connect knows no action "nobody-asked": REJECTED
        codes = errors_of(outbox, "action-status-2.csv")
        assert codes == {
            asked[0]: {"ACTION_ALREADY_ANSWERED"},
            "nobody-asked": {"ACTION_NOT_RECEIVED", "DATA_NOT_FOUND"},
        }

        # An event for an action answered before it came: no row the ERP could carry out twice.
        late = accept_event(9)
        late["data"]["action_id"] = "nobody-asked"
        queue.send(late)
        code, out, _ = run_cli("events", "--config", config)
        assert code == 0 and "0 new action(s), 1 already received or answered" in out
        assert len(pending_rows(outbox)) == 3
        status = json.loads(run_cli("status", "--config", config, "--json")[1])
        assert status["awaiting_answer"] == {"count": 0, "actions": []}


def test_the_watcher_reads_the_events_queue_when_configured(tmp_path: Path, queue: Queue) -> None:
    import threading
    import time

    from etl.deliver.client import ConnectClient
    from etl.run.watch import Watcher
    from etl.sandbox import SandboxServer
    from etl.settings.events import EventsSettings

    from .conftest import settings_for

    with SandboxServer(db_path=tmp_path / "sandbox.sqlite3") as sandbox:
        events = EventsSettings(
            queue.url, REGION, queue.endpoint, wait_seconds=0, every_seconds=1.0
        )
        settings = settings_for(sandbox, tmp_path, events=events)
        watcher = Watcher(settings, lambda: ConnectClient(settings), rescan_seconds=1.0)
        thread = threading.Thread(target=watcher.run, name="watcher-with-events")
        thread.start()
        try:
            queue.send(accept_event(7))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not pending_rows(settings.outbox):
                time.sleep(0.2)
        finally:
            watcher.stop()
            thread.join(timeout=30)
    assert [r["action_id"] for r in pending_rows(settings.outbox)] == ["accept-7"]
    assert queue.waiting() == 0


def admin_post(sandbox: Any, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        sandbox.admin_url + "/actions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_sandbox_publishes_one_event_per_action_through_its_admin_route(
    tmp_path: Path, queue: Queue
) -> None:
    from etl.sandbox import SandboxServer
    from etl.sandbox.action_events import EventQueue

    events = EventQueue(queue.url, queue.endpoint, REGION)
    with SandboxServer(db_path=tmp_path / "s.sqlite3", events_queue=events) as sandbox:
        status, answer = admin_post(sandbox, {"count": 2, "type": "CANCEL"})
        assert status == 200
        created = [a["id"] for a in answer["actions"]]
        bodies: list[dict[str, Any]] = []
        for _ in range(10):  # a receive may answer with fewer than are waiting
            got = queue.client.receive_message(
                QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
            if len(bodies) >= len(created):
                break
        assert sorted(b["data"]["action_id"] for b in bodies) == sorted(created)
        for body in bodies:
            assert body["type"] == "CANCEL" and len(body["id"]) == 26
            assert body["data"]["cancelations"][0]["reason"] == "CUSTOMER_CANCELATION"
            assert not isinstance(parse_event(json.dumps(body)), Unreadable)
        status, answer = admin_post(sandbox, {"type": "REFUND"})
        assert status == 400 and "type must be one of" in answer["message"]
    # A queue that cannot be reached: no action is created that no event announced.
    gone = EventQueue(queue.url, "http://127.0.0.1:9", REGION)
    with SandboxServer(db_path=tmp_path / "t.sqlite3", events_queue=gone) as sandbox:
        status, answer = admin_post(sandbox, {"count": 1})
        assert status == 400 and "cannot publish" in answer["message"]
        assert sandbox.actions() == []


def test_a_second_reader_of_the_queue_is_refused_while_one_reads(
    tmp_path: Path, queue: Queue, run_cli: RunCli
) -> None:
    import fcntl

    config = config_for(tmp_path, queue)
    queue.send(accept_event(1))
    lock = tmp_path / "outbox" / ".state" / "action-events.lock"
    lock.parent.mkdir(parents=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a watcher reading the queue now would
        code, _, err = run_cli("events", "--config", config)
        assert code == 2 and "another process is reading the order action events" in err
    assert queue.waiting() == 1, "the message left for the reader that holds the lock"
    assert run_cli("events", "--config", config)[0] == 0
    assert len(pending_rows(tmp_path / "outbox")) == 1
