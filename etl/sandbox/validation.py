"""upsertOrders request rules (size, shipped JSON Schema, unique line ids) as JSONPath errors.

jsonschema-rs answers "valid?" quickly for the common case; only an invalid request pays for
jsonschema, whose errors carry the instance paths the ``errors[].field`` JSONPaths are made of.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# Typed when types-jsonschema is installed; plain Any otherwise.
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import jsonschema_rs

from etl.formats import FORMATS
from etl.schema import load_schema

REQUEST_SCHEMA = "upsert-orders-request.schema.json"
MAX_ORDERS = 100
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Key = str | int


@dataclass(frozen=True, order=True)
class Problem:
    """One error item: where (a path of keys from the request root) and what."""

    path: tuple[tuple[int, Key], ...]  # (0, index) / (1, name): sortable across int and str keys
    message: str

    @classmethod
    def at(cls, keys: Iterable[Key], message: str) -> Problem:
        return cls(tuple((0, k) if isinstance(k, int) else (1, k) for k in keys), message)

    @property
    def field(self) -> str:
        """The JSONPath of the offending value, e.g. ``$.orders[3].order_lines[0].status``."""
        return json_path(key for _, key in self.path)


def json_path(keys: Iterable[Key]) -> str:
    """``$`` followed by ``.name`` or ``[index]`` (``['odd name']`` when not an identifier)."""
    out = ["$"]
    for key in keys:
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif IDENTIFIER.match(key):
            out.append(f".{key}")
        else:
            escaped = key.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def _strings_only(check: Callable[[str], bool]) -> Callable[[object], bool]:
    # jsonschema hands every instance to a format check; formats only constrain strings.
    # (Harmless if FORMATS already does this: the sandbox must not depend on it.)
    return lambda value: not isinstance(value, str) or check(value)


class OrdersValidator:
    """Checks an upsertOrders body; built once, shared by every request thread."""

    def __init__(self) -> None:
        schema = load_schema(REQUEST_SCHEMA)
        self._fast = jsonschema_rs.validator_for(
            schema, validate_formats=True, formats=dict(FORMATS)
        )
        checker = jsonschema.FormatChecker(formats=())
        for name, check in FORMATS.items():
            checker.checks(name)(_strings_only(check))
        self._explain = jsonschema.Draft202012Validator(schema, format_checker=checker)

    def problems(self, document: Any) -> list[Problem]:
        """Every problem in the request, sorted by path; empty when it may be accepted."""
        orders = document.get("orders") if isinstance(document, dict) else None
        if isinstance(orders, list) and len(orders) > MAX_ORDERS:
            # Reported alone: validating hundreds of orders to reject them all would be wasted.
            message = f"at most {MAX_ORDERS} orders per request, got {len(orders)}"
            return [Problem.at(["orders"], message)]
        found: set[Problem] = set()
        if not self._fast.is_valid(document):
            for error in self._explain.iter_errors(document):
                found.update(_leaf_problems(error))
        found.update(duplicate_line_ids(orders if isinstance(orders, list) else []))
        return sorted(found)


def _leaf_problems(error: jsonschema.ValidationError) -> Iterator[Problem]:
    """One Problem per leaf error; umbrella errors (anyOf, oneOf) hold theirs in ``context``."""
    if error.context:
        for sub in error.context:
            yield from _leaf_problems(sub)
        return
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # One error per missing name, all alike but for the message: point at each name itself.
        required: Any = error.validator_value
        for name in required:
            if name not in error.instance:
                yield Problem.at([*path, name], f"'{name}' is a required property")
        return
    yield Problem.at(path, _describe(error))


def _describe(error: jsonschema.ValidationError) -> str:
    """A message that states the rule without echoing the value (it may be personal data)."""
    rule = error.validator
    expected: Any = error.validator_value
    if rule == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"must be of type {' or '.join(map(str, kinds))}"
    if rule == "enum":
        return "must be one of " + ", ".join(map(str, expected))
    if rule == "const":
        return f"must be {expected!r}"
    if rule == "format":
        return f"must be a valid {expected} string"
    messages = {
        "minimum": "must be greater than or equal to {}",
        "maximum": "must be less than or equal to {}",
        "exclusiveMinimum": "must be greater than {}",
        "exclusiveMaximum": "must be less than {}",
        "minItems": "must have at least {} item(s)",
        "maxItems": "must have at most {} item(s)",
        "minLength": "must be at least {} character(s) long",
        "maxLength": "must be at most {} character(s) long",
    }
    if rule in messages:
        return messages[str(rule)].format(expected)
    return str(error.message)


def duplicate_line_ids(orders: list[Any]) -> list[Problem]:
    """Each repeat of a ``channel_order_line_id`` already used earlier in the request.

    The API wants line ids unique across all orders of a channel; within one request (one
    channel) that is checkable here. Tolerates malformed orders: the schema reports those.
    """
    first_seen: dict[str, tuple[int, int]] = {}
    problems = []
    for i, order in enumerate(orders):
        lines = order.get("order_lines") if isinstance(order, dict) else None
        for j, line in enumerate(lines if isinstance(lines, list) else []):
            line_id = line.get("channel_order_line_id") if isinstance(line, dict) else None
            if not isinstance(line_id, str):
                continue
            if line_id in first_seen:
                a, b = first_seen[line_id]
                earlier = json_path(["orders", a, "order_lines", b, "channel_order_line_id"])
                problems.append(
                    Problem.at(
                        ["orders", i, "order_lines", j, "channel_order_line_id"],
                        f"channel_order_line_id must be unique across the channel's orders;"
                        f" already used at {earlier}",
                    )
                )
            else:
                first_seen[line_id] = (i, j)
    return problems
