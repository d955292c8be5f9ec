"""Tenants: one seller per `[tenants.<name>]` table of `etl.toml`, each with its own Settings.

A sales channel holds one set of credentials per seller. Each tenant names where its secret is
(an environment variable or a file), never the secret itself, and gets its own inbox, outbox
(``<outbox>/tenants/<name>`` unless set), ledger target, default origin, mapping file and rate
budget. A tenant whose secret cannot be found is set aside with the reason (``Tenant.problem``):
the others are served all the same.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from etl.core.errors import UsageError
from etl.core.store_urls import is_store_url
from etl.settings.config import (
    DEFAULT_CONFIG,
    Secret,
    Settings,
    checked_number,
    load_mapping_file,
    read_toml,
)
from etl.settings.secret_files import read_secret

TENANTS_FOLDER = "tenants"  # a tenant's default outbox: <outbox>/tenants/<name>
TEXT_KEYS = ("client_id", "channel_id", "store_id", "api_url", "token_url")


@dataclass(frozen=True)
class Tenant:
    """A seller served by this process; ``problem`` says why it cannot be served ('' if it can)."""

    name: str
    settings: Settings
    problem: str = ""
    # Where each setting of the tenant's own came from (`etl config show --tenant`).
    origins: Mapping[str, str] = field(default_factory=dict)


def tenants_table(config: Path | None) -> tuple[Path | None, dict[str, Any]]:
    """The config file read (the given one, else ./etl.toml if present) and its [tenants]."""
    path = config if config is not None else (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if path is None:
        return None, {}
    table = read_toml(path, "config file").get("tenants", {})
    return path, table if isinstance(table, dict) else {}


def load_tenants(
    config: Path | None,
    base: Settings,
    environ: Mapping[str, str] | None = None,
    only: str | None = None,
) -> tuple[Tenant, ...]:
    """Every tenant of the config file (``only``: that one), each as ``base`` changed by its
    table. Empty without [tenants]: the tool then serves one implicit tenant, ``base``.

    The file is checked whole by ``load_settings`` first (unknown keys, secret values)."""
    environ = dict(os.environ) if environ is None else environ
    path, table = tenants_table(config)
    if only is not None:
        if not table:
            raise UsageError(
                f"--tenant {only}: the config file has no [tenants.<name>] sections; without "
                "them every command serves the one seller of [connect]"
            )
        if only not in table:
            close = difflib.get_close_matches(only, list(table), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise UsageError(
                f"--tenant {only}: no such tenant in {path}{hint}; tenants: {', '.join(table)}"
            )
        table = {only: table[only]}
    if path is None:
        return ()
    return tuple(_tenant(name, entry, base, path, environ) for name, entry in table.items())


def _tenant(
    name: str, entry: dict[str, Any], base: Settings, config: Path, environ: Mapping[str, str]
) -> Tenant:
    where = f"[tenants.{name}]"
    base_dir = config.parent
    if "inbox" not in entry:
        raise UsageError(
            f"{where} has no inbox: each seller drops its files in a folder of its own"
        )
    values: dict[str, Any] = {
        "tenant": name,
        **_inbox(str(entry["inbox"]), base_dir, base),
        "outbox": base_dir / str(entry["outbox"])
        if "outbox" in entry
        else base.outbox / TENANTS_FOLDER / name,
        # Never another seller's credentials: a tenant names its own, or it is not served.
        "client_id": "",
        "client_secret": Secret(""),
        "token": Secret(""),
    }
    for key in TEXT_KEYS:
        if key in entry:
            values[key] = str(entry[key]).strip()
    if "requests_per_second" in entry:
        values["requests_per_second"] = checked_number(
            "requests_per_second", entry["requests_per_second"], f"{where} requests_per_second"
        )
    if "mapping" in entry:
        source = load_mapping_file(base_dir / str(entry["mapping"]), base.default_source)
        values["default_source"] = source
    settings = replace(base, **values)
    origins = {key: f"file {config} {where}" for key in entry if key in values}
    if "outbox" not in entry:
        origins["outbox"] = f"default for {where}: <outbox>/{TENANTS_FOLDER}/{name}"
    if "mapping" in entry:
        origins["mapping"] = f"{where} mapping {base_dir / str(entry['mapping'])}"
    try:
        secrets = _secrets(entry, where, base_dir, environ)
    except UsageError as error:
        return Tenant(name, settings, str(error), origins)
    settings = replace(settings, **secrets)
    for key in secrets:
        variable, file = entry.get(f"{key}_env"), entry.get(f"{key}_file")
        origins[key] = (
            f"env {variable} ({where} {key}_env)"
            if variable is not None
            else f"file {base_dir / str(file)} ({where} {key}_file)"
        )
    if not settings.token and not (settings.client_id and settings.client_secret):
        problem = (
            f"{where} has no credentials: set client_id and client_secret_env (or "
            "client_secret_file), or token_env (or token_file)"
        )
        return Tenant(name, settings, problem, origins)
    return Tenant(name, settings, origins=origins)


def _secrets(
    entry: dict[str, Any], where: str, base_dir: Path, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The tenant's secrets from the variables or files its table names (UsageError if one
    named is not there: a typo must not pass for "no credentials")."""
    found: dict[str, Any] = {}
    for key in ("client_secret", "token"):
        variable, file = entry.get(f"{key}_env"), entry.get(f"{key}_file")
        if variable is not None and file is not None:
            raise UsageError(f"{where}: {key}_env and {key}_file both set; keep one")
        if variable is not None:
            value = environ.get(str(variable), "").strip()
            if not value:
                raise UsageError(
                    f"{where} {key}_env names the environment variable {variable}, which is "
                    "not set (or empty)"
                )
            found[key] = Secret(value)
        elif file is not None:
            secret_path = base_dir / str(file)
            if not secret_path.is_file():
                raise UsageError(f"{where} {key}_file names {secret_path}, which is not a file")
            found[key] = Secret(read_secret(secret_path))
    return found


def _inbox(raw: str, base_dir: Path, base: Settings) -> dict[str, Any]:
    """A folder (relative to the config file), or an object-store prefix (s3://bucket/prefix/,
    staged under the tenant's outbox); never the shared settings' own inbox URL."""
    if is_store_url(raw):
        return {"inbox_url": raw, "inbox": base.inbox}
    return {"inbox_url": "", "inbox": base_dir / raw}
