"""Many sellers, one process: [tenants.<name>] in etl.toml, each seller apart from the others
(its credentials, inbox, outbox, ledger target, reports), against one sandbox over loopback that
knows each seller's client id."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from etl.sandbox import SandboxServer
from etl.settings.config import load_settings
from etl.settings.tenants import Tenant, load_tenants

from .conftest import REPO, RunCli, base_line, write_rows
from .test_alerts import hook  # noqa: F401 - a fixture, used by name
from .test_watch import wait_for

ACME_SECRET = "acme-secret-do-not-print"
BOLT_SECRET = "bolt-secret-do-not-print"
UPSERT = "/api/channel-platform/v1/orders"


@pytest.fixture
def sellers(tmp_path: Path) -> Iterator[SandboxServer]:
    """The API double accepting two sellers' credentials, 30 requests/s each at most."""
    with SandboxServer(
        db_path=tmp_path / "sandbox.sqlite3",
        client_id="acme-client",
        client_secret=ACME_SECRET,
        extra_clients=[("bolt-client", BOLT_SECRET)],
        rate_limit=30,
    ) as server:
        yield server


def write_config(
    tmp_path: Path,
    server: SandboxServer,
    acme: str = "",
    bolt: str = "",
    connect: str = "",
) -> Path:
    """etl.toml with two tenants whose secrets are in ACME_SECRET and BOLT_SECRET."""
    path = tmp_path / "etl.toml"
    path.write_text(
        f"""
[paths]
outbox = "outbox"

[connect]
api_url = "{server.api_url}"
token_url = "{server.token_url}"
timeout = 5
max_attempts = 2
{connect}

[watch]
settle_seconds = 0

[tenants.acme]
inbox = "acme-inbox"
client_id = "acme-client"
client_secret_env = "ACME_SECRET"
{acme}

[tenants.bolt]
inbox = "bolt-inbox"
client_id = "bolt-client"
client_secret_env = "BOLT_SECRET"
{bolt}
""",
        encoding="utf-8",
    )
    (tmp_path / "acme-inbox").mkdir(exist_ok=True)
    (tmp_path / "bolt-inbox").mkdir(exist_ok=True)
    return path


@pytest.fixture
def secrets_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_SECRET", ACME_SECRET)
    monkeypatch.setenv("BOLT_SECRET", BOLT_SECRET)


def drop_orders(inbox: Path, prefix: str, count: int = 2, **extra: str) -> Path:
    rows = [base_line(f"{prefix}-{n}", f"{prefix}-{n}-L1", **extra) for n in range(count)]
    return write_rows(inbox / "orders-1.csv", rows)


def received_by(server: SandboxServer, client: str) -> list[str]:
    """The order ids the sandbox received from ``client``, in upsert requests it accepted."""
    return [
        order["channel_order_id"]
        for entry in server.requests_log(path=UPSERT)
        if entry["client_id"] == client and entry["status"] == 204
        for order in entry["body"]["orders"]
    ]


def summaries(outbox: Path) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(outbox.glob("runs/*/summary.json"))]


@pytest.mark.usefixtures("secrets_set")
def test_one_run_delivers_each_sellers_files_with_its_own_credentials(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 0, out + err
    assert received_by(sellers, "acme-client") == ["A-0", "A-1"]
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]
    for name in ("acme", "bolt"):
        outbox = tmp_path / "outbox" / "tenants" / name
        (summary,) = summaries(outbox)
        assert summary["tenant"] == name
        assert summary["target"] == f"{sellers.api_url} (client {name}-client)"
        assert list(outbox.glob("archive/*/orders-1.csv"))
        assert f"for tenant {name} to {sellers.api_url} (client {name}-client): exit 0" in out
        assert (outbox / ".state" / "ledger.sqlite3").is_file()  # a ledger of its own
        (report,) = outbox.glob("runs/*/report.html")
        assert f'for tenant <strong id="tenant">{name}</strong>' in report.read_text()
    assert ACME_SECRET not in out + err and BOLT_SECRET not in out + err


@pytest.mark.usefixtures("secrets_set")
def test_a_seller_whose_secret_is_refused_does_not_stop_another(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_SECRET", "not-acme's-secret")
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 3, out + err  # the worst of: acme 3 (credentials refused), bolt 0
    assert received_by(sellers, "acme-client") == []
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]
    assert (tmp_path / "acme-inbox" / "orders-1.csv").is_file()  # kept for the next run
    assert "etl: tenant acme: stopped sending:" in err
    assert "for tenant bolt" in out and "exit 0" in out


