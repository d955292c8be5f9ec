"""Documents: uploadOrderDocument (multipart/form-data) and deleteOrderDocument, as documented."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from etl.sandbox import SandboxServer

from .conftest import CHANNEL, STORE, Api, fetch_token

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\r\n1 0 obj\n<< /Type /Catalog >>\nendobj\n\x00\xff trailer"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
CSV = "\ufefforder,carrier\nORDER-1,Colis Privé\n".encode()
MAX_FILE = 10 * 1024 * 1024


def origin(channel: str = CHANNEL, store: str = STORE, **extra: Any) -> dict[str, Any]:
    return {"channel_id": channel, "channel_store_id": store, **extra}


def metadata(document_id: str = "DOC-1", **overrides: Any) -> dict[str, Any]:
    """UploadOrderDocumentMetadata, as in the API document's example."""
    meta: dict[str, Any] = {
        "channel_document_id": document_id,
        "filename": "UPS_1Z999AA10123456784.pdf",
        "type": "RETURN_LABEL",
    }
    meta.update(overrides)
    return meta


def json_part(value: Any) -> tuple[None, bytes, str]:
    return (None, value if isinstance(value, bytes) else orjson.dumps(value), "application/json")


def upload(
    api: Api,
    order_id: str = "ORDER-1",
    data: bytes = PDF,
    *,
    meta: Any = None,
    orig: Any = None,
    parts: list[tuple[str, Any]] | None = None,
) -> requests.Response:
    """POST the three parts the way ``curl -F`` in the API document does."""
    if parts is None:
        parts = [
            ("file", ("label.pdf", data, "application/pdf")),
            ("origin", json_part(origin() if orig is None else orig)),
            ("metadata", json_part(metadata() if meta is None else meta)),
        ]
    return api.call("POST", f"/channel-platform/v1/orders/{order_id}/documents", files=parts)


def delete(api: Api, document_id: str, body: Any) -> requests.Response:
    return api.call("DELETE", f"/channel-platform/v1/orders/documents/{document_id}", body)


def documents(api: Api) -> list[dict[str, Any]]:
    stored: list[dict[str, Any]] = api.admin("GET", "documents")["documents"]
    return stored


def errors_of(response: requests.Response) -> list[str]:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "INVALID_INPUT"
    return [e["field"] for e in response.json()["errors"]]


def test_upload_is_204_and_the_document_is_stored(api: Api) -> None:
    meta = metadata(channel_type="ups-label", entity={"id": "R-1", "type": "RETURN"})
    response = upload(api, "ORDER-1", PDF, meta=meta, orig=origin(sub_channel_code="FR"))
    assert response.status_code == 204
    assert response.content == b""
    [stored] = documents(api)
    assert stored == {
        "channel_id": CHANNEL,
        "channel_store_id": STORE,
        "channel_document_id": "DOC-1",
        "channel_order_id": "ORDER-1",
        "filename": "UPS_1Z999AA10123456784.pdf",  # from metadata, not from the file part
        "type": "RETURN_LABEL",
        "format": "pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
        "times_replaced": 0,
        "uploaded_at": stored["uploaded_at"],
        "origin": origin(sub_channel_code="FR"),
        "metadata": meta,
    }
    assert stored["uploaded_at"].endswith("Z")


def test_the_log_has_each_part_but_never_the_file_bytes(api: Api) -> None:
    marker = b"%PDF-1.4 THE-FILE-BYTES-MARKER \x00\x01"
    assert upload(api, data=marker).status_code == 204
    [entry] = api.requests_log(path="/api/channel-platform/v1/orders/ORDER-1/documents")
    assert entry["status"] == 204
    assert entry["body"] == {
        "parts": [
            {
                "name": "file",
                "filename": "label.pdf",
                "content_type": "application/pdf",
                "size": len(marker),
                "sha256": hashlib.sha256(marker).hexdigest(),
            },
            {
                "name": "origin",
                "filename": None,
                "content_type": "application/json",
                "size": len(orjson.dumps(origin())),
                "sha256": hashlib.sha256(orjson.dumps(origin())).hexdigest(),
                "json": origin(),
            },
            {
                "name": "metadata",
                "filename": None,
                "content_type": "application/json",
                "size": len(orjson.dumps(metadata())),
                "sha256": hashlib.sha256(orjson.dumps(metadata())).hexdigest(),
                "json": metadata(),
            },
        ]
    }
    with sqlite3.connect(api.sandbox.db_path) as db:
        dumped = "\n".join(db.iterdump())
    assert "THE-FILE-BYTES-MARKER" not in dumped


