"""The exports of issue 16 that are shaped unlike the bench's own: ``wide`` and ``minimal``.

Each shape is rows (deterministic for a seed), the columns they fill, how they are written (the
delimiter), the mapping file they are read with, and the environment `etl` runs in for them.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

Row = list[str]


@dataclass(frozen=True)
class Shape:
    """One kind of export: its header, its rows, and what reading it takes."""

    columns: list[str]
    rows: Callable[[int, int], Iterator[Row]]  # (orders, seed) -> rows, in column order
    mapping: str  # the mapping file's text ("" when none is needed)
    delimiter: str = ","
    env: dict[str, str] = field(default_factory=dict)  # what `etl` runs with for this export

    def write(self, path: Path, orders: int, seed: int = 7) -> Path | None:
        """The export at ``path``; its mapping file beside it (returned) when it needs one."""
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, delimiter=self.delimiter)
            writer.writerow(self.columns)
            writer.writerows(self.rows(orders, seed))
        if not self.mapping:
            return None
        mapping = mapping_path(path)
        mapping.write_text(self.mapping, encoding="utf-8")
        return mapping


def mapping_path(path: Path) -> Path:
    """Where the mapping file of an export written at ``path`` is (``x.csv`` -> ``x.mapping.toml``;
    a ``.tmp.csv`` being written keeps its mapping at the final name)."""
    name = path.name.split(".", 1)[0]
    return path.with_name(f"{name}.mapping.toml")


# --- wide: 58 columns, offsets, spelt booleans, every custom attribute type ----------------------

OFFSETS = [timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)), UTC]
OFFSETS.append(timezone(timedelta(hours=1)))
YES = ["yes", "1", "TRUE", "Yes"]
NO = ["no", "0", "FALSE", "No"]
NAMES = [
    ("Amélie", "Dupont"),
    ("Jürgen", "Müller"),
    ("花子", "山田"),
    ("Søren", "Nørgaard"),
    ("José", "García"),
    ("Wei", "张"),
    ("Zoë", "O'Brien"),
]
STREETS = [
    "12 rue de la Paix, bât. B",
    "Hauptstraße 5",
    "東京都渋谷区1-2-3",
    'Calle "Mayor" 1, 2ºA',
]
CITIES = [("75002", "Paris", "FRA"), ("10115", "Berlin", "DEU"), ("150-0002", "東京", "JPN")]
PRODUCTS = [
    ("000123", 'Écran 27" "UltraSharp", mat'),
    ("004567", "蓝牙耳机, 黑色"),
    ("000089", "Café en grains 1 kg, Arabica"),
    ("012000", "Kabel USB-C, 2 m; geflochten"),
    ("000777", "Tasse «Bonjour» 350 ml"),
]
LINE_STATUSES = ["AWAITING_ACCEPTANCE", "AWAITING_SHIPMENT", "SHIPPED", "DELIVERED"]
CUSTOM = [  # order level: (id, type), one of every type
    ("gift_note", "STRING"),
    ("loyalty_points", "NUMERIC"),
    ("gift_wrap", "BOOLEAN"),
    ("promised_at", "DATE"),
    ("tags", "LIST"),
]
WIDE_ORDER = [
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
    *(
        f"{who}.address.{part}"
        for who in ("shipping_info", "billing_info")
        for part in ("first_name", "last_name", "street", "zip_code", "city", "country_iso_code")
    ),
    *(f"custom_attributes[{i}].value" for i in range(len(CUSTOM))),
]
WIDE_LINE = [
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
    *(
        f"order_lines.taxes[{i}].{part}"
        for i in (0, 1)
        for part in ("code", "rate", "amount.amount")
    ),
    "order_lines.shipping_taxes[0].code",
    "order_lines.shipping_taxes[0].rate",
    "order_lines.shipping_taxes[0].amount.amount",
    "order_lines.adjustments[0].channel_adjustment_id",
    "order_lines.adjustments[0].created_at",
    "order_lines.adjustments[0].type",
    "order_lines.adjustments[0].reason",
    "order_lines.adjustments[0].quantity",
    "order_lines.adjustments[0].price.amount",
    "order_lines.adjustments[0].shipping_price.amount",
    "order_lines.custom_attributes[0].value",
]
WIDE_COLUMNS = WIDE_ORDER + WIDE_LINE
WIDE_CONSTANTS = {
    **{f"custom_attributes[{i}].id": name for i, (name, _) in enumerate(CUSTOM)},
    **{f"custom_attributes[{i}].type": kind for i, (_, kind) in enumerate(CUSTOM)},
    "order_lines.taxes[0].amount.currency": "EUR",
    "order_lines.taxes[1].amount.currency": "EUR",
    "order_lines.shipping_taxes[0].amount.currency": "EUR",
    "order_lines.adjustments[0].price.currency": "EUR",
    "order_lines.adjustments[0].shipping_price.currency": "EUR",
    "order_lines.custom_attributes[0].id": "warehouse",
    "order_lines.custom_attributes[0].type": "STRING",
}
# The origin is the environment's (CONNECT_CHANNEL_ID/CONNECT_STORE_ID): the export has none.
WIDE_ENV = {"CONNECT_CHANNEL_ID": "SHOP-FR", "CONNECT_STORE_ID": "store-0042", "TZ": "Europe/Paris"}


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _offset_time(moment: datetime, zone: timezone) -> str:
    """As the export writes it: the wall-clock time of its zone, with the offset (Z for UTC)."""
    text = moment.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def wide_rows(orders: int, seed: int = 7) -> Iterator[Row]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    line_number = 0
    for number in range(orders):
        zone = OFFSETS[number % len(OFFSETS)]
        created = start + timedelta(minutes=number * 3, seconds=rng.randint(0, 59))
        updated = created + timedelta(hours=rng.randint(0, 48), seconds=rng.randint(0, 59))
        zip_code, city, country = rng.choice(CITIES)
        first, last = rng.choice(NAMES)
        lines = rng.randint(1, 8)
        statuses = [rng.choice(LINE_STATUSES) for _ in range(lines)]
        when, changed = _offset_time(created, zone), _offset_time(updated, zone)
        order = [
            f"WD-{number:08d}",
            when,
            changed,
            min(statuses, key=LINE_STATUSES.index),
            "FULFILLED_BY_SELLER",
            rng.choice(YES) if number % 17 == 0 else rng.choice(NO),
            f"client.{number}@example.com",
            rng.choice(["Colissimo", "DHL", "Yamato"]),
            rng.choice(["standard", "express"]),
            _offset_time(created + timedelta(days=2), zone),
            first,
            last,
            rng.choice(STREETS),
            zip_code,
            city,
            country,
            first,
            last,
            rng.choice(STREETS),
            zip_code,
            city,
            country,
            rng.choice(["Merci, à bientôt !", "生日快乐, 山田さん", "n/a"]),
            str(rng.randint(0, 5000) / 4),
            rng.choice(YES + NO),
            _offset_time(created + timedelta(days=3), zone),
            rng.choice(['["vip","newsletter"]', '["b2b"]', '["é, ü"]']),
        ]
        for index in range(lines):
            line_number += 1
            product_id, title = rng.choice(PRODUCTS)
            quantity = rng.randint(1, 4)
            unit_price = _money(rng, 5, 400)
            price = unit_price * quantity
            shipping = _money(rng, 0, 15)
            rate = Decimal("0.2")
            yield [
                *order,
                f"WL{line_number:09d}",
                when,
                changed,
                statuses[index],
                str(quantity),
                rng.choice(YES + NO),
                rng.choice(YES),
                product_id,
                title,
                f"https://cdn.example.com/p/{product_id}.jpg",
                str(price),
                "EUR",
                str(shipping),
                "EUR",
                "VAT",
                str(rate),
                str((price * rate).quantize(Decimal("0.01"))),
                "ECO",
                "0",
                "0.50",
                "VAT",
                str(rate),
                str((shipping * rate).quantize(Decimal("0.01"))),
                f"ADJ-{line_number}",
                changed,
                "REFUND",
                rng.choice(["DEFECT", "RETURN", "AGREEMENT"]),
                "1",
                str(unit_price),
                "0",
                rng.choice(["WH-01", "WH-02", "倉庫-3"]),
            ]


def _constants_toml(constants: dict[str, str]) -> str:
    return "[constants]\n" + "".join(f'"{k}" = "{v}"\n' for k, v in constants.items())


WIDE = Shape(
    WIDE_COLUMNS,
    wide_rows,
    "# issue 16's wide export: the ids and types of its custom attributes and the currencies\n"
    "# of its taxes and adjustments are the same on every row.\n" + _constants_toml(WIDE_CONSTANTS),
    env=WIDE_ENV,
)


# --- minimal: only the required columns, an ERP's names, decimal commas --------------------------

# DESIGN.md section 3: "order-level columns repeat on every line of the order and must agree (a
# disagreement is an error naming the rows)"; an empty cell is an absent field. So an ERP may not
# leave an order's cells empty on its following rows: this export repeats them.
MINIMAL_RENAMES = {
    "Bestellnummer": ["channel_order_id"],
    "Erstellt": ["created_at", "order_lines.created_at"],
    "Geaendert": ["channel_updated_at", "order_lines.updated_at"],
    "Status": ["status"],
    "Position": ["order_lines.channel_order_line_id"],
    "Positionsstatus": ["order_lines.status"],
    "Menge": ["order_lines.quantity"],
    "Stornierbar": ["order_lines.can_cancel"],
    "Erstattbar": ["order_lines.can_refund"],
    "Artikelnummer": ["order_lines.product.id"],
    "Artikelname": ["order_lines.product.title"],
    "Preis": ["order_lines.price.amount"],
    "Versandkosten": ["order_lines.total_shipping_price.amount"],
}
MINIMAL_CONSTANTS = {
    "origin.channel_id": "ERP-EU",
    "origin.channel_store_id": "berlin-01",
    "fulfillment.type": "FULFILLED_BY_SELLER",
    "order_lines.price.currency": "EUR",
    "order_lines.total_shipping_price.currency": "EUR",
}


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _comma(amount: Decimal) -> str:
    return str(amount).replace(".", ",")


def minimal_rows(orders: int, seed: int = 7) -> Iterator[Row]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    line_number = 0
    for number in range(orders):
        created = start + timedelta(minutes=number * 3, seconds=rng.randint(0, 59))
        updated = created + timedelta(hours=rng.randint(0, 48))
        lines = rng.randint(1, 8)
        statuses = [rng.choice(LINE_STATUSES) for _ in range(lines)]
        order = [
            f"{number:010d}",
            _utc(created),
            _utc(updated),
            min(statuses, key=LINE_STATUSES.index),
        ]
        for index in range(lines):
            line_number += 1
            product_id, title = rng.choice(PRODUCTS)
            quantity = rng.randint(1, 4)
            yield [
                *order,
                f"{line_number:09d}",
                statuses[index],
                str(quantity),
                rng.choice(["1", "0"]),
                "1",
                product_id,
                title,
                _comma(_money(rng, 5, 400) * quantity),
                _comma(_money(rng, 0, 15)),
            ]


def _minimal_mapping() -> str:
    columns = "".join(
        f'"{name}" = {paths[0]!r}\n'.replace("'", '"')
        if len(paths) == 1
        else f'"{name}" = [{", ".join(f"{p!r}" for p in paths)}]\n'.replace("'", '"')
        for name, paths in MINIMAL_RENAMES.items()
    )
    return (
        "# An ERP's minimal export: its own column names, semicolons, decimal commas.\n"
        '[read]\ndelimiter = ";"\ndecimal_comma = true\n\n[columns]\n'
        + columns
        + "\n"
        + _constants_toml(MINIMAL_CONSTANTS)
    )


MINIMAL = Shape(list(MINIMAL_RENAMES), minimal_rows, _minimal_mapping(), delimiter=";")

SHAPES: dict[str, Shape] = {"wide": WIDE, "minimal": MINIMAL}
