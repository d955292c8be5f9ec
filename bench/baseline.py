"""The naive way to do what `etl check` does, for comparison only (never used by the tool).

pandas' default CSV reader, ``iterrows`` building every order as nested dicts, jsonschema (pure
Python) on each order, ``json.dumps`` for each batch of 100 valid orders of one origin.
``python -m bench.baseline orders.csv out.jsonl`` prints the number of valid and invalid orders.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd

from etl.core.schema import ORDERS, Level, flat_model, load_schema
from etl.settings.options import Conventions
from etl.transform.convert import ConversionError, convert, convert_custom_value
from etl.transform.validate import format_checker


def _put(target: dict[Any, Any], keys: tuple[Any, ...], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _lists(node: Any) -> Any:
    if isinstance(node, dict):
        if node and all(isinstance(k, int) for k in node):
            return [_lists(node[k]) for k in sorted(node)]
        return {k: _lists(v) for k, v in node.items()}
    return node


def run(path: Path, out: Path) -> tuple[int, int]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    model = flat_model(ORDERS)
    leaves = {column: model.leaf(column) for column in frame.columns}
    conventions = Conventions()
    orders: dict[tuple[str, str, str], dict[str, Any]] = {}
    for _, row in frame.iterrows():
        key = (row["origin.channel_id"], row["origin.channel_store_id"], row["channel_order_id"])
        order = orders.setdefault(key, {"body": {}, "lines": []})
        line: dict[Any, Any] = {}
        for column, text in row.items():
            if text == "":
                continue
            leaf = leaves[str(column)]
            if leaf.level is Level.REQUEST:
                continue
            try:
                value = convert(text, leaf.kind, conventions)
            except ConversionError:
                value = text
            _put(order["body"] if leaf.level is Level.ITEM else line, leaf.keys, value)
        order["lines"].append(line)
    validator = jsonschema.Draft202012Validator(
        load_schema(ORDERS.item_schema), format_checker=format_checker()
    )
    batches: dict[tuple[str, str], list[dict[str, Any]]] = {}
    valid = invalid = 0
    with out.open("w", encoding="utf-8") as handle:
        for (channel, store, _), order in orders.items():
            body = _lists(order["body"])
            body["order_lines"] = [_lists(line) for line in order["lines"]]
            body.setdefault("shipping_info", {})
            for attributes in [body.get("custom_attributes")] + [
                line.get("custom_attributes") for line in body["order_lines"]
            ]:
                for attribute in attributes or []:
                    with contextlib.suppress(ConversionError):
                        attribute["value"] = convert_custom_value(
                            attribute.get("value", ""), attribute.get("type"), conventions
                        )
            if list(validator.iter_errors(body)):
                invalid += 1
                continue
            valid += 1
            pending = batches.setdefault((channel, store), [])
            pending.append(body)
            if len(pending) == ORDERS.max_items:
                origin = {"channel_id": channel, "channel_store_id": store}
                handle.write(json.dumps({"origin": origin, "orders": pending}) + "\n")
                batches[(channel, store)] = []
        for (channel, store), pending in batches.items():
            if pending:
                origin = {"channel_id": channel, "channel_store_id": store}
                handle.write(json.dumps({"origin": origin, "orders": pending}) + "\n")
    return valid, invalid


def main() -> None:
    valid, invalid = run(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{valid} valid, {invalid} invalid")


if __name__ == "__main__":
    main()
