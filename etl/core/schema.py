"""The shipped JSON Schemas, and the flat column model each one implies (DESIGN.md section 3).

A column is named by its dotted JSON path (``order_lines.taxes[0].amount.amount``); the schema gives
each column its level (request, item, row), where it lands in the nested object, and its type.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[([^\]]*)\])?$")
MAX_INDEX_DIGITS = 6  # a million elements: far more than any list Connect takes
# Address and contact fields: masked wherever a value is shown back to a person.
PERSONAL_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "street",
        "street_additional_info",
        "phone",
        "email",
        "company",
        "additional_info",
    }
)


class Kind(StrEnum):
    """How a cell's text becomes a JSON value."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE_TIME = "date-time"
    CUSTOM_VALUE = "custom-value"  # typed by the sibling `type` column


class Level(StrEnum):
    REQUEST = "request"  # e.g. origin.channel_id: one value per request
    ITEM = "item"  # e.g. channel_order_id: repeated on every row of the order
    ROW = "row"  # e.g. order_lines.product.id: one value per row


Key = str | int


@dataclass(frozen=True, slots=True)
class Leaf:
    """One column of the flat format."""

    column: str
    level: Level
    keys: tuple[Key, ...]  # path inside the request / item / row object
    kind: Kind
    personal: bool


@dataclass(frozen=True, slots=True)
class FileKind:
    """A request schema seen as rows: which array holds the items and which one is one per row.

    Kinds whose request is one item per call (an action status, a document) have no envelope:
    ``request_schema`` is None and each row is one item.
    """

    name: str
    request_schema: str | None
    item_schema: str
    items_property: str  # "orders"; "" when each item is a request of its own
    row_property: str | None  # "order_lines": one row per element
    item_id: str  # "channel_order_id": a dotted path into the item
    max_items: int
    group_rows: bool = True  # rows sharing an id make one item (orders); else one row, one item
    has_origin: bool = True  # the request carries origin.channel_id / origin.channel_store_id
    singular: str = ""  # "order", for messages
    # Dotted paths of the fields that become one segment of the request's URL path.
    url_ids: tuple[str, ...] = ()

    @property
    def plural(self) -> str:
        """ "orders", "action statuses": for messages."""
        return self.singular + ("es" if self.singular.endswith("s") else "s")

    @property
    def id_keys(self) -> tuple[str, ...]:
        return tuple(self.item_id.split("."))


ORDERS = FileKind(
    name="orders",
    request_schema="upsert-orders-request.schema.json",
    item_schema="order.schema.json",
    items_property="orders",
    row_property="order_lines",
    item_id="channel_order_id",
    max_items=100,
    singular="order",
)
ACTION_STATUSES = FileKind(
    name="action-status",
    request_schema=None,
    item_schema="action-status-row.schema.json",
    items_property="",
    row_property=None,
    item_id="action_id",
    max_items=1,
    group_rows=False,
    has_origin=False,
    singular="action status",
    url_ids=("action_id",),
)
ORDER_ACTIONS = FileKind(
    name="order-actions",
    request_schema="report-order-actions-request.schema.json",
    item_schema="order-action.schema.json",
    items_property="actions",
    row_property=None,
    item_id="entity_id",
    max_items=100,
    group_rows=False,
    has_origin=False,
    singular="order action",
)
TRACK_ACTIONS = FileKind(
    name="track-actions",
    request_schema=None,
    item_schema="track-action-row.schema.json",
    items_property="",
    row_property=None,
    item_id="action_id",
    max_items=1,
    group_rows=False,
    has_origin=False,
    singular="tracked action",
    url_ids=("action_id",),
)
DOCUMENTS = FileKind(
    name="documents",
    request_schema=None,
    item_schema="document-row.schema.json",
    items_property="",
    row_property=None,
    item_id="metadata.channel_document_id",
    max_items=1,
    group_rows=False,
    has_origin=False,
    singular="document",
    url_ids=("channel_order_id", "metadata.channel_document_id"),
)
ANONYMIZATION = FileKind(
    name="anonymize",
    request_schema="anonymize-after-request.schema.json",
    item_schema="anonymize-after-item.schema.json",
    items_property="orders",
    row_property=None,
    item_id="channel_order_id",
    max_items=100,
    group_rows=False,
    has_origin=False,
    singular="order",
)


