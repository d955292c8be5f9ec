"""JSON lines (.jsonl, .ndjson) -> one value per line, or why that line is none.

A line that is not JSON is that line's problem, not the file's: the other lines are read. Lines
are numbered from 1, as an editor shows them; blank lines count and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import orjson

from etl.core.kinds import FIX_COLUMN
from etl.read.tables import refuse_missing_or_empty

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True, slots=True)
class JsonLine:
    """One non-blank line: its number, its object (None when it holds none) and why not."""

    number: int
    value: dict[str, Any] | None
    problem: str = ""


def is_json_lines(name: str) -> bool:
    return PurePath(name).suffix.lower() in JSON_LINES_SUFFIXES


def read_json_lines(path: Path) -> list[JsonLine]:
    """Every non-blank line of the file; UnreadableFile only for a file gone or empty."""
    refuse_missing_or_empty(path)
    return list(_lines(path))


def _lines(path: Path) -> Iterator[JsonLine]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a BOM some editors write
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as error:
                yield JsonLine(number, None, _json_problem(number, raw, error))
                continue
            if not isinstance(value, dict):
                yield JsonLine(
                    number,
                    None,
                    f"line {number} holds {_what(value)}, not an object ({{...}}): each line must "
                    "be one whole item of the request, on one line",
                )
                continue
            value.pop(FIX_COLUMN, None)  # a rejected file's advice, not the order's
            yield JsonLine(number, value)


def _json_problem(number: int, raw: bytes, error: orjson.JSONDecodeError) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as decode_error:
        return (
            f"line {number} is not UTF-8 text (byte 0x{raw[decode_error.start]:02X} at column "
            f"{decode_error.start + 1}); save the file as UTF-8"
        )
    return (
        f"line {number} is not valid JSON ({error.msg} at column {error.colno}): each line must "
        "hold one whole item, on one line"
    )


def _what(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a text"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return "a number"
