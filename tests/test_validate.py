"""Validation: the fast validator and jsonschema agree; round trips keep every order intact."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.core.schema import ORDERS
from etl.run.check import iter_validated, prepare, validator_for
from etl.settings.config import Settings

from .conftest import write_rows
from .orders_strategy import orders, to_rows

WRONG_VALUES: list[Any] = [
    None,
    "",
    "SHIPPING",
    -1,
    -0.01,
    1.5,
    "2026-13-01T00:00:00Z",
    "2026-01-01T00:00:00",
    "not an email",
    "x y",
    True,
    [],
    {},
    "a" * 300,
    10**10,
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def _mutate(order: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> None:
    node: Any = order
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders(count=2), st.data())
def test_fast_and_slow_validators_agree(valid: list[dict[str, Any]], data: st.DataObject) -> None:
    validator = validator_for(ORDERS)
    order = copy.deepcopy(valid[0])
    assert validator.is_valid(order) and validator.explain(order) == []
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        path = data.draw(st.sampled_from(_paths(order)))
        value = data.draw(st.sampled_from(WRONG_VALUES))
        _mutate(order, path, value, delete=data.draw(st.booleans()))
    assert validator.is_valid(order) == (validator.explain(order) == [])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders(count=4), st.sampled_from([("CH-1", "S-1"), ("CH-2", "007")]))
def test_nested_to_flat_to_nested_gives_the_same_orders(
    nested: list[dict[str, Any]], origin: tuple[str, str]
) -> None:
    rows = [row for order in nested for row in to_rows(order, origin)]
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(Path(folder) / "orders.csv", rows)
        prepared = prepare(path, Settings())
        items = [item for chunk in iter_validated(prepared) for item in chunk]
    assert [i.violations for i in items] == [[] for _ in nested]
    assert [i.body for i in items] == nested
    assert {i.origin.as_json()["channel_id"] for i in items if i.origin} == {origin[0]}