@pytest.mark.usefixtures("secrets_set")
def test_a_sellers_bad_file_does_not_stop_another(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A", order_lines__quantity="two")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 1, out + err
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]
    acme_outbox = tmp_path / "outbox" / "tenants" / "acme"
    assert list(acme_outbox.glob("failed/*/orders-1.csv.reason.txt"))
    assert not list((tmp_path / "outbox" / "tenants" / "bolt").glob("failed/*/*"))


@pytest.mark.usefixtures("secrets_set")
def test_a_seller_whose_api_is_down_does_not_stop_another(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    # Port 9 (discard) on loopback: nothing listens, every connection is refused.
    down = 'api_url = "http://127.0.0.1:9/api"\ntoken_url = "http://127.0.0.1:9/oauth/token"'
    config = write_config(tmp_path, sellers, acme=down)
    drop_orders(tmp_path / "acme-inbox", "A")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 3, out + err
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]
    assert (tmp_path / "acme-inbox" / "orders-1.csv").is_file()


@pytest.mark.usefixtures("secrets_set")
def test_a_seller_whose_secret_variable_is_not_set_is_told_and_the_others_served(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ACME_SECRET")
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 2, out + err
    assert (
        "etl: tenant acme: [tenants.acme] client_secret_env names the environment variable "
        "ACME_SECRET, which is not set (or empty)"
    ) in err
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]


@pytest.mark.usefixtures("secrets_set")
def test_tenant_flag_limits_the_run_to_one_seller(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config, "--tenant", "bolt")
    assert code == 0, out + err
    assert received_by(sellers, "acme-client") == []
    assert (tmp_path / "acme-inbox" / "orders-1.csv").is_file()
    code, _, err = run_cli("run", "--config", config, "--tenant", "bolts")
    assert code == 2
    assert "--tenant bolts: no such tenant in" in err and "(did you mean bolt?)" in err


def test_secret_files_give_tenants_their_secrets_and_a_shared_one_is_refused(
    tmp_path: Path, sellers: SandboxServer
) -> None:
    config = write_config(tmp_path, sellers)
    text = config.read_text()
    text = text.replace('client_secret_env = "ACME_SECRET"', 'client_secret_file = "acme.secret"')
    text = text.replace('client_secret_env = "BOLT_SECRET"', 'token_file = "bolt.token"')
    config.write_text(text)
    (tmp_path / "acme.secret").write_text(ACME_SECRET + "\r\n")  # saved on Windows
    (tmp_path / "acme.secret").chmod(0o600)
    (tmp_path / "bolt.token").write_text("bolt-token-value")
    (tmp_path / "bolt.token").chmod(0o644)
    base = load_settings(config, environ={})
    acme, bolt = load_tenants(config, base, environ={})
    assert acme.problem == "" and acme.settings.client_secret.reveal() == ACME_SECRET
    assert "others can read the secret file" in bolt.problem
    assert "bolt-token-value" not in bolt.problem and not bolt.settings.token


