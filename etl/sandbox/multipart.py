"""multipart/form-data bodies, read with the stdlib ``email`` parser (``cgi`` is deprecated)."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value
from typing import Any

import orjson

FORM_DATA = "multipart/form-data"
# Without these the parts may be cut short or missing: the body cannot be trusted.
BROKEN = (
    email_errors.NoBoundaryInMultipartDefect,
    email_errors.StartBoundaryNotFoundDefect,
    email_errors.CloseBoundaryNotFoundDefect,
)


class MultipartError(ValueError):
    """The body is not a readable multipart/form-data body."""


@dataclass(frozen=True)
class Part:
    """One form field or file: its Content-Disposition name and filename, its bytes."""

    name: str | None
    filename: str | None
    content_type: str | None  # as declared; None when the part has no Content-Type
    data: bytes


def is_form_data(content_type: str) -> bool:
    """True for a ``multipart/form-data`` Content-Type (any parameters)."""
    return content_type.partition(";")[0].strip().lower() == FORM_DATA


def parse_form(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart/form-data body, in order; MultipartError if unreadable."""
    if not is_form_data(content_type):
        raise MultipartError(f"expected a {FORM_DATA} body, got {content_type or 'none'}")
    # The email parser wants a whole message: give it the one header that frames the body.
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    message = BytesParser(policy=policy.HTTP).parsebytes(head + body)
    if not message.is_multipart() or any(isinstance(d, BROKEN) for d in message.defects):
        raise MultipartError(f"the {FORM_DATA} body has no readable parts (boundary?)")
    return [_part(sub) for sub in message.get_payload() if isinstance(sub, Message)]


def _part(message: Message) -> Part:
    payload = message.get_payload(decode=True)
    return Part(
        name=_param(message, "name"),
        filename=_param(message, "filename"),
        content_type=message.get_content_type() if "content-type" in message else None,
        data=payload if isinstance(payload, bytes) else b"",
    )


def _param(message: Message, name: str) -> str | None:
    value = message.get_param(name, header="content-disposition")
    if value is None or isinstance(value, str):
        return value
    return collapse_rfc2231_value(value)  # RFC 2231: filename*=utf-8''...


def describe(parts: Iterable[Part], json_names: Collection[str]) -> list[dict[str, Any]]:
    """The parts as the request log shows them: never the bytes, only their size and sha256;
    parts named in ``json_names`` also with their parsed JSON (when it parses)."""
    out = []
    for part in parts:
        item: dict[str, Any] = {
            "name": part.name,
            "filename": part.filename,
            "content_type": part.content_type,
            "size": len(part.data),
            "sha256": hashlib.sha256(part.data).hexdigest(),
        }
        if part.name in json_names and part.filename is None:
            with contextlib.suppress(orjson.JSONDecodeError):
                item["json"] = orjson.loads(part.data)
        out.append(item)
    return out


def unreadable(body: bytes, error: MultipartError) -> dict[str, Any]:
    """A body that did not parse, as the log shows it: why, its size and sha256."""
    return {"error": str(error), "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def describe_body(content_type: str, body: bytes, json_names: Collection[str]) -> dict[str, Any]:
    """``{"parts": [...]}`` for the log, or ``unreadable`` when it does not parse."""
    try:
        return {"parts": describe(parse_form(content_type, body), json_names)}
    except MultipartError as error:
        return unreadable(body, error)
