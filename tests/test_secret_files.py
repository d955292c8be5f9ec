"""Secrets read from files: CONNECT_*_FILE, systemd's $CREDENTIALS_DIRECTORY, Docker's
/run/secrets (a folder the tests choose, never the real one), and their order of precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.core.errors import UsageError
from etl.sandbox import SandboxServer
from etl.settings import secret_files
from etl.settings.config import load_settings

from .conftest import SECRET, RunCli, base_line, connect_env, write_rows


@pytest.fixture(autouse=True)
def docker_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The /run/secrets the tests see: a folder of their own."""
    folder = tmp_path / "run-secrets"
    folder.mkdir()
    monkeypatch.setattr(secret_files, "DOCKER_SECRETS", folder)
    return folder


def secret_file(path: Path, content: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    path.chmod(mode)
    return path


def test_the_file_variable_gives_the_secret_without_its_line_ending(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "secret.txt", "from-a-file\r\n")
    settings = load_settings(environ={"CONNECT_CLIENT_SECRET_FILE": str(path)})
    assert settings.client_secret.reveal() == "from-a-file"


def test_the_token_file_variable_gives_the_token(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "token", " tok-en \n")
    assert load_settings(environ={"CONNECT_TOKEN_FILE": str(path)}).token.reveal() == "tok-en"


def test_a_file_that_others_can_read_is_refused_without_its_content(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "secret.txt", "do-not-show-me", mode=0o640)
    with pytest.raises(UsageError) as refused:
        load_settings(environ={"CONNECT_CLIENT_SECRET_FILE": str(path)})
    message = str(refused.value)
    assert str(path) in message and "chmod 600" in message and "read" in message
    assert "do-not-show-me" not in message


def test_a_file_that_others_can_write_is_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "secret.txt", "x", mode=0o602)
    with pytest.raises(UsageError, match="write"):
        load_settings(environ={"CONNECT_CLIENT_SECRET_FILE": str(path)})


def test_a_missing_file_named_by_a_file_variable_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "secret.txt"
    with pytest.raises(UsageError, match="CONNECT_TOKEN_FILE") as refused:
        load_settings(environ={"CONNECT_TOKEN_FILE": str(missing)})
    assert str(missing) in str(refused.value)


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    path = secret_file(tmp_path / "secret.txt", " \n")
    with pytest.raises(UsageError, match="empty"):
        load_settings(environ={"CONNECT_CLIENT_SECRET_FILE": str(path)})


def test_the_systemd_credentials_directory_is_read(tmp_path: Path) -> None:
    folder = tmp_path / "creds"
    secret_file(folder / "connect_client_secret", "from-systemd\n", mode=0o400)
    secret_file(folder / "connect_token", "token-from-systemd", mode=0o400)
    settings = load_settings(environ={"CREDENTIALS_DIRECTORY": str(folder)})
    assert settings.client_secret.reveal() == "from-systemd"
    assert settings.token.reveal() == "token-from-systemd"


def test_docker_secrets_are_read(docker_secrets: Path) -> None:
    secret_file(docker_secrets / "connect_client_secret", "from-docker\n")
    assert load_settings(environ={}).client_secret.reveal() == "from-docker"


def test_a_shared_docker_secret_is_refused(docker_secrets: Path) -> None:
    path = secret_file(docker_secrets / "connect_client_secret", "x", mode=0o444)
    with pytest.raises(UsageError, match="chmod 600") as refused:
        load_settings(environ={})
    assert str(path) in str(refused.value)


def test_precedence_env_then_file_variable_then_credentials_then_docker_then_toml(
    tmp_path: Path, docker_secrets: Path
) -> None:
    config = secret_file(tmp_path / "etl.toml", '[connect]\nclient_secret = "from-toml"\n')
    creds = tmp_path / "creds"
    environ = {
        "CONNECT_CLIENT_SECRET": "from-env",
        "CONNECT_CLIENT_SECRET_FILE": str(secret_file(tmp_path / "s", "from-file-variable")),
        "CREDENTIALS_DIRECTORY": str(creds),
    }
    secret_file(creds / "connect_client_secret", "from-systemd")
    secret_file(docker_secrets / "connect_client_secret", "from-docker")
    order = ["from-env", "from-file-variable", "from-systemd", "from-docker", "from-toml"]
    for expected in order:
        settings = load_settings(config, environ=dict(environ))
        assert settings.client_secret.reveal() == expected
        if expected == "from-env":
            del environ["CONNECT_CLIENT_SECRET"]
        elif expected == "from-file-variable":
            del environ["CONNECT_CLIENT_SECRET_FILE"]
        elif expected == "from-systemd":
            del environ["CREDENTIALS_DIRECTORY"]
        elif expected == "from-docker":
            (docker_secrets / "connect_client_secret").unlink()


def test_etl_run_delivers_with_the_secret_only_in_a_file(
    sandbox: SandboxServer,
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = connect_env(sandbox)
    del env["CONNECT_CLIENT_SECRET"]
    monkeypatch.delenv("CONNECT_CLIENT_SECRET", raising=False)
    monkeypatch.delenv("CONNECT_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = secret_file(tmp_path / "secret", SECRET + "\n")
    monkeypatch.setenv("CONNECT_CLIENT_SECRET_FILE", str(path))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_rows(inbox / "orders-1.csv", [base_line("0001"), base_line("0002", "L2")])
    code, out, err = run_cli(
        "run", "--inbox", inbox, "--outbox", tmp_path / "outbox", "--settle", "0"
    )
    assert code == 0, out + err
    assert {o["channel_order_id"] for o in sandbox.stored_orders()} == {"0001", "0002"}
    assert SECRET not in out + err
