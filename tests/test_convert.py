"""Cell text -> JSON value: a table of what is accepted, what it becomes, and what is refused."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from etl.core.schema import Kind
from etl.settings.options import Conventions
from etl.transform.convert import ConversionError, convert, convert_custom_value

POINT = Conventions()
COMMA = Conventions(decimal_comma=True)
PARIS = Conventions(assume_timezone=ZoneInfo("Europe/Paris"))


@pytest.mark.parametrize(
    ("text", "kind", "conventions", "expected"),
    [
        ("00123", Kind.STRING, POINT, "00123"),
        ("NA", Kind.STRING, POINT, "NA"),
        ("3", Kind.INTEGER, POINT, 3),
        ("-4", Kind.INTEGER, POINT, -4),
        ("19.99", Kind.NUMBER, POINT, 19.99),
        ("0.1", Kind.NUMBER, POINT, 0.1),
        ("7", Kind.NUMBER, POINT, 7),
        ("19,99", Kind.NUMBER, COMMA, 19.99),
        ("TRUE", Kind.BOOLEAN, POINT, True),
        ("yes", Kind.BOOLEAN, POINT, True),
        ("0", Kind.BOOLEAN, POINT, False),
        ("No", Kind.BOOLEAN, POINT, False),
        ("2026-11-01T10:00:00+01:00", Kind.DATE_TIME, POINT, "2026-11-01T09:00:00Z"),
        ("2026-11-01T10:00:00Z", Kind.DATE_TIME, POINT, "2026-11-01T10:00:00Z"),
        ("2026-11-01 10:00:00.250-05:00", Kind.DATE_TIME, POINT, "2026-11-01T15:00:00.25Z"),
        ("2026-07-01 10:00:00", Kind.DATE_TIME, PARIS, "2026-07-01T08:00:00Z"),
    ],
)
def test_accepted(text: str, kind: Kind, conventions: Conventions, expected: object) -> None:
    value = convert(text, kind, conventions)
    assert value == expected
    assert type(value) is type(expected)


def test_money_keeps_its_decimal_text_through_json() -> None:
    for text in ("19.99", "0.1", "1234567.89", "0.07", "99999999999.9999"):
        assert orjson.dumps(convert(text, Kind.NUMBER, POINT)).decode() == text


@pytest.mark.parametrize(
    ("text", "kind", "conventions", "code"),
    [
        ("2.5", Kind.INTEGER, POINT, "NOT_AN_INTEGER"),
        ("3.0", Kind.INTEGER, POINT, "NOT_AN_INTEGER"),
        ("1e3", Kind.INTEGER, POINT, "NOT_AN_INTEGER"),
        ("abc", Kind.NUMBER, POINT, "NOT_A_NUMBER"),
        ("19,99", Kind.NUMBER, POINT, "NOT_A_NUMBER"),
        ("19.99", Kind.NUMBER, COMMA, "NOT_A_NUMBER"),
        ("1,234.50", Kind.NUMBER, POINT, "NOT_A_NUMBER"),
        ("NaN", Kind.NUMBER, POINT, "NOT_A_NUMBER"),
        ("1e5", Kind.NUMBER, POINT, "NOT_A_NUMBER"),
        ("1234567890123456.7", Kind.NUMBER, POINT, "TOO_MANY_DIGITS"),
        ("maybe", Kind.BOOLEAN, POINT, "NOT_A_BOOLEAN"),
        ("y", Kind.BOOLEAN, POINT, "NOT_A_BOOLEAN"),
        ("2026-11-01 10:00:00", Kind.DATE_TIME, POINT, "NAIVE_DATE_TIME"),
        ("2026-02-30T10:00:00Z", Kind.DATE_TIME, POINT, "NOT_A_DATE_TIME"),
        ("01/11/2026 10:00", Kind.DATE_TIME, POINT, "NOT_A_DATE_TIME"),
        ("2026-11-01", Kind.DATE_TIME, POINT, "NOT_A_DATE_TIME"),
    ],
)
def test_refused(text: str, kind: Kind, conventions: Conventions, code: str) -> None:
    with pytest.raises(ConversionError) as raised:
        convert(text, kind, conventions)
    assert raised.value.code == code
    assert text in raised.value.message


def test_custom_values_follow_their_type() -> None:
    assert convert_custom_value("12.5", "NUMERIC", POINT) == 12.5
    assert convert_custom_value("true", "BOOLEAN", POINT) is True
    assert convert_custom_value('["a","b"]', "LIST", POINT) == ["a", "b"]
    assert convert_custom_value("2026-01-01T00:00:00Z", "DATE", POINT) == "2026-01-01T00:00:00Z"
    assert convert_custom_value("12.5", "STRING", POINT) == "12.5"
    assert convert_custom_value("x", "UNKNOWN", POINT) == "x"
    with pytest.raises(ConversionError, match="list of texts"):
        convert_custom_value("a,b", "LIST", POINT)


def test_utc_formatting_never_leaves_an_offset() -> None:
    from etl.transform.convert import format_utc

    moment = datetime(2026, 3, 29, 3, 30, tzinfo=ZoneInfo("Europe/Paris"))
    assert format_utc(moment) == "2026-03-29T01:30:00Z"