def test_a_faulted_upload_is_logged_without_the_file_bytes(api: Api) -> None:
    api.faults(faults=[{"status": 503}], next=1)
    assert upload(api, data=b"%PDF-SECRET-BYTES").status_code == 503
    [entry] = api.requests_log(path="/api/channel-platform/v1/orders/ORDER-1/documents")
    assert entry["fault"] == {"status": 503}
    assert [p["name"] for p in entry["body"]["parts"]] == ["file", "origin", "metadata"]
    assert "SECRET" not in orjson.dumps(entry).decode()
    assert documents(api) == []


@pytest.mark.parametrize(
    ("data", "kind"), [(PDF, "pdf"), (JPEG, "jpeg"), (PNG, "png"), (CSV, "csv")]
)
def test_each_supported_format_is_judged_by_content(api: Api, data: bytes, kind: str) -> None:
    # The declared content type and name say PDF every time: only the bytes count.
    assert upload(api, data=data).status_code == 204
    assert documents(api)[0]["format"] == kind


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00",
        b"plain text with a NUL \x00 byte",
        b"caf\xe9 in Latin-1, not UTF-8",
        b"\xff\xd8\x00",  # half a JPEG magic
        b"\x89PNG\r\n",  # half a PNG magic
        b"",
    ],
)
def test_other_content_is_400(api: Api, data: bytes) -> None:
    assert errors_of(upload(api, data=data)) == ["$.file"]
    assert documents(api) == []


def test_file_size_limit_is_10_mb(api: Api) -> None:
    biggest = b"%PDF-" + b"x" * (MAX_FILE - 5)
    assert upload(api, data=biggest).status_code == 204
    response = upload(api, data=biggest + b"x")
    assert errors_of(response) == ["$.file"]
    assert "10 MB" in response.json()["errors"][0]["message"]
    assert documents(api)[0]["size"] == MAX_FILE


def test_missing_parts_are_400(api: Api) -> None:
    only_file = [("file", ("a.pdf", PDF, "application/pdf"))]
    assert errors_of(upload(api, parts=only_file)) == ["$.metadata", "$.origin"]
    only_json = [("origin", json_part(origin())), ("metadata", json_part(metadata()))]
    assert errors_of(upload(api, parts=only_json)) == ["$.file"]


def test_a_repeated_part_is_400(api: Api) -> None:
    parts = [
        ("file", ("a.pdf", PDF, "application/pdf")),
        ("file", ("b.pdf", PDF, "application/pdf")),
        ("origin", json_part(origin())),
        ("metadata", json_part(metadata())),
    ]
    assert errors_of(upload(api, parts=parts)) == ["$.file"]


def test_parts_that_are_not_json_are_400(api: Api) -> None:
    assert errors_of(upload(api, orig=b"channel_id=CH-1")) == ["$.origin"]
    assert errors_of(upload(api, meta=b"{")) == ["$.metadata"]


def test_schema_violations_are_400_with_part_paths(api: Api) -> None:
    meta = metadata(type="INVOICE", filename="", entity={"id": "R-1", "type": "ORDER"})
    del meta["channel_document_id"]
    orig = {"channel_id": CHANNEL}
    assert errors_of(upload(api, meta=meta, orig=orig)) == [
        "$.metadata.channel_document_id",
        "$.metadata.entity.type",
        "$.metadata.filename",
        "$.metadata.type",
        "$.origin.channel_store_id",
    ]
    assert documents(api) == []


def test_upload_honours_omit_field(api: Api) -> None:
    api.admin("POST", "config", {"omit_field": True})
    response = upload(api, meta=metadata(type="INVOICE"))
    assert response.status_code == 400
    assert all(set(e) == {"message"} for e in response.json()["errors"])


