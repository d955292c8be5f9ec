"""The quick alternative of issue 16: what a skilled engineer writes in an afternoon with Polars.

    python -m bench.compare_polars orders.csv requests.jsonl [--mapping m.toml] [--workers 2]

Read every cell as text, rename and add constants as the mapping file says, type each column by
the JSON Schema (decimal commas, spelt booleans, offsets to UTC), nest lines under their order in
Polars and write each order as JSON there; then, in worker processes, parse each order (orjson),
drop absent fields, read custom values by their type, validate with jsonschema-rs and write the
requests (100 orders of one origin each). Not part of the package: `pip install .[bench]`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import tomllib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import polars as pl

SCHEMAS = Path(__file__).resolve().parent.parent / "etl" / "core" / "schemas"
ORDER_SCHEMA = SCHEMAS / "order.schema.json"
INDEXED = re.compile(r"^(.*)\[(\d+)\]$")
TRUE, FALSE = ["true", "1", "yes"], ["false", "0", "no"]


def _leaf_schema(schema: dict[str, Any], path: str) -> dict[str, Any]:
    defs = schema.get("$defs", schema.get("definitions", {}))

    def resolved(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        return node

    node = resolved(schema)
    for part in path.split("."):
        indexed = INDEXED.match(part)
        name = indexed.group(1) if indexed else part
        if name not in node.get("properties", {}):
            return {}  # a custom attribute's value: its type says (read in the workers)
        node = resolved(node["properties"][name])
        if node.get("type") == "array" and (indexed or part == "order_lines"):
            node = resolved(node["items"])
    return node


def _typed(name: str, leaf: dict[str, Any], decimal_comma: bool) -> pl.Expr:
    """A text column as the schema's type; absent stays null."""
    column = pl.col(name)
    kind = leaf.get("type")
    if isinstance(kind, list):
        kind = next(k for k in kind if k != "null")
    if kind == "integer":
        return column.cast(pl.Int64, strict=False)
    if kind == "number":
        text = column.str.replace(",", ".", literal=True) if decimal_comma else column
        return text.cast(pl.Float64, strict=False)
    if kind == "boolean":
        lowered = column.str.strip_chars().str.to_lowercase()
        return pl.when(lowered.is_in(TRUE)).then(True).when(lowered.is_in(FALSE)).then(False)
    if leaf.get("format") == "date-time":
        moment = column.str.replace(r"Z$", "+00:00").str.to_datetime(
            "%Y-%m-%dT%H:%M:%S%z", time_zone="UTC", strict=False
        )
        return moment.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return column


def _nested(paths: list[str], prefix: str = "") -> list[pl.Expr]:
    """Struct expressions for dotted paths (``a.b``; ``a[0].b`` is element 0 of a list)."""
    tree: dict[str, list[str]] = {}
    for path in paths:
        head, _, rest = path.partition(".")
        tree.setdefault(head, []).append(rest)
    arrays: dict[str, list[tuple[int, pl.Expr]]] = {}
    fields: list[pl.Expr] = []
    for head, rests in tree.items():
        full = prefix + head
        if rests == [""]:
            expression = pl.col(full).alias(head)
        else:
            expression = pl.struct(_nested(rests, full + ".")).alias(head)
        indexed = INDEXED.match(head)
        if indexed:
            arrays.setdefault(indexed.group(1), []).append((int(indexed.group(2)), expression))
        else:
            fields.append(expression)
    for name, elements in arrays.items():
        fields.append(pl.concat_list([e for _, e in sorted(elements)]).alias(name))
    return fields


def _pruned(node: Any) -> Any:
    """Absent fields (null) and objects and lists left empty by them dropped."""
    if isinstance(node, dict):
        kept = {k: _pruned(v) for k, v in node.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {} and v != []}
    if isinstance(node, list):
        kept = [_pruned(v) for v in node if v is not None]
        return [v for v in kept if v != {}]
    return node


