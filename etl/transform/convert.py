"""Cell text -> JSON value, by the type the schema gives the column. Strict: no guessing.

Numbers stay exact: a decimal text with at most 15 significant digits survives the trip through a
binary float unchanged (``19.99`` is written back as ``19.99``), so longer ones are refused rather
than silently rounded.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import orjson

from etl.core.codes import Problem
from etl.core.schema import Kind
from etl.settings.options import Conventions, date_format_example

# Digits are 0-9 only: Python's \d and int() also take Arabic-Indic, Devanagari, fullwidth...
# digits, which no API reading the JSON would expect to have been turned into numbers.
INTEGER = re.compile(r"^([+-]?)0*([0-9]+)$")
DECIMAL_POINT = re.compile(r"^([+-]?)([0-9]+)(?:\.([0-9]+))?$")
DECIMAL_COMMA = re.compile(r"^([+-]?)([0-9]+)(?:,([0-9]+))?$")
MAX_EXACT_DIGITS = 15
SHOWN_DIGITS = 40  # a longer number is shown cut, with its length
TRUE = frozenset({"true", "1", "yes"})
FALSE = frozenset({"false", "0", "no"})
DATE_TIME_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?", re.ASCII)


# The C0 control characters but tab, line feed and carriage return: invisible, never typed on
# purpose (a broken export, a copy from a terminal or an old word processor), and forbidden in
# XML 1.0, in which channels' own feeds carry the text Connect passes on.
CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# fmt: off
C0_NAMES = (
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HT", "LF", "VT", "FF", "CR",
    "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC",
    "FS", "GS", "RS", "US",
)
# fmt: on
C0_GLOSSES = {"BS": "backspace", "VT": "vertical tab", "FF": "form feed", "ESC": "escape"}


class ConversionError(ValueError):
    """A cell whose text is not a value of the column's type."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


LARGEST_INTEGER = 2**63 - 1  # JSON writers and the API stop at 64-bit integers


def to_integer(text: str) -> int:
    match = INTEGER.match(text)
    if match is None:
        raise ConversionError(
            Problem.NOT_AN_INTEGER, f"'{text}' is not a whole number{_foreign_digits(text)}"
        )
    sign, digits = match.groups()
    # Counted before int(): Python refuses to parse more than 4,300 digits (a ValueError).
    if len(digits) > len(str(LARGEST_INTEGER)) or int(digits) > LARGEST_INTEGER:
        raise ConversionError(
            Problem.NUMBER_TOO_LARGE,
            f"{_shown_number(text)} is too large for a whole number "
            f"(the largest is {LARGEST_INTEGER})",
        )
    return int(sign + digits)


def to_number(text: str, conventions: Conventions) -> float | int:
    pattern = DECIMAL_COMMA if conventions.decimal_comma else DECIMAL_POINT
    match = pattern.match(text)
    if match is None:
        hint = "a decimal comma, e.g. 19,99" if conventions.decimal_comma else "e.g. 19.99"
        foreign = _foreign_digits(text)
        raise ConversionError(
            Problem.NOT_A_NUMBER, f"'{text}' is not a number{foreign or f' ({hint})'}"
        )
    sign, whole, fraction = match.group(1), match.group(2), (match.group(3) or "").rstrip("0")
    significant = (whole + fraction).lstrip("0")
    if len(significant) > MAX_EXACT_DIGITS:
        raise ConversionError(
            Problem.TOO_MANY_DIGITS,
            f"{_shown_number(text)} has more than {MAX_EXACT_DIGITS} significant digits "
            "and cannot be sent exactly",
        )
    # 5, 5.0 and 5.00 are one amount: written the same way so content hashes agree.
    whole = whole.lstrip("0") or "0"  # at most 15 digits now: int() takes any count of them
    if not fraction:
        return int(sign + whole)
    return float(f"{sign}{whole}.{fraction}")


def _foreign_digits(text: str) -> str:
    """Why a text that looks like a number is not one: digits that are not 0-9 (a spreadsheet
    or keyboard set to another script), named so that they can be found."""
    foreign = next((ch for ch in text if ch.isdigit() and not ch.isascii()), None)
    if foreign is None:
        return ""
    return f": it is written with {unicodedata.name(foreign, 'a digit')}, not the digits 0-9"


def _shown_number(text: str) -> str:
    """A number as a message quotes it: whole, or its start and its length when very long."""
    if len(text) <= SHOWN_DIGITS:
        return f"'{text}'"
    return f"'{text[:SHOWN_DIGITS]}...' ({len(text)} digits)"


