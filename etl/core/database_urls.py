"""Database URLs (``postgresql://user:password@host/db``): recognized, and shown without the
password, for logs, reports and error messages must never hold it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


def is_database_url(text: str) -> bool:
    """``postgresql://...`` (or ``postgres://``): the state lives in a PostgreSQL database."""
    return urlsplit(text.strip()).scheme.lower() in POSTGRES_SCHEMES


def redacted_url(url: str) -> str:
    """The URL as it may be shown: a password becomes ``***``, and so does any ``password=``
    parameter, for logs, reports and error messages must never hold it."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def scrubbed(text: str, url: str) -> str:
    """``text`` (a driver's error message) with the URL's password taken out, wherever it is."""
    parts = urlsplit(url)
    secrets = [parts.password or ""]
    secrets += re.findall(r"(?i)password=([^&]*)", parts.query)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text.replace(url, redacted_url(url))
