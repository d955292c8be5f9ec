"""Seeded generator of realistic orders exports (CSV and Parquet), for samples, tests and the bench.

Three shapes (``--shape``), each deterministic for a seed:

- ``bench`` (the default): every column kind of DESIGN.md section 3: order- and line-level fields,
  indexed taxes, adjustments and custom attributes, unicode and quoted text, leading-zero ids, two
  origins, date-times in UTC.
- ``wide`` (issue 16's export, ``bench/shapes.py``): 58 columns, date-times with offsets,
  booleans spelt yes/no/1/0/TRUE, a custom attribute of every type, two taxes and an adjustment
  per line, CJK and quoted commas; no origin columns (the default origin from the environment).
- ``minimal`` (an ERP's minimal export, ``bench/shapes.py``): only the required columns, under
  the ERP's own names, decimal commas, semicolons; read with a mapping file.

``python -m bench.generate --orders 250000 --out big.csv [--shape wide]`` writes one (and, for
a shape read with a mapping file, ``big.mapping.toml`` beside it).
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.shapes import SHAPES
from etl.core.schema import ORDERS, Kind, flat_model

COLUMNS = [
    "origin.channel_id",
    "origin.channel_store_id",
    "channel_order_id",
    "created_at",
    "channel_updated_at",
    "status",
    "fulfillment.type",
    "has_incident",
    "shipping_info.email",
    "shipping_info.carrier",
    "shipping_info.method",
    "shipping_info.shipping_deadline",
    "shipping_info.address.first_name",
    "shipping_info.address.last_name",
    "shipping_info.address.street",
    "shipping_info.address.zip_code",
    "shipping_info.address.city",
    "shipping_info.address.country_iso_code",
    "billing_info.address.first_name",
    "billing_info.address.last_name",
    "billing_info.address.street",
    "billing_info.address.zip_code",
    "billing_info.address.city",
    "billing_info.address.country_iso_code",
    "custom_attributes[0].id",
    "custom_attributes[0].type",
    "custom_attributes[0].value",
    "custom_attributes[1].id",
    "custom_attributes[1].type",
    "custom_attributes[1].value",
    "order_lines.channel_order_line_id",
    "order_lines.created_at",
    "order_lines.updated_at",
    "order_lines.status",
    "order_lines.quantity",
    "order_lines.can_cancel",
    "order_lines.can_refund",
    "order_lines.product.id",
    "order_lines.product.title",
    "order_lines.product.thumbnail_url",
    "order_lines.price.amount",
    "order_lines.price.currency",
    "order_lines.total_shipping_price.amount",
    "order_lines.total_shipping_price.currency",
    "order_lines.taxes[0].code",
    "order_lines.taxes[0].rate",
    "order_lines.taxes[0].amount.amount",
    "order_lines.taxes[0].amount.currency",
    "order_lines.taxes[1].code",
    "order_lines.taxes[1].rate",
    "order_lines.taxes[1].amount.amount",
    "order_lines.taxes[1].amount.currency",
    "order_lines.shipping_taxes[0].code",
    "order_lines.shipping_taxes[0].rate",
    "order_lines.shipping_taxes[0].amount.amount",
    "order_lines.shipping_taxes[0].amount.currency",
    "order_lines.adjustments[0].channel_adjustment_id",
    "order_lines.adjustments[0].created_at",
    "order_lines.adjustments[0].type",
    "order_lines.adjustments[0].reason",
    "order_lines.adjustments[0].quantity",
    "order_lines.adjustments[0].price.amount",
    "order_lines.adjustments[0].price.currency",
    "order_lines.adjustments[0].shipping_price.amount",
    "order_lines.adjustments[0].shipping_price.currency",
    "order_lines.custom_attributes[0].id",
    "order_lines.custom_attributes[0].type",
    "order_lines.custom_attributes[0].value",
]

ORIGINS = [("SHOP-FR", "store-0042"), ("MARKET-DE", "de-01")]
FIRST_NAMES = [
    "Amélie",
    "Jürgen",
    "Søren",
    "Zoë",
    "José",
    "Marie",
    "Ola",
    "Łukasz",
    "Chloé",
    "Anna",
]
LAST_NAMES = ["Dupont", "Müller", "O'Brien", "Nørgaard", "García", "van der Berg", "Kowalski"]
STREETS = ["12 rue de la Paix", "Hauptstraße 5", '3 "Les Tilleuls", bât. B', "Calle Mayor 1, 2ºA"]
CITIES = [("75002", "Paris", "FRA"), ("10115", "Berlin", "DEU"), ("28013", "Madrid", "ESP")]
PRODUCTS = [
    ("000123", 'Écran 27" "UltraSharp", mat'),
    ("004567", "Chaise de bureau ergonomique"),
    ("000089", "Café en grains 1 kg – Arabica"),  # noqa: RUF001 - real exports have en dashes
    ("012000", "Kabel USB-C, 2 m; geflochten"),
    ("000777", "Tasse «Bonjour» 350 ml"),
]
LINE_STATUSES = ["AWAITING_ACCEPTANCE", "AWAITING_SHIPMENT", "SHIPPED", "DELIVERED"]
VAT = {"FRA": "0.2", "DEU": "0.19", "ESP": "0.21"}


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_rows(
    orders: int, seed: int = 7, max_lines: int = 8, id_prefix: str = ""
) -> Iterator[dict[str, str]]:
    """Rows of a valid orders export: one row per order line, order fields repeated.

    ``id_prefix`` keeps the order and line ids of different exports apart.
    """
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    line_number = 0
    for number in range(orders):
        channel, store = ORIGINS[number % len(ORIGINS)]
        created = start + timedelta(minutes=number * 7 + rng.randint(0, 6))
        updated = created + timedelta(hours=rng.randint(0, 48))
        zip_code, city, country = rng.choice(CITIES)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        lines = rng.randint(1, max_lines)
        statuses = [rng.choice(LINE_STATUSES) for _ in range(lines)]
        order = {
            "origin.channel_id": channel,
            "origin.channel_store_id": store,
            "channel_order_id": f"{id_prefix}{channel[:2]}-{number:08d}",
            "created_at": _time(created),
            "channel_updated_at": _time(updated),
            "status": min(statuses, key=LINE_STATUSES.index),
            "fulfillment.type": "FULFILLED_BY_SELLER",
            "has_incident": "true" if number % 17 == 0 else "false",
            "shipping_info.email": f"{first.lower()}.{number}@example.com".encode("ascii", "ignore")
            .decode()
            .replace(" ", ""),
            "shipping_info.carrier": rng.choice(["Colissimo", "DHL", "UPS"]),
            "shipping_info.method": rng.choice(["standard", "express"]),
            "shipping_info.shipping_deadline": _time(created + timedelta(days=2)),
            "shipping_info.address.first_name": first,
            "shipping_info.address.last_name": last,
            "shipping_info.address.street": rng.choice(STREETS),
            "shipping_info.address.zip_code": zip_code,
            "shipping_info.address.city": city,
            "shipping_info.address.country_iso_code": country,
            "billing_info.address.first_name": first,
            "billing_info.address.last_name": last,
            "billing_info.address.street": rng.choice(STREETS),
            "billing_info.address.zip_code": zip_code,
            "billing_info.address.city": city,
            "billing_info.address.country_iso_code": country,
            "custom_attributes[0].id": "gift_wrap",
            "custom_attributes[0].type": "BOOLEAN",
            "custom_attributes[0].value": rng.choice(["true", "false"]),
            "custom_attributes[1].id": "tags" if number % 2 else "loyalty_points",
            "custom_attributes[1].type": "LIST" if number % 2 else "NUMERIC",
            "custom_attributes[1].value": '["vip","newsletter"]' if number % 2 else "120.5",
        }
        for index in range(lines):
            line_number += 1
            product_id, title = rng.choice(PRODUCTS)
            quantity = rng.randint(1, 4)
            unit_price = _money(rng, 5, 400)
            price = unit_price * quantity
            shipping = _money(rng, 0, 15)
            rate = Decimal(VAT[country])
            row = dict(order)
            row.update(
                {
                    "order_lines.channel_order_line_id": f"{id_prefix}L{line_number:09d}",
                    "order_lines.created_at": _time(created),
                    "order_lines.updated_at": _time(updated),
                    "order_lines.status": statuses[index],
                    "order_lines.quantity": str(quantity),
                    "order_lines.can_cancel": "true" if statuses[index] != "DELIVERED" else "false",
                    "order_lines.can_refund": "true",
                    "order_lines.product.id": product_id,
                    "order_lines.product.title": title,
                    "order_lines.product.thumbnail_url": f"https://cdn.example.com/p/{product_id}.jpg",
                    "order_lines.price.amount": str(price),
                    "order_lines.price.currency": "EUR",
                    "order_lines.total_shipping_price.amount": str(shipping),
                    "order_lines.total_shipping_price.currency": "EUR",
                    "order_lines.taxes[0].code": "VAT",
                    "order_lines.taxes[0].rate": str(rate),
                    "order_lines.taxes[0].amount.amount": str(
                        (price * rate).quantize(Decimal("0.01"))
                    ),
                    "order_lines.taxes[0].amount.currency": "EUR",
                    "order_lines.shipping_taxes[0].code": "VAT",
                    "order_lines.shipping_taxes[0].rate": str(rate),
                    "order_lines.shipping_taxes[0].amount.amount": str(
                        (shipping * rate).quantize(Decimal("0.01"))
                    ),
                    "order_lines.shipping_taxes[0].amount.currency": "EUR",
                }
            )
            if index % 3 == 1:  # an eco-tax on some lines: a second indexed tax
                row.update(
                    {
                        "order_lines.taxes[1].code": "ECO",
                        "order_lines.taxes[1].rate": "0",
                        "order_lines.taxes[1].amount.amount": "0.50",
                        "order_lines.taxes[1].amount.currency": "EUR",
                    }
                )
            if statuses[index] == "DELIVERED" and quantity > 1 and rng.random() < 0.5:
                row.update(
                    {
                        "order_lines.adjustments[0].channel_adjustment_id": f"ADJ-{line_number}",
                        "order_lines.adjustments[0].created_at": _time(updated),
                        "order_lines.adjustments[0].type": "REFUND",
                        "order_lines.adjustments[0].reason": "DEFECT",
                        "order_lines.adjustments[0].quantity": "1",
                        "order_lines.adjustments[0].price.amount": str(unit_price),
                        "order_lines.adjustments[0].price.currency": "EUR",
                        "order_lines.adjustments[0].shipping_price.amount": "0",
                        "order_lines.adjustments[0].shipping_price.currency": "EUR",
                    }
                )
            if index == 0:
                row.update(
                    {
                        "order_lines.custom_attributes[0].id": "warehouse",
                        "order_lines.custom_attributes[0].type": "STRING",
                        "order_lines.custom_attributes[0].value": rng.choice(["WH-01", "WH-02"]),
                    }
                )
            yield {column: row.get(column, "") for column in COLUMNS}


def write_csv(path: Path, rows: Iterator[dict[str, str]], delimiter: str = ",") -> None:
    # csv.writer on value lists writes what csv.DictWriter would, a good deal faster.
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(COLUMNS)
        writer.writerows(list(row.values()) for row in rows)


def write_sorted_csv(path: Path, rows: Iterator[dict[str, str]]) -> None:
    """The same rows sorted by channel_order_id (each order's rows stay together and in order),
    in bounded memory: the ids are ``<prefix><channel[:2]>-<number>``, so one file per channel
    prefix, each already in order, concatenated in the order of the prefixes."""
    parts: dict[str, Any] = {}
    folder = path.parent
    try:
        writers: dict[str, Any] = {}
        for row in rows:
            key = row["channel_order_id"].rsplit("-", 1)[0]
            if key not in writers:
                handle = parts[key] = (folder / f".{path.name}.{len(parts)}.part").open(
                    "w", encoding="utf-8", newline=""
                )
                writers[key] = csv.writer(handle)
            writers[key].writerow(list(row.values()))
        for handle in parts.values():
            handle.close()
        with path.open("w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerow(COLUMNS)
            for key in sorted(parts):
                with open(parts[key].name, encoding="utf-8", newline="") as part:
                    shutil.copyfileobj(part, out, 1 << 20)
    finally:
        for handle in parts.values():
            handle.close()
            Path(handle.name).unlink(missing_ok=True)


def _arrow_column(kind: Kind, column: str, values: list[str]) -> pa.Array:
    """Native Parquet types where the schema has them, as an ERP's export would write them."""
    if kind is Kind.DATE_TIME:
        moments = [datetime.fromisoformat(v) if v else None for v in values]
        return pa.array(moments, type=pa.timestamp("us", tz="UTC"))
    if kind is Kind.INTEGER:
        return pa.array([int(v) if v else None for v in values], type=pa.int64())
    if kind is Kind.BOOLEAN:
        return pa.array([v == "true" if v else None for v in values], type=pa.bool_())
    if kind is Kind.NUMBER and column.endswith(".amount"):
        return pa.array([Decimal(v) if v else None for v in values], type=pa.decimal128(14, 2))
    if kind is Kind.NUMBER:
        return pa.array([float(v) if v else None for v in values], type=pa.float64())
    return pa.array([v or None for v in values], type=pa.string())


PARQUET_ROWS_PER_WRITE = 200_000


def write_parquet(path: Path, rows: Iterator[dict[str, str]]) -> None:
    """Native types; a big export is written in parts of PARQUET_ROWS_PER_WRITE rows (row
    groups), in bounded memory; a smaller one in one piece, as pq.write_table always did."""
    model = flat_model(ORDERS)
    writer: pq.ParquetWriter | None = None
    try:
        for part in _parts(rows, PARQUET_ROWS_PER_WRITE):
            arrays = [
                _arrow_column(model.leaf(column).kind, column, [row[column] for row in part])
                for column in COLUMNS
            ]
            table = pa.Table.from_arrays(arrays, names=COLUMNS)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def _parts(rows: Iterator[dict[str, str]], size: int) -> Iterator[list[dict[str, str]]]:
    part: list[dict[str, str]] = []
    for row in rows:
        part.append(row)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True, help="*.csv or *.parquet")
    parser.add_argument(
        "--sorted", action="store_true", help="rows sorted by channel_order_id (CSV only)"
    )
    parser.add_argument("--shape", choices=["bench", *SHAPES], default="bench")
    args = parser.parse_args()
    if args.shape != "bench":
        SHAPES[args.shape].write(args.out, args.orders, args.seed)
        return
    rows = generate_rows(args.orders, args.seed)
    if args.out.suffix == ".parquet":
        write_parquet(args.out, rows)
    elif args.sorted:
        write_sorted_csv(args.out, rows)
    else:
        write_csv(args.out, rows)


if __name__ == "__main__":
    main()
