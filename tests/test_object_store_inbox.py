"""An inbox on an object store: orders dropped as objects in a bucket of a real S3-compatible
server (moto in server mode, on loopback), talked to by the real s3fs and boto3 clients, are
delivered to the sandbox once, archived under the prefix, and their source deleted.

The PostgreSQL test uses ``ETL_TEST_POSTGRES`` like tests/test_postgres_ledger.py (a schema of
its own, dropped afterwards; skipped when no server answers, except under ``CI=true``).
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from etl.deliver.client import ConnectClient
from etl.run.object_sync import ObjectSync, staged_settings
from etl.sandbox import SandboxServer
from etl.settings.config import Secret, Settings

from .conftest import REPO, RunCli, base_line, connect_env, settings_for

ORDERS_PATH = "/api/channel-platform/v1/orders"
WATCH = [sys.executable, "-m", "etl", "watch"]
# Credentials the tests give the AWS chain: none of them may show in a log, report or message.
KEY_ID = "AKIATESTKEYID0SHOWN0"
SECRET_KEY = "tEsT-sEcReT-aCcEsS-kEy-never-printed"


def required(module: str) -> Any:
    """The S3 double and clients (the dev extra); skipped where missing, except under
    ``CI=true``, where these tests must run."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{error}; pip install -e '.[dev]' to run", allow_module_level=True)


boto3 = required("boto3")
required("s3fs")
moto_server = required("moto.server")


