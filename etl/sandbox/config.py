"""The sandbox's settings: credentials, token lifetime and the switches tests flip at run time."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_CLIENT_ID = "sandbox-client"
DEFAULT_CLIENT_SECRET = "sandbox-secret"  # a well-known development value, not a secret
DEFAULT_TOKEN_TTL = 3600.0
DEFAULT_ACTION_DELAY = 2.0  # seconds a reported action stays PENDING
DEFAULT_REPORT_INTERVAL = 60.0  # v2-reportOrderActions: "Maximum usage: Once per minute"
DEFAULT_STATUS_INTERVAL = 60.0  # v2-getActionStatus: "once per minute per action ID"
DEFAULT_FAIL_ENTITY_PREFIX = "UNKNOWN"
DEFAULT_ANONYMIZE_TOLERANCE = 300.0  # "a tolerance of few minutes" for anonymize_after
DOCUMENTED_RATE_LIMIT = 30.0  # requests per second per credential: Connect's documented maximum

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
    action_delay: float = DEFAULT_ACTION_DELAY
    report_interval: float = DEFAULT_REPORT_INTERVAL
    status_interval: float = DEFAULT_STATUS_INTERVAL
    # Reported actions whose entity_id starts with this end FAILED; None: every one succeeds.
    fail_entity_prefix: str | None = DEFAULT_FAIL_ENTITY_PREFIX
    anonymize_tolerance: float = DEFAULT_ANONYMIZE_TOLERANCE
    # More sellers' credentials, each (client_id, client_secret), accepted beside the first.
    extra_clients: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    # Requests per second per client over a sliding 1-second window, else 429; None: no limit.
    rate_limit: float | None = None

    def clients(self) -> tuple[tuple[str, str], ...]:
        """Every (client_id, client_secret) the token endpoint accepts."""
        return ((self.client_id, self.client_secret), *self.extra_clients)

    def public(self) -> dict[str, Any]:
        """The settings as JSON, without the secret or the static token."""
        return {
            "client_id": self.client_id,
            "client_ids": [client_id for client_id, _ in self.clients()],
            "rate_limit": self.rate_limit,
            "static_token": self.static_token is not None,
            "token_ttl": self.token_ttl,
            "known_stores": None
            if self.known_stores is None
            else [
                {"channel_id": channel, "channel_store_id": store}
                for channel, store in sorted(self.known_stores)
            ],
            "omit_field": self.omit_field,
            "action_delay": self.action_delay,
            "report_interval": self.report_interval,
            "status_interval": self.status_interval,
            "fail_entity_prefix": self.fail_entity_prefix,
            "anonymize_tolerance": self.anonymize_tolerance,
        }

    def updated(self, changes: dict[str, Any]) -> SandboxConfig:
        """A copy with the run-time changes (any key of ``RUN_TIME_SETTINGS``).

        Raises ValueError naming the first bad key or value.
        """
        values: dict[str, Any] = {}
        for key, value in changes.items():
            parse = RUN_TIME_SETTINGS.get(key)
            if parse is None:
                expected = ", ".join(RUN_TIME_SETTINGS)
                raise ValueError(f"unknown setting {key!r} (expected {expected})")
            values[key] = parse(value)
        return replace(self, **values)


def parse_ttl(value: Any) -> float:
    """A token lifetime in seconds: a positive number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError("token_ttl must be a positive number of seconds")
    return float(value)


def seconds(name: str) -> Callable[[Any], float]:
    """A parser for the setting ``name``: zero or more seconds."""

    def parse(value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value < math.inf
        ):
            raise ValueError(f"{name} must be zero or a positive number of seconds")
        return float(value)

    return parse


def parse_bool(value: Any) -> bool:
    """omit_field: true or false."""
    if not isinstance(value, bool):
        raise ValueError("omit_field must be true or false")
    return value


def parse_prefix(value: Any) -> str | None:
    """fail_entity_prefix: a non-empty string, or null for "no reported action fails"."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError("fail_entity_prefix must be a non-empty string or null")
    return value


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


def parse_rate_limit(value: Any) -> float | None:
    """rate_limit: requests per second per client (a positive number), or null for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError("rate_limit must be a positive number of requests per second, or null")
    return float(value)


def normalise_stores(pairs: Iterable[Store] | None) -> frozenset[Store] | None:
    """Normalise a constructor argument; None keeps "accept any store"."""
    return None if pairs is None else frozenset((str(c), str(s)) for c, s in pairs)


RUN_TIME_SETTINGS: dict[str, Callable[[Any], Any]] = {
    "omit_field": parse_bool,
    "known_stores": lambda value: None if value is None else parse_stores(value),
    "token_ttl": parse_ttl,
    "action_delay": seconds("action_delay"),
    "report_interval": seconds("report_interval"),
    "status_interval": seconds("status_interval"),
    "fail_entity_prefix": parse_prefix,
    "anonymize_tolerance": seconds("anonymize_tolerance"),
    "rate_limit": parse_rate_limit,
}
