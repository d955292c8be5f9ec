"""`etl config show`: the settings a command would use, and where each one came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from etl.core.database_urls import redacted_url
from etl.settings.config import Secret, Settings

# The settings shown, in the order README's tables give them; the mappings are not one value
# each (`etl check --mapping` shows what a file becomes).
SHOWN = (
    "inbox",
    "inbox_url",
    "inbox_endpoint_url",
    "inbox_region",
    "report_url",
    "outbox",
    "state",
    "state_url",
    "lease_seconds",
    "api_url",
    "token_url",
    "client_id",
    "client_secret",
    "token",
    "channel_id",
    "store_id",
    "timeout",
    "max_attempts",
    "requests_per_second",
    "allow_insecure",
    "ledger_timeout",
    "settle_seconds",
    "rescan_seconds",
    "polling",
    "action_flush_seconds",
    "action_poll_seconds",
    "fresh_ledger",
    "alert_urls",
    "alert_api_down_minutes",
    "events",
)


def shown_value(settings: Settings, name: str) -> Any:
    """A setting as JSON can carry it; a secret is ``***`` (or None when unset), always."""
    value = getattr(settings, name)
    if name == "state":
        # With a state URL no ledger file is used: showing its default would mislead.
        return None if settings.state_url else str(settings.ledger_path)
    if name == "state_url":
        # Where the state is, which a person needs to see; never the password.
        return redacted_url(settings.state_url.reveal()) if settings.state_url else None
    if name == "events":
        return None if settings.events is None else settings.events.shown()
    if isinstance(value, Secret):
        return "***" if value else None
    if isinstance(value, tuple) and all(isinstance(v, Secret) for v in value):
        # Alert URLs hold tokens and passwords: only how many, and their kind, are shown.
        return [f"{v.reveal().partition('://')[0]}://***" for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def settings_table(settings: Settings, origins: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``{name: {"value": ..., "from": ...}}`` for every shown setting."""
    return {
        name: {"value": shown_value(settings, name), "from": origins.get(name, "default")}
        for name in SHOWN
    }


def settings_lines(table: dict[str, dict[str, Any]]) -> list[str]:
    """One ``name = value  (origin)`` line per setting."""
    lines = []
    for name, entry in table.items():
        value = entry["value"]
        if value is None:
            text = "(not set)"
        elif isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        lines.append(f"{name} = {text}  ({entry['from']})")
    return lines
