"""Derive the JSON Schemas in ``etl/core/schemas/`` from Mirakl's published OpenAPI file.

Run ``python -m tools.schema_derive`` after updating ``api/openapi/``; a test regenerates the
schemas and fails when the committed files drift from what the OpenAPI file says.

What the OpenAPI file does not say in JSON Schema terms is lifted here:
- enums written only in description text ("Enum: `"A"`, `"B"`") become ``enum``;
- the custom-attribute ``discriminator`` becomes one ``if``/``then`` per ``type`` value, so a
  NUMERIC attribute's ``value`` must be a number, a LIST's an array of strings, and so on;
- ``$ref`` to ``#/components/schemas/X`` becomes ``#/$defs/X`` (draft 2020-12).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://schemas.mirakl-connect-etl.local/"
COMPONENT_REF = "#/components/schemas/"
ENUM_IN_DESCRIPTION = re.compile(r"Enum:\s*((?:`\"[^`\"]+\"`\s*,?\s*)+)")
ENUM_VALUE = re.compile(r"`\"([^`\"]+)\"`")
# Keywords OpenAPI adds that JSON Schema does not know: dropped, so both validators read the same.
OPENAPI_ONLY_KEYWORDS = {
    "discriminator",
    "xml",
    "externalDocs",
    "deprecated",
    "readOnly",
    "writeOnly",
}

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OPENAPI = REPO_ROOT / "api" / "openapi" / "mirakl-connect-channel-openapi.json"
CONNECT_OPENAPI = REPO_ROOT / "api" / "openapi" / "mirakl-connect-openapi.yaml"
SCHEMA_DIR = REPO_ROOT / "etl" / "core" / "schemas"
CHANNEL, CONNECT = "channel", "connect"  # the Channel Platform file, the seller-side v2 file

# (schema file, source, root component, title) for every request body the tool builds.
ROOTS: tuple[tuple[str, str, str, str], ...] = (
    ("upsert-orders-request.schema.json", CHANNEL, "UpsertOrdersRequest", "upsertOrders body"),
    ("order.schema.json", CHANNEL, "OrderRequest", "One order of an upsertOrders request"),
    (
        "update-action-status-request.schema.json",
        CHANNEL,
        "UpdateActionRequest",
        "updateActionStatus body",
    ),
    (
        "anonymize-after-request.schema.json",
        CHANNEL,
        "UpdateAnonymizeAfterRequest",
        "updateAnonymizeAfterDate body",
    ),
    (
        "anonymize-after-item.schema.json",
        CHANNEL,
        "UpdateAnonymizeAfterRequestItem",
        "One order of an updateAnonymizeAfterDate request",
    ),
    (
        "document-metadata.schema.json",
        CHANNEL,
        "UploadOrderDocumentMetadata",
        "The metadata part of uploadOrderDocument",
    ),
    (
        "document-origin.schema.json",
        CHANNEL,
        "DocumentOriginRequest",
        "The origin part of uploadOrderDocument, and the deleteOrderDocument body's origin",
    ),
    (
        "report-order-actions-request.schema.json",
        CONNECT,
        "ActionRequest",
        "v2-reportOrderActions body",
    ),
    ("order-action.schema.json", CONNECT, "ActionItemRequest", "One reported order action"),
)


# Rules the OpenAPI files state only in words, lifted into the schema so both the tool and the
# sandbox enforce them. Each names the component and quotes the sentence it comes from.
RULES_IN_WORDS: dict[str, tuple[str, dict[str, Any]]] = {
    "UpdateActionRequest": (
        "errors: Required when status is FAILED.",
        {
            "if": {"properties": {"status": {"const": "FAILED"}}, "required": ["status"]},
            "then": {"required": ["errors"], "properties": {"errors": {"minItems": 1}}},
        },
    ),
    "ActionItemRequest": (
        "errors: Should not be null if the status is FAILED.",
        {
            "if": {"properties": {"status": {"const": "FAILED"}}, "required": ["status"]},
            "then": {"required": ["errors"], "properties": {"errors": {"minItems": 1}}},
        },
    ),
}


def load_openapi(source: str) -> dict[str, Any]:
    """One of the vendored OpenAPI files (the YAML one needs PyYAML, a dev dependency)."""
    if source == CHANNEL:
        data: dict[str, Any] = json.loads(DEFAULT_OPENAPI.read_text(encoding="utf-8"))
        return data
    import yaml  # only to regenerate or drift-check the schemas, never at run time

    loaded: dict[str, Any] = yaml.safe_load(CONNECT_OPENAPI.read_text(encoding="utf-8"))
    return loaded


def lift_enum(description: str) -> list[str] | None:
    """Return the enum values that an OpenAPI description lists in text, if any."""
    match = ENUM_IN_DESCRIPTION.search(description)
    if match is None:
        return None
    return ENUM_VALUE.findall(match.group(1))


def _convert(node: Any, components: dict[str, Any], needed: set[str]) -> Any:
    if isinstance(node, list):
        return [_convert(item, components, needed) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in OPENAPI_ONLY_KEYWORDS:
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(COMPONENT_REF):
            name = value[len(COMPONENT_REF) :]
            needed.add(name)
            out["$ref"] = f"#/$defs/{name}"
        elif key == "properties" and isinstance(value, dict):
            out[key] = {prop: _convert(sub, components, needed) for prop, sub in value.items()}
        else:
            out[key] = _convert(value, components, needed)
    if node.get("type") == "string" and "enum" not in node:
        enum = lift_enum(str(node.get("description", "")))
        if enum:
            out["enum"] = enum
    return out


def _discriminated(
    name: str, schema: dict[str, Any], components: dict[str, Any], needed: set[str]
) -> dict[str, Any]:
    """Turn a discriminated base schema into one ``if``/``then`` per discriminator value."""
    discriminator = schema["discriminator"]
    prop = discriminator["propertyName"]
    base: dict[str, Any] = _convert(schema, components, needed)
    branches = []
    for value, ref in discriminator["mapping"].items():
        variant = components[ref[len(COMPONENT_REF) :]]
        extra: dict[str, Any] = {"properties": {}, "required": variant.get("required", [])}
        for part in variant.get("allOf", []):
            if part.get("$ref") == f"{COMPONENT_REF}{name}":
                continue
            converted = _convert(part, components, needed)
            extra["properties"].update(converted.get("properties", {}))
        branches.append(
            {"if": {"properties": {prop: {"const": value}}, "required": [prop]}, "then": extra}
        )
    base["allOf"] = branches
    return base


def derive(openapi: dict[str, Any], root: str) -> dict[str, Any]:
    """Build one self-contained draft 2020-12 schema for the component ``root``."""
    components: dict[str, Any] = openapi["components"]["schemas"]
    needed: set[str] = {root}
    defs: dict[str, Any] = {}
    while needed - defs.keys():
        name = sorted(needed - defs.keys())[0]
        schema = components[name]
        if "discriminator" in schema and "mapping" in schema["discriminator"]:
            defs[name] = _discriminated(name, schema, components, needed)
        else:
            defs[name] = _convert(schema, components, needed)
        if name in RULES_IN_WORDS:
            sentence, rule = RULES_IN_WORDS[name]
            defs[name]["allOf"] = [*defs[name].get("allOf", []), {"$comment": sentence, **rule}]
    # Variants folded into their base by _discriminated are not referenced any more.
    referenced = _referenced_defs(defs, root)
    return {
        "$schema": DRAFT,
        "$ref": f"#/$defs/{root}",
        "$defs": {name: defs[name] for name in sorted(referenced)},
    }


def _referenced_defs(defs: dict[str, Any], root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(re.findall(r'"#/\$defs/([^"]+)"', json.dumps(defs[name])))
    return seen


NON_EMPTY_ID = {"type": "string", "minLength": 1}


def _action_status_row(openapi: dict[str, Any]) -> dict[str, Any]:
    """One row of an action-status file: the path's ``action_id`` plus the PUT body."""
    schema = derive(openapi, "UpdateActionRequest")
    body = schema["$defs"]["UpdateActionRequest"]
    row = {
        **body,
        "properties": {"action_id": NON_EMPTY_ID, **body["properties"]},
        "required": ["action_id", *body["required"]],
    }
    return {
        **schema,
        "$ref": "#/$defs/ActionStatusRow",
        "$defs": {**schema["$defs"], "ActionStatusRow": row},
    }


