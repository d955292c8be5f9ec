"""Items -> violations against the JSON Schema, every one of them, in words a person understands.

jsonschema-rs decides *whether* an item is valid (about 100x faster); pure-Python jsonschema is
asked only for the items that are not, because its errors carry the paths and values we explain.
Both see the same format functions (``formats.py``), so they agree on what is valid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
from jsonschema.exceptions import ValidationError

from etl.core.codes import Problem
from etl.core.formats import FORMATS
from etl.core.models import MappedItem, Violation
from etl.core.schema import PERSONAL_FIELDS, FileKind, load_schema
from etl.transform.mapping import Indexes, json_path, mask, user_keys

FORMAT_CODES = {
    "date-time": Problem.INVALID_DATE_TIME,
    "email": Problem.INVALID_EMAIL,
    "uri": Problem.INVALID_URI,
}
KEYWORD_CODES = {
    "required": Problem.REQUIRED_FIELD_MISSING,
    "enum": Problem.NOT_ALLOWED_VALUE,
    "const": Problem.NOT_ALLOWED_VALUE,
    "type": Problem.WRONG_TYPE,
    "minimum": Problem.BELOW_MINIMUM,
    "maximum": Problem.ABOVE_MAXIMUM,
    "maxItems": Problem.TOO_MANY_ITEMS,
    "minItems": Problem.TOO_FEW_ITEMS,
    "maxLength": Problem.TOO_LONG,
    "minLength": Problem.TOO_SHORT,
}
TYPE_WORDS = {
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a group of fields",
}


def format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())
    for name, function in FORMATS.items():
        checker.checks(name)(function)
    return checker


class FormatMemo(dict[str, bool]):
    """A format function's answers, remembered: the fast validator calls ``__getitem__``, a C
    slot, so a value seen before (an order's date repeated on each of its lines) costs no Python
    call. Bounded: forgotten wholesale when it grows large."""

    LIMIT = 200_000

    def __init__(self, function: Callable[[object], bool]) -> None:
        super().__init__()
        self.function = function

    def __missing__(self, value: str) -> bool:
        if len(self) >= self.LIMIT:
            self.clear()
        answer = self[value] = bool(self.function(value))
        return answer


class SchemaValidator:
    """A compiled validator for one item schema, with readable violations on demand."""

    def __init__(self, schema_file: str) -> None:
        schema = load_schema(schema_file)
        self.memos = {name: FormatMemo(function) for name, function in FORMATS.items()}
        self.fast = jsonschema_rs.validator_for(
            schema,
            validate_formats=True,
            formats={name: memo.__getitem__ for name, memo in self.memos.items()},
        )
        self.slow = jsonschema.Draft202012Validator(schema, format_checker=format_checker())

    def is_valid(self, instance: Any) -> bool:
        return bool(self.fast.is_valid(instance))

    def vouch_date_time(self, values: list[str]) -> None:
        """``values`` were written by ``convert.format_utc``: with a four-digit year each is a
        valid date-time (a test holds format_utc to that), so the format check need not run."""
        memo = self.memos["date-time"]
        if len(memo) >= FormatMemo.LIMIT:
            memo.clear()
        memo.update((value, True) for value in values if value[4:5] == "-")

    def explain(self, instance: Any) -> list[ValidationError]:
        """Every schema error of an instance, leaves first (no "allOf failed" umbrellas)."""
        return sorted(_leaves(self.slow.iter_errors(instance)), key=lambda e: list(e.path))


@cache
def validator_for(kind: FileKind) -> SchemaValidator:
    """One compiled validator per file kind and process."""
    return SchemaValidator(kind.item_schema)


def _leaves(errors: Iterable[ValidationError]) -> Iterable[ValidationError]:
    for error in errors:
        if error.context:
            yield from _leaves(error.context)
        else:
            yield error


def describe(
    error: ValidationError, indexes: Indexes | None = None
) -> tuple[str, str, str, str | None]:
    """(JSONPath, code, message, shown value) for one schema error; ``indexes``: the item's
    arrays sent without the gaps of the user's indexes, whose columns the path names."""
    keys = user_keys(tuple(error.absolute_path), indexes)
    field_name = next((k for k in reversed(keys) if isinstance(k, str)), "")
    personal = field_name in PERSONAL_FIELDS
    value: Any = error.instance
    rule: Any = error.validator_value
    shown: str | None = None if isinstance(value, dict | list) else str(value)
    if shown is not None and personal:
        shown = mask(shown)
    where = json_path(keys)[2:] or "the order"
    keyword = str(error.validator)
    code = KEYWORD_CODES.get(keyword, Problem.SCHEMA_VIOLATION)
    if keyword == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        path = json_path((*keys, missing))
        return path, code, f"{path[2:]}: is required but empty or missing", None
    if keyword in ("enum", "const"):
        allowed = rule if keyword == "enum" else [rule]
        text = f"'{shown}'" if shown is not None else "this value"
        message = f"{where}: {text} is not one of {', '.join(map(str, allowed))}"
    elif keyword == "format":
        code = FORMAT_CODES.get(str(rule), Problem.INVALID_FORMAT)
        message = f"{where}: '{shown}' is not a valid {rule}"
    elif keyword == "type":
        wanted = TYPE_WORDS.get(str(rule), str(rule))
        message = f"{where}: '{shown}' should be {wanted}"
    elif keyword == "minimum" and rule == 0:
        code = Problem.NEGATIVE_AMOUNT
        message = f"{where}: {shown} is negative; amounts must be zero or positive"
    elif keyword in ("minimum", "maximum"):
        bound = "at least" if keyword == "minimum" else "at most"
        message = f"{where}: {shown} must be {bound} {rule}"
    elif keyword in ("maxItems", "minItems"):
        bound = "at most" if keyword == "maxItems" else "at least"
        message = f"{where}: has {len(value)} entries; {bound} {rule} allowed"
    elif keyword in ("maxLength", "minLength"):
        bound = "at most" if keyword == "maxLength" else "at least"
        message = f"{where}: is {len(value)} characters long; {bound} {rule}"
    else:
        message = f"{where}: {error.message}"
    return json_path(keys), code, message, shown


def validate_items(
    items: list[MappedItem], validator: SchemaValidator, row_property: str | None
) -> None:
    """Add the schema's violations to every invalid item (items are changed in place)."""
    for item in items:
        if validator.is_valid(item.body):
            continue
        already = {v.path for v in item.violations}
        explained: set[tuple[str, str, str]] = set()
        for error in validator.explain(item.body):
            path, code, message, shown = describe(error, item.indexes)
            if path in already:
                continue  # explained by the conversion step, in the user's own terms
            if (path, code, message) in explained:
                # A field two parts of the schema check (a document's metadata, for every row
                # and again for an UPLOAD) fails in both with the same words: say it once.
                continue
            explained.add((path, code, message))
            item.violations.append(
                Violation(
                    file=item.source,
                    rows=_rows_for(item, path, row_property),
                    item_id=item.item_id or None,
                    path=path,
                    code=code,
                    message=message,
                    value=shown,
                )
            )


DOT_SEGMENTS = (".", "..")


def refuse_dot_ids(items: list[MappedItem], url_ids: tuple[str, ...]) -> None:
    """Ids that become a segment of a URL path may not be ``.`` or ``..``: the URL would name
    another path (``.../orders/actions/..`` is ``.../orders``), so another operation."""
    for item in items:
        for dotted in url_ids:
            value: Any = item.body
            for key in dotted.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value in DOT_SEGMENTS:
                item.violations.append(
                    Violation(
                        file=item.source,
                        rows=item.rows,
                        item_id=item.item_id or None,
                        path=f"$.{dotted}",
                        code=Problem.INVALID_ID,
                        message=(
                            f"{dotted}: '{value}' cannot be used as an id: in the request's "
                            "URL it would name another path"
                        ),
                        value=value,
                    )
                )


def _rows_for(item: MappedItem, path: str, row_property: str | None) -> tuple[int, ...]:
    """The row of the cell: a line-level problem's own row; an order-level one's first row (the
    value is read there; the other rows must repeat it)."""
    prefix = f"$.{row_property}["
    if row_property and path.startswith(prefix):
        position = int(path[len(prefix) : path.index("]")])
        if position < len(item.rows):
            return (item.rows[position],)
    return item.rows[:1]
