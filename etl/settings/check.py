"""Strict reading of `etl.toml` and mapping files: a typo is an error, not a default.

`[conect]` with `api_url` would fall back to the production URL; `decimal_coma` would read
`19,99` as invalid; `requests_per_secnd` would keep the default pace. Every unknown section or
key is reported at once, each with the name it most likely meant, or the section it belongs in,
before anything is read or sent.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from etl.core.errors import UsageError

READ_KEYS = frozenset(
    {"delimiter", "decimal_comma", "assume_timezone", "encoding", "date_format", "sheet"}
)

# Each key has one home; a key found in another section is named with its home.
CONFIG_SECTIONS: Mapping[str, frozenset[str]] = {
    "paths": frozenset({"inbox", "outbox", "state"}),
    "state": frozenset({"state_url", "lease_seconds"}),
    "connect": frozenset(
        {
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
        }
    ),
    "watch": frozenset({"polling", "settle_seconds", "rescan_seconds"}),
    "actions": frozenset({"flush_seconds", "poll_seconds"}),
    "read": READ_KEYS,
    "alerts": frozenset({"urls", "api_down_minutes"}),
    "events": frozenset(
        {"queue_url", "region", "endpoint_url", "access_key_id", "wait_seconds", "every_seconds"}
    ),
    "inbox": frozenset({"endpoint_url", "region"}),
    "report": frozenset({"url"}),
}
CONFIG_ARRAYS: Mapping[str, frozenset[str]] = {"mappings": frozenset({"glob", "file"})}
# [tenants.<name>]: one table per seller (etl/settings/tenants.py).
TENANT_KEYS = frozenset(
    {
        "inbox",
        "outbox",
        "api_url",
        "token_url",
        "client_id",
        "client_secret_env",
        "client_secret_file",
        "token_env",
        "token_file",
        "channel_id",
        "store_id",
        "mapping",
        "requests_per_second",
    }
)
# A secret's value has no place in a tenant's table: etl.toml is read by whoever deploys it.
TENANT_SECRET_VALUES = {"client_secret": "client_secret", "token": "token"}
TENANT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

# A mapping file: `ignore` at the top, then tables. [columns], [constants], [formats] and
# [values] are keyed by the user's own names and paths, so only their values are checked (by the
# loader).
MAPPING_TOP_KEYS = frozenset({"ignore"})
MAPPING_SECTIONS: Mapping[str, frozenset[str] | None] = {
    "read": READ_KEYS,
    "columns": None,
    "constants": None,
    "formats": None,
    "values": None,
}


def check_config(data: dict[str, Any], path: Path) -> None:
    """Raise one UsageError listing every section or key of `etl.toml` that means nothing."""
    problems: list[str] = []
    homes = {key: section for section, keys in CONFIG_SECTIONS.items() for key in keys}
    for name, value in data.items():
        if name in CONFIG_ARRAYS:
            problems += _array_problems(name, value, CONFIG_ARRAYS[name])
        elif name == "tenants":
            problems += _tenant_problems(value)
        elif name in CONFIG_SECTIONS:
            if not isinstance(value, dict):
                problems.append(f"[{name}] must be a section ([{name}] on a line of its own)")
                continue
            problems += _key_problems(name, value, CONFIG_SECTIONS[name], homes)
        elif name in homes:
            problems.append(f"{name} must be in [{homes[name]}], not at the top of the file")
        else:
            problems.append(
                f"[{name}] is not a section of etl.toml"
                + _suggestion(name, [*CONFIG_SECTIONS, *CONFIG_ARRAYS, "tenants"], "[{}]")
            )
    _raise(problems, f"config file {path}")


def check_mapping(data: dict[str, Any], path: Path) -> None:
    """Raise one UsageError listing every section or key of a mapping file that means nothing."""
    problems: list[str] = []
    for name, value in data.items():
        if name in MAPPING_TOP_KEYS:
            continue
        known = MAPPING_SECTIONS.get(name, frozenset())
        if name not in MAPPING_SECTIONS:
            problems.append(
                f"[{name}] is not a section of a mapping file"
                + _suggestion(name, [*MAPPING_SECTIONS, *MAPPING_TOP_KEYS], "[{}]")
            )
        elif not isinstance(value, dict):
            problems.append(f"[{name}] must be a section ([{name}] on a line of its own)")
        elif known is not None:
            problems += _key_problems(name, value, known, {})
    _raise(problems, f"mapping file {path}")


def _key_problems(
    section: str, table: dict[str, Any], known: frozenset[str], homes: dict[str, str]
) -> list[str]:
    problems = []
    for key in table:
        if key in known:
            continue
        near = _suggestion(key, sorted(known), "{}")
        if key in homes and near:
            # A near name of this very section is the likelier slip ([alerts] url for urls).
            problems.append(
                f"[{section}] {key} is not a setting of [{section}]{near}, or it belongs in "
                f"[{homes[key]}]"
            )
        elif key in homes:
            problems.append(f"[{section}] {key}: it belongs in [{homes[key]}]")
        else:
            problems.append(
                f"[{section}] {key} is not a setting of [{section}]"
                + _suggestion(key, sorted(known), "{}")
            )
    return problems


def _tenant_problems(value: Any) -> list[str]:
    """[tenants.<name>] tables: a name that can be a folder's, known keys, no secret values."""
    if not isinstance(value, dict) or not all(isinstance(t, dict) for t in value.values()):
        return ["[tenants] holds one table per seller: [tenants.<name>] on a line of its own"]
    problems = []
    for name, table in value.items():
        section = f"tenants.{name}"
        if not TENANT_NAME.match(name):
            problems.append(
                f"[{section}]: a tenant's name is 1 to 64 letters, digits, - or _ (it names "
                "its folders), starting with a letter or digit"
            )
        for key in table:
            if key in TENANT_SECRET_VALUES:
                problems.append(
                    f"[{section}] {key}: a secret is never written in etl.toml; name the "
                    f"environment variable ({key}_env) or the file ({key}_file) that holds it"
                )
            elif key not in TENANT_KEYS:
                problems.append(
                    f"[{section}] {key} is not a setting of a tenant"
                    + _suggestion(key, sorted(TENANT_KEYS), "{}")
                )
    return problems


def _array_problems(name: str, value: Any, known: frozenset[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        return [f"[[{name}]] must be tables, each starting with [[{name}]] on a line of its own"]
    return [
        problem
        for entry in value
        for problem in _key_problems(f"[{name}]", entry, known, {})
        if problem
    ]


def _suggestion(name: str, candidates: list[str], shape: str) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {shape.format(close[0])}?)" if close else ""


def _raise(problems: list[str], where: str) -> None:
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in problems)
        raise UsageError(
            f"{where} has {len(problems)} setting(s) that mean nothing; nothing was read or "
            f"sent:\n{listed}"
        )
