"""The exception tree, grouped by what the caller must do.

    EtlError
    ├── UsageError            bad flags or configuration: exit 2, nothing touched
    │   └── SandboxFailed     `etl run --sandbox`: the local double did not start or answer
    ├── UnreadableFile        a file that cannot be read at all: exit 2 (check), failed/ (run)
    ├── ObjectStoreError      an inbox or report store (s3://...) that cannot be listed, read
    │                         or written: stop (exit 3), the objects stay for the next run
    └── ApiError              anything the API said or failed to say
        ├── RetriableApiError 429, 5xx, timeouts, dropped connections, an answer too slow
        │                     (past the call's deadline) or too large: retry with backoff
        ├── RejectedRequest   400: isolate the offending items, never retry as is
        ├── NotFound          404 naming a resource: the channel, store, action or document
        ├── AuthFailed        401/403 after one token refresh: stop the run (exit 3)
        ├── ApiMisconfigured  no such route (404 without the API's error body), 405, a
        │                     redirect, an answer that is not the API's JSON: a wrong base URL
        │                     or proxy, never a verdict on an item; or a token no header can
        │                     carry: stop the run (exit 2)
        └── OutcomeUnknown    sent, but whether Connect got it cannot be known (read timeout,
                              connection dropped after the body left, an answer too slow or
                              too large, a 2xx that is not the operation's answer): never
                              resent blindly when the operation is not idempotent

Bad rows are data (violations in a report), not exceptions.
"""

from __future__ import annotations

from typing import Any


class EtlError(Exception):
    """Base of every error the tool raises on purpose."""


class UsageError(EtlError):
    """The command line or the configuration is wrong; the message says how to fix it."""


class SandboxFailed(UsageError):
    """The demo's sandbox process did not start, or stopped answering; the message ends with
    its last lines of output."""


class ObjectStoreError(EtlError):
    """An object store (the inbox or the reports' ``s3://...``) refused or could not be reached;
    the message says which and why, never with a credential in it."""


class UnreadableFile(EtlError):
    """A file that cannot be turned into rows at all (encoding, broken quoting, bad Parquet...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class ApiError(EtlError):
    """The API answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str = "",
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body or {}


class RetriableApiError(ApiError):
    """Worth trying again later: rate limited, server error, timeout, connection dropped."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RejectedRequest(ApiError):
    """400: the API refused the request as a whole; its ``errors[].field`` may say why."""


class NotFound(ApiError):
    """404: something the request names does not exist on the Connect side."""


class AuthFailed(ApiError):
    """Credentials refused even after fetching a fresh token."""


class ApiMisconfigured(ApiError):
    """The answer says the tool is talking to the wrong place, not that an item is wrong."""


class OutcomeUnknown(ApiError):
    """The request left, no answer came back: Connect may or may not have acted on it."""
