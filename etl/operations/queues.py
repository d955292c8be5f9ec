"""The queue order action events arrive on, behind one small interface (``ActionQueue``).

Connect publishes to a queue the channel owns: AWS SQS, Google Pub/Sub or Azure Service Bus.
Each offers the same three things (receive a few messages, acknowledge them, close), so a
consumer of another one is a class with these methods; ``SqsQueue`` is the first. Errors
leave as ``QueueUnavailable`` (try later) or ``UsageError`` (fix the settings), never as a
library's own: they must not print a signed URL or a key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from etl.core.errors import EtlError, UsageError
from etl.settings.events import EventsSettings

MAX_MESSAGES = 10  # SQS's most per receive


@dataclass(frozen=True, slots=True)
class QueueMessage:
    """One message: its id, its text, and the handle that acknowledges it."""

    message_id: str
    body: str
    receipt: str


class QueueUnavailable(EtlError):
    """The queue cannot be reached now (network, throttling, credentials refused): try later.
    Nothing was acknowledged, so nothing is lost."""


class ActionQueue(Protocol):
    """Where order action events wait; a message is acknowledged once kept for good."""

    @property
    def name(self) -> str:
        """The queue, for people (no credential in it)."""
        ...

    def receive(self, wait_seconds: int) -> list[QueueMessage]:
        """Up to a few messages; waits at most ``wait_seconds`` for the first."""
        ...

    def acknowledge(self, messages: Sequence[QueueMessage]) -> int:
        """Delete the messages from the queue; how many were not (they come back: harmless,
        for events already kept are recognised)."""
        ...

    def close(self) -> None: ...


# Answers of SQS that say the settings are wrong, not that the queue is busy.
WRONG_SETTINGS = {
    "AWS.SimpleQueueService.NonExistentQueue": "no such queue",
    "QueueDoesNotExist": "no such queue",
    "InvalidAddress": "no such queue",
    "AccessDenied": "access denied to the queue",
    "AccessDeniedException": "access denied to the queue",
    "InvalidClientTokenId": "AWS knows no such access key id",
    "SignatureDoesNotMatch": "the secret access key does not match its access key id",
}


class SqsQueue:
    """An SQS queue through boto3 (credentials: AWS's standard chain, or the settings')."""

    def __init__(self, settings: EventsSettings) -> None:
        import boto3  # imported here: only `etl events` and a watcher with [events] need it
        from botocore.config import Config

        options: dict[str, Any] = {"region_name": settings.region}
        if settings.endpoint_url:
            options["endpoint_url"] = settings.endpoint_url
        if settings.secret_access_key:
            options["aws_access_key_id"] = settings.access_key_id
            options["aws_secret_access_key"] = settings.secret_access_key.reveal()
        # boto3's own retries (with backoff) for throttling and dropped connections: 5 tries,
        # unless AWS_MAX_ATTEMPTS (AWS's own variable, read by botocore) says how many. A long
        # poll waits up to 20 s, so reads get longer than that.
        retries: dict[str, Any] = {"mode": "standard"}
        if not os.environ.get("AWS_MAX_ATTEMPTS"):
            retries["max_attempts"] = 5
        config = Config(retries=retries, read_timeout=40, connect_timeout=10)
        self._client: Any = boto3.session.Session().client("sqs", config=config, **options)
        self.url = settings.queue_url

    @property
    def name(self) -> str:
        return self.url

    def receive(self, wait_seconds: int) -> list[QueueMessage]:
        answer = self._call(
            "receive_message",
            QueueUrl=self.url,
            MaxNumberOfMessages=MAX_MESSAGES,
            WaitTimeSeconds=wait_seconds,
        )
        return [
            QueueMessage(str(m["MessageId"]), str(m.get("Body", "")), str(m["ReceiptHandle"]))
            for m in answer.get("Messages", [])
        ]

    def acknowledge(self, messages: Sequence[QueueMessage]) -> int:
        failed = 0
        for start in range(0, len(messages), MAX_MESSAGES):
            chunk = messages[start : start + MAX_MESSAGES]
            entries = [
                {"Id": str(index), "ReceiptHandle": m.receipt} for index, m in enumerate(chunk)
            ]
            answer = self._call("delete_message_batch", QueueUrl=self.url, Entries=entries)
            failed += len(answer.get("Failed", []))
        return failed

    def close(self) -> None:
        self._client.close()

    def _call(self, operation: str, **arguments: Any) -> dict[str, Any]:
        """One SQS call, its errors said in words (never with the request's signature)."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        try:
            answer: dict[str, Any] = getattr(self._client, operation)(**arguments)
        except (NoCredentialsError, PartialCredentialsError):
            raise UsageError(
                f"no AWS credentials to read the queue {self.url}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY_FILE), a profile, or run "
                "with an instance role (README, etl events)"
            ) from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in WRONG_SETTINGS:
                raise UsageError(
                    f"the queue {self.url}: {WRONG_SETTINGS[code]} ({code}); check [events] "
                    "queue_url, region and the credentials' permissions"
                ) from None
            raise QueueUnavailable(f"the queue {self.url} answered {code or 'an error'}") from None
        except BotoCoreError as error:
            raise QueueUnavailable(
                f"the queue {self.url} cannot be reached: {type(error).__name__}"
            ) from None
        return answer
