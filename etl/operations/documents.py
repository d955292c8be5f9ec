"""Order documents: a manifest CSV whose rows UPLOAD files (named relative to the manifest) or
DELETE documents. Every file is checked before any upload: it must stay inside the inbox (no
``..``, no absolute path, no symlink), weigh at most 10 MB, and be a PDF, JPEG, PNG or CSV judged
by its content, never by its name; a name that says one of these types must hold that type.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePath

from etl.core.codes import Problem
from etl.core.errors import NotFound, RejectedRequest
from etl.core.inputs import InputRefused, allowed_owners, open_inside
from etl.core.models import ItemResult, MappedItem, Outcome, Violation
from etl.deliver.client import ConnectClient

MAX_BYTES = 10 * 1024 * 1024  # documented maximum file size
SIGNATURES = (
    (b"%PDF-", "application/pdf", "a PDF"),
    (b"\xff\xd8\xff", "image/jpeg", "a JPEG image"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "a PNG image"),
)
# Local file, empty archive, spanned archive: .xlsx, .docx and .odt are ZIP files too.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
CSV_DELIMITERS = (",", ";", "\t", "|")
CSV = "text/csv"
# A name that says a type must hold that type: Connect keeps the name, people open it by it.
NAMED_TYPES = {
    ".pdf": "application/pdf",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".csv": CSV,
}
ACCEPTED = "accepted: PDF, JPEG, PNG, or CSV (UTF-8 text whose first line holds , ; tab or |)"


class DocumentRefused(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def sniff(data: bytes) -> tuple[str | None, str]:
    """(type Connect takes or None, what the content looks like in words), by the content only.

    CSV is UTF-8 text whose first line holds a delimiter: anything else that decodes (an HTML
    page, a text named .pdf) would otherwise be uploaded as CSV.
    """
    for signature, mime, words in SIGNATURES:
        if data.startswith(signature):
            return mime, words
    if data.startswith(ZIP_SIGNATURES):
        return None, "a ZIP archive (as .xlsx and .docx files are)"
    if not data:
        return None, "empty"
    if b"\x00" in data:
        return None, "binary data"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "binary data or text that is not UTF-8"
    head = text.lstrip()[:14].lower()
    if head.startswith(("<!doctype html", "<html")):
        return None, "an HTML page"
    if head.startswith("<"):
        return None, "markup (XML or HTML)"
    first_line = text.partition("\n")[0]
    if not any(delimiter in first_line for delimiter in CSV_DELIMITERS):
        return None, "text whose first line holds no delimiter"
    return CSV, "CSV text"


def resolve_inside(inbox: Path, relative: str) -> Path:
    """The file a manifest names, refused if the name leads outside the inbox in any way."""
    if not relative or Path(relative).is_absolute() or relative.startswith(("/", "\\")):
        raise DocumentRefused(
            Problem.DOCUMENT_PATH_REFUSED,
            f"'{relative}' is absolute; name files relative to the manifest",
        )
    root = inbox.resolve()
    candidate = root.joinpath(relative)
    walked = root
    for part in Path(relative).parts:
        if part in ("..", ""):
            raise DocumentRefused(
                Problem.DOCUMENT_PATH_REFUSED, f"'{relative}' climbs out of the inbox ('..')"
            )
        walked = walked / part
        if walked.is_symlink():
            raise DocumentRefused(
                Problem.DOCUMENT_PATH_REFUSED,
                f"'{relative}' goes through a symbolic link; copy the file",
            )
    if not candidate.resolve().is_relative_to(root):
        raise DocumentRefused(Problem.DOCUMENT_PATH_REFUSED, f"'{relative}' is outside the inbox")
    return candidate


def load_document(inbox: Path, relative: str, filename: str = "") -> tuple[bytes, str]:
    """(bytes, content type) of a manifest's file, or DocumentRefused saying why not.

    The file is opened once, folder by folder without following a link, checked on its
    descriptor (a regular file, one name, its owner: etl/core/inputs.py) and read from it: a name
    swapped for a link after a check cannot lead the read outside the inbox.
    ``filename`` is the name Connect is given (metadata.filename), when not the file's own."""
    try:
        resolve_inside(inbox, relative)
    except OSError:
        # A name that turns from a link into a file while it is resolved (readlink: EINVAL):
        # someone is swapping it; the descriptor's checks below would refuse it anyway.
        raise DocumentRefused(
            Problem.DOCUMENT_PATH_REFUSED, f"'{relative}' changed while it was checked (a link?)"
        ) from None
    try:
        fd = open_inside(inbox.resolve(), Path(relative).parts, allowed_owners(inbox))
    except FileNotFoundError:
        raise DocumentRefused(
            Problem.DOCUMENT_MISSING, f"'{relative}' is not in the inbox"
        ) from None
    except InputRefused as refused:
        raise DocumentRefused(
            Problem.DOCUMENT_PATH_REFUSED, f"'{relative}': {refused.reason}"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(MAX_BYTES + 1)
        size = max(len(data), os.fstat(fd).st_size)
    if size > MAX_BYTES:
        raise DocumentRefused(
            Problem.DOCUMENT_TOO_LARGE,
            f"'{relative}' weighs {size / 1_048_576:.1f} MB; at most 10 MB",
        )
    mime, looks = sniff(data)
    if mime is None:
        raise DocumentRefused(
            Problem.DOCUMENT_TYPE_REFUSED, f"'{relative}': its content is {looks}; {ACCEPTED}"
        )
    names = [(f"'{relative}'", relative)]
    if filename:
        names.append((f"'{filename}' (metadata.filename of '{relative}')", filename))
    for shown, name in names:
        extension = PurePath(name).suffix.lower()
        named = NAMED_TYPES.get(extension, mime)
        if named != mime:
            raise DocumentRefused(
                Problem.DOCUMENT_TYPE_REFUSED,
                f"{shown} is named {extension} but its content is {looks}; {ACCEPTED}",
            )
    return data, mime


def check_documents(items: list[MappedItem], inbox: Path) -> Path:
    """Check every upload's file before anything is sent; refusals become violations. Returns
    the folder the files are named from, for ``send_documents`` to read each one again when
    its turn comes: holding every file's bytes at once is 2 GB for a manifest that names one
    10 MB file 200 ways."""
    for item in items:
        if item.body.get("operation") != "UPLOAD" or item.violations:
            continue
        relative = str(item.body.get("file", ""))
        filename = str(item.body.get("metadata", {}).get("filename", ""))
        try:
            load_document(inbox, relative, filename)
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
    return inbox


def send_documents(
    items: list[MappedItem], inbox: Path, client: Callable[[], ConnectClient]
) -> list[ItemResult]:
    """Upload or delete, one call per row; each file read (and checked again) just before its
    upload, so one file at a time is in memory, and one swapped since the check is refused."""
    results = []
    for item in items:
        body = item.body
        origin = body["origin"]
        metadata = body["metadata"]
        try:
            if body["operation"] == "UPLOAD":
                data, mime = load_document(
                    inbox, str(body["file"]), str(metadata.get("filename", ""))
                )
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
        except DocumentRefused as refused:
            results.append(
                ItemResult(
                    item.item_id,
                    item.origin,
                    item.rows,
                    Outcome.REJECTED,
                    "",
                    None,
                    refused.code,
                    f"file: {refused.message} (it changed after it was checked)",
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
