"""Secrets kept in files: ``CONNECT_*_FILE``, systemd credentials, Docker secrets (README).

A secret in a file stays out of the environment, which every child process inherits and
``/proc/<pid>/environ`` shows to the process's owner. The order, first found wins (after the
plain ``CONNECT_CLIENT_SECRET`` / ``CONNECT_TOKEN`` variable, and before ``etl.toml``):

1. the file that ``CONNECT_CLIENT_SECRET_FILE`` / ``CONNECT_TOKEN_FILE`` names (it must exist);
2. ``$CREDENTIALS_DIRECTORY/connect_client_secret`` / ``connect_token`` (systemd's
   ``LoadCredential=``);
3. ``/run/secrets/connect_client_secret`` / ``connect_token`` (Docker and Compose secrets).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from etl.core.errors import UsageError

# The setting, the variable that holds it, the file name in a credentials folder.
SECRET_SETTINGS = {
    "client_secret": ("CONNECT_CLIENT_SECRET", "connect_client_secret"),
    "token": ("CONNECT_TOKEN", "connect_token"),
}
DOCKER_SECRETS = Path("/run/secrets")  # a module attribute so that tests can point it elsewhere


@dataclass(frozen=True)
class FoundSecret:
    """A secret's value, and where it was read (a path, never the value, for `etl config show`)."""

    value: str
    origin: str


def secret_from_files(key: str, environ: Mapping[str, str]) -> FoundSecret | None:
    """The secret ``key`` from the first file that holds it, or None when none does."""
    variable, name = SECRET_SETTINGS[key]
    return secret_in_files(variable, name, environ)


def secret_in_files(variable: str, name: str, environ: Mapping[str, str]) -> FoundSecret | None:
    """The secret that ``<variable>_FILE``, a systemd credential or a Docker secret called
    ``name`` holds (first found), or None."""
    named = environ.get(f"{variable}_FILE", "")
    if named:
        # Named explicitly: a missing file is a mistake, not a reason to look elsewhere.
        path = Path(named)
        if not path.is_file():
            raise UsageError(f"{variable}_FILE names {path}, which is not a file (a typo?)")
        return FoundSecret(read_secret(path), f"file {path} ({variable}_FILE)")
    folders: list[tuple[str, Path]] = []
    if environ.get("CREDENTIALS_DIRECTORY"):
        folders.append(("systemd credential", Path(environ["CREDENTIALS_DIRECTORY"])))
    folders.append(("Docker secret", DOCKER_SECRETS))
    for what, folder in folders:
        path = folder / name
        if path.is_file():
            return FoundSecret(read_secret(path), f"{what} {path}")
    return None


def read_secret(path: Path) -> str:
    """The file's content without surrounding whitespace (an editor's final newline, a
    Windows carriage return). Refused, never shown, when others can read or write it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as error:
        raise UsageError(f"cannot read the secret file {path}: {error.strerror}") from None
    with open(fd, encoding="utf-8") as handle:
        # The mode of the file opened, not of whatever the name points to a moment later.
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            verb = "read" if mode & 0o044 else "write"
            raise UsageError(
                f"others can {verb} the secret file {path} (mode {mode:04o}): run "
                f"`chmod 600 {path}` (and give it to the user etl runs as)"
            )
        try:
            value = handle.read().strip()
        except UnicodeDecodeError:
            raise UsageError(f"the secret file {path} is not UTF-8 text") from None
    if not value:
        raise UsageError(f"the secret file {path} is empty")
    return value
