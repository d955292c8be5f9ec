"""How the user's files are written: the options that settings (etl.toml, the mapping file, the
environment) give the reader and the converters. Types only, so that settings need not import the
stages that use them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How to read a source; everything unset is detected."""

    encoding: str = "utf-8"
    delimiter: str | None = None
    sheet: str | None = None  # an Excel workbook's sheet to read; None: the first


@dataclass(frozen=True, slots=True)
class Conventions:
    """How this source writes numbers and times (from the config or mapping file).
    ``date_format``: how its date-times are written (strptime), when not ISO 8601."""

    decimal_comma: bool = False
    assume_timezone: tzinfo | None = None
    date_format: str | None = None


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """A user's renames, constants and ignored columns (the mapping file; see README)."""

    renames: dict[str, tuple[str, ...]] = field(default_factory=dict)  # one column, 1+ paths
    constants: dict[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()
    # A date format by column, named as in the export (a constant by its path): strptime's.
    formats: dict[str, str] = field(default_factory=dict)
    # The export's words for the values Connect takes, by column named as in the export: each
    # cell equal to a word (exactly: case and spaces count) is read as its value.
    values: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)


# A moment whose every field differs from the others and from the defaults of strptime (1900-01-01
# 00:00): what a date format writes of it shows an example, and reading it back shows whether
# the format names the year, month and day.
SAMPLE_MOMENT = datetime(2026, 11, 20, 9, 14, 5, tzinfo=UTC)


def date_format_example(date_format: str) -> str:
    """The sample moment written in ``date_format`` (``20.11.2026 09:14``), for messages."""
    return SAMPLE_MOMENT.strftime(date_format)


def date_format_problem(date_format: str) -> str | None:
    """Why ``date_format`` cannot read an export's date-times, or None."""
    if "%Z" in date_format.replace("%%", ""):
        return (
            "reads %Z, a zone's name, which gives no offset: use %z (+01:00, Z) or assume_timezone"
        )
    try:
        back = datetime.strptime(date_format_example(date_format), date_format)
    except ValueError:
        back = None
    if back is None or back.date() != SAMPLE_MOMENT.date():
        return (
            "does not name the year, month and day (a format like %d.%m.%Y %H:%M: %Y or %y the "
            "year, %m or %b the month, %d the day)"
        )
    return None


def writes_offset(date_format: str) -> bool:
    """The format reads each time's own offset (``%z``), so no zone need be assumed."""
    return "%z" in date_format.replace("%%", "")
