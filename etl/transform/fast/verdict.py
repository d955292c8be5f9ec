"""An item's schema verdict from its parts, for items built column by column (``assemble``).

Where the schema's objects and arrays only say which fields exist and how many elements an array
has (``type``, ``properties``, ``required``, ``items``, ``minItems``, ``maxItems``), an item is
valid exactly when (1) its structure is: which fields are present, checked once per shape against
the schema with every value accepted, and (2) each value is valid against the schema of its own
field, checked once per distinct value. A part of the schema that says more (the custom
attribute's ``if``/``then`` on its sibling ``type``) is a unit, checked whole once per distinct
content. Each check is jsonschema-rs on the schema's own words; nothing is re-implemented.

Only "valid" is taken from here: an item not found valid is validated the ordinary way, and the
equivalence test checks that every item found valid here is valid for jsonschema-rs too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs

from etl.core.schema import FileKind, Key, Kind, Leaf, Level, load_schema

ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "examples",
        "default",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$id",
        "$schema",
        "$defs",
        "x-discriminated",
    }
)
OBJECT_WORDS = frozenset({"type", "properties", "required"}) | ANNOTATIONS
ARRAY_WORDS = frozenset({"type", "items", "minItems", "maxItems"}) | ANNOTATIONS
ALWAYS = {  # a value of this kind always has this JSON type
    Kind.STRING: "string",
    Kind.INTEGER: "integer",
    Kind.NUMBER: "number",
    Kind.BOOLEAN: "boolean",
}


@dataclass
class _Node:
    """A structural object or array of the schema, as far as columns reach into it."""

    schema: dict[str, Any]
    children: dict[Key, _Node | None] = field(default_factory=dict)  # None: a value or a unit


@dataclass
class Unit:
    """A part of the item checked whole: its path and the columns (of one level) inside it."""

    path: tuple[Key, ...]
    members: list[int]
    validator: Any
    many: Any  # the same schema over a list of contents: one call for a chunk's contents


class Verdicts:
    """The checks for one file's columns; ``usable`` is False when the schema does not allow
    splitting (then every item is validated whole)."""

    def __init__(
        self,
        kind: FileKind,
        item_leaves: list[Leaf],
        row_leaves: list[Leaf],
        formats: dict[str, Callable[[str], bool]],
    ) -> None:
        self.kind = kind
        self.formats = formats
        self.root = load_schema(kind.item_schema)
        self.defs: dict[str, Any] = self.root.get("$defs", {})
        # Validators by their schema's JSON: the columns of a repeated part (3,000 custom
        # attributes' ids) share one schema, and a compile is ~1 ms; a validator keeps no state.
        self._compiled: dict[str, Any] = {}
        self.usable = True
        item = _Node(self._resolve(self.root) or {})
        if not self._structural(item.schema):
            self.usable = False
            return
        self.checks: dict[Level, list[Any]] = {}
        self.units: dict[Level, list[Unit]] = {}
        self.in_unit: dict[Level, set[int]] = {}
        row_root = item
        if kind.row_property:
            row_root = self._row_root(item)
        for level, leaves, root in (
            (Level.ITEM, item_leaves, item),
            (Level.ROW, row_leaves, row_root),
        ):
            self.checks[level] = []
            self.units[level] = []
            self.in_unit[level] = set()
            for index, leaf in enumerate(leaves):
                self.checks[level].append(self._place(level, index, leaf, root))
        if not self.usable:
            return
        self.row_structure = self._compile(self._structure(row_root)) if kind.row_property else None
        if kind.row_property:  # the rows are checked on their own: any element will do here
            item.children[str(kind.row_property)].children["*"] = None  # type: ignore[union-attr]
        self.item_structure = self._compile(self._structure(item))

    # --- the schema, walked ----------------------------------------------------------------------

    def _resolve(self, node: Any) -> dict[str, Any] | None:
        while isinstance(node, dict) and "$ref" in node:
            if set(node) - ANNOTATIONS - {"$ref"}:
                return None  # $ref with constraints beside it: not split
            reference = str(node["$ref"])
            if not reference.startswith("#/$defs/"):
                return None
            node = self.defs.get(reference.removeprefix("#/$defs/"))
        return node if isinstance(node, dict) else None

    @staticmethod
    def _structural(node: dict[str, Any]) -> bool:
        words = set(node)
        if node.get("type") == "object" or "properties" in node:
            return words <= OBJECT_WORDS
        if node.get("type") == "array":
            return words <= ARRAY_WORDS
        return False

    def _row_root(self, item: _Node) -> _Node:
        name = str(self.kind.row_property)
        rows = self._resolve(item.schema.get("properties", {}).get(name))
        elements = self._resolve(rows.get("items")) if rows else None
        if rows is None or elements is None or not self._structural(rows):
            self.usable = False
            return item
        if not self._structural(elements):
            self.usable = False
            return item
        array = _Node(rows)
        element = _Node(elements)
        array.children["*"] = element
        item.children[name] = array
        return element

    def _place(self, level: Level, index: int, leaf: Leaf, root: _Node) -> Any:
        """Walk a column's path; return the validator of its value (None: always valid)."""
        node = root
        for depth, key in enumerate(leaf.keys):
            is_last = depth == len(leaf.keys) - 1
            properties = node.schema.get("properties", {})
            sub = properties.get(key) if isinstance(key, str) else node.schema.get("items")
            if isinstance(key, str) and key not in properties:
                self.usable = False  # a column the schema does not know: validate whole
                return None
            if isinstance(key, int) and node.schema.get("type") != "array":
                self.usable = False
                return None
            resolved = self._resolve(sub)
            child_key: Key = key if isinstance(key, str) else "*"
            if resolved is None:
                self.usable = False
                return None
            if is_last:
                node.children[child_key] = None
                if set(resolved) - ANNOTATIONS == {"type"} and resolved["type"] == ALWAYS.get(
                    leaf.kind
                ):
                    return None
                # One call checks every distinct value of a chunk; one by one only on a failure.
                return (
                    self._compile(copy.deepcopy(sub)),
                    self._compile({"type": "array", "items": copy.deepcopy(sub)}),
                )
            if not self._structural(resolved):
                path = leaf.keys[: depth + 1]
                unit = next((u for u in self.units[level] if u.path == path), None)
                if unit is None:
                    unit = Unit(
                        path,
                        [],
                        self._compile(copy.deepcopy(sub)),
                        self._compile({"type": "array", "items": copy.deepcopy(sub)}),
                    )
                    self.units[level].append(unit)
                    node.children[child_key] = None
                unit.members.append(index)
                self.in_unit[level].add(index)
                return None
            existing = node.children.get(child_key)
            if existing is None:
                existing = node.children[child_key] = _Node(resolved)
            node = existing
        return None

    def _structure(self, node: _Node) -> dict[str, Any]:
        """The schema of a node with every value (and unit) that columns fill accepted as is;
        what no column reaches keeps its own schema (an empty object put in for a required one)."""
        schema = {k: v for k, v in node.schema.items() if k not in ANNOTATIONS}
        if "properties" in node.schema:
            properties = dict(node.schema["properties"])
            for key, child in node.children.items():
                properties[str(key)] = True if child is None else self._structure(child)
            schema["properties"] = properties
        if node.schema.get("type") == "array" and "*" in node.children:
            child = node.children["*"]
            schema["items"] = True if child is None else self._structure(child)
        return schema

    def _compile(self, schema: Any) -> Any:
        if schema is True:
            return None
        key = json.dumps(schema, sort_keys=True)
        if key not in self._compiled:
            document = {"$schema": self.root.get("$schema"), "$defs": self.defs, **schema}
            self._compiled[key] = jsonschema_rs.validator_for(
                document, validate_formats=True, formats=self.formats
            )
        return self._compiled[key]


def nested(values: list[tuple[tuple[Key, ...], Any]]) -> Any:
    """A unit's content from its (relative path, value) pairs, as Mapper builds and lists it."""
    from etl.transform.mapping import listify

    root: dict[Any, Any] = {}
    for keys, value in values:
        node = root
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return listify(root)