def _document_row(openapi: dict[str, Any]) -> dict[str, Any]:
    """One row of a documents manifest: UPLOAD a file for an order, or DELETE a document.

    An upload needs the whole metadata part; a delete only names the document.
    """
    schema = derive(openapi, "UploadOrderDocumentMetadata")
    origin = derive(openapi, "DocumentOriginRequest")
    metadata = schema["$defs"]["UploadOrderDocumentMetadata"]
    fields = {key: value for key, value in metadata.items() if key != "required"}
    row = {
        "type": "object",
        "properties": {
            "operation": {"type": "string", "enum": ["UPLOAD", "DELETE"]},
            "channel_order_id": NON_EMPTY_ID,
            "file": {
                "type": "string",
                "minLength": 1,
                "description": "path relative to the manifest",
            },
            "origin": {"$ref": "#/$defs/DocumentOriginRequest"},
            "metadata": {"$ref": "#/$defs/DocumentMetadataFields"},
        },
        "required": ["operation", "origin", "metadata"],
        "allOf": [
            {
                "if": {"properties": {"operation": {"const": "UPLOAD"}}, "required": ["operation"]},
                "then": {
                    "required": ["channel_order_id", "file"],
                    "properties": {"metadata": {"$ref": "#/$defs/UploadOrderDocumentMetadata"}},
                },
            },
            {
                "if": {"properties": {"operation": {"const": "DELETE"}}, "required": ["operation"]},
                "then": {"properties": {"metadata": {"required": ["channel_document_id"]}}},
            },
        ],
    }
    defs = {
        **schema["$defs"],
        **origin["$defs"],
        "DocumentMetadataFields": fields,
        "DocumentRow": row,
    }
    return {**schema, "$ref": "#/$defs/DocumentRow", "$defs": dict(sorted(defs.items()))}


