"""JSON lines -> items: each line is already one nested item (one element of the request's list).

Nothing is typed or renamed: the values are sent as written, once the schema has passed them. The
item's origin is its ``origin`` key (as the flat format's ``origin.*`` columns), else the
mapping's constants, else the default origin. A mapping file works as for a table: ``[constants]``
fill the fields a line leaves out, ``ignore`` drops keys; ``[columns]``, ``[values]`` and
``[formats]`` name an export's columns, which JSON lines have none of, and are refused.
"""

from __future__ import annotations

from typing import Any

from etl.core.codes import Problem
from etl.core.errors import UnreadableFile
from etl.core.models import MappedItem, Origin, Violation
from etl.core.schema import FileKind, Leaf, Level, UnknownColumn, flat_model
from etl.read.jsonl import JsonLine
from etl.settings.options import ColumnMapping, Conventions
from etl.transform.convert import ConversionError, convert, refuse_control_characters, visible

ORIGIN_KEYS = ("channel_id", "channel_store_id")


def nested_items(
    lines: list[JsonLine],
    source: str,
    kind: FileKind,
    mapping: ColumnMapping,
    conventions: Conventions,
    default_origin: Origin | None,
) -> list[MappedItem]:
    """One item per line, with the problems found before validation (a line that is not JSON,
    no origin); UnreadableFile for a mapping that cannot apply to JSON lines."""
    constants = _constants(source, kind, mapping, conventions)
    origin_constants = {
        str(leaf.keys[-1]): value for leaf, value in constants if leaf.level is Level.REQUEST
    }
    fields = [(leaf, value) for leaf, value in constants if leaf.level is not Level.REQUEST]
    items = []
    for line in lines:
        if line.value is None:
            items.append(_unreadable_line(line, source))
            continue
        body = line.value
        for key in mapping.ignore:
            body.pop(key, None)
        raw_origin = body.pop("origin", None) if kind.has_origin else None
        for leaf, value in fields:
            _fill(body, leaf, value, kind.row_property)
        raw_id = body.get(kind.item_id, "")
        item_id = raw_id if isinstance(raw_id, str) else str(raw_id)
        item = MappedItem(item_id, None, body, (line.number,), source)
        if kind.has_origin:
            item.origin = _origin(item, raw_origin, origin_constants, default_origin)
        _refuse_control_characters(item, body, "$")
        items.append(item)
    _refuse_repeated_line_ids(items, kind)
    return items


