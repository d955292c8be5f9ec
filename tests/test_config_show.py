"""`etl config show`: the effective settings, where each came from, and never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import RunCli

SECRET_VALUE = "very-secret-value-never-shown"
TOKEN_VALUE = "token-value-never-shown"


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One setting from each origin: a flag, the environment, etl.toml, a secret file, a default."""
    for name in ("CONNECT_CLIENT_SECRET", "CONNECT_TOKEN", "CONNECT_CHANNEL_ID", "CONNECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "etl.toml"
    config.write_text(
        f'[connect]\nchannel_id = "CH-TOML"\ntoken = "{TOKEN_VALUE}"\n', encoding="utf-8"
    )
    config.chmod(0o600)
    secret = tmp_path / "secret"
    secret.write_text(SECRET_VALUE, encoding="utf-8")
    secret.chmod(0o600)
    monkeypatch.setenv("CONNECT_API_URL", "https://connect.example/api")
    monkeypatch.setenv("CONNECT_CLIENT_SECRET_FILE", str(secret))
    return ["config", "show", "--config", str(config), "--inbox", str(tmp_path / "in")]


def test_text_names_each_value_and_its_origin(setup: list[str], run_cli: RunCli) -> None:
    code, out, err = run_cli(*setup)
    assert code == 0, err
    lines = {line.split(" = ")[0]: line for line in out.splitlines()}
    assert lines["inbox"].endswith("(flag --inbox)")
    assert "https://connect.example/api" in lines["api_url"]
    assert lines["api_url"].endswith("(env CONNECT_API_URL)")
    assert "CH-TOML" in lines["channel_id"] and "etl.toml [connect])" in lines["channel_id"]
    assert lines["client_secret"].startswith("client_secret = ***")
    assert "CONNECT_CLIENT_SECRET_FILE" in lines["client_secret"]
    assert lines["token"].startswith("token = ***")
    assert lines["timeout"] == "timeout = 30.0  (default)"
    assert SECRET_VALUE not in out + err and TOKEN_VALUE not in out + err


def test_json_names_each_value_and_its_origin(setup: list[str], run_cli: RunCli) -> None:
    code, out, err = run_cli(*setup, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["inbox"]["from"] == "flag --inbox"
    assert shown["api_url"] == {
        "value": "https://connect.example/api",
        "from": "env CONNECT_API_URL",
    }
    assert shown["channel_id"]["value"] == "CH-TOML"
    assert shown["channel_id"]["from"].endswith("etl.toml [connect]")
    assert shown["client_secret"]["value"] == "***"
    assert shown["client_secret"]["from"].startswith("file ")
    assert shown["timeout"] == {"value": 30.0, "from": "default"}
    assert SECRET_VALUE not in out + err and TOKEN_VALUE not in out + err


def test_a_secret_left_unset_says_so(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CONNECT_CLIENT_SECRET", "CONNECT_TOKEN", "CONNECT_CLIENT_SECRET_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli("config", "show")
    assert code == 0
    assert "client_secret = (not set)  (default)" in out.splitlines()
