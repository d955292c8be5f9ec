"""Files written whole or not at all, and names that fit the file system: what every room that
writes into the outbox (reports, the inbox's folders, the state files) shares."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import orjson

PRIVATE_FILE = 0o600
NAME_MAX = 255  # bytes in one file name, on every file system the outbox may be on


def beside(folder: Path, name: str, suffix: str) -> Path:
    """``folder/<name><suffix>``: a report named after its input. An input name near the limit
    (251 characters, say) leaves no room for ``.items.csv``: its report names keep the start of
    the name and add a digest of the whole, so they stay unique and recognisable."""
    whole = name + suffix
    if len(whole.encode()) <= NAME_MAX:
        return folder / whole
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = NAME_MAX - len(suffix.encode()) - len(digest) - 1
    start = name.encode()[:room].decode("utf-8", "ignore")
    return folder / f"{start}~{digest}{suffix}"


@contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a hidden temp file beside ``path``; rename over it only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The temp name keeps a short start of the real one: a long name plus the random part and
    # ".tmp" would pass the file system's limit.
    handle, temp_name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp"
    )
    temp = Path(temp_name)
    try:
        os.fchmod(handle, PRIVATE_FILE)
        if "b" in mode:
            stream: IO[Any] = os.fdopen(handle, mode)
        else:
            stream = os.fdopen(handle, mode, encoding="utf-8", newline="")
        with stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    with atomic_writer(path, "wb") as stream:
        stream.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
