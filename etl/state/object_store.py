"""An inbox on an object store (``s3://bucket/prefix/``, or any fsspec URL): listing, download,
and the move of a finished object to the ``archive/`` or ``failed/`` prefix beside it.

Object stores have no rename, so nothing here claims: the caller claims an object (in the
database when the state is shared, by holding the inbox lock otherwise), downloads it to a local
staging folder, and the usual pipeline runs on that copy. What the staging copy came from is
written down first (``StagedObjects``), so that a run killed anywhere between the download and
the deletion of the source is finished by the next one: the archived copy is written, then the
source deleted, then the record dropped. fsspec and s3fs are imported only when a store is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from etl.core.errors import ObjectStoreError, UsageError
from etl.core.files import write_json
from etl.core.kinds import is_ignored
from etl.core.store_urls import shown_url

# Names the AWS chain reads secrets from: never repeated in a message.
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
RECORDS = ".objects"


def scrubbed(text: str) -> str:
    """A client library's message without any credential of the AWS chain in it."""
    for name in SECRET_VARIABLES:
        value = os.environ.get(name, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    """One object waiting under the prefix: its name there, size and version (the ETag, or the
    modification time where the store has no ETag). Equal entries in two listings: settled."""

    name: str
    size: int
    version: str
    modified: str = ""


def settled(
    before: Iterable[ObjectEntry], after: Iterable[ObjectEntry]
) -> tuple[list[ObjectEntry], list[ObjectEntry]]:
    """(settled, still changing): objects whose size and version held between two listings, as
    the local watcher's size-and-mtime rule; an object new in the second listing is changing."""
    seen = {entry.name: entry for entry in before}
    stable: list[ObjectEntry] = []
    changing: list[ObjectEntry] = []
    for entry in after:
        (stable if seen.get(entry.name) == entry else changing).append(entry)
    return stable, changing


class ObjectStore:
    """One prefix of an object store, through fsspec (s3fs for ``s3://``)."""

    def __init__(self, url: str, endpoint_url: str = "", region: str = "") -> None:
        self.url = url
        self.shown = shown_url(url)
        options: dict[str, Any] = {}
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("s3", "s3a"):
            client: dict[str, str] = {}
            if endpoint_url:
                client["endpoint_url"] = endpoint_url
            if region:
                client["region_name"] = region
            # The listing must be the store's now, not a cache from the last look.
            options = {"client_kwargs": client, "use_listings_cache": False}
        elif scheme in ("file", "local"):
            options = {"auto_mkdir": True}  # archive/<run_id>/ made as it is written
        try:
            import fsspec

            self.fs: Any
            self.fs, self.root = fsspec.core.url_to_fs(url, **options)
        except ImportError as error:
            raise ObjectStoreError(
                f"{self.shown}: this store needs an extra package ({error.name}); install it "
                "with: pip install 'mirakl-connect-etl[s3]'"
            ) from None
        except (ValueError, OSError) as error:
            raise ObjectStoreError(self._words("cannot use", error)) from None
        self.root = self.root.rstrip("/")
        self.place = f"{self.shown}" + (f" at {shown_url(endpoint_url)}" if endpoint_url else "")

    def _key(self, relative: str) -> str:
        return f"{self.root}/{relative}"

    def _words(self, doing: str, error: BaseException) -> str:
        detail = scrubbed(str(error).strip()) or type(error).__name__
        return f"{doing} {self.shown}: {detail}"

    def entries(self) -> list[ObjectEntry]:
        """The objects directly under the prefix that may be taken, oldest first; the
        ``archive/`` and ``failed/`` prefixes and hidden or temporary names are left alone."""
        try:
            self.fs.invalidate_cache()
            found = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            self._require_bucket()
            return []  # a prefix with no object yet
        except Exception as error:  # botocore's, aiohttp's, OSError: the store's own words
            raise ObjectStoreError(self._words("cannot list", error)) from None
        entries = [_entry(info) for info in found if info.get("type") == "file"]
        taken = [e for e in entries if e.name and not is_ignored(Path(e.name))]
        return sorted(taken, key=lambda e: (e.modified, e.name))

    def _require_bucket(self) -> None:
        """A typo in a bucket must not pass for an empty inbox: cron would hear "nothing to
        do" forever (as for a missing inbox folder)."""
        bucket = self.root.split("/", 1)[0]
        try:
            found = not bucket or bool(self.fs.exists(bucket))
        except Exception as error:
            raise ObjectStoreError(self._words("cannot list", error)) from None
        if not found:
            raise UsageError(
                f"the inbox {self.shown} names a bucket that does not exist ({bucket}: a "
                "typo?); create it, or fix the inbox URL"
            )

    def current(self, name: str) -> ObjectEntry | None:
        """The object as it is now, or None when it is gone."""
        try:
            self.fs.invalidate_cache()
            return _entry(self.fs.info(self._key(name)))
        except FileNotFoundError:
            return None
        except Exception as error:
            raise ObjectStoreError(self._words(f"cannot look at {name} in", error)) from None

    def download(self, name: str, target: Path) -> str | None:
        """Copy the object to ``target`` (whole, or not at all): its SHA-256, or None when the
        object is gone meanwhile (another worker finished it). The store's failures raise
        ObjectStoreError; this machine's (a name too long for it, a full disk) OSError."""
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".download.", suffix=".tmp")
        os.close(handle)
        temp = Path(temp_name)
        try:
            try:
                self.fs.get_file(self._key(name), str(temp))
            except FileNotFoundError:
                return None
            except Exception as error:
                message = self._words(f"cannot download {name} from", error)
                raise ObjectStoreError(message) from None
            os.chmod(temp, 0o600)  # exports hold names and addresses
            digest = file_sha256(temp)
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return digest

    def refuse(self, name: str, folder: str, reason: str) -> None:
        """Move an object that cannot be staged to ``folder`` (``failed/<run_id>``) with its
        ``.reason.txt``, copied within the store, then delete the source."""
        try:
            self.fs.copy(self._key(name), self._key(f"{folder}/{name}"))
            self.fs.pipe_file(self._key(f"{folder}/{name}.reason.txt"), reason.encode() + b"\n")
            self.fs.rm_file(self._key(name))
        except Exception as error:
            raise ObjectStoreError(self._words(f"cannot move {name} in", error)) from None

    def upload(self, local: Path, relative: str) -> None:
        """Write a local file under the prefix (``archive/<run>/<name>``...)."""
        try:
            self.fs.put_file(str(local), self._key(relative))
        except Exception as error:
            raise ObjectStoreError(self._words(f"cannot write {relative} to", error)) from None

    def exists(self, relative: str) -> bool:
        try:
            self.fs.invalidate_cache()
            return bool(self.fs.exists(self._key(relative)))
        except Exception as error:
            raise ObjectStoreError(self._words(f"cannot look at {relative} in", error)) from None

    def remove(self, name: str) -> None:
        try:
            self.fs.rm_file(self._key(name))
        except FileNotFoundError:
            return
        except Exception as error:
            raise ObjectStoreError(self._words(f"cannot delete {name} from", error)) from None


