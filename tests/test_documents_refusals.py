"""A documents manifest through `etl run` against the sandbox: files whose content is not what
Connect accepts (or not what their name says) are refused before anything is sent, each named
in errors.csv with what its content looks like; the good file beside them is uploaded."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from typing import Any

from etl.deliver.client import ConnectClient
from etl.run.sync import Sync
from etl.sandbox import SandboxServer

from .conftest import settings_for, write_rows

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
JPEG = b"\xff\xd8\xff\xe0" + b"\x10JFIF" + b"\x01" * 16
ACCEPTED = "accepted: PDF, JPEG, PNG, or CSV (UTF-8 text whose first line holds , ; tab or |)"


def zip_bytes() -> bytes:
    """An .xlsx is a ZIP archive of XML parts."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def manifest_row(document_id: str, file: str, filename: str = "") -> dict[str, str]:
    return {
        "operation": "UPLOAD",
        "channel_order_id": "O-1",
        "file": file,
        "origin.channel_id": "CH",
        "origin.channel_store_id": "S",
        "metadata.channel_document_id": document_id,
        "metadata.filename": filename or Path(file).name,
        "metadata.type": "CUSTOMER_INVOICE",
    }


def api_calls(sandbox: SandboxServer) -> list[dict[str, Any]]:
    """What reached the API (token requests aside)."""
    return [r for r in sandbox.requests_log() if r["path"].startswith("/api/")]


def run(sandbox: SandboxServer, tmp_path: Path, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """`etl run` on the manifest; its errors.csv rows."""
    settings = settings_for(sandbox, tmp_path)
    write_rows(settings.inbox / "documents-a.csv", rows)
    sync = Sync(settings, lambda: ConnectClient(settings))
    sync()
    with (sync.run_dir / "documents-a.csv.errors.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_a_bad_metadata_type_is_reported_once(sandbox: SandboxServer, tmp_path: Path) -> None:
    files = tmp_path / "inbox" / "files"
    files.mkdir(parents=True)
    (files / "good.pdf").write_bytes(PDF)
    row = {**manifest_row("D-1", "files/good.pdf"), "metadata.type": "BOGUS"}
    errors = run(sandbox, tmp_path, [row])
    assert [(e["id"], e["field"], e["code"], e["value"]) for e in errors] == [
        ("D-1", "$.metadata.type", "NOT_ALLOWED_VALUE", "BOGUS")
    ]
    assert api_calls(sandbox) == []


def test_content_that_is_not_a_document_or_not_what_its_name_says_is_refused(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    files = tmp_path / "inbox" / "files"
    files.mkdir(parents=True)
    contents = {
        "good.pdf": PDF,
        "text.pdf": b"id,amount\n1,2.50\n",
        "page.csv": b"<html><head><title>a,b</title></head><body>x</body></html>\n",
        "doctype.csv": "\ufeff \n<!DOCTYPE html>\n<p>a,b</p>\n".encode(),
        "feed.csv": b'<?xml version="1.0"?><rows>a,b</rows>\n',
        "packed.csv": b"PK\x03\x04a,b\n",
        "slip.xlsx": zip_bytes(),
        "notes.csv": b"remember the milk\nand the bread\n",
        "photo.png": JPEG,
        "scan.pdf": PDF,  # a PDF that the manifest names slip.png for Connect
    }
    for name, data in contents.items():
        (files / name).write_bytes(data)
    rows = [
        manifest_row(f"D-{name}", f"files/{name}", "slip.png" if name == "scan.pdf" else "")
        for name in contents
    ]
    errors = run(sandbox, tmp_path, rows)
    refused = {e["id"].removeprefix("D-"): e for e in errors}
    assert set(refused) == set(contents) - {"good.pdf"}
    assert {e["code"] for e in errors} == {"DOCUMENT_TYPE_REFUSED"}
    looks = {
        "text.pdf": "'files/text.pdf' is named .pdf but its content is CSV text",
        "page.csv": "'files/page.csv': its content is an HTML page",
        "doctype.csv": "'files/doctype.csv': its content is an HTML page",
        "feed.csv": "'files/feed.csv': its content is markup (XML or HTML)",
        "packed.csv": "'files/packed.csv': its content is a ZIP archive (as .xlsx and .docx "
        "files are)",
        "slip.xlsx": "'files/slip.xlsx': its content is a ZIP archive (as .xlsx and .docx "
        "files are)",
        "notes.csv": "'files/notes.csv': its content is text whose first line holds no delimiter",
        "photo.png": "'files/photo.png' is named .png but its content is a JPEG image",
        "scan.pdf": "'slip.png' (metadata.filename of 'files/scan.pdf') is named .png but its "
        "content is a PDF",
    }
    for name, words in looks.items():
        assert refused[name]["message"] == f"file: {words}; {ACCEPTED}", name
    (upload,) = api_calls(sandbox)
    assert upload["path"] == "/api/channel-platform/v1/orders/O-1/documents"
    parts = {p["name"]: p for p in upload["body"]["parts"]}
    assert parts["file"]["filename"] == "good.pdf"
    assert parts["file"]["content_type"] == "application/pdf"
    assert [d["channel_document_id"] for d in sandbox.documents()] == ["D-good.pdf"]