@dataclass
class S3:
    endpoint: str
    bucket: str
    client: Any

    def put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return body

    def url(self, prefix: str = "drop/") -> str:
        return f"s3://{self.bucket}/{prefix}"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """A bucket of this test's own on the loopback S3 server; credentials in the AWS chain."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    bucket = f"etl-test-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3(s3_endpoint, bucket, client)


def orders_csv(*order_ids: str, **changes: str) -> bytes:
    rows = [base_line(order_id, f"L-{order_id}", **changes) for order_id in order_ids]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def delivered(sandbox: SandboxServer) -> list[int]:
    """Orders per accepted upsert request the sandbox received."""
    return [r["orders"] for r in sandbox.requests_log(path=ORDERS_PATH) if r["status"] == 204]


def object_settings(sandbox: SandboxServer, tmp_path: Path, s3: S3, **changes: Any) -> Settings:
    return settings_for(
        sandbox,
        tmp_path,
        inbox_url=s3.url(),
        inbox_endpoint_url=s3.endpoint,
        **changes,
    )


def run_once(settings: Settings, **kwargs: Any) -> ObjectSync:
    with staged_settings(settings) as staged:
        sync = ObjectSync(staged, lambda: ConnectClient(staged), **kwargs)
        sync()
    return sync


def write_config(tmp_path: Path, s3: S3, **extra: str) -> Path:
    lines = [
        "[paths]",
        f'inbox = "{s3.url()}"',
        f'outbox = "{tmp_path / "outbox"}"',
        "[inbox]",
        f'endpoint_url = "{s3.endpoint}"',
        'region = "us-east-1"',
        *(f'{key} = "{value}"' for key, value in extra.items()),
    ]
    config = tmp_path / "etl.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def test_orders_dropped_in_a_bucket_are_delivered_once_archived_and_the_source_deleted(
    sandbox: SandboxServer,
    tmp_path: Path,
    s3: S3,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for key, value in connect_env(sandbox).items():
        monkeypatch.setenv(key, value)
    s3.put("drop/orders-a.csv", orders_csv("A1", "A2", "A3"))
    s3.put("drop/archive/older-run/kept.csv", b"an older archive is never an input")
    config = write_config(tmp_path, s3)
    config.write_text(config.read_text() + f'[report]\nurl = "{s3.url("reports/")}"\n')

    code, out, _ = run_cli("status", "--config", config, "--json")
    status = json.loads(out)
    assert (code, status["inbox"], status["inbox_waiting_count"]) == (0, s3.url(), 1)
    assert status["inbox_waiting"][0]["name"] == "orders-a.csv"
    assert status["inbox_waiting"][0]["bytes"] == len(orders_csv("A1", "A2", "A3"))

    code, out, err = run_cli("run", "--config", config, "--settle", "0", "-v")

    assert code == 0, out + err
    assert sum(delivered(sandbox)) == 3
    run_id = next((tmp_path / "outbox" / "runs").iterdir()).name
    assert s3.keys("drop/") == [
        f"drop/archive/{run_id}/orders-a.csv",
        "drop/archive/older-run/kept.csv",
    ]
    assert s3.read(f"drop/archive/{run_id}/orders-a.csv") == orders_csv("A1", "A2", "A3")
    reports = s3.keys("reports/")
    assert f"reports/runs/{run_id}/summary.json" in reports
    assert f"reports/runs/{run_id}/report.html" in reports
    assert f"reports/runs/{run_id}/orders-a.csv.items.csv" in reports

    # Run again: nothing waits, nothing is sent twice.
    code, out, _ = run_cli("run", "--config", config, "--settle", "0")
    assert code == 0 and "nothing to do" in out
    assert sum(delivered(sandbox)) == 3

    shown = out + err + caplog.text
    shown += "".join(
        p.read_text(errors="replace") for p in (tmp_path / "outbox").rglob("*") if p.is_file()
    )
    shown += "".join(s3.read(key).decode(errors="replace") for key in reports)
    assert KEY_ID not in shown and SECRET_KEY not in shown


def test_an_invalid_file_ends_under_failed_with_its_reason_and_errors(
    sandbox: SandboxServer, tmp_path: Path, s3: S3
) -> None:
    s3.put("drop/orders-bad.csv", orders_csv("B1", "B2", status="NOT_A_STATUS"))
    settings = object_settings(sandbox, tmp_path, s3)

    sync = run_once(settings)

    assert sync.run.exit_code == 1
    assert delivered(sandbox) == []
    run_id = sync.run.run_id
    assert s3.keys("drop/") == [
        f"drop/failed/{run_id}/orders-bad.csv",
        f"drop/failed/{run_id}/orders-bad.csv.errors.csv",
        f"drop/failed/{run_id}/orders-bad.csv.reason.txt",
    ]
    reason = s3.read(f"drop/failed/{run_id}/orders-bad.csv.reason.txt").decode()
    assert "2 of 2 orders were not accepted (2 invalid)" in reason
    errors = s3.read(f"drop/failed/{run_id}/orders-bad.csv.errors.csv").decode()
    assert "NOT_A_STATUS" in errors and "status" in errors


def test_an_object_still_growing_is_not_taken_until_it_holds_still(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, caplog: pytest.LogCaptureFixture
) -> None:
    s3.put("drop/orders-c.csv", orders_csv("C1"))
    settings = object_settings(sandbox, tmp_path, s3, settle_seconds=1.0)
    slept: list[float] = []

    def uploader_still_writing(seconds: float) -> None:
        # Between the two listings the exporter rewrites the object, bigger.
        slept.append(seconds)
        s3.put("drop/orders-c.csv", orders_csv("C1", "C2"))

    with caplog.at_level(logging.INFO, logger="etl.run.objects"):
        sync = run_once(settings, sleep=uploader_still_writing)

    assert "orders-c.csv is not settled (its size or ETag changed)" in caplog.text
    assert slept == [1.0]
    assert sync.run.files == []
    assert delivered(sandbox) == []
    assert s3.keys("drop/") == ["drop/orders-c.csv"]

    sync = run_once(settings, sleep=lambda seconds: None)  # held still this time
    assert [f.name for f in sync.run.files] == ["orders-c.csv"]
    assert sum(delivered(sandbox)) == 2
    assert s3.keys("drop/") == [f"drop/archive/{sync.run.run_id}/orders-c.csv"]


@pytest.mark.parametrize("state", ["sqlite", "postgresql"])
def test_a_run_killed_between_the_archive_copy_and_the_delete_is_finished_by_the_next(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, state: str, request: pytest.FixtureRequest
) -> None:
    s3.put("drop/orders-d.csv", orders_csv("D1", "D2"))
    config = write_config(tmp_path, s3)
    env = {
        **connect_env(sandbox, process=True),
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    if state == "postgresql":  # the dead worker's staging folder is finished by the next one
        env["CONNECT_STATE_URL"] = request.getfixturevalue("postgres_url")
    command = [sys.executable, "-m", "etl", "run", "--config", str(config), "--settle", "0"]

    killed = subprocess.run(
        command,
        env={**env, "ETL_FAILPOINTS": "object.archived=1"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert killed.returncode == -9, killed.stderr
    run_id = next((tmp_path / "outbox" / "runs").iterdir()).name
    # The archived copy is written, the source not yet deleted: nothing is lost.
    assert s3.keys("drop/") == [f"drop/archive/{run_id}/orders-d.csv", "drop/orders-d.csv"]
    assert sum(delivered(sandbox)) == 2

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert again.returncode == 0, again.stderr
    assert s3.keys("drop/") == [f"drop/archive/{run_id}/orders-d.csv"]
    assert sum(delivered(sandbox)) == 2  # nothing sent twice
    staging = tmp_path / "outbox" / ".staging"
    assert [p for p in staging.rglob("*.json") if p.parent.name == ".objects"] == []
    assert KEY_ID not in killed.stderr + again.stderr + again.stdout
    assert SECRET_KEY not in killed.stderr + again.stderr + again.stdout


def test_a_store_that_refuses_is_explained_without_its_credentials(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in connect_env(sandbox).items():
        monkeypatch.setenv(key, value)
    config = write_config(tmp_path, s3)
    config.write_text(config.read_text().replace(s3.bucket, "no-such-bucket-here"))

    code, out, err = run_cli("run", "--config", config, "--settle", "0")

    assert (code, err) == (
        2,
        "etl: the inbox s3://no-such-bucket-here/drop/ names a bucket that does not exist "
        "(no-such-bucket-here: a typo?); create it, or fix the inbox URL\n",
    )

    # A store that does not answer (nothing listens on the endpoint's port any more). Two
    # tries (AWS_MAX_ATTEMPTS, read by botocore under s3fs), not its default backoff of seconds.
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    import socket

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}"
    config.write_text(
        config.read_text().replace("no-such-bucket-here", s3.bucket).replace(s3.endpoint, closed)
    )
    started = time.monotonic()
    code, out, err = run_cli("run", "--config", config, "--settle", "0")

    assert code == 3, err
    assert err.startswith(f"etl: cannot list s3://{s3.bucket}/drop/: "), err
    assert time.monotonic() - started < 60
    assert err.rstrip().endswith("the objects stay in the store for the next run")
    assert KEY_ID not in out + err and SECRET_KEY not in out + err


def test_an_inbox_url_with_credentials_in_it_is_refused(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli
) -> None:
    code, _, err = run_cli(
        "run", "--inbox", f"s3://{KEY_ID}:{SECRET_KEY}@bucket/drop/", "--outbox", tmp_path
    )
    assert code == 2
    assert "must not hold credentials" in err
    assert KEY_ID not in err and SECRET_KEY not in err

    config = tmp_path / "etl.toml"
    config.write_text(
        f'[paths]\ninbox = "s3://bucket/drop/"\n'
        f'[inbox]\nendpoint_url = "http://{KEY_ID}:{SECRET_KEY}@127.0.0.1:9000"\n'
    )
    code, _, err = run_cli("run", "--config", config)
    assert code == 2
    assert "[inbox] endpoint_url must not hold credentials" in err
    assert KEY_ID not in err and SECRET_KEY not in err


def test_a_file_url_is_served_as_a_store_too(sandbox: SandboxServer, tmp_path: Path) -> None:
    drop = tmp_path / "mounted" / "drop"
    drop.mkdir(parents=True)
    (drop / "orders-f.csv").write_bytes(orders_csv("F1"))
    settings = settings_for(sandbox, tmp_path, inbox_url=drop.as_uri() + "/")

    sync = run_once(settings)

    assert sync.run.exit_code == 0 and sum(delivered(sandbox)) == 1
    found = sorted(str(p.relative_to(drop)) for p in drop.rglob("*") if p.is_file())
    assert found == [f"archive/{sync.run.run_id}/orders-f.csv"]


def test_the_same_code_serves_another_fsspec_store(sandbox: SandboxServer, tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    prefix = f"/etl-{uuid.uuid4().hex[:8]}/drop"
    memory.pipe_file(f"{prefix}/orders-m.csv", orders_csv("M1"))
    settings = settings_for(sandbox, tmp_path, inbox_url=f"memory:/{prefix}/")

    sync = run_once(settings)

    assert sync.run.exit_code == 0 and sum(delivered(sandbox)) == 1
    assert memory.find(prefix) == [f"{prefix}/archive/{sync.run.run_id}/orders-m.csv"]


def test_two_workers_on_one_postgresql_state_and_one_bucket_deliver_each_file_once(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, postgres_url: str
) -> None:
    files = {f"orders-{n:02d}.csv": orders_csv(f"W{n}-1", f"W{n}-2") for n in range(12)}
    for name, body in files.items():
        s3.put(f"drop/{name}", body)
    config = write_config(tmp_path, s3)
    env = {
        **connect_env(sandbox, process=True),
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "CONNECT_STATE_URL": postgres_url,
    }
    command = [sys.executable, "-m", "etl", "run", "--config", str(config), "--settle", "0"]
    workers = [
        subprocess.Popen(
            [*command, "--outbox", str(tmp_path / f"outbox-{n}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    outputs = [worker.communicate(timeout=180) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    archived = [key for key in s3.keys("drop/") if key.startswith("drop/archive/")]
    assert sorted(key.rsplit("/", 1)[1] for key in archived) == sorted(files)
    assert s3.keys("drop/") == sorted(archived)  # every source deleted, nothing else left
    assert sum(delivered(sandbox)) == 2 * len(files)
    reported = [
        summary.parent.name
        for n in range(2)
        for summary in (tmp_path / f"outbox-{n}" / "runs").rglob("*.items.csv")
    ]
    assert len(reported) == len(files)  # each file reported by one worker only
    for stdout, stderr in outputs:
        assert KEY_ID not in stdout + stderr and SECRET_KEY not in stdout + stderr


def wait_for(condition: Any, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_etl_watch_polls_the_bucket_and_delivers_each_object_once(
    sandbox: SandboxServer, tmp_path: Path, s3: S3
) -> None:
    import threading

    from etl.run.object_watch import ObjectWatcher

    settings = object_settings(sandbox, tmp_path, s3, settle_seconds=0.3)
    s3.put("drop/orders-w1.csv", orders_csv("X1", "X2"))
    with staged_settings(settings) as staged:
        watcher = ObjectWatcher(staged, lambda: ConnectClient(staged), rescan_seconds=0.2)
        thread = threading.Thread(target=watcher.run, name="object-watcher-under-test")
        thread.start()
        try:
            wait_for(lambda: "drop/orders-w1.csv" not in s3.keys("drop/"))
            s3.put("drop/orders-w2.csv", orders_csv("X3"))  # arrives while it watches
            wait_for(lambda: "drop/orders-w2.csv" not in s3.keys("drop/"))
            time.sleep(1.0)  # a few more listings: nothing is taken twice
        finally:
            watcher.stop()
            thread.join(timeout=30)
    assert not thread.is_alive()
    assert watcher.exit_codes == [0, 0]
    archived = [key.rsplit("/", 1)[1] for key in s3.keys("drop/")]
    assert s3.keys("drop/") == sorted(key for key in s3.keys("drop/") if "/archive/" in key)
    assert sorted(archived) == ["orders-w1.csv", "orders-w2.csv"]
    assert sum(delivered(sandbox)) == 3
    assert watcher.heartbeat.observer == "listing" and watcher.heartbeat.files_processed == 2


def test_an_object_whose_worker_died_is_resumed_by_another_once_its_lease_runs_out(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, postgres_url: str
) -> None:
    ids = [f"K{n:03d}" for n in range(250)]  # three batches
    s3.put("drop/orders-k.csv", orders_csv(*ids))
    config = write_config(tmp_path, s3)
    # The test waits the lease out, so it is short (the floor is 3 s); 4 s still gives the
    # early worker below (in this process, no start-up) time to find the file held.
    lease = 4.0
    config.write_text(config.read_text() + f"[state]\nlease_seconds = {lease}\n")
    env = {
        **connect_env(sandbox, process=True),
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "CONNECT_STATE_URL": postgres_url,
    }
    command = [sys.executable, "-m", "etl", "run", "--config", str(config), "--settle", "0"]

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            command, env={**env, **extra}, capture_output=True, text=True, timeout=120
        )

    killed = run(ETL_FAILPOINTS="batch.pending=2")  # dies after its first batch was accepted
    died_at = time.monotonic()
    assert killed.returncode == -9, killed.stderr
    assert sum(delivered(sandbox)) == 100
    staging = tmp_path / "outbox" / ".staging"
    assert len(list(staging.glob("*/worker-*"))) == 1  # the dead worker's folder

    # Another worker at once (in this process: no start-up time): the lease still holds.
    early = run_once(
        object_settings(sandbox, tmp_path, s3, state_url=Secret(postgres_url), lease_seconds=lease)
    )
    assert time.monotonic() - died_at < lease
    assert early.run.files == []
    assert s3.keys("drop/") == ["drop/orders-k.csv"] and sum(delivered(sandbox)) == 100

    time.sleep(max(0.0, died_at + lease + 0.5 - time.monotonic()))
    resumed = run()

    assert resumed.returncode == 0, resumed.stderr
    assert "took over orders-k.csv" in resumed.stderr
    archived = [key for key in s3.keys("drop/") if key.endswith("/orders-k.csv")]
    assert len(archived) == 1 and archived[0].startswith("drop/archive/")
    assert s3.keys("drop/") == archived
    # Resumed from the ledger: what it recorded is not sent again; the batch that was in
    # flight when the worker died (accepted, its answer not yet recorded) may be: an upsert.
    assert sum(delivered(sandbox)) in (250, 350)
    assert sorted(o["channel_order_id"] for o in sandbox.stored_orders()) == ids
    assert list(staging.glob("*/worker-*")) == []  # the dead worker's folder swept


def test_the_etl_watch_command_serves_a_bucket_until_sigterm(
    sandbox: SandboxServer, tmp_path: Path, s3: S3
) -> None:
    import signal

    config = write_config(tmp_path, s3)
    env = {
        **connect_env(sandbox, process=True),
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    watcher = subprocess.Popen(
        [*WATCH, "--config", str(config), "--settle", "0.2", "--rescan", "0.5"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        s3.put("drop/orders-v.csv", orders_csv("V1", "V2"))
        wait_for(lambda: any("/archive/" in key for key in s3.keys("drop/")) or watcher.poll())
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)

    assert watcher.returncode == 0, err
    assert out.startswith(f"etl watch: watching {s3.url()} (heartbeat in ")
    assert [key.rsplit("/", 1)[1] for key in s3.keys("drop/")] == ["orders-v.csv"]
    assert "/archive/" in s3.keys("drop/")[0]
    assert sum(delivered(sandbox)) == 2
    assert KEY_ID not in out + err and SECRET_KEY not in out + err


def test_an_object_whose_name_this_machine_cannot_hold_is_refused_into_failed(
    sandbox: SandboxServer, tmp_path: Path, s3: S3
) -> None:
    long_name = "orders-" + "x" * 290 + ".csv"  # a key may be 1024 bytes, a file name 255
    s3.put(f"drop/{long_name}", orders_csv("N1"))
    s3.put("drop/orders-n.csv", orders_csv("N2"))

    sync = run_once(object_settings(sandbox, tmp_path, s3))

    assert sync.run.exit_code == 1
    assert sum(delivered(sandbox)) == 1  # the other file went on
    run_id = sync.run.run_id
    assert s3.keys("drop/") == [
        f"drop/archive/{run_id}/orders-n.csv",
        f"drop/failed/{run_id}/{long_name}",
        f"drop/failed/{run_id}/{long_name}.reason.txt",
    ]
    reason = s3.read(f"drop/failed/{run_id}/{long_name}.reason.txt").decode()
    assert (
        reason == "refused: it cannot be copied to this machine to be read (File name too long)\n"
    )


def test_the_inbox_url_and_its_endpoint_come_from_etl_toml_read_strictly(tmp_path: Path) -> None:
    from etl.core.errors import UsageError
    from etl.settings.config import load_settings_with_origins

    config = tmp_path / "etl.toml"
    config.write_text(
        '[paths]\ninbox = "s3://orders/drop/"\n'
        '[inbox]\nendpoint_url = "http://127.0.0.1:9000"\nregion = "eu-west-1"\n'
        '[report]\nurl = "s3://orders/reports/"\n'
    )
    settings, origins = load_settings_with_origins(config, {}, environ={})
    assert (settings.inbox_url, settings.inbox_endpoint_url, settings.inbox_region) == (
        "s3://orders/drop/",
        "http://127.0.0.1:9000",
        "eu-west-1",
    )
    assert settings.report_url == "s3://orders/reports/"
    assert origins["inbox_url"] == f"file {config} [paths]"

    local, origins = load_settings_with_origins(config, {"inbox": tmp_path / "in"}, environ={})
    assert (local.inbox_url, local.inbox) == ("", tmp_path / "in")  # --inbox DIR wins
    assert "inbox_url" not in origins

    config.write_text('[paths]\ninbox = "s3://orders/drop/"\n[inbox]\nendpoint = "http://x"\n')
    with pytest.raises(UsageError, match=r"\[inbox\] endpoint.*did you mean endpoint_url"):
        load_settings_with_origins(config, {}, environ={})


def test_reports_that_cannot_be_uploaded_stay_in_the_outbox_and_the_run_says_so(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in connect_env(sandbox).items():
        monkeypatch.setenv(key, value)
    s3.put("drop/orders-r.csv", orders_csv("R1"))
    config = write_config(tmp_path, s3)
    config.write_text(config.read_text() + '[report]\nurl = "s3://no-such-report-bucket/r/"\n')

    code, out, err = run_cli("run", "--config", config, "--settle", "0")

    assert code == 0, err  # the orders were delivered: the run's own outcome stands
    run_dir = next((tmp_path / "outbox" / "runs").iterdir())
    assert (run_dir / "report.html").is_file()
    assert err.startswith(
        "etl: cannot upload the reports to [report] url: the reports stay in "
        f"{run_dir}: cannot write runs/{run_dir.name}/"
    ), err
    assert KEY_ID not in out + err and SECRET_KEY not in out + err


def tenants_config(tmp_path: Path, s3: S3, sandbox: SandboxServer) -> Path:
    """Two sellers with the sandbox's credentials: one drops its files in a bucket, the other
    in a folder."""
    config = tmp_path / "etl.toml"
    config.write_text(
        f"""
