"""Request rules (size, shipped JSON Schemas, unique line ids) as JSONPath errors, and their 400.

jsonschema-rs answers "valid?" quickly for the common case; only an invalid request pays for
jsonschema, whose errors carry the instance paths the ``errors[].field`` JSONPaths are made of.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# Typed when types-jsonschema is installed; plain Any otherwise.
import jsonschema  # type: ignore[import-untyped, unused-ignore]
import jsonschema_rs

from etl.core.formats import FORMATS
from etl.core.schema import load_schema

from .wire import Response, error_response

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


class RememberedFormat(dict[str, bool]):
    """One format's answers by value. jsonschema-rs calls ``__getitem__`` (a C slot, no Python
    frame) for every string of the format: the dates of an order repeat on each of its lines,
    and product URLs across orders, so most calls are answered without running the check.
    Cleared when it holds LIMIT values; one dict per validator, shared by the request threads
    (each operation on it is atomic)."""

    LIMIT = 200_000

    def __init__(self, check: Callable[[object], bool]) -> None:
        super().__init__()
        self.check = check

    def __missing__(self, value: str) -> bool:
        if len(self) >= self.LIMIT:
            self.clear()
        answer = self[value] = bool(self.check(value))
        return answer


class SchemaValidator:
    """Checks documents against one shipped schema; built once, shared by every request thread.

    ``items``/``max_items``: a request whose ``items`` list is too long gets that one problem
    alone; validating hundreds of items only to reject them all would be wasted.
    """

    def __init__(
        self, schema_file: str, *, items: str | None = None, max_items: int | None = None
    ) -> None:
        schema = load_schema(schema_file)
        self._items, self._max_items = items, max_items
        self.memos = {name: RememberedFormat(check) for name, check in FORMATS.items()}
        self._fast = jsonschema_rs.validator_for(
            schema,
            validate_formats=True,
            formats={name: memo.__getitem__ for name, memo in self.memos.items()},
        )
        checker = jsonschema.FormatChecker(formats=())
        for name, check in FORMATS.items():
            checker.checks(name)(_strings_only(check))
        self._explain = jsonschema.Draft202012Validator(schema, format_checker=checker)

    def problems(self, document: Any, at: Sequence[Key] = ()) -> list[Problem]:
        """Every problem, sorted by path (prefixed by ``at``); empty when it may be accepted."""
        if self._items is not None and self._max_items is not None:
            items = document.get(self._items) if isinstance(document, dict) else None
            if isinstance(items, list) and len(items) > self._max_items:
                message = f"at most {self._max_items} {self._items} per request, got {len(items)}"
                return [Problem.at([*at, self._items], message)]
        found: set[Problem] = set()
        if not self._fast.is_valid(document):
            for error in self._explain.iter_errors(document):
                found.update(_leaf_problems(error, at))
        found.update(self.more_problems(document, at))
        return sorted(found)

    def more_problems(self, document: Any, at: Sequence[Key]) -> Iterable[Problem]:
        """Rules a schema cannot state; none by default."""
        return ()


class OrdersValidator(SchemaValidator):
    """An upsertOrders body: the schema, at most 100 orders, line ids unique in the request."""

    def __init__(self) -> None:
        super().__init__(REQUEST_SCHEMA, items="orders", max_items=MAX_ORDERS)

    def more_problems(self, document: Any, at: Sequence[Key]) -> Iterable[Problem]:
        orders = document.get("orders") if isinstance(document, dict) else None
        return duplicate_line_ids(orders if isinstance(orders, list) else [])


def invalid_input(problems: list[Problem], omit_field: bool, consequence: str) -> Response:
    """400 INVALID_INPUT, one error item per problem (``field`` left out on request)."""
    items = [
        {"message": p.message} if omit_field else {"field": p.field, "message": p.message}
        for p in problems
    ]
    noun = "error" if len(items) == 1 else "errors"
    message = f"The request is invalid ({len(items)} {noun}); {consequence}"
    return error_response(400, "INVALID_INPUT", message, items)


def _leaf_problems(error: jsonschema.ValidationError, at: Sequence[Key]) -> Iterator[Problem]:
    """One Problem per leaf error; umbrella errors (anyOf, oneOf) hold theirs in ``context``."""
    if error.context:
        for sub in error.context:
            yield from _leaf_problems(sub, at)
        return
    path = [*at, *error.absolute_path]
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
