"""`[events]`: the queue Connect publishes its order action events to (`etl events`).

Credentials come from AWS's standard chain (environment, ``~/.aws``, an instance role), read by
boto3 itself, or from a file: ``AWS_SECRET_ACCESS_KEY_FILE``, the systemd credential or Docker
secret ``aws_secret_access_key`` (as for Connect's secret: README, Secrets). A secret never
comes from ``etl.toml``, where it would sit beside settings that people share and print.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from etl.core.errors import UsageError
from etl.settings.secret import Secret
from etl.settings.secret_files import secret_in_files

DEFAULT_WAIT_SECONDS = 20  # SQS long polling: the longest a receive may wait (its maximum)
DEFAULT_EVERY_SECONDS = 60.0  # the watcher asks the queue this often
# https://sqs.eu-west-1.amazonaws.com/123456789012/name names its region.
AWS_QUEUE_HOST = re.compile(r"sqs[.-]([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class EventsSettings:
    """Where the order action events wait, and how to reach them."""

    queue_url: str
    region: str
    endpoint_url: str = ""  # another SQS-compatible server (a test's); '' for AWS's own
    access_key_id: str = ""  # with secret_access_key: explicit credentials, else the chain
    secret_access_key: Secret = field(default_factory=lambda: Secret(""))
    wait_seconds: int = DEFAULT_WAIT_SECONDS
    every_seconds: float = DEFAULT_EVERY_SECONDS
    credentials_from: str = "AWS's standard chain"  # or the secret file's path, never a value

    def shown(self) -> dict[str, object]:
        """For `etl config show`: every setting, the secret as *** and where it came from."""
        return {
            "queue_url": self.queue_url,
            "region": self.region,
            "endpoint_url": self.endpoint_url or None,
            "access_key_id": self.access_key_id or None,
            "secret_access_key": "***" if self.secret_access_key else None,
            "credentials_from": self.credentials_from,
            "wait_seconds": self.wait_seconds,
            "every_seconds": self.every_seconds,
        }


def load_events(table: Any, path: Path | str, environ: Mapping[str, str]) -> EventsSettings:
    """``[events]`` of the config file ``path``, checked; UsageError saying what to fix."""
    where = f"config file {path}: [events]"
    if not isinstance(table, dict):
        raise UsageError(f"{where} must be a section")
    queue_url = _text(table, "queue_url", where)
    if not queue_url:
        raise UsageError(
            f"{where} queue_url is missing: the URL of the SQS queue Connect publishes order "
            "action events to (https://sqs.<region>.amazonaws.com/<account>/<name>)"
        )
    _check_url(queue_url, f"{where} queue_url")
    endpoint_url = _text(table, "endpoint_url", where)
    if endpoint_url:
        _check_url(endpoint_url, f"{where} endpoint_url")
    region = (
        _text(table, "region", where)
        or _region_of(queue_url)
        or environ.get("AWS_REGION", environ.get("AWS_DEFAULT_REGION", ""))
    )
    if not region:
        raise UsageError(
            f'{where} region is missing and the queue URL names none: set region (e.g. "eu-west-1")'
        )
    wait = table.get("wait_seconds", DEFAULT_WAIT_SECONDS)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= 20:
        raise UsageError(f"{where} wait_seconds must be a whole number from 0 to 20 (got {wait})")
    every = table.get("every_seconds", DEFAULT_EVERY_SECONDS)
    if isinstance(every, bool) or not isinstance(every, int | float) or not 1 <= every <= 86400:
        raise UsageError(f"{where} every_seconds must be a number from 1 to 86400 (got {every})")
    access_key_id = _text(table, "access_key_id", where)
    secret = None
    if not environ.get("AWS_SECRET_ACCESS_KEY"):  # the plain variable is boto3's own to read
        secret = secret_in_files("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key", environ)
    if secret is not None:
        access_key_id = access_key_id or environ.get("AWS_ACCESS_KEY_ID", "").strip()
        if not access_key_id:
            raise UsageError(
                f"the AWS secret access key in {secret.origin} needs its access key id: set "
                "[events] access_key_id, or AWS_ACCESS_KEY_ID"
            )
    return EventsSettings(
        queue_url=queue_url,
        region=region,
        endpoint_url=endpoint_url,
        access_key_id=access_key_id if secret is not None else "",
        secret_access_key=Secret(secret.value if secret is not None else ""),
        wait_seconds=wait,
        every_seconds=float(every),
        credentials_from="AWS's standard chain" if secret is None else secret.origin,
    )


def _text(table: dict[str, Any], key: str, where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise UsageError(f"{where} {key} must be text in quotes")
    return value.strip()


def _check_url(url: str, label: str) -> None:
    """https, or http to this machine (a test server); never credentials in the URL."""
    if "@" in url:
        raise UsageError(
            f"{label} holds a user name or password: remove them; AWS credentials come from "
            "the standard chain or AWS_SECRET_ACCESS_KEY_FILE"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{label} {url} is not a URL like https://sqs.eu-west-1.amazonaws.com/...")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise UsageError(
            f"{label} {url} is not HTTPS: the events hold orders and the requests are signed "
            "with your AWS key; use https:// (plain http:// only to this machine)"
        )


def _region_of(queue_url: str) -> str:
    found = AWS_QUEUE_HOST.search(urlsplit(queue_url).hostname or "")
    return found.group(1) if found else ""