def to_boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ConversionError(
        Problem.NOT_A_BOOLEAN, f"'{text}' is not a boolean (true/false, 1/0, yes/no)"
    )


def to_date_time(text: str, conventions: Conventions) -> str:
    """ISO 8601 with an offset -> UTC ``YYYY-MM-DDTHH:MM:SS[.fffffffff]Z``, to the nanosecond;
    or, when the conventions name a date format, text in that format."""
    if conventions.date_format is not None:
        return _formatted_date_time(text, conventions.date_format, conventions.assume_timezone)
    shape = DATE_TIME_SHAPE.match(text)
    if not shape:
        raise ConversionError(
            Problem.NOT_A_DATE_TIME,
            f"'{text}' is not a date-time (ISO 8601, e.g. 2024-05-01T09:30:00Z)",
        )
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConversionError(
            Problem.NOT_A_DATE_TIME, f"'{text}' is not a real date-time (check day, month and hour)"
        ) from None
    nanoseconds = _nanoseconds(text, (shape.group(2) or ".")[1:])
    zone = conventions.assume_timezone
    if moment.tzinfo is None and zone is None:
        raise ConversionError(
            Problem.NAIVE_DATE_TIME,
            f"'{text}' has no timezone offset; add one (e.g. +02:00 or Z) "
            "or set assume_timezone in the configuration",
        )
    return _in_utc(text, moment, zone, nanoseconds)


def _in_utc(
    text: str, moment: datetime, zone: tzinfo | None, nanoseconds: str = "", formatted: bool = False
) -> str:
    """A moment read from ``text`` (naive: in ``zone``) as the tool writes it, in UTC."""
    try:
        if moment.tzinfo is None and zone is not None:
            moment = _localized(text, moment, zone, formatted)
        return format_utc(moment, nanoseconds)
    except OverflowError:  # year 1 or 9999 pushed past its end by the offset
        side = "before year 1" if moment.year == 1 else "after year 9999"
        raise ConversionError(
            Problem.INVALID_DATE_TIME,
            f"'{text}' falls {side} once converted to UTC (Connect's date-times are UTC): "
            "check the year",
        ) from None


def _formatted_date_time(text: str, date_format: str, zone: tzinfo | None) -> str:
    """A date-time written in the export's own format (``20.11.2026 09:14``) -> UTC ``...Z``."""
    foreign = _foreign_digits(text)  # strptime's digits are any script's, like int()'s
    try:
        if foreign:
            raise ValueError(foreign)
        moment = datetime.strptime(text, date_format)
    except ValueError:
        raise ConversionError(
            Problem.NOT_A_DATE_TIME,
            f"'{text}' does not match the date format {date_format} "
            f"(e.g. {date_format_example(date_format)}){foreign}",
        ) from None
    if moment.tzinfo is None and zone is None:  # config.py refuses such settings
        raise ConversionError(
            Problem.NAIVE_DATE_TIME,
            f"'{text}' has no timezone offset; set assume_timezone in the configuration",
        )
    return _in_utc(text, moment, zone, formatted=True)


def _localized(text: str, moment: datetime, zone: tzinfo, formatted: bool = False) -> datetime:
    """A wall-clock time read in the assumed zone; refused when the zone's clocks skipped it
    (spring forward) or showed it twice (fall back): a guess would be an hour off, silently."""
    early, late = moment.replace(tzinfo=zone, fold=0), moment.replace(tzinfo=zone, fold=1)
    before, after = early.utcoffset(), late.utcoffset()
    if before == after:
        return early
    assert before is not None and after is not None
    if early.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        example = "%z in the date format" if formatted else f"e.g. {text}{_offset(before)}"
        raise ConversionError(
            Problem.NONEXISTENT_LOCAL_TIME,
            f"'{text}' never happened in {zone}: the clocks skipped it, going from "
            f"{_offset(before)} to {_offset(after)}; the export should carry the offset it meant "
            f"({example})",
        )
    raise ConversionError(
        Problem.AMBIGUOUS_LOCAL_TIME,
        f"'{text}' happened twice in {zone} (the clocks went back from {_offset(before)} to "
        f"{_offset(after)}): it is {format_utc(early)} or {format_utc(late)}; the export should "
        f"carry the offset ({_offset(before)} or {_offset(after)})",
    )