@cache
def load_schema(filename: str) -> dict[str, Any]:
    """A schema shipped in the package (works from a wheel as from a checkout)."""
    text = resources.files("etl.core").joinpath("schemas", filename).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


class UnknownColumn(ValueError):
    """A column name that is not a path in the schema; the message says why."""


class SchemaWalker:
    """Resolves ``$ref`` inside one self-contained schema document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            name = node["$ref"].removeprefix("#/$defs/")
            node = self.document["$defs"][name]
        return node

    def properties(self, node: dict[str, Any]) -> dict[str, Any]:
        node = self.resolve(node)
        props: dict[str, Any] = dict(node.get("properties", {}))
        # Discriminated variants (custom attributes) keep `value` inside if/then branches.
        for branch in node.get("allOf", []):
            for name, sub in branch.get("then", {}).get("properties", {}).items():
                props.setdefault(name, {"x-discriminated": True, **sub})
        return props

    def kind_of(self, node: dict[str, Any]) -> Kind:
        if node.get("x-discriminated"):
            return Kind.CUSTOM_VALUE
        node = self.resolve(node)
        if node.get("type") == "string" and node.get("format") == "date-time":
            return Kind.DATE_TIME
        return {
            "integer": Kind.INTEGER,
            "number": Kind.NUMBER,
            "boolean": Kind.BOOLEAN,
        }.get(str(node.get("type")), Kind.STRING)


def parse_column(column: str) -> list[tuple[str, int | None]]:
    """Split ``a.b[0].c`` into ``[("a", None), ("b", 0), ("c", None)]``."""
    segments = []
    for part in column.split("."):
        match = SEGMENT.match(part)
        if match is None:
            raise UnknownColumn(f"'{column}': '{part}' is not a field name (letters, digits, _)")
        index = match.group(2)
        segments.append((match.group(1), None if index is None else _index(column, index)))
    return segments


@dataclass(frozen=True, slots=True)
class TemplateColumn:
    """One column of `etl template`, described."""

    name: str
    required: bool  # every item needs a value in it (when the objects above it are sent)
    level: Level
    indexed: bool  # one of a list below the row: [0], [1]...


def _index(column: str, text: str) -> int:
    """``[7]``'s 7. Only 0-9 (``int`` also reads other scripts' digits), and not so many that
    ``int`` refuses them (4,300) or the list could not exist."""
    if not text.isascii() or not text.isdigit():
        raise UnknownColumn(f"'{column}': '[{text}]' is not an index: write it with the digits 0-9")
    if len(text) > MAX_INDEX_DIGITS:
        shown = column.replace(text, text[:20] + "...", 1)
        raise UnknownColumn(
            f"'{shown}': an index of {len(text)} digits; number the elements 0, 1, 2..."
        )
    return int(text)


class FlatModel:
    """Column name -> Leaf for one file kind, and the canonical header."""

    def __init__(self, kind: FileKind) -> None:
        self.kind = kind
        self.item = SchemaWalker(load_schema(kind.item_schema))
        self.request = (
            SchemaWalker(load_schema(kind.request_schema)) if kind.request_schema else self.item
        )

    def _request_props(self) -> dict[str, Any]:
        """Request-level fields outside the items (``origin``); none for kinds without envelope."""
        if self.kind.request_schema is None:
            return {}
        props = self.request.properties(self.request.document)
        return {name: node for name, node in props.items() if name != self.kind.items_property}

    def leaf(self, column: str) -> Leaf:
        """The Leaf a column name stands for, or UnknownColumn saying what is wrong."""
        segments = parse_column(column)
        first = segments[0][0]
        request_props = self._request_props()
        if first in request_props:
            return self._walk(column, segments, request_props, Level.REQUEST, allow_row=False)
        return self._walk(column, segments, self.item.properties(self.item.document), Level.ITEM)

    def _walk(
        self,
        column: str,
        segments: list[tuple[str, int | None]],
        props: dict[str, Any],
        level: Level,
        allow_row: bool = True,
    ) -> Leaf:
        walker = self.request if level is Level.REQUEST else self.item
        keys: list[Key] = []
        node: dict[str, Any] = {}
        for position, (name, index) in enumerate(segments):
            if name not in props:
                where = ".".join(n for n, _ in segments[:position]) or "the top level"
                raise UnknownColumn(
                    f"'{column}': there is no field '{name}' under {where}"
                    + _suggest(name, list(props))
                )
            node = props[name]
            resolved = walker.resolve(node)
            is_last = position == len(segments) - 1
            if resolved.get("type") == "array":
                is_row_array = (
                    allow_row
                    and level is Level.ITEM
                    and not keys
                    and name == self.kind.row_property
                )
                if is_row_array:
                    if index is not None:
                        raise UnknownColumn(
                            f"'{column}': {name} is one row per element; drop the [{index}]"
                        )
                    level = Level.ROW
                    keys = []
                elif index is None:
                    if is_last and self._is_string_list(resolved):
                        keys.append(name)
                        break
                    raise UnknownColumn(
                        f"'{column}': {name} is a list; name the element: {name}[0]"
                    )
                else:
                    keys.extend([name, index])
                items = walker.resolve(resolved.get("items", {}))
                if is_last:
                    raise UnknownColumn(
                        f"'{column}': {name} holds objects; name one of their fields"
                    )
                props = walker.properties(items)
                continue
            if index is not None:
                raise UnknownColumn(f"'{column}': {name} is not a list; drop the [{index}]")
            keys.append(name)
            if resolved.get("type") == "object" or "properties" in resolved:
                if is_last:
                    raise UnknownColumn(f"'{column}': {name} is an object; name one of its fields")
                props = walker.properties(resolved)
            elif not is_last:
                raise UnknownColumn(f"'{column}': {name} is a single value, not an object")
        last_name = next(k for k in reversed(keys) if isinstance(k, str))
        return Leaf(
            column=column,
            level=level,
            keys=tuple(keys),
            kind=walker.kind_of(node),
            personal=last_name in PERSONAL_FIELDS,
        )

    @staticmethod
    def _is_string_list(node: dict[str, Any]) -> bool:
        return bool(node.get("items", {}).get("type") == "string")

    def template(self) -> list[str]:
        """Every column of the kind, arrays below row level shown with index [0]."""
        return [column.name for column in self.described()]

    def described(self) -> list[TemplateColumn]:
        """Every column of the template with what a person filling it must know: whether every
        item needs it, its level, whether it is indexed."""
        request = self.request.resolve(self.request.document)
        required = set(request.get("required", [])) if self.kind.request_schema else set()
        columns: list[TemplateColumn] = []
        for name, node in self._request_props().items():
            columns.extend(
                self._described(self.request, name, node, Level.REQUEST, name in required)
            )
        item_props = self.item.properties(self.item.document)
        # The id first and the per-row fields last: the order a person reads an export in.
        ordered = sorted(
            item_props,
            key=lambda n: (
                self.kind.group_rows and n != self.kind.id_keys[0],
                n == self.kind.row_property,
            ),
        )
        item_required = set(self.item.resolve(self.item.document).get("required", []))
        for name in ordered:
            level = Level.ROW if name == self.kind.row_property else Level.ITEM
            columns.extend(
                self._described(
                    self.item, name, item_props[name], level, name in item_required, top=True
                )
            )
        return columns

    def _described(
        self,
        walker: SchemaWalker,
        prefix: str,
        node: dict[str, Any],
        level: Level,
        required: bool,
        top: bool = False,
        indexed: bool = False,
    ) -> list[TemplateColumn]:
        """The columns under one field; ``required``: the field and all above it are."""
        if node.get("x-discriminated"):
            return [TemplateColumn(prefix, required, level, indexed)]
        resolved = walker.resolve(node)
        if resolved.get("type") == "array":
            items = walker.resolve(resolved.get("items", {}))
            if items.get("type") == "string":
                return [TemplateColumn(prefix, required, level, indexed)]
            rows = top and prefix == self.kind.row_property
            name = prefix if rows else f"{prefix}[0]"
            # An element of a list below the row is needed only if the list must hold one.
            needed = required and (rows or int(resolved.get("minItems", 0)) > 0)
            inner = set(items.get("required", []))
            return [
                col
                for sub, subnode in walker.properties(items).items()
                for col in self._described(
                    walker,
                    f"{name}.{sub}",
                    subnode,
                    level,
                    needed and sub in inner,
                    indexed=indexed or not rows,
                )
            ]
        if resolved.get("type") == "object" or "properties" in resolved:
            inner = set(resolved.get("required", []))
            return [
                col
                for sub, subnode in walker.properties(resolved).items()
                for col in self._described(
                    walker,
                    f"{prefix}.{sub}",
                    subnode,
                    level,
                    required and sub in inner,
                    indexed=indexed,
                )
            ]
        return [TemplateColumn(prefix, required, level, indexed)]

    def required_under(self, column: str) -> list[str]:
        """The columns to fill for the object a dotted path names to be sent whole
        (``fulfillment`` -> ``fulfillment.type``): its required fields, down to the leaves, with
        the path's own indexes; [] when the path names no object."""
        try:
            walker, node, level = self._object(column)
        except UnknownColumn:
            return []
        described = self._described(walker, column, node, level, required=True)
        return [c.name for c in described if c.required]

    def _object(self, column: str) -> tuple[SchemaWalker, dict[str, Any], Level]:
        """The schema of the object ``column`` names (an element when it ends in an index)."""
        segments = parse_column(column)
        request_props = self._request_props()
        walker, level = self.item, Level.ITEM
        props = self.item.properties(self.item.document)
        if segments[0][0] in request_props:
            walker, level, props = self.request, Level.REQUEST, request_props
        node: dict[str, Any] = {}
        for position, (name, index) in enumerate(segments):
            if name not in props:
                raise UnknownColumn(column)
            node = walker.resolve(props[name])
            if node.get("type") == "array":
                rows = level is Level.ITEM and position == 0 and name == self.kind.row_property
                if index is None and not rows:
                    raise UnknownColumn(column)
                level = Level.ROW if rows else level
                node = walker.resolve(node.get("items", {}))
            elif index is not None:
                raise UnknownColumn(column)
            props = walker.properties(node)
        if node.get("type") != "object" and "properties" not in node:
            raise UnknownColumn(column)
        return walker, node, level

    def required_empty_objects(self) -> dict[Level, list[tuple[Key, ...]]]:
        """Required object properties with no required fields of their own (``shipping_info``).

        Such an object is sent as ``{}`` when all its columns are empty (DESIGN.md section 3).
        """
        found: dict[Level, list[tuple[Key, ...]]] = {Level.ITEM: [], Level.ROW: []}
        item = self.item.resolve(self.item.document)
        for name in item.get("required", []):
            node = self.item.resolve(item["properties"][name])
            if node.get("type") == "object" and not node.get("required"):
                found[Level.ITEM].append((name,))
        if self.kind.row_property:
            row_array = self.item.resolve(item["properties"][self.kind.row_property])
            row = self.item.resolve(row_array["items"])
            for name in row.get("required", []):
                node = self.item.resolve(row["properties"][name])
                if node.get("type") == "object" and not node.get("required"):
                    found[Level.ROW].append((name,))
        return found


def _suggest(name: str, candidates: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


@cache
def flat_model(kind: FileKind) -> FlatModel:
    return FlatModel(kind)
