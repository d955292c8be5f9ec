"""Table of text cells -> nested items (orders) with their source rows. Schema-driven and pure.

Rows are grouped by origin and item id; item-level columns must agree on every row of an item;
row-level columns become one element of the row array (``order_lines``) each; indexed columns
(``taxes[0].code``) build arrays. Problems become Violations on the item, never exceptions.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.core.codes import Problem
from etl.core.errors import UnreadableFile
from etl.core.kinds import FIX_COLUMN
from etl.core.models import MappedItem, Origin, Violation
from etl.core.schema import FileKind, FlatModel, Key, Kind, Leaf, Level, UnknownColumn, flat_model
from etl.read.tables import Table
from etl.settings.options import ColumnMapping, Conventions
from etl.transform.convert import (
    ConversionError,
    convert,
    convert_custom_value,
    refuse_control_characters,
    visible,
)

CHUNK_ITEMS = 5000
MASK = "***"
# The tax object of the OpenAPI file (TaxRequest): "Tax rate expressed as a decimal (e.g. `0.20`
# for 20%)". A rate above 1 is almost surely a percentage: said, but sent as it is.
TAX_ARRAYS = frozenset({"taxes", "shipping_taxes"})


def is_tax_rate(leaf: Leaf) -> bool:
    """A tax object's ``rate`` (``order_lines.taxes[0].rate``, ``shipping_taxes``...)."""
    keys = leaf.keys
    return (
        leaf.kind is Kind.NUMBER
        and len(keys) >= 3
        and keys[-1] == "rate"
        and keys[-3] in TAX_ARRAYS
    )


def percent_rate_warning(
    source: str, rows: tuple[int, ...], item_id: str, path: tuple[Key, ...], text: str
) -> Violation:
    """Problem.RATE_LOOKS_LIKE_PERCENT for the rate ``text`` (above 1) at ``path``, as sent."""
    where = json_path(path)
    return Violation(
        file=source,
        rows=rows,
        item_id=item_id or None,
        path=where,
        code=Problem.RATE_LOOKS_LIKE_PERCENT,
        message=(
            f"{where[2:]}: {text} looks like a percentage: Connect's tax rate is a decimal (0.20 "
            "for 20%); sent as it is (a warning: the order is not held back), check the export"
        ),
        value=visible(text),
    )


def mask(text: str) -> str:
    """Personal data shown back to a person keeps only its first character."""
    return text[:1] + MASK if text else text


def json_path(keys: tuple[Key, ...]) -> str:
    out = "$"
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else f".{key}"
    return out


Indexes = dict[tuple[Key, ...], tuple[int, ...]]


def user_keys(keys: tuple[Key, ...], indexes: Indexes | None) -> tuple[Key, ...]:
    """A path in a body as sent (arrays without gaps) -> the same path with the user's indexes
    (``custom_attributes[0]`` -> ``custom_attributes[7]`` when only [7] was filled)."""
    if not indexes:
        return keys
    out: list[Key] = []
    for position, key in enumerate(keys):
        if isinstance(key, int):
            known = indexes.get(keys[:position])
            if known is not None and key < len(known):
                key = known[key]
        out.append(key)
    return tuple(out)


@dataclass(slots=True)
class _Column:
    leaf: Leaf
    cells: list[str]
    conventions: Conventions
    tax_rate: bool = False


@dataclass(frozen=True, slots=True)
class PlanColumn:
    """One column of the flat model filled from a source column (or a constant when set).
    ``native``: the source column is stored as a date or timestamp (Parquet), whose text is
    ISO 8601 whatever the date formats say. ``values``: its value map (word, value), applied
    wherever its cells are read (``source_texts``), before they are typed."""

    leaf: Leaf
    source: str
    constant: str | None = None
    native: bool = False
    values: tuple[tuple[str, str], ...] = ()


