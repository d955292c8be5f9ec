"""Order documents: a manifest CSV whose rows UPLOAD files (named relative to the manifest) or
DELETE documents. Every file is checked before any upload: it must stay inside the inbox (no
``..``, no absolute path, no symlink), weigh at most 10 MB, and be a PDF, JPEG, PNG or CSV judged
by its content, never by its name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from etl.client import ConnectClient
from etl.errors import NotFound, RejectedRequest
from etl.models import ItemResult, MappedItem, Outcome, Violation

MAX_BYTES = 10 * 1024 * 1024  # documented maximum file size
SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
)


class DocumentRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def content_type(data: bytes) -> str | None:
    """The document's type by its first bytes; CSV is UTF-8 text without NUL bytes."""
    for signature, mime in SIGNATURES:
        if data.startswith(signature):
            return mime
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/csv"


def resolve_inside(inbox: Path, relative: str) -> Path:
    """The file a manifest names, refused if the name leads outside the inbox in any way."""
    if not relative or Path(relative).is_absolute() or relative.startswith(("/", "\\")):
        raise DocumentRefused(
            "DOCUMENT_PATH_REFUSED",
            f"'{relative}' is absolute; name files relative to the manifest",
        )
    root = inbox.resolve()
    candidate = root.joinpath(relative)
    walked = root
    for part in Path(relative).parts:
        if part in ("..", ""):
            raise DocumentRefused(
                "DOCUMENT_PATH_REFUSED", f"'{relative}' climbs out of the inbox ('..')"
            )
        walked = walked / part
        if walked.is_symlink():
            raise DocumentRefused(
                "DOCUMENT_PATH_REFUSED", f"'{relative}' goes through a symbolic link; copy the file"
            )
    if not candidate.resolve().is_relative_to(root):
        raise DocumentRefused("DOCUMENT_PATH_REFUSED", f"'{relative}' is outside the inbox")
    return candidate


def load_document(inbox: Path, relative: str) -> tuple[bytes, str]:
    """(bytes, content type) of a manifest's file, or DocumentRefused saying why not."""
    path = resolve_inside(inbox, relative)
    if not path.is_file():
        raise DocumentRefused("DOCUMENT_MISSING", f"'{relative}' is not in the inbox")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise DocumentRefused(
            "DOCUMENT_TOO_LARGE", f"'{relative}' weighs {size / 1_048_576:.1f} MB; at most 10 MB"
        )
    data = path.read_bytes()
    mime = content_type(data)
    if mime is None:
        raise DocumentRefused(
            "DOCUMENT_TYPE_REFUSED",
            f"'{relative}' is not a PDF, JPEG, PNG or CSV file (judged by its content)",
        )
    return data, mime


def check_documents(items: list[MappedItem], inbox: Path) -> dict[str, tuple[bytes, str]]:
    """Load every upload's file before anything is sent; refusals become violations."""
    loaded: dict[str, tuple[bytes, str]] = {}
    for item in items:
        if item.body.get("operation") != "UPLOAD" or item.violations:
            continue
        relative = str(item.body.get("file", ""))
        try:
            loaded[relative] = load_document(inbox, relative)
        except DocumentRefused as refused:
            item.violations.append(
                Violation(
                    item.source,
                    item.rows,
                    item.item_id or None,
                    "$.file",
                    refused.code,
                    f"file: {refused.message}",
                    relative,
                )
            )
    return loaded


def send_documents(
    items: list[MappedItem],
    files: dict[str, tuple[bytes, str]],
    client: Callable[[], ConnectClient],
) -> list[ItemResult]:
    """Upload or delete, one call per row."""
    results = []
    for item in items:
        body = item.body
        origin = body["origin"]
        metadata = body["metadata"]
        try:
            if body["operation"] == "UPLOAD":
                data, mime = files[str(body["file"])]
                client().upload_document(
                    str(body["channel_order_id"]),
                    data,
                    str(metadata["filename"]),
                    mime,
                    origin,
                    metadata,
                )
            else:
                client().delete_document(str(metadata["channel_document_id"]), origin)
        except NotFound as error:
            already = body["operation"] == "DELETE"
            results.append(
                ItemResult(
                    item.item_id,
                    item.origin,
                    item.rows,
                    Outcome.UNCHANGED if already else Outcome.REJECTED,
                    "",
                    error.status,
                    error.code or "DATA_NOT_FOUND",
                    "no such document in Connect (already deleted?)" if already else str(error),
                )
            )
            continue
        except RejectedRequest as error:
            results.append(
                ItemResult(
                    item.item_id,
                    item.origin,
                    item.rows,
                    Outcome.REJECTED,
                    "",
                    error.status,
                    error.code,
                    str(error),
                )
            )
            continue
        results.append(ItemResult(item.item_id, item.origin, item.rows, Outcome.ACCEPTED, "", 204))
    return results
