"""Hypothesis strategies for nested orders, and the flat rows a person would export for them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import strategies as st

from etl.transform.convert import format_utc

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"))
    | st.sampled_from([",", ";", '"', "\n"]),
    min_size=1,
    max_size=12,
)
IDS = st.from_regex(r"\A[0-9A-Z]{1,3}-?0{0,3}[0-9]{1,4}\Z")
MOMENTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
).map(format_utc)
AMOUNTS = st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2).map(
    lambda d: int(d) if d == d.to_integral_value() else float(d)
)
MONEY = st.fixed_dictionaries({"amount": AMOUNTS, "currency": st.sampled_from(["EUR", "USD"])})
STATUSES = st.sampled_from(["AWAITING_ACCEPTANCE", "SHIPPED", "DELIVERED", "CLOSED"])

CUSTOM_ATTRIBUTE = st.one_of(
    st.fixed_dictionaries({"id": TEXT, "type": st.just("STRING"), "value": TEXT}),
    st.fixed_dictionaries({"id": TEXT, "type": st.just("NUMERIC"), "value": AMOUNTS}),
    st.fixed_dictionaries({"id": TEXT, "type": st.just("BOOLEAN"), "value": st.booleans()}),
    st.fixed_dictionaries({"id": TEXT, "type": st.just("DATE"), "value": MOMENTS}),
    st.fixed_dictionaries(
        {"id": TEXT, "type": st.just("LIST"), "value": st.lists(TEXT, min_size=1, max_size=3)}
    ),
)
TAX = st.fixed_dictionaries(
    {"code": TEXT, "amount": MONEY}, optional={"rate": st.sampled_from([0.2, 0.055, 0])}
)


def lines(prefix: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    line = st.fixed_dictionaries(
        {
            "created_at": MOMENTS,
            "updated_at": MOMENTS,
            "status": STATUSES,
            "quantity": st.integers(min_value=0, max_value=10**6),
            "can_cancel": st.booleans(),
            "can_refund": st.booleans(),
            "product": st.fixed_dictionaries({"id": IDS, "title": TEXT}),
            "price": MONEY,
            "total_shipping_price": MONEY,
        },
        optional={
            "taxes": st.lists(TAX, min_size=1, max_size=2),
            "custom_attributes": st.lists(CUSTOM_ATTRIBUTE, min_size=1, max_size=2),
        },
    )
    return st.lists(line, min_size=1, max_size=4).map(
        lambda ls: [{"channel_order_line_id": f"{prefix}-{i}", **line} for i, line in enumerate(ls)]
    )


@st.composite
def orders(draw: st.DrawFn, count: int = 5) -> list[dict[str, Any]]:
    """Valid orders with unique order and line ids."""
    ids = draw(st.lists(IDS, min_size=1, max_size=count, unique=True))
    result = []
    for order_id in ids:
        order = draw(
            st.fixed_dictionaries(
                {
                    "channel_order_id": st.just(order_id),
                    "created_at": MOMENTS,
                    "channel_updated_at": MOMENTS,
                    "status": STATUSES,
                    "fulfillment": st.fixed_dictionaries(
                        {"type": st.sampled_from(["FULFILLED_BY_SELLER", "FULFILLED_BY_PARTNER"])}
                    ),
                    "shipping_info": st.fixed_dictionaries(
                        {}, optional={"carrier": TEXT, "method": TEXT}
                    ),
                    "order_lines": lines(order_id),
                },
                optional={
                    "has_incident": st.booleans(),
                    "custom_attributes": st.lists(CUSTOM_ATTRIBUTE, min_size=1, max_size=2),
                },
            )
        )
        result.append(order)
    return result


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return orjson.dumps(value).decode()
    return str(value)


def _flatten(node: dict[str, Any], prefix: str, out: dict[str, str]) -> None:
    for key, value in node.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", out)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for index, element in enumerate(value):
                _flatten(element, f"{name}[{index}].", out)
        else:
            out[name] = _cell(value)


def to_rows(order: dict[str, Any], origin: tuple[str, str]) -> list[dict[str, str]]:
    """The export of one order: one row per line, order fields repeated on each row."""
    head: dict[str, str] = {"origin.channel_id": origin[0], "origin.channel_store_id": origin[1]}
    _flatten({k: v for k, v in order.items() if k != "order_lines"}, "", head)
    rows = []
    for line in order["order_lines"]:
        row = dict(head)
        _flatten(line, "order_lines.", row)
        rows.append(row)
    return rows