def _track_action_row() -> dict[str, Any]:
    """One row of a track-actions file: an action id whose status to follow."""
    return {
        "$schema": DRAFT,
        "type": "object",
        "properties": {"action_id": NON_EMPTY_ID},
        "required": ["action_id"],
    }


def derive_all(sources: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Every schema file the package ships, keyed by file name."""
    sources = sources or {CHANNEL: load_openapi(CHANNEL), CONNECT: load_openapi(CONNECT)}
    out: dict[str, dict[str, Any]] = {}
    for filename, source, root, title in ROOTS:
        schema = derive(sources[source], root)
        out[filename] = {"$id": SCHEMA_ID_BASE + filename, "title": title, **schema}
    # The rows of the files people drop: a request body plus what the URL carries.
    rows = {
        "action-status-row.schema.json": (
            "One row of an action-status file (updateActionStatus)",
            _action_status_row(sources[CHANNEL]),
        ),
        "document-row.schema.json": (
            "One row of a documents manifest (uploadOrderDocument / deleteOrderDocument)",
            _document_row(sources[CHANNEL]),
        ),
        "track-action-row.schema.json": (
            "One row of a track-actions file (v2-getActionStatus)",
            _track_action_row(),
        ),
    }
    for filename, (title, schema) in rows.items():
        out[filename] = {"$id": SCHEMA_ID_BASE + filename, "title": title, **schema}
    return out


def render(schema: dict[str, Any]) -> str:
    """The exact text written to disk, so the drift test can compare bytes."""
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    del argv  # the sources are the vendored files in api/openapi/
    for filename, schema in derive_all().items():
        (SCHEMA_DIR / filename).write_text(render(schema), encoding="utf-8")
        print(f"wrote {SCHEMA_DIR / filename}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