def _entry(info: dict[str, Any]) -> ObjectEntry:
    name = str(info.get("name", "")).rstrip("/").rsplit("/", 1)[-1]
    modified: Any = info.get("LastModified") or info.get("mtime") or info.get("created") or ""
    if isinstance(modified, datetime):  # one store's listing says float, its info datetime
        modified = modified.timestamp()
    if isinstance(modified, float | int):
        modified = f"{modified:.6f}"
    version = info.get("ETag") or info.get("etag") or ""
    return ObjectEntry(
        name=name,
        size=int(info.get("size") or 0),
        version=str(version or modified),
        modified=str(modified),
    )


def file_sha256(path: Path) -> str:
    """The SHA-256 of a local file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class StagedObject:
    """A local copy in the staging folder and the object it came from."""

    name: str
    version: str
    size: int
    sha256: str


class StagedObjects:
    """The records of the staging folder (``<staging>/.objects/``), one JSON file per object,
    written once its copy is in place and dropped once the source object is deleted: a record
    left behind is a move the next run finishes."""

    def __init__(self, staging: Path) -> None:
        self.folder = staging / RECORDS

    def _path(self, name: str) -> Path:
        return self.folder / (hashlib.sha256(name.encode()).hexdigest()[:32] + ".json")

    def add(self, record: StagedObject) -> None:
        write_json(self._path(record.name), asdict(record))

    def get(self, name: str) -> StagedObject | None:
        try:
            return StagedObject(**orjson.loads(self._path(name).read_bytes()))
        except FileNotFoundError:
            return None

    def drop(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[StagedObject]:
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.json")):
            try:
                yield StagedObject(**orjson.loads(path.read_bytes()))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)  # half a record: the copy is taken again