def _custom_value(text: str, kind: str) -> Any:
    if kind == "NUMERIC":
        return float(text.replace(",", "."))
    if kind == "BOOLEAN":
        return text.strip().lower() in TRUE
    if kind == "LIST":
        return orjson.loads(text)
    if kind == "DATE":
        moment = datetime.fromisoformat(text).astimezone(UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return text


_validator: Any = None


def _judge(documents: list[bytes]) -> list[bytes | None]:
    """Each order's JSON if it is valid, else None (in a worker process)."""
    global _validator
    if _validator is None:
        _validator = jsonschema_rs.validator_for(
            orjson.loads(ORDER_SCHEMA.read_bytes()), validate_formats=True
        )
    judged: list[bytes | None] = []
    for document in documents:
        order = _pruned(orjson.loads(document))
        order.setdefault("shipping_info", {})  # required, even empty
        for attributes in [order.get("custom_attributes", [])] + [
            line.get("custom_attributes", []) for line in order["order_lines"]
        ]:
            for attribute in attributes:
                if "value" in attribute:
                    attribute["value"] = _custom_value(attribute["value"], attribute.get("type"))
        judged.append(orjson.dumps(order) if _validator.is_valid(order) else None)
    return judged


def orders(path: Path, mapping: dict[str, Any]) -> pl.DataFrame:
    """One row per order: its origin and its JSON (absent fields as null)."""
    read = mapping.get("read", {})
    frame = pl.read_csv(path, separator=read.get("delimiter", ","), infer_schema=False)
    renames: dict[str, Any] = mapping.get("columns", {})
    columns: list[pl.Expr] = []
    for name in frame.columns:
        targets = renames.get(name, name)
        for target in [targets] if isinstance(targets, str) else targets:
            columns.append(pl.col(name).alias(target))
    columns += [pl.lit(str(v)).alias(k) for k, v in mapping.get("constants", {}).items()]
    frame = frame.select(columns)
    env_origin = {
        "origin.channel_id": os.environ.get("CONNECT_CHANNEL_ID", ""),
        "origin.channel_store_id": os.environ.get("CONNECT_STORE_ID", ""),
    }
    frame = frame.with_columns(
        pl.lit(v).alias(k) for k, v in env_origin.items() if k not in frame.columns
    )
    schema = orjson.loads(ORDER_SCHEMA.read_bytes())
    decimal_comma = bool(read.get("decimal_comma", False))
    paths = [c for c in frame.columns if not c.startswith("origin.")]
    frame = frame.with_columns(
        _typed(c, _leaf_schema(schema, c), decimal_comma).alias(c) for c in paths
    )
    lines = [p.removeprefix("order_lines.") for p in paths if p.startswith("order_lines.")]
    heads = [p for p in paths if not p.startswith("order_lines.")]
    keys = ["origin.channel_id", "origin.channel_store_id", "channel_order_id"]
    line_struct = pl.struct(_nested(lines, "order_lines.")).alias("order_lines")
    grouped = frame.group_by(keys, maintain_order=True).agg(
        *[pl.col(c).first() for c in heads if c != "channel_order_id"], line_struct
    )
    return grouped.select(
        *keys[:2],
        pl.struct(_nested([*heads, "order_lines"])).struct.json_encode().alias("json"),
    )


def _chunks(values: list[bytes], size: int) -> Iterator[list[bytes]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mapping", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    mapping = tomllib.loads(args.mapping.read_text()) if args.mapping else {}
    table = orders(args.file, mapping)
    documents = [d.encode() for d in table["json"].to_list()]
    origins = list(zip(table["origin.channel_id"], table["origin.channel_store_id"], strict=True))
    del table
    # Spawned: a fork of a process whose Polars threads hold locks can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        judged = [d for part in pool.map(_judge, _chunks(documents, 2000)) for d in part]
    by_origin: dict[tuple[str, str], list[bytes]] = {}
    invalid = 0
    with args.out.open("wb") as out:
        for origin, document in zip(origins, judged, strict=True):
            if document is None:
                invalid += 1
                continue
            batch = by_origin.setdefault(origin, [])
            batch.append(document)
            if len(batch) == 100:
                out.write(_request(origin, batch))
                batch.clear()
        for origin, batch in by_origin.items():
            if batch:
                out.write(_request(origin, batch))
    print(f"{len(judged)} orders, {invalid} invalid")


def _request(origin: tuple[str, str], batch: list[bytes]) -> bytes:
    head = orjson.dumps({"channel_id": origin[0], "channel_store_id": origin[1]})
    return b'{"origin":' + head + b',"orders":[' + b",".join(batch) + b"]}\n"


if __name__ == "__main__":
    main()
