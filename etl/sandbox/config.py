"""The sandbox's settings: credentials, token lifetime and the switches tests flip at run time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # a well-known development value, not a secret
DEFAULT_TOKEN_TTL = 3600.0

Store = tuple[str, str]  # (channel_id, channel_store_id)


@dataclass(frozen=True)
class SandboxConfig:
    """Immutable; a change at run time swaps the whole object (one atomic assignment)."""

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = field(default=DEFAULT_CLIENT_SECRET, repr=False)
    static_token: str | None = field(default=None, repr=False)
    token_ttl: float = DEFAULT_TOKEN_TTL
    # None accepts any origin; a set answers 404 DATA_NOT_FOUND for the others.
    known_stores: frozenset[Store] | None = None
    omit_field: bool = False

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the secret or the static token."""
        return {
            "client_id": self.client_id,
            "static_token": self.static_token is not None,
            "token_ttl": self.token_ttl,
            "known_stores": None
            if self.known_stores is None
            else [
                {"channel_id": channel, "channel_store_id": store}
                for channel, store in sorted(self.known_stores)
            ],
            "omit_field": self.omit_field,
        }

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with the run-time changes ``omit_field``, ``known_stores``, ``token_ttl``.

        Raises ValueError naming the first bad key or value.
        """
        values: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "omit_field":
                if not isinstance(value, bool):
                    raise ValueError("omit_field must be true or false")
                values[key] = value
            elif key == "token_ttl":
                values[key] = parse_ttl(value)
            elif key == "known_stores":
                values[key] = None if value is None else parse_stores(value)
            else:
                raise ValueError(
                    f"unknown setting {key!r} (expected omit_field, known_stores, token_ttl)"
                )
        return replace(self, **values)


def parse_ttl(value: Any) -> float:
    """A token lifetime in seconds: a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("token_ttl must be a positive number of seconds")
    return float(value)


def parse_stores(value: Any) -> frozenset[Store]:
    """Known stores from JSON: ``[{"channel_id": ..., "channel_store_id": ...}, ...]``."""
    if not isinstance(value, list):
        raise ValueError("known_stores must be a list of {channel_id, channel_store_id} or null")
    stores: set[Store] = set()
    for item in value:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("channel_id"), str)
            and isinstance(item.get("channel_store_id"), str)
        ):
            raise ValueError("each known store must be {channel_id, channel_store_id} (strings)")
        stores.add((item["channel_id"], item["channel_store_id"]))
    return frozenset(stores)


def normalise_stores(pairs: Iterable[Store] | None) -> frozenset[Store] | None:
    """Normalise a constructor argument; None keeps "accept any store"."""
    return None if pairs is None else frozenset((str(c), str(s)) for c, s in pairs)
