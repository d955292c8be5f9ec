"""The string formats the schemas use, checked the same way by both validators.

jsonschema and jsonschema-rs disagree on ``email`` and ``uri`` out of the box (jsonschema only looks
for an ``@``); registering these functions with both makes them agree by construction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
EMAIL = re.compile(
    r"^[^@\s\"(),:;<>\[\\\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def is_date_time(value: str) -> bool:
    """RFC 3339 date-time with an explicit offset, and a real calendar date."""
    if not RFC3339.match(value):
        return False
    text = value.upper().replace("Z", "+00:00")
    # fromisoformat accepts at most 6 fractional digits; the extra ones do not change validity.
    head, _, rest = text.partition(".")
    if rest:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group(0)[:6].ljust(6, '0')}{rest[digits.end() :]}"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_email(value: str) -> bool:
    """A mailbox address a carrier could deliver a notification to (local@domain.tld)."""
    return len(value) <= 254 and EMAIL.match(value) is not None


def is_uri(value: str) -> bool:
    """An absolute URI with a scheme and no whitespace; http(s) URIs must name a host."""
    if not value or any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    if not parts.scheme or not SCHEME.match(parts.scheme):
        return False
    if parts.scheme.lower() in {"http", "https"}:
        return bool(parts.hostname)
    return bool(parts.netloc or parts.path)


def _strings_only(check: Callable[[str], bool]) -> Callable[[object], bool]:
    """Formats constrain strings only: jsonschema asks about every instance, other types pass."""

    def checked(value: object) -> bool:
        return check(value) if isinstance(value, str) else True

    checked.__name__ = check.__name__
    return checked


FORMATS: dict[str, Callable[[object], bool]] = {
    "date-time": _strings_only(is_date_time),
    "email": _strings_only(is_email),
    "uri": _strings_only(is_uri),
}
