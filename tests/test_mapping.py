"""Rows -> nested orders: types from the schema, arrays from indexes, every problem located."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl.core.errors import UnreadableFile
from etl.core.models import MappedItem, Origin
from etl.run.check import iter_validated, prepare
from etl.settings.config import ExportFormat, Settings, load_mapping_file

from .conftest import base_line, write_rows


def mapped(
    path: Path, settings: Settings | None = None, source: ExportFormat | None = None
) -> list[MappedItem]:
    prepared = prepare(path, settings or Settings(), source)
    return [item for chunk in iter_validated(prepared) for item in chunk]


def one(items: list[MappedItem], item_id: str) -> MappedItem:
    (item,) = [i for i in items if i.item_id == item_id]
    return item


def codes(item: MappedItem) -> list[str]:
    return [v.code for v in item.violations]


def test_types_come_from_the_schema(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "orders.csv", [base_line("000123", has_incident="YES")])
    (item,) = mapped(path)
    assert item.violations == []
    body = item.body
    assert body["channel_order_id"] == "000123"
    assert body["has_incident"] is True
    assert body["created_at"] == "2026-11-01T09:00:00Z"
    line = body["order_lines"][0]
    assert line["quantity"] == 2 and isinstance(line["quantity"], int)
    assert line["price"] == {"amount": 19.99, "currency": "EUR"}
    assert line["product"]["id"] == "00123"
    assert body["shipping_info"] == {}  # required, no required fields of its own: sent empty
    assert "billing_info" not in body  # optional and empty: absent
    assert item.origin == Origin("CH", "S1")


def test_na_is_a_string_and_rows_group_by_order_wherever_they_are(tmp_path: Path) -> None:
    rows = [
        base_line("NA", "L1"),
        base_line("B", "L2"),
        base_line("NA", "L3", order_lines__product__title="NA"),
    ]
    items = mapped(write_rows(tmp_path / "orders.csv", rows))
    assert [i.item_id for i in items] == ["NA", "B"]
    na = one(items, "NA")
    assert na.rows == (2, 4)
    assert [line["channel_order_line_id"] for line in na.body["order_lines"]] == ["L1", "L3"]
    assert na.body["order_lines"][1]["product"]["title"] == "NA"


def test_indexed_columns_build_arrays_and_gaps_close(tmp_path: Path) -> None:
    row = base_line()
    row.update(
        {
            "order_lines.taxes[0].code": "VAT",
            "order_lines.taxes[0].amount.amount": "4.00",
            "order_lines.taxes[0].amount.currency": "EUR",
            "order_lines.taxes[1].code": "",
            "order_lines.taxes[2].code": "ECO",
            "order_lines.taxes[2].amount.amount": "0.5",
            "order_lines.taxes[2].amount.currency": "EUR",
            "custom_attributes[0].id": "tags",
            "custom_attributes[0].type": "LIST",
            "custom_attributes[0].value": '["a","b"]',
            "custom_attributes[1].id": "points",
            "custom_attributes[1].type": "NUMERIC",
            "custom_attributes[1].value": "12",
        }
    )
    (item,) = mapped(write_rows(tmp_path / "orders.csv", [row]))
    assert item.violations == []
    assert item.body["order_lines"][0]["taxes"] == [
        {"code": "VAT", "amount": {"amount": 4, "currency": "EUR"}},
        {"code": "ECO", "amount": {"amount": 0.5, "currency": "EUR"}},
    ]
    assert item.body["custom_attributes"] == [
        {"id": "tags", "type": "LIST", "value": ["a", "b"]},
        {"id": "points", "type": "NUMERIC", "value": 12},
    ]


def test_order_level_values_must_agree_and_the_error_names_the_rows(tmp_path: Path) -> None:
    rows = [
        base_line("A", "L1", status="SHIPPED"),
        base_line("A", "L2", status="SHIPPED"),
        base_line("A", "L3", status="DELIVERED"),
    ]
    (item,) = mapped(write_rows(tmp_path / "orders.csv", rows))
    (violation,) = item.violations
    assert violation.code == "ROWS_DISAGREE"
    assert violation.rows == (2, 4)
    assert violation.path == "$.status"
    assert "row 2 has 'SHIPPED' but row(s) 4 have 'DELIVERED'" in violation.message


def test_personal_data_is_masked_in_disagreements(tmp_path: Path) -> None:
    address = {"shipping_info__address__street": "1 rue X", "shipping_info__address__city": "Y"}
    rows = [
        base_line("A", "L1", shipping_info__address__last_name="Dupont", **address),
        base_line("A", "L2", shipping_info__address__last_name="Durand", **address),
    ]
    (item,) = mapped(write_rows(tmp_path / "orders.csv", rows))
    (violation,) = item.violations
    assert "Dupont" not in violation.message and "Durand" not in violation.message
    assert violation.value == "D***"


def test_a_line_id_used_twice_invalidates_both_orders(tmp_path: Path) -> None:
    rows = [base_line("A", "L1"), base_line("B", "L2"), base_line("C", "L1")]
    items = mapped(write_rows(tmp_path / "orders.csv", rows))
    assert codes(one(items, "A")) == ["DUPLICATE_LINE_ID"]
    assert codes(one(items, "C")) == ["DUPLICATE_LINE_ID"]
    assert one(items, "B").violations == []
    assert one(items, "C").violations[0].rows == (2, 4)


def test_every_violation_of_an_order_is_collected_with_its_row(tmp_path: Path) -> None:
    rows = [
        base_line("A", "L1", order_lines__status="SHIPPING"),
        base_line("A", "L2", order_lines__price__amount="-1", order_lines__quantity="two"),
        base_line("A", "L3", order_lines__product__title=""),
    ]
    (item,) = mapped(write_rows(tmp_path / "orders.csv", rows))
    found = {(v.rows, v.path, v.code) for v in item.violations}
    assert found == {
        ((2,), "$.order_lines[0].status", "NOT_ALLOWED_VALUE"),
        ((3,), "$.order_lines[1].price.amount", "NEGATIVE_AMOUNT"),
        ((3,), "$.order_lines[1].quantity", "NOT_AN_INTEGER"),
        ((4,), "$.order_lines[2].product.title", "REQUIRED_FIELD_MISSING"),
    }
    status = next(v for v in item.violations if v.code == "NOT_ALLOWED_VALUE")
    assert status.message == (
        "order_lines[0].status: 'SHIPPING' is not one of AWAITING_ACCEPTANCE, "
        "AWAITING_FRAUD_CHECK, AWAITING_PAYMENT, AWAITING_SHIPMENT, CHANNEL_SPECIFIC, CLOSED, "
        "DELIVERED, SHIPPED"
    )


def test_missing_ids_and_origins_are_violations(tmp_path: Path) -> None:
    rows = [base_line(""), {**base_line("B", "L2"), "origin.channel_id": ""}]
    items = mapped(write_rows(tmp_path / "orders.csv", rows))
    assert codes(items[0]) == ["MISSING_ID"]
    assert codes(items[1]) == ["MISSING_ORIGIN"]


def test_default_origin_fills_empty_origin_cells(tmp_path: Path) -> None:
    row = base_line()
    del row["origin.channel_id"], row["origin.channel_store_id"]
    settings = Settings(channel_id="DEF", store_id="S9")
    (item,) = mapped(write_rows(tmp_path / "orders.csv", [row]), settings)
    assert item.violations == [] and item.origin == Origin("DEF", "S9")


@pytest.mark.parametrize(
    ("column", "reason"),
    [
        ("order_lines.statuss", "did you mean 'status'"),
        ("shiping_info.carrier", "did you mean 'shipping_info'"),
        ("order_lines[0].status", "drop the [0]"),
    ],
)
def test_unknown_columns_make_the_file_unreadable_with_a_hint(
    tmp_path: Path, column: str, reason: str
) -> None:
    row = {**base_line(), column: "x"}
    with pytest.raises(UnreadableFile, match=reason.replace("[", r"\[").replace("]", r"\]")):
        mapped(write_rows(tmp_path / "orders.csv", [row]))


def test_no_id_column_is_unreadable(tmp_path: Path) -> None:
    row = base_line()
    del row["channel_order_id"]
    with pytest.raises(UnreadableFile, match="there is no channel_order_id column"):
        mapped(write_rows(tmp_path / "orders.csv", [row]))


def test_mapping_file_renames_fans_out_sets_constants_and_ignores(tmp_path: Path) -> None:
    mapping = tmp_path / "erp.toml"
    mapping.write_text(
        'ignore = ["Notiz"]\n'
        '[read]\ndecimal_comma = true\nassume_timezone = "Europe/Paris"\n'
        '[columns]\n"Nr" = "channel_order_id"\n'
        '"Datum" = ["created_at", "order_lines.created_at"]\n'
        '"Preis" = "order_lines.price.amount"\n'
        '[constants]\n"order_lines.price.currency" = "EUR"\n"has_incident" = false\n',
        encoding="utf-8",
    )
    row = base_line()
    for old in (
        "channel_order_id",
        "created_at",
        "order_lines.created_at",
        "order_lines.price.amount",
        "order_lines.price.currency",
    ):
        del row[old]
    row.update({"Nr": "0042", "Datum": "2026-07-01 12:00:00", "Preis": "1234,50", "Notiz": "x"})
    source = load_mapping_file(mapping, ExportFormat())
    (item,) = mapped(write_rows(tmp_path / "orders.csv", [row], delimiter=";"), source=source)
    assert item.violations == []
    assert item.item_id == "0042"
    assert item.body["created_at"] == "2026-07-01T10:00:00Z"
    assert item.body["order_lines"][0]["created_at"] == "2026-07-01T10:00:00Z"
    assert item.body["order_lines"][0]["price"] == {"amount": 1234.5, "currency": "EUR"}
    assert item.body["has_incident"] is False


def test_a_constant_that_is_also_a_column_is_refused(tmp_path: Path) -> None:
    mapping = tmp_path / "m.toml"
    mapping.write_text('[constants]\n"status" = "SHIPPED"\n', encoding="utf-8")
    source = load_mapping_file(mapping, ExportFormat())
    with pytest.raises(UnreadableFile, match="both a column"):
        mapped(write_rows(tmp_path / "orders.csv", [base_line()]), source=source)
