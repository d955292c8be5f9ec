"""The shipped schemas say what the OpenAPI file says, and ship inside the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from etl.core.schema import ORDERS, Kind, Level, UnknownColumn, flat_model, load_schema
from tools.schema_derive import DEFAULT_OPENAPI, SCHEMA_DIR, derive_all, lift_enum, render

from .conftest import REPO

OPENAPI = json.loads(DEFAULT_OPENAPI.read_text(encoding="utf-8"))
SHARED_OPENAPI = REPO.parent / "shared" / "api" / "openapi" / DEFAULT_OPENAPI.name


def test_committed_schemas_are_exactly_what_the_openapi_file_derives() -> None:
    for filename, schema in derive_all().items():
        committed = (SCHEMA_DIR / filename).read_text(encoding="utf-8")
        assert committed == render(schema), f"{filename} drifted: run python -m tools.schema_derive"


@pytest.mark.skipif(not SHARED_OPENAPI.exists(), reason="no shared API folder beside the repo")
def test_vendored_openapi_file_matches_the_shared_one() -> None:
    assert DEFAULT_OPENAPI.read_bytes() == SHARED_OPENAPI.read_bytes()


def test_every_order_field_and_required_flag_of_the_openapi_file_is_in_the_schema() -> None:
    components = OPENAPI["components"]["schemas"]
    defs = load_schema("order.schema.json")["$defs"]
    for name in ("OrderRequest", "OrderLineRequest", "AddressRequest", "TaxRequest", "Money"):
        assert set(defs[name]["properties"]) == set(components[name]["properties"]), name
        assert defs[name]["required"] == components[name]["required"], name


def test_enums_written_in_descriptions_are_lifted() -> None:
    defs = load_schema("order.schema.json")["$defs"]
    assert defs["OrderLineRequest"]["properties"]["status"]["enum"] == [
        "AWAITING_ACCEPTANCE",
        "AWAITING_FRAUD_CHECK",
        "AWAITING_PAYMENT",
        "AWAITING_SHIPMENT",
        "CHANNEL_SPECIFIC",
        "CLOSED",
        "DELIVERED",
        "SHIPPED",
    ]
    assert defs["AdjustmentRequest"]["properties"]["type"]["enum"] == ["REFUND", "CANCELATION"]
    assert defs["FulfillmentRequest"]["properties"]["type"]["enum"] == [
        "FULFILLED_BY_SELLER",
        "FULFILLED_BY_PARTNER",
    ]
    assert lift_enum("no enum here") is None


def test_limits_formats_and_custom_attribute_variants() -> None:
    request = load_schema("upsert-orders-request.schema.json")
    assert request["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    orders = request["$defs"]["UpsertOrdersRequest"]["properties"]["orders"]
    assert (orders["minItems"], orders["maxItems"]) == (1, 100)
    defs = request["$defs"]
    assert defs["Money"]["properties"]["amount"]["minimum"] == 0
    assert defs["ShippingInfoRequest"]["properties"]["email"]["format"] == "email"
    assert defs["ProductRequest"]["properties"]["thumbnail_url"]["format"] == "uri"
    assert defs["OrderRequest"]["properties"]["created_at"]["format"] == "date-time"
    branches = {
        b["if"]["properties"]["type"]["const"]: b["then"]["properties"]["value"]
        for b in defs["CustomAttributeRequest"]["allOf"]
    }
    assert branches["NUMERIC"]["type"] == "number"
    assert branches["BOOLEAN"]["type"] == "boolean"
    assert branches["DATE"]["format"] == "date-time"
    assert branches["LIST"]["items"] == {"type": "string", "maxLength": 10000}
    assert branches["STRING"]["type"] == "string"
    assert "discriminator" not in json.dumps(request)


def test_columns_resolve_to_levels_and_types() -> None:
    model = flat_model(ORDERS)
    leaf = model.leaf("order_lines.taxes[0].amount.amount")
    assert (leaf.level, leaf.keys, leaf.kind) == (
        Level.ROW,
        ("taxes", 0, "amount", "amount"),
        Kind.NUMBER,
    )
    assert model.leaf("origin.channel_id").level is Level.REQUEST
    assert model.leaf("custom_attributes[2].value").kind is Kind.CUSTOM_VALUE
    assert model.leaf("shipping_info.address.phone").personal
    with pytest.raises(UnknownColumn, match="did you mean 'status'"):
        model.leaf("order_lines.statsu")
    with pytest.raises(UnknownColumn, match=r"name the element: taxes\[0\]"):
        model.leaf("order_lines.taxes.code")


def test_template_lists_every_leaf_once_and_each_resolves() -> None:
    model = flat_model(ORDERS)
    header = model.template()
    assert len(header) == len(set(header))
    assert header[:3] == ["origin.channel_id", "origin.channel_store_id", "channel_order_id"]
    assert all(model.leaf(column) for column in header)
    assert "order_lines.adjustments[0].taxes[0].seller_collectible.currency" in header


def test_schemas_ship_inside_the_wheel(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "etl/core/schemas/order.schema.json" in names
    assert "etl/core/schemas/upsert-orders-request.schema.json" in names
