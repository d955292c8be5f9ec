"""Order documents: uploadOrderDocument (multipart) and deleteOrderDocument, kept per channel."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from typing import Any

import orjson

from .config import SandboxConfig
from .multipart import MultipartError, Part, describe, parse_form, unreadable
from .store import Table, parsed_json
from .validation import Problem, SchemaValidator, invalid_input
from .wire import (
    NOT_JSON,
    Handled,
    Outcome,
    Request,
    Response,
    error_response,
    iso_z,
    logged_as,
    utc_now,
)

UPLOAD_DOCUMENT_PATH = "/api/channel-platform/v1/orders/{channel_order_id}/documents"
DELETE_DOCUMENT_PATH = "/api/channel-platform/v1/orders/documents/{channel_document_id}"
MAX_FILE_BYTES = 10 * 1024 * 1024  # "Maximum file size: 10 MB"
JSON_PARTS = ("origin", "metadata")
REQUIRED_PARTS = ("file", *JSON_PARTS)
# Judged by content, not by the declared type or the name: what Connect could render.
MAGIC = (
    (b"%PDF-", "pdf"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
)

TABLE = Table(
    "documents",
    """
CREATE TABLE IF NOT EXISTS documents (
    channel_id TEXT NOT NULL,
    channel_document_id TEXT NOT NULL,
    channel_store_id TEXT NOT NULL,
    channel_order_id TEXT NOT NULL,
    filename TEXT NOT NULL,                    -- metadata.filename (the one that counts)
    type TEXT NOT NULL,                        -- metadata.type
    format TEXT NOT NULL,                      -- pdf | jpeg | png | csv, judged by content
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    origin TEXT NOT NULL,                      -- the origin part (JSON)
    metadata TEXT NOT NULL,                    -- the metadata part (JSON)
    times_replaced INTEGER NOT NULL DEFAULT 0,
    uploaded_at TEXT NOT NULL,
    PRIMARY KEY (channel_id, channel_document_id)
);
""",
)

UPSERT = """
INSERT INTO documents (channel_id, channel_document_id, channel_store_id, channel_order_id,
                       filename, type, format, size, sha256, origin, metadata, uploaded_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (channel_id, channel_document_id) DO UPDATE SET
    channel_store_id = excluded.channel_store_id,
    channel_order_id = excluded.channel_order_id,
    filename = excluded.filename,
    type = excluded.type,
    format = excluded.format,
    size = excluded.size,
    sha256 = excluded.sha256,
    origin = excluded.origin,
    metadata = excluded.metadata,
    times_replaced = documents.times_replaced + 1,
    uploaded_at = excluded.uploaded_at
"""
LISTED = (
    "channel_id",
    "channel_store_id",
    "channel_document_id",
    "channel_order_id",
    "filename",
    "type",
    "format",
    "size",
    "sha256",
    "times_replaced",
    "uploaded_at",
    "origin",
    "metadata",
)


def sniff(data: bytes) -> str | None:
    """pdf, jpeg, png or csv (UTF-8 text without NUL bytes), by the bytes; None otherwise."""
    for magic, name in MAGIC:
        if data.startswith(magic):
            return name
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "csv"


class Documents:
    """The two document operations and the admin listing; state in the ``documents`` table."""

    def __init__(self, config: Callable[[], SandboxConfig]) -> None:
        self._config = config
        self._origin = SchemaValidator("document-origin.schema.json")
        self._metadata = SchemaValidator("document-metadata.schema.json")

    def upload(self, request: Request, params: dict[str, str]) -> Outcome:
        """``POST .../v1/orders/{channel_order_id}/documents``: 204, 400, 404 unknown store."""
        config = self._config()
        try:
            parts = parse_form(request.headers.get("content-type", ""), request.body)
        except MultipartError as error:
            response = error_response(400, "INVALID_INPUT", f"{error}; no document was saved")
            return logged_as(response, unreadable(request.body, error))
        logged = {"parts": describe(parts, JSON_PARTS)}
        problems, values, file = self._read_parts(parts)
        if problems:
            response = invalid_input(problems, config.omit_field, "no document was saved")
            return logged_as(response, logged)
        assert file is not None
        origin, metadata = values["origin"], values["metadata"]
        channel_id, store_id = origin["channel_id"], origin["channel_store_id"]
        if config.known_stores is not None and (channel_id, store_id) not in config.known_stores:
            message = f"Unknown channel or store: channel {channel_id!r}, store {store_id!r}"
            return logged_as(error_response(404, "DATA_NOT_FOUND", message), logged)
        row = (
            channel_id,
            metadata["channel_document_id"],
            store_id,
            params["channel_order_id"],
            metadata["filename"],
            metadata["type"],
            sniff(file.data),
            len(file.data),
            hashlib.sha256(file.data).hexdigest(),
            orjson.dumps(origin).decode(),
            orjson.dumps(metadata).decode(),
        )

        def store(db: sqlite3.Connection) -> Handled:
            db.execute(UPSERT, (*row, iso_z(utc_now())))
            return logged_as(Response(status=204), logged)

        return store

    def _read_parts(self, parts: list[Part]) -> tuple[list[Problem], dict[str, Any], Part | None]:
        """Every problem with the parts; the parsed JSON parts and the file when there is none."""
        problems: list[Problem] = []
        by_name: dict[str, Part] = {}
        for part in parts:
            if part.name in REQUIRED_PARTS:
                if part.name in by_name:
                    problems.append(Problem.at([part.name], "must be sent once"))
                by_name.setdefault(part.name, part)
        for name in REQUIRED_PARTS:
            if name not in by_name:
                problems.append(Problem.at([name], f"'{name}' is a required part"))
        values: dict[str, Any] = {}
        for name, validator in (("origin", self._origin), ("metadata", self._metadata)):
            sent = by_name.get(name)
            if sent is None:
                continue
            try:
                values[name] = orjson.loads(sent.data)
            except orjson.JSONDecodeError:
                problems.append(Problem.at([name], "must be JSON (application/json)"))
                continue
            problems.extend(validator.problems(values[name], at=[name]))
        file = by_name.get("file")
        if file is not None:
            problems.extend(_file_problems(file.data))
        return sorted(set(problems)), values, file

    def delete(self, request: Request, params: dict[str, str]) -> Outcome:
        """``DELETE .../v1/orders/documents/{channel_document_id}``, ``{"origin"}``: 204, 404."""
        config = self._config()
        document = request.document
        if document is NOT_JSON:
            message = "The request body is not valid JSON"
            return Handled(error_response(400, "INVALID_INPUT", message))
        if not isinstance(document, dict):
            problems = [Problem.at([], "must be of type object")]
        elif "origin" not in document:
            problems = [Problem.at(["origin"], "'origin' is a required property")]
        else:
            problems = self._origin.problems(document["origin"], at=["origin"])
        if problems:
            return Handled(invalid_input(problems, config.omit_field, "no document was deleted"))
        channel_id = document["origin"]["channel_id"]
        document_id = params["channel_document_id"]

        def remove(db: sqlite3.Connection) -> Handled:
            gone = db.execute(
                "DELETE FROM documents WHERE channel_id = ? AND channel_document_id = ?",
                (channel_id, document_id),
            ).rowcount
            if not gone:
                message = f"No document {document_id!r} on channel {channel_id!r}"
                return Handled(error_response(404, "DATA_NOT_FOUND", message))
            return Handled(Response(status=204))

        return remove

    def listing(self, db: sqlite3.Connection) -> list[dict[str, Any]]:
        """Every stored document, in the order first uploaded (file bytes are never kept)."""
        rows = db.execute(f"SELECT {', '.join(LISTED)} FROM documents ORDER BY rowid").fetchall()
        out = []
        for row in rows:
            item = dict(zip(LISTED, row, strict=True))
            item["origin"] = parsed_json(item["origin"])
            item["metadata"] = parsed_json(item["metadata"])
            out.append(item)
        return out


def _file_problems(data: bytes) -> list[Problem]:
    if len(data) > MAX_FILE_BYTES:
        message = f"must be at most {MAX_FILE_BYTES} bytes (10 MB), got {len(data)}"
        return [Problem.at(["file"], message)]
    if not data:
        return [Problem.at(["file"], "must not be empty")]
    if sniff(data) is None:
        return [Problem.at(["file"], "must be a PDF, JPEG, PNG or CSV file (judged by content)")]
    return []