[paths]
outbox = "{tmp_path / "outbox"}"

[connect]
api_url = "{sandbox.api_url}"
token_url = "{sandbox.token_url}"

[inbox]
endpoint_url = "{s3.endpoint}"
region = "us-east-1"

[tenants.bucket]
inbox = "{s3.url()}"
client_id = "{connect_env(sandbox)["CONNECT_CLIENT_ID"]}"
client_secret_env = "SELLER_SECRET"

[tenants.folder]
inbox = "{tmp_path / "folder-inbox"}"
client_id = "{connect_env(sandbox)["CONNECT_CLIENT_ID"]}"
client_secret_env = "SELLER_SECRET"
""",
        encoding="utf-8",
    )
    (tmp_path / "folder-inbox").mkdir()
    return config


@pytest.mark.parametrize("command", ["run", "watch"])
def test_a_tenant_whose_inbox_is_a_bucket_is_served_beside_one_whose_inbox_is_a_folder(
    sandbox: SandboxServer, tmp_path: Path, s3: S3, command: str
) -> None:
    import signal

    config = tenants_config(tmp_path, s3, sandbox)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        "SELLER_SECRET": connect_env(sandbox)["CONNECT_CLIENT_SECRET"],
        "AWS_ACCESS_KEY_ID": KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    s3.put("drop/orders-b.csv", orders_csv("B1", "B2"))
    (tmp_path / "folder-inbox" / "orders-f.csv").write_bytes(orders_csv("F1"))
    arguments = [sys.executable, "-m", "etl", command, "--config", str(config), "--settle", "0.2"]
    if command == "run":
        done = subprocess.run(arguments, env=env, capture_output=True, text=True, timeout=120)
        out, err, code = done.stdout, done.stderr, done.returncode
    else:
        worker = subprocess.Popen(
            [*arguments, "--rescan", "0.5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: sum(delivered(sandbox)) >= 3 or worker.poll() is not None)
            wait_for(lambda: any("/archive/" in key for key in s3.keys("drop/")))
        finally:
            worker.send_signal(signal.SIGTERM)
            out, err = worker.communicate(timeout=60)
        code = worker.returncode
    assert code == 0, err
    assert sum(delivered(sandbox)) == 3
    assert ["/archive/" in key for key in s3.keys("drop/")] == [True]
    assert list((tmp_path / "folder-inbox").glob("*.csv")) == []
    assert KEY_ID not in out + err and SECRET_KEY not in out + err