def test_each_tenant_gets_its_folders_origin_mapping_and_budget(
    tmp_path: Path, sellers: SandboxServer
) -> None:
    (tmp_path / "acme.mapping.toml").write_text('[columns]\n"Nr" = "channel_order_id"\n')
    config = write_config(
        tmp_path,
        sellers,
        acme='outbox = "acme-out"\nchannel_id = "CH-A"\nstore_id = "S-A"\n'
        'mapping = "acme.mapping.toml"\nrequests_per_second = 30',
    )
    base = load_settings(config, environ={})
    env = {"ACME_SECRET": ACME_SECRET, "BOLT_SECRET": BOLT_SECRET}
    acme, bolt = load_tenants(config, base, environ=env)
    assert acme.settings.outbox == tmp_path / "acme-out"
    assert bolt.settings.outbox == base.outbox / "tenants" / "bolt"
    assert acme.settings.inbox == tmp_path / "acme-inbox"
    assert acme.settings.default_origin is not None
    assert acme.settings.default_origin.as_json() == {
        "channel_id": "CH-A",
        "channel_store_id": "S-A",
    }
    assert acme.settings.default_source.mapping.renames == {"Nr": ("channel_order_id",)}
    assert (acme.settings.requests_per_second, bolt.settings.requests_per_second) == (30, 20)
    assert acme.settings.target != bolt.settings.target
    assert acme.settings.ledger_path != bolt.settings.ledger_path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "requests_per_secnd = 20",
            "[tenants.acme] requests_per_secnd is not a setting of a tenant "
            "(did you mean requests_per_second?)",
        ),
        (
            'client_secret = "s3cr3t"',
            "[tenants.acme] client_secret: a secret is never written in etl.toml; name the "
            "environment variable (client_secret_env) or the file (client_secret_file)",
        ),
        (
            "requests_per_second = 31",
            "[tenants.acme] requests_per_second must be a number above 0 and at most 30 "
            "(upsertOrders' documented maximum per second) (got 31)",
        ),
    ],
)
def test_a_tenant_setting_that_means_nothing_is_refused_before_anything_is_sent(
    tmp_path: Path,
    sellers: SandboxServer,
    run_cli: RunCli,
    line: str,
    message: str,
) -> None:
    config = write_config(tmp_path, sellers, acme=line)
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 2, out + err
    assert message in err
    assert "s3cr3t" not in out + err
    assert sellers.requests_log() == []