def source_texts(column: PlanColumn, texts: pa.Array) -> pa.Array:
    """A source column's texts as the plan reads them: each word of its value map replaced by
    its value, in Arrow."""
    if not column.values:
        return texts
    words, values = zip(*column.values, strict=True)
    found = pc.index_in(texts, value_set=pa.array(words, pa.string()))
    replaced = pa.array(values, pa.string()).take(found)
    return pc.if_else(pc.is_null(found), texts, replaced)


DATED = (Kind.DATE_TIME, Kind.CUSTOM_VALUE)  # the kinds a date format reads (a DATE custom value)


def column_conventions(
    conventions: Conventions, mapping: ColumnMapping, column: PlanColumn
) -> Conventions:
    """The file's conventions as one column is read: with its own date format ([formats]), else
    the file's; with none for a native date or timestamp."""
    if column.leaf.kind not in DATED:
        return conventions
    wanted = None if column.native else mapping.formats.get(column.source, conventions.date_format)
    if wanted == conventions.date_format:
        return conventions
    return replace(conventions, date_format=wanted)


def resolve_columns(
    header: list[str],
    source: str,
    kind: FileKind,
    mapping: ColumnMapping,
    native: Collection[str] = (),
) -> list[PlanColumn]:
    """The schema leaf behind each source column and constant, in header order then constants;
    raise UnreadableFile naming every unknown or misplaced column. ``native``: the columns
    stored as dates or timestamps."""
    model = flat_model(kind)
    problems: list[str] = []
    columns: list[PlanColumn] = []
    seen: dict[str, str] = {}
    for name in header:
        if name in mapping.ignore or name == FIX_COLUMN:  # a rejected file's advice column
            continue
        for target in mapping.renames.get(name, (name,)):
            if target in seen:
                problems.append(f"'{name}' and '{seen[target]}' both fill {target}")
                continue
            seen[target] = name
            try:
                leaf = model.leaf(target)
            except UnknownColumn as error:
                renamed = f" (renamed from '{name}')" if target != name else ""
                problems.append(f"{error}{renamed}")
                continue
            if name in mapping.formats and leaf.kind not in DATED:
                problems.append(f"[formats] '{name}': {target} is not a date-time")
            values = mapping.values.get(name, ())
            columns.append(PlanColumn(leaf, name, native=name in native, values=values))
    for target, value in mapping.constants.items():
        if target in seen:
            problems.append(f"{target} is both a column ('{seen[target]}') and a constant")
            continue
        try:
            leaf = model.leaf(target)
        except UnknownColumn as error:
            problems.append(f"constant {error}")
            continue
        columns.append(PlanColumn(leaf, target, value))
    if problems:
        raise UnreadableFile(
            source,
            "unknown or misplaced columns (fix the header, or rename/ignore them in a mapping "
            "file): " + "; ".join(problems),
        )
    if kind.group_rows and not any(c.leaf.keys == kind.id_keys for c in columns):
        raise UnreadableFile(
            source,
            f"there is no {kind.item_id} column, so rows cannot be grouped into "
            f"{kind.name}; `etl template {kind.name}` prints the expected header",
        )
    return columns