def _offset(delta: timedelta) -> str:
    """``+01:00`` (``+10:30``, ``-03:00``), as a date-time writes its offset."""
    minutes = int(delta.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _nanoseconds(text: str, fraction: str) -> str:
    """The digits after the microseconds (which fromisoformat drops): sent, not rounded away.
    The API's date-time (RFC 3339) takes any number; what Connect keeps is nanoseconds."""
    if len(fraction.rstrip("0")) > 9:
        raise ConversionError(
            Problem.INVALID_DATE_TIME,
            f"'{text}' has {len(fraction)} digits after the seconds' point; Connect's "
            "date-times keep at most 9 (nanoseconds)",
        )
    return fraction[6:9]


_VALID_DAYS: dict[str, bool] = {}


def to_date_time_fast(text: str, conventions: Conventions) -> str:
    """``to_date_time`` for the common ``YYYY-MM-DDTHH:MM:SSZ`` (and ``+00:00``), written back
    as is when it names a real moment; every other text goes the long way."""
    if (
        conventions.date_format is None
        and len(text) in (20, 25)
        and text[10] == "T"
        and (text[19:] == "Z" or text[19:] == "+00:00")
        and text[0] != "0"  # years before 1000 are written differently by format_utc
        and text[4] == "-"
        and text[7] == "-"
        and text[13] == ":"
        and text[16] == ":"
    ):
        day = text[:10]
        valid = _VALID_DAYS.get(day)
        if valid is None:
            try:
                valid = day.isascii() and date.fromisoformat(day) is not None
            except ValueError:
                valid = False
            if len(_VALID_DAYS) > 100_000:
                _VALID_DAYS.clear()
            _VALID_DAYS[day] = valid
        clock = text[11:19]
        if (
            valid
            and clock[:2].isdigit()
            and clock[3:5].isdigit()
            and clock[6:8].isdigit()
            and clock.isascii()
            and clock[:2] < "24"
            and clock[3:5] < "60"
            and clock[6:8] < "60"
        ):
            return text[:19] + "Z"
    return to_date_time(text, conventions)


def format_utc(moment: datetime, nanoseconds: str = "") -> str:
    """The one way the tool writes a date-time: UTC, ``Z``, the fraction only when there is one
    (``nanoseconds``: the digits after the microseconds, when the text had them)."""
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    # An offset is whole minutes (or at worst microseconds): the digits past them are the same
    # in UTC as in the text.
    fraction = (f"{utc.microsecond:06d}" + nanoseconds).rstrip("0")
    if fraction:
        text += "." + fraction
    return text + "Z"


def to_string_list(text: str) -> list[str]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConversionError(
            Problem.NOT_A_LIST, f'\'{text}\' is not a list of texts written as JSON, e.g. ["a","b"]'
        )
    return value


def refuse_control_characters(text: str, where: str = "") -> None:
    """Raise CONTROL_CHARACTER for a text holding one (see its pattern), saying which and
    where."""
    found = CONTROL_CHARACTER.search(text)
    if found is None:
        return
    name = C0_NAMES[ord(found.group())]
    gloss = f", {C0_GLOSSES[name]}" if name in C0_GLOSSES else ""
    raise ConversionError(
        Problem.CONTROL_CHARACTER,
        f"holds {name} (U+{ord(found.group()):04X}{gloss}), an invisible control character, "
        f"at character {found.start() + 1}{where}; remove it from the export",
    )


def visible(text: str) -> str:
    """``text`` with its control characters written out (``\\u0000``), for a report cell."""
    return CONTROL_CHARACTER.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def convert(text: str, kind: Kind, conventions: Conventions) -> Any:
    """One cell's value; ``CUSTOM_VALUE`` cells are typed later, once their type is known."""
    refuse_control_characters(text)
    if kind is Kind.STRING or kind is Kind.CUSTOM_VALUE:
        return text
    if kind is Kind.INTEGER:
        return to_integer(text)
    if kind is Kind.NUMBER:
        return to_number(text, conventions)
    if kind is Kind.BOOLEAN:
        return to_boolean(text)
    return to_date_time(text, conventions)


# The custom attribute's `type` decides how its `value` cell is read.
CUSTOM_VALUE_KINDS = {
    "STRING": Kind.STRING,
    "NUMERIC": Kind.NUMBER,
    "BOOLEAN": Kind.BOOLEAN,
    "DATE": Kind.DATE_TIME,
}


def convert_custom_value(text: str, attribute_type: Any, conventions: Conventions) -> Any:
    """A custom attribute's value read by its sibling ``type`` (an unknown type keeps the text;
    the schema then reports the type itself)."""
    if attribute_type == "LIST":
        refuse_control_characters(text)
        values = to_string_list(text)
        for position, value in enumerate(values, start=1):  # written as \u0000 in the JSON
            refuse_control_characters(value, f" of its element {position}")
        return values
    kind = CUSTOM_VALUE_KINDS.get(str(attribute_type), Kind.STRING)
    return convert(text, kind, conventions)