def _refuse_control_characters(item: MappedItem, node: Any, where: str) -> None:
    """CONTROL_CHARACTER for each text holding one, as the flat path refuses such a cell."""
    if isinstance(node, str):
        try:
            refuse_control_characters(node)
        except ConversionError as error:
            item.violations.append(
                Violation(
                    item.source,
                    item.rows,
                    item.item_id or None,
                    where,
                    error.code,
                    f"{where[2:] or 'the order'}: {error.message}",
                    visible(node),
                )
            )
    elif isinstance(node, dict):
        for key, value in node.items():
            _refuse_control_characters(item, value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _refuse_control_characters(item, value, f"{where}[{index}]")


def _refuse_repeated_line_ids(items: list[MappedItem], kind: FileKind) -> None:
    """DUPLICATE_LINE_ID, as the flat path says it: Connect wants a line id unique per channel,
    and a request holding one twice is refused whole."""
    if not kind.row_property:
        return
    field = f"channel_{kind.name[:-1]}_line_id"
    seen: dict[tuple[str, str], tuple[MappedItem, int]] = {}
    for item in items:
        lines = item.body.get(kind.row_property)
        channel = item.origin.channel_id if item.origin else ""
        for position, line in enumerate(lines if isinstance(lines, list) else []):
            line_id = line.get(field) if isinstance(line, dict) else None
            if not isinstance(line_id, str) or not line_id:
                continue
            first = seen.setdefault((channel, line_id), (item, position))
            if first[0] is item and first[1] == position:
                continue
            rows = (first[0].rows[0], item.rows[0])
            message = (
                f"{kind.row_property}.{field} '{line_id}' appears on lines {rows[0]} and "
                f"{rows[1]}; Connect needs it unique across all orders of the channel"
            )
            for target, at in ((first[0], first[1]), (item, position)):
                target.violations.append(
                    Violation(
                        target.source,
                        rows,
                        target.item_id or None,
                        f"$.{kind.row_property}[{at}].{field}",
                        Problem.DUPLICATE_LINE_ID,
                        message,
                        line_id,
                    )
                )


def _unreadable_line(line: JsonLine, source: str) -> MappedItem:
    item = MappedItem("", None, {}, (line.number,), source)
    item.violations.append(
        Violation(source, (line.number,), None, "$", Problem.INVALID_JSON, line.problem)
    )
    return item


def _constants(
    source: str, kind: FileKind, mapping: ColumnMapping, conventions: Conventions
) -> list[tuple[Leaf, Any]]:
    refused = [
        f"[{table}]"
        for table in ("columns", "values", "formats")
        if getattr(mapping, _field(table))
    ]
    if refused:
        raise UnreadableFile(
            source,
            f"the mapping's {' and '.join(refused)} name an export's columns, and JSON lines have "
            "none: write the fields as the request names them (only [constants] and ignore apply)",
        )
    model = flat_model(kind)
    constants = []
    for path, text in mapping.constants.items():
        try:
            leaf = model.leaf(path)
        except UnknownColumn as error:
            raise UnreadableFile(source, f"constant {error}") from None
        if any(isinstance(key, int) for key in leaf.keys):
            raise UnreadableFile(
                source, f"constant {path}: an indexed field cannot fill JSON lines' own lists"
            )
        try:
            value = text if leaf.level is Level.REQUEST else convert(text, leaf.kind, conventions)
        except ConversionError as error:
            raise UnreadableFile(source, f"constant {path}: {error.message}") from None
        constants.append((leaf, value))
    return constants


def _field(table: str) -> str:
    return {"columns": "renames", "values": "values", "formats": "formats"}[table]


def _fill(body: dict[str, Any], leaf: Leaf, value: Any, row_property: str | None) -> None:
    """Set ``value`` where the item (or, for a line-level field, each of its lines) has none."""
    if leaf.level is Level.ROW:
        lines = body.get(row_property or "")
        targets = (
            [line for line in lines if isinstance(line, dict)] if isinstance(lines, list) else []
        )
    else:
        targets = [body]
    for target in targets:
        node = target
        for key in leaf.keys[:-1]:
            child = node.setdefault(str(key), {})
            if not isinstance(child, dict):
                break  # the line's own value, of another type: the schema will say so
            node = child
        else:
            node.setdefault(str(leaf.keys[-1]), value)


def _origin(
    item: MappedItem,
    raw: Any,
    constants: dict[str, str],
    default: Origin | None,
) -> Origin | None:
    given = raw if isinstance(raw, dict) else {}
    if raw is not None and not (
        isinstance(raw, dict) and all(isinstance(given.get(k, ""), str) for k in ORIGIN_KEYS)
    ):
        item.violations.append(
            Violation(
                item.source,
                item.rows,
                item.item_id or None,
                "$.origin",
                Problem.WRONG_TYPE,
                'origin must be {"channel_id": "...", "channel_store_id": "..."}',
            )
        )
        return None
    values = {
        key: given.get(key) or constants.get(key) or (getattr(default, key) if default else "")
        for key in ORIGIN_KEYS
    }
    if values["channel_id"] and values["channel_store_id"]:
        return Origin(values["channel_id"], values["channel_store_id"])
    item.violations.append(
        Violation(
            item.source,
            item.rows,
            item.item_id or None,
            "$",
            Problem.MISSING_ORIGIN,
            "no origin: give each line an origin (channel_id and channel_store_id), or set "
            "CONNECT_CHANNEL_ID and CONNECT_STORE_ID",
        )
    )
    return None