def test_a_body_that_is_not_multipart_is_400(api: Api) -> None:
    response = api.call("POST", "/channel-platform/v1/orders/ORDER-1/documents", {"file": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
    headers = {"Content-Type": "multipart/form-data; boundary=nothere"}
    response = api.call(
        "POST", "/channel-platform/v1/orders/ORDER-1/documents", data=b"junk", headers=headers
    )
    assert response.status_code == 400


def test_unknown_store_is_404_when_stores_are_configured(
    db_path: Path, http: requests.Session
) -> None:
    with SandboxServer(db_path=db_path, known_stores=[(CHANNEL, STORE)]) as sandbox:
        api = Api(sandbox, http, fetch_token(sandbox, http))
        response = upload(api, orig=origin(store="OTHER"))
        assert response.status_code == 404
        assert response.json()["code"] == "DATA_NOT_FOUND"
        assert upload(api).status_code == 204
        assert len(documents(api)) == 1


def test_a_reupload_with_the_same_key_replaces(api: Api) -> None:
    assert upload(api, "ORDER-1", PDF).status_code == 204
    assert upload(api, "ORDER-2", PNG, meta=metadata(type="CUSTOMER_INVOICE")).status_code == 204
    [stored] = documents(api)
    assert (stored["channel_order_id"], stored["type"], stored["format"]) == (
        "ORDER-2",
        "CUSTOMER_INVOICE",
        "png",
    )
    assert stored["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert stored["times_replaced"] == 1
    # The key is (channel, document id): the same id on another channel is another document.
    assert upload(api, orig=origin(channel="CH-2")).status_code == 204
    assert [(d["channel_id"], d["channel_document_id"]) for d in documents(api)] == [
        (CHANNEL, "DOC-1"),
        ("CH-2", "DOC-1"),
    ]


def test_path_parameters_are_percent_decoded(api: Api) -> None:
    assert upload(api, "ORDER%2F1%20A").status_code == 204
    assert documents(api)[0]["channel_order_id"] == "ORDER/1 A"
    assert delete(api, "DOC%2D1", {"origin": origin()}).status_code == 204


def test_delete_is_204_and_the_document_is_gone(api: Api) -> None:
    upload(api)
    upload(api, orig=origin(channel="CH-2"))
    body = {"origin": origin()}
    response = delete(api, "DOC-1", body)
    assert response.status_code == 204
    assert response.content == b""
    assert [d["channel_id"] for d in documents(api)] == ["CH-2"]
    again = delete(api, "DOC-1", body)
    assert again.status_code == 404
    assert again.json()["code"] == "DATA_NOT_FOUND"
    [first, second] = api.requests_log(path="/api/channel-platform/v1/orders/documents/DOC-1")
    assert (first["method"], first["status"], second["status"]) == ("DELETE", 204, 404)
    assert first["body"] == body  # the DELETE body, parsed


def test_delete_of_an_unknown_document_is_404(api: Api) -> None:
    upload(api)
    for document_id, channel in (("DOC-2", CHANNEL), ("DOC-1", "CH-9")):
        response = delete(api, document_id, {"origin": origin(channel=channel)})
        assert response.status_code == 404
        assert response.json()["code"] == "DATA_NOT_FOUND"
    assert len(documents(api)) == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["$.origin"]),
        ({"origin": {"channel_id": CHANNEL}}, ["$.origin.channel_store_id"]),
        ({"origin": {"channel_id": 1, "channel_store_id": STORE}}, ["$.origin.channel_id"]),
        ({"origin": "CH-1"}, ["$.origin"]),
        ([], ["$"]),
    ],
)
def test_invalid_delete_body_is_400(api: Api, body: Any, fields: list[str]) -> None:
    upload(api)
    assert errors_of(delete(api, "DOC-1", body)) == fields
    assert len(documents(api)) == 1


def test_delete_body_not_json_is_400(api: Api) -> None:
    response = delete(api, "DOC-1", b"origin")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_INPUT"
