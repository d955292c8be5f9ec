"""Object-store URLs (``s3://bucket/prefix/``, any fsspec URL): recognized, checked, and shown
without anything but the scheme, bucket and prefix."""

from __future__ import annotations

from urllib.parse import urlsplit


def is_store_url(text: str) -> bool:
    """``s3://...``, ``memory://...``, ``file://...``: an fsspec URL, not a local folder."""
    return "://" in text and bool(urlsplit(text).scheme)


def shown_url(url: str) -> str:
    """The URL as messages show it: scheme, bucket and prefix (never a query or userinfo)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def store_url_problem(url: str, what: str) -> str | None:
    """What is wrong with a store URL given as a setting, in words; None when it is fine."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        return (
            f"{what} must not hold credentials (user:secret@ in the URL); the AWS chain gives "
            "them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials, or the "
            "machine's role"
        )
    if parts.query or parts.fragment:
        return f"{what} {shown_url(url)} must be a bucket and prefix only (no ?query or #part)"
    if parts.scheme.lower() != "file" and not parts.hostname:
        return f"{what} {shown_url(url)} names no bucket (s3://bucket/prefix/)"
    return None
