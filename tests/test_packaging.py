"""The Dockerfile and the systemd unit say what README says they do."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess

import pytest

from .conftest import REPO

UNIT = REPO / "deploy" / "etl-watch@.service"
DOCKERFILE = REPO / "Dockerfile"


def unit() -> configparser.ConfigParser:
    # systemd's syntax is close enough: no interpolation (%i is systemd's), keys keep their
    # case, a key given twice (several LoadCredential=) is allowed.
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_the_unit_is_a_notify_service_with_a_watchdog() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) >= 30  # the watcher pings every 5 s (etl/monitor/notify.py)
    assert service["ExecStart"].endswith("etl watch --config /etc/etl/%i.toml")


def test_the_unit_passes_the_secret_as_a_credential_named_as_etl_reads_it() -> None:
    credential = unit()["Service"]["LoadCredential"]
    assert credential.split(":")[0] in ("connect_client_secret", "connect_token")


def test_the_unit_is_hardened() -> None:
    service = unit()["Service"]
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["User"] != "root"


def dockerfile() -> str:
    """The Dockerfile with its continued lines joined."""
    return DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")


def test_the_image_runs_as_a_user_and_watches_its_volumes() -> None:
    text = dockerfile()
    assert text.startswith("FROM python:3.12-slim") or "\nFROM python:3.12-slim" in text
    users = re.findall(r"^USER (\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert "VOLUME /data/inbox /data/outbox" in text
    assert 'ENTRYPOINT ["etl"]' in text
    assert re.search(r'^CMD \["watch"', text, re.MULTILINE)
    assert re.search(r"^HEALTHCHECK .*CMD +etl health --outbox /data/outbox", text, re.MULTILINE)


def test_what_the_dockerfile_copies_exists_and_is_not_ignored() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for line in re.findall(r"^COPY (.+) \S+$", dockerfile(), re.MULTILINE):
        for source in line.split():
            assert (REPO / source).exists(), source
            assert source not in ignored, source


def docker_reachable() -> str | None:
    """None when a Docker daemon answers, else why not."""
    if shutil.which("docker") is None:
        return "no docker command"
    try:
        subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=True)
    except (subprocess.SubprocessError, OSError) as error:
        return f"no Docker daemon reachable (docker info: {type(error).__name__})"
    return None


@pytest.mark.skipif(docker_reachable() is not None, reason=str(docker_reachable()))
def test_the_image_builds_and_runs_etl() -> None:
    tag = "mirakl-connect-etl:test"
    subprocess.run(["docker", "build", "-t", tag, str(REPO)], check=True, timeout=900)
    version = subprocess.run(
        ["docker", "run", "--rm", tag, "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("etl ")
    user = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "id", tag, "-u"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert user.stdout.strip() != "0"