class Mapper:
    """Builds items from one table; construct once per file, then iterate ``chunks()``."""

    def __init__(
        self,
        table: Table,
        source: str,
        kind: FileKind,
        conventions: Conventions,
        mapping: ColumnMapping | None = None,
        default_origin: Origin | None = None,
        plan: list[PlanColumn] | None = None,
    ) -> None:
        """``plan``: the columns as resolved already (else from the table's header)."""
        self.table = table
        self.source = source
        self.kind = kind
        self.model: FlatModel = flat_model(kind)
        self.conventions = conventions
        self.mapping = mapping or ColumnMapping()
        self.default_origin = default_origin
        if plan is None:
            plan = resolve_columns(table.columns, source, kind, self.mapping, table.native)
        self.plan = plan
        self.columns = self._resolve_columns(plan)
        # A custom attribute's value is typed once the body is built, where only its keys say
        # which column (and so which date format) it came from.
        self._value_conventions = {
            c.leaf.keys: c.conventions for c in self.columns if c.leaf.kind is Kind.CUSTOM_VALUE
        }
        self.empty_objects = self.model.required_empty_objects()

    # --- columns --------------------------------------------------------------------------------

    def _resolve_columns(self, plan: list[PlanColumn]) -> list[_Column]:
        return [
            _Column(
                column.leaf,
                _mapped(self.table.cells[column.source], column.values)
                if column.constant is None
                else [column.constant] * self.table.num_rows,
                column_conventions(self.conventions, self.mapping, column),
                is_tax_rate(column.leaf),
            )
            for column in plan
        ]

    # --- grouping -------------------------------------------------------------------------------

    def origin_of(self, row: int) -> Origin | None:
        if not self.kind.has_origin:
            # Its requests carry none (a document's origin is in its body): a default origin
            # would only show in items.csv, as if it had been sent.
            return None
        values = {"channel_id": "", "channel_store_id": ""}
        for column in self.columns:
            if column.leaf.level is Level.REQUEST and column.leaf.keys[0] == "origin":
                values[str(column.leaf.keys[-1])] = column.cells[row]
        default = self.default_origin
        channel = values["channel_id"] or (default.channel_id if default else "")
        store = values["channel_store_id"] or (default.channel_store_id if default else "")
        if not channel or not store:
            return None
        return Origin(channel, store)

    def _groups(self) -> list[tuple[Origin | None, str, list[int]]]:
        """(origin, id, rows) of each item: rows sharing origin and id for kinds that group
        (orders), one row each for the others (an action status, a document, ...)."""
        id_column = next((c for c in self.columns if c.leaf.keys == self.kind.id_keys), None)
        if not self.kind.group_rows:
            return [
                (self.origin_of(row), id_column.cells[row] if id_column else "", [row])
                for row in range(self.table.num_rows)
            ]
        assert id_column is not None  # resolve_columns refuses a file without it
        groups: dict[tuple[Origin | None, str], list[int]] = {}
        for row in range(self.table.num_rows):
            key = (self.origin_of(row), id_column.cells[row])
            groups.setdefault(key, []).append(row)
        return [(origin, item_id, rows) for (origin, item_id), rows in groups.items()]

    # --- building -------------------------------------------------------------------------------

    def items(self) -> Iterator[MappedItem]:
        """Every item of the table, in the order its first row appears."""
        line_ids: dict[tuple[str, str], tuple[MappedItem, int, int]] = {}
        for origin, item_id, rows in self._groups():
            item = self.build_item(origin, item_id, rows)
            self._check_unique_line_ids(item, rows, line_ids)
            yield item

    def chunks(self, size: int = CHUNK_ITEMS) -> Iterator[list[MappedItem]]:
        """Items in chunks, so later stages can work while the next chunk is built."""
        chunk: list[MappedItem] = []
        for item in self.items():
            chunk.append(item)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _violation(
        self, rows: list[int], item_id: str, path: str, code: str, message: str, value: str | None
    ) -> Violation:
        return Violation(
            file=self.source,
            rows=tuple(self.table.row_numbers[r] for r in rows),
            item_id=item_id or None,
            path=path,
            code=code,
            message=message,
            value=value,
        )

    def build_item(self, origin: Origin | None, item_id: str, rows: list[int]) -> MappedItem:
        spreadsheet_rows = tuple(self.table.row_numbers[r] for r in rows)
        item = MappedItem(
            item_id=item_id, origin=origin, body={}, rows=spreadsheet_rows, source=self.source
        )
        if not item_id and self.kind.group_rows:
            item.violations.append(
                self._violation(
                    rows,
                    "",
                    f"$.{self.kind.item_id}",
                    Problem.MISSING_ID,
                    f"{self.kind.item_id} is empty, so these rows belong to no "
                    f"{self.kind.name[:-1]}",
                    None,
                )
            )
        if origin is None and self.kind.has_origin:
            item.violations.append(
                self._violation(
                    rows[:1],  # the order's first row, as for every order-level problem
                    item_id,
                    "$",
                    Problem.MISSING_ORIGIN,
                    "no origin: fill origin.channel_id and origin.channel_store_id, or set "
                    "CONNECT_CHANNEL_ID and CONNECT_STORE_ID",
                    None,
                )
            )
        first = rows[0]
        row_bodies: list[dict[Any, Any]] = [{} for _ in rows]
        for column in self.columns:
            leaf = column.leaf
            if leaf.level is Level.REQUEST:
                self._check_request_cell(item, column, first)
                continue
            if leaf.level is Level.ITEM:
                text = column.cells[first]
                self._check_agreement(item, column, rows)
                if text != "":
                    self._put(item, item.body, column, text, [first], leaf.keys)
            else:
                for position, row in enumerate(rows):
                    text = column.cells[row]
                    if text != "":
                        path = (self.kind.row_property or "", position, *leaf.keys)
                        self._put(item, row_bodies[position], column, text, [row], path)
        if self.kind.row_property:
            item.body[self.kind.row_property] = row_bodies
        self._finish(item, rows, row_bodies)
        return item

    def _put(
        self,
        item: MappedItem,
        target: dict[Any, Any],
        column: _Column,
        text: str,
        rows: list[int],
        path: tuple[Key, ...],
    ) -> None:
        value: Any = text
        leaf = column.leaf
        if leaf.kind is not Kind.CUSTOM_VALUE:  # typed (and checked) once its type is known
            try:
                value = convert(text, leaf.kind, column.conventions)
            except ConversionError as error:
                item.violations.append(
                    self._conversion_violation(item, rows, leaf, path, error, text)
                )
                # Keep the text: the item is invalid anyway, and the schema then reports nothing
                # new about a field whose problem is already explained.
            else:
                if column.tax_rate and value > 1:
                    numbers = tuple(self.table.row_numbers[r] for r in rows)
                    warning = percent_rate_warning(self.source, numbers, item.item_id, path, text)
                    item.warnings.append(warning)
        node = target
        for key in leaf.keys[:-1]:
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            node = child
        node[leaf.keys[-1]] = value

    def _conversion_violation(
        self,
        item: MappedItem,
        rows: list[int],
        leaf: Leaf,
        path: tuple[Key, ...],
        error: ConversionError,
        text: str,
    ) -> Violation:
        where = json_path(path)
        message = error.message
        shown = text
        if leaf.personal:
            message = message.replace(text, mask(text))
            shown = mask(text)
        return self._violation(
            rows, item.item_id, where, error.code, f"{where[2:]}: {message}", visible(shown)
        )

    def _check_request_cell(self, item: MappedItem, column: _Column, row: int) -> None:
        """A request-level cell (the origin) is sent as it is, but not with a control character."""
        text = column.cells[row]
        try:
            refuse_control_characters(text)
        except ConversionError as error:
            item.violations.append(
                self._conversion_violation(item, [row], column.leaf, column.leaf.keys, error, text)
            )

    def _check_agreement(self, item: MappedItem, column: _Column, rows: list[int]) -> None:
        first = column.cells[rows[0]]
        differing = [r for r in rows[1:] if column.cells[r] != first]
        if not differing:
            return
        leaf = column.leaf
        other = column.cells[differing[0]]
        shown_first, shown_other = (mask(first), mask(other)) if leaf.personal else (first, other)
        first_row = self.table.row_numbers[rows[0]]
        rows_text = ", ".join(str(self.table.row_numbers[r]) for r in differing[:10])
        item.violations.append(
            self._violation(
                [rows[0], *differing],
                item.item_id,
                json_path(leaf.keys),
                Problem.ROWS_DISAGREE,
                f"{leaf.column} must be the same on every row of {self.kind.item_id} "
                f"'{item.item_id}': row {first_row} has '{shown_first}' but row(s) {rows_text} "
                f"have '{shown_other}'",
                shown_other,
            )
        )

    def _finish(self, item: MappedItem, rows: list[int], row_bodies: list[dict[Any, Any]]) -> None:
        for keys in self.empty_objects[Level.ITEM]:
            item.body.setdefault(str(keys[0]), {})
        for body in row_bodies:
            for keys in self.empty_objects[Level.ROW]:
                body.setdefault(str(keys[0]), {})
        gaps: Indexes = {}
        listify(item.body, (), gaps)
        item.indexes = gaps or None
        self._type_custom_values(item, item.body, [rows[0]], ())
        for position, body in enumerate(row_bodies):
            prefix: tuple[Key, ...] = (self.kind.row_property or "", position)
            self._type_custom_values(item, body, [rows[position]], prefix)

    def _type_custom_values(
        self, item: MappedItem, body: dict[str, Any], rows: list[int], prefix: tuple[Key, ...]
    ) -> None:
        attributes = body.get("custom_attributes")
        if not isinstance(attributes, list):
            return
        for index, attribute in enumerate(attributes):
            text = attribute.get("value")
            if not isinstance(text, str):
                continue
            keys = user_keys((*prefix, "custom_attributes", index, "value"), item.indexes)
            conventions = self._value_conventions.get(keys[len(prefix) :], self.conventions)
            try:
                attribute["value"] = convert_custom_value(text, attribute.get("type"), conventions)
            except ConversionError as error:
                where = json_path(keys)
                item.violations.append(
                    self._violation(
                        rows,
                        item.item_id,
                        where,
                        error.code,
                        f"{where[2:]}: {error.message}",
                        visible(text),
                    )
                )

    def _check_unique_line_ids(
        self,
        item: MappedItem,
        rows: list[int],
        seen: dict[tuple[str, str], tuple[MappedItem, int, int]],
    ) -> None:
        if not self.kind.row_property:
            return
        line_id_column = f"{self.kind.row_property}.channel_{self.kind.name[:-1]}_line_id"
        channel = item.origin.channel_id if item.origin else ""
        for position, line in enumerate(item.body.get(self.kind.row_property, [])):
            line_id = line.get(f"channel_{self.kind.name[:-1]}_line_id")
            if not isinstance(line_id, str):
                continue
            row = rows[position]
            previous = seen.setdefault((channel, line_id), (item, row, position))
            if previous[1] == row:
                continue
            other_item, other_row, other_position = previous
            first_row = self.table.row_numbers[other_row]
            this_row = self.table.row_numbers[row]
            message = (
                f"{line_id_column} '{line_id}' appears on rows {first_row} and {this_row}; "
                "Connect needs it unique across all orders of the channel"
            )
            field = f"channel_{self.kind.name[:-1]}_line_id"
            for target, at in ((item, position), (other_item, other_position)):
                target.violations.append(
                    self._violation(
                        [other_row, row],
                        target.item_id,
                        f"$.{self.kind.row_property}[{at}].{field}",
                        Problem.DUPLICATE_LINE_ID,
                        message,
                        line_id,
                    )
                )


def _mapped(cells: list[str], values: tuple[tuple[str, str], ...]) -> list[str]:
    """Cells with the words of a value map replaced by their values (``source_texts``)."""
    if not values:
        return cells
    words = dict(values)
    return [words.get(cell, cell) for cell in cells]


def listify(node: Any, path: tuple[Key, ...] = (), gaps: Indexes | None = None) -> Any:
    """Turn dicts keyed by array index into lists, closing gaps (an empty element is absent);
    ``gaps`` gets the user's indexes of each array that had some, by its path as sent."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and value and isinstance(next(iter(value)), int):
                order = sorted(value)
                if gaps is not None and order[-1] != len(order) - 1:
                    gaps[(*path, key)] = tuple(order)
                node[key] = [
                    listify(value[i], (*path, key, at), gaps) for at, i in enumerate(order)
                ]
            else:
                listify(value, (*path, key), gaps)
    elif isinstance(node, list):
        for at, element in enumerate(node):
            listify(element, (*path, at), gaps)
    return node