def test_a_tenant_without_an_inbox_is_refused(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    config.write_text(config.read_text().replace('inbox = "acme-inbox"\n', ""))
    code, _, err = run_cli("status", "--config", config)
    assert code == 2
    assert "[tenants.acme] has no inbox: each seller drops its files in a folder of its own" in err


@pytest.mark.usefixtures("secrets_set")
def test_status_shows_every_tenant(tmp_path: Path, sellers: SandboxServer, run_cli: RunCli) -> None:
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A")
    code, out, _ = run_cli("status", "--config", config, "--json")
    assert code == 0
    tenants = json.loads(out)["tenants"]
    assert sorted(tenants) == ["acme", "bolt"]
    assert tenants["acme"]["inbox_waiting_count"] == 1
    assert tenants["bolt"]["inbox_waiting_count"] == 0
    code, out, _ = run_cli("status", "--config", config)
    assert f"tenant acme ({sellers.api_url} (client acme-client)):" in out


@pytest.mark.usefixtures("secrets_set")
def test_check_reads_a_file_with_the_mapping_and_origin_of_the_tenant_whose_inbox_holds_it(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    (tmp_path / "acme.mapping.toml").write_text('[columns]\n"Nr" = "channel_order_id"\n')
    config = write_config(
        tmp_path,
        sellers,
        acme='channel_id = "CH-A"\nstore_id = "S-A"\nmapping = "acme.mapping.toml"',
    )
    row = base_line("A-1")
    row["Nr"] = row.pop("channel_order_id")
    del row["origin.channel_id"], row["origin.channel_store_id"]
    path = write_rows(tmp_path / "acme-inbox" / "orders-1.csv", [row])
    code, out, err = run_cli("check", "--config", config, path)
    assert code == 0, out + err
    assert "for tenant acme: exit 0" in out
    stray = write_rows(tmp_path / "orders-2.csv", [row])
    code, _, err = run_cli("check", "--config", config, stray)
    assert code == 2 and "in no tenant's inbox; say whose with --tenant NAME" in err
    code, out, err = run_cli("check", "--config", config, "--tenant", "acme", stray)
    assert code == 0, out + err


def test_one_watcher_process_serves_every_seller_and_one_missing_secret_stops_no_other(
    tmp_path: Path, sellers: SandboxServer
) -> None:
    config = write_config(tmp_path, sellers)
    env = {k: v for k, v in os.environ.items() if k not in ("ACME_SECRET", "BOLT_SECRET")}
    env.update(PYTHONPATH=str(REPO), BOLT_SECRET=BOLT_SECRET)  # acme's secret is not set
    process = subprocess.Popen(
        [sys.executable, "-m", "etl.cli.main", "watch", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        drop_orders(tmp_path / "bolt-inbox", "B")
        bolt_archive = tmp_path / "outbox" / "tenants" / "bolt" / "archive"
        wait_for(lambda: bool(list(bolt_archive.glob("*/orders-1.csv"))))
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]
    assert process.returncode == 2, out + err  # the worst of: acme 2 (no secret), bolt 0
    assert "etl: tenant acme: [tenants.acme] client_secret_env names" in err
    assert "etl watch: tenant bolt: watching" in out
    assert BOLT_SECRET not in out + err


@pytest.mark.usefixtures("secrets_set")
def test_sellers_sharing_one_ledger_keep_their_deliveries_apart_by_target(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    config.write_text(
        config.read_text().replace("[paths]\n", '[paths]\nstate = "ledger.sqlite3"\n')
    )
    # The same export for both: what one seller delivered says nothing about the other.
    drop_orders(tmp_path / "acme-inbox", "X")
    drop_orders(tmp_path / "bolt-inbox", "X")
    code, out, err = run_cli("run", "--config", config)
    assert code == 0, out + err
    assert received_by(sellers, "acme-client") == ["X-0", "X-1"]
    assert received_by(sellers, "bolt-client") == ["X-0", "X-1"]
    assert not list((tmp_path / "outbox").glob("tenants/*/.state"))
    drop_orders(tmp_path / "acme-inbox", "X")
    code, out, err = run_cli("run", "--config", config)
    assert code == 0, out + err
    assert "orders-1.csv: DUPLICATE" in out
    assert len(received_by(sellers, "acme-client")) == 2  # nothing sent twice


@pytest.mark.usefixtures("secrets_set")
def test_log_lines_name_their_tenant(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "acme-inbox", "A")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config, "-v", "--log-format", "json")
    assert code == 0, out + err
    lines = [json.loads(line) for line in err.splitlines()]
    canonical = [line for line in lines if line.get("event") in ("file", "batch", "run")]
    by_event = {(line["tenant"], line["event"]) for line in canonical}
    for tenant in ("acme", "bolt"):
        assert {(tenant, "file"), (tenant, "batch"), (tenant, "run")} <= by_event
    assert all(line["message"].startswith(f"tenant {line['tenant']}: ") for line in canonical)


@pytest.mark.usefixtures("secrets_set")
def test_health_and_report_per_tenant(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    code, out, _ = run_cli("health", "--config", config)
    assert code == 1  # no watcher has run for either seller
    assert out.startswith("tenant acme: unhealthy: no heartbeat in")
    assert "\ntenant bolt: unhealthy: no heartbeat in" in out
    drop_orders(tmp_path / "bolt-inbox", "B")
    assert run_cli("run", "--config", config)[0] == 0
    code, _, err = run_cli("report", "--config", config)
    assert code == 2 and "each tenant has runs of its own: add --tenant NAME (acme, bolt)" in err
    code, out, err = run_cli("report", "--config", config, "--tenant", "bolt")
    assert code == 0, out + err
    assert "for tenant bolt to" in out and "orders-1.csv: 2 orders from 2 rows" in out


def test_files_read_at_once_put_the_interpreters_switch_interval_back() -> None:
    """Reading a file shortens the GIL switch interval, the process's setting: two tenants'
    files read at once must leave it as it was, whichever ends first."""
    from etl.run.check import prefetched

    before = sys.getswitchinterval()
    first, second = prefetched(iter([1, 2])), prefetched(iter([3, 4]))
    assert next(first) == 1 and next(second) == 3  # both reading
    assert list(first) == [2]  # the first to start ends first
    assert list(second) == [4]
    assert sys.getswitchinterval() == before


@pytest.mark.usefixtures("secrets_set")
def test_config_show_gives_a_tenants_settings_and_where_each_came_from(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECT_CLIENT_ID", "not-a-seller")
    config = write_config(tmp_path, sellers, acme="requests_per_second = 30")
    code, out, err = run_cli("config", "show", "--config", config, "--tenant", "acme", "--json")
    assert code == 0, err
    table = json.loads(out)
    assert table["client_secret"] == {
        "value": "***",
        "from": "env ACME_SECRET ([tenants.acme] client_secret_env)",
    }
    assert table["client_id"] == {"value": "acme-client", "from": f"file {config} [tenants.acme]"}
    assert table["requests_per_second"] == {"value": 30, "from": f"file {config} [tenants.acme]"}
    assert table["outbox"]["from"] == "default for [tenants.acme]: <outbox>/tenants/acme"
    assert table["timeout"]["from"] == f"file {config} [connect]"  # shared
    code, out, _ = run_cli("config", "show", "--config", config, "--tenant", "bolt", "--json")
    assert json.loads(out)["client_id"]["value"] == "bolt-client"
    assert ACME_SECRET not in out and BOLT_SECRET not in out


@pytest.mark.usefixtures("secrets_set")
def test_metrics_textfile_serves_one_tenant(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    drop_orders(tmp_path / "bolt-inbox", "B")
    metrics = tmp_path / "etl.prom"
    code, _, err = run_cli("run", "--config", config, "--metrics-textfile", metrics)
    assert code == 2 and "--metrics-textfile serves one tenant at a time: add --tenant NAME" in err
    code, out, err = run_cli(
        "run", "--config", config, "--tenant", "bolt", "--metrics-textfile", metrics
    )
    assert code == 0, out + err
    assert 'etl_orders_total{outcome="ACCEPTED"} 2.0' in metrics.read_text()


@pytest.mark.usefixtures("secrets_set")
def test_an_alert_names_the_tenant_whose_file_failed(
    tmp_path: Path,
    sellers: SandboxServer,
    run_cli: RunCli,
    hook: tuple[list[dict[str, object]], int],  # noqa: F811 - the fixture imported above
) -> None:
    received, port = hook
    config = write_config(tmp_path, sellers)
    config.write_text(config.read_text() + f'\n[alerts]\nurls = ["json://127.0.0.1:{port}"]\n')
    config.chmod(0o600)  # alert URLs may hold tokens
    drop_orders(tmp_path / "acme-inbox", "A", order_lines__quantity="two")
    drop_orders(tmp_path / "bolt-inbox", "B")
    code, out, err = run_cli("run", "--config", config)
    assert code == 1, out + err
    wait_for(lambda: len(received) == 1)
    assert str(received[0]["title"]).startswith("etl: tenant acme: 1 file(s) failed in run ")


def test_for_each_tenant_keeps_one_tenants_exception_its_own(
    tmp_path: Path, sellers: SandboxServer
) -> None:
    from etl.run.tenants import for_each_tenant

    config = write_config(tmp_path, sellers)
    env = {"ACME_SECRET": ACME_SECRET, "BOLT_SECRET": BOLT_SECRET}
    tenants = load_tenants(config, load_settings(config, environ={}), environ=env)

    def work(tenant: Tenant) -> str:
        if tenant.name == "acme":
            raise RuntimeError("acme's own trouble")
        return tenant.settings.target

    acme, bolt = for_each_tenant(tenants, work)
    assert isinstance(acme.error, RuntimeError) and acme.value is None
    assert bolt.error is None and bolt.value == f"{sellers.api_url} (client bolt-client)"


@pytest.mark.usefixtures("secrets_set")
def test_a_seller_whose_api_hangs_does_not_delay_another(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    # A socket that takes connections and never answers: acme's calls wait for their timeout.
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        port = hanging.getsockname()[1]
        urls = f'api_url = "http://127.0.0.1:{port}/api"\n'
        urls += f'token_url = "http://127.0.0.1:{port}/oauth/token"'
        config = write_config(tmp_path, sellers, acme=urls)
        config.write_text(config.read_text().replace("timeout = 5", "timeout = 1"))
        drop_orders(tmp_path / "acme-inbox", "A")
        drop_orders(tmp_path / "bolt-inbox", "B")
        code, out, err = run_cli("run", "--config", config)
    assert code == 3, out + err
    assert received_by(sellers, "bolt-client") == ["B-0", "B-1"]
    (acme,) = summaries(tmp_path / "outbox" / "tenants" / "acme")
    (bolt,) = summaries(tmp_path / "outbox" / "tenants" / "bolt")
    # Bolt was done while acme still waited for an answer that never came.
    acme_seconds, bolt_seconds = (float(str(s["duration_seconds"])) for s in (acme, bolt))
    assert acme_seconds >= 2.0 and bolt_seconds < acme_seconds


def test_a_misspelt_tenants_section_is_named_with_the_one_it_meant(
    tmp_path: Path, sellers: SandboxServer, run_cli: RunCli
) -> None:
    config = write_config(tmp_path, sellers)
    config.write_text(config.read_text().replace("[tenants.bolt]", "[tenant.bolt]"))
    code, _, err = run_cli("run", "--config", config)
    assert code == 2
    assert "[tenant] is not a section of etl.toml (did you mean [tenants]?)" in err
    assert sellers.requests_log() == []
