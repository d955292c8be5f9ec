"""Issue 14 item 7: a typo in etl.toml or a mapping file is an error, all at once, with the name
it most likely meant, before anything is read or sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.sandbox import SandboxServer

from .conftest import RunCli, base_line, connect_env, write_rows


def _run(run_cli: RunCli, tmp_path: Path, config: Path) -> tuple[int, str, str]:
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    return run_cli(
        "run", "--config", config, "--inbox", inbox, "--outbox", tmp_path / "out", "--settle", "0"
    )


def test_every_typo_of_etl_toml_is_reported_at_once_and_nothing_is_sent(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in connect_env(sandbox).items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "etl.toml"
    config.write_text(
        '[conect]\napi_url = "https://elsewhere.example/api"\n'
        "[read]\ndecimal_coma = true\n"
        "[connect]\nrequests_per_secnd = 5\npolling = true\n"
        "[watch]\ntimeout = 5\n"
    )
    (tmp_path / "inbox").mkdir()
    write_rows(tmp_path / "inbox" / "orders-a.csv", [base_line()])
    code, _, err = _run(run_cli, tmp_path, config)
    assert code == 2
    assert "5 setting(s) that mean nothing" in err
    assert "[conect] is not a section of etl.toml (did you mean [connect]?)" in err
    assert "[read] decimal_coma is not a setting of [read] (did you mean decimal_comma?)" in err
    assert "[connect] requests_per_secnd is not a setting of [connect] (did you mean " in err
    assert "[connect] polling: it belongs in [watch]" in err
    assert "[watch] timeout: it belongs in [connect]" in err
    assert sandbox.requests_log() == [], "nothing was sent"
    assert (tmp_path / "inbox" / "orders-a.csv").exists()


def test_typos_in_a_mapping_file_are_reported_too(tmp_path: Path, run_cli: RunCli) -> None:
    mapping = tmp_path / "erp.mapping.toml"
    mapping.write_text('[colums]\n"Menge" = "order_lines.quantity"\n[read]\ndelimter = ";"\n')
    export = write_rows(tmp_path / "orders-a.csv", [base_line()])
    code, _, err = run_cli("check", export, "--mapping", mapping, "--outbox", tmp_path / "o")
    assert code == 2
    assert "[colums] is not a section of a mapping file (did you mean [columns]?)" in err
    assert "[read] delimter is not a setting of [read] (did you mean delimiter?)" in err


def test_a_correct_config_is_taken_as_before(tmp_path: Path, run_cli: RunCli) -> None:
    config = tmp_path / "etl.toml"
    config.write_text(
        '[paths]\noutbox = "o"\n[connect]\ntimeout = 10\nledger_timeout = 1\n'
        "[watch]\npolling = true\nsettle_seconds = 1\n[actions]\npoll_seconds = 120\n"
        '[read]\ndecimal_comma = true\n[[mappings]]\nglob = "x*"\nfile = "m.toml"\n'
    )
    (tmp_path / "m.toml").write_text('ignore = ["a"]\n[columns]\n"A" = "channel_order_id"\n')
    code, _, err = run_cli("status", "--config", config)
    assert (code, err) == (0, "")
