"""Regenerate the files in samples/ (deterministic; run from the repository root).

    python scripts/make_samples.py

The expected errors of the file with mistakes are written by hand-checked `etl check` output:
after changing the mistakes, copy the new errors.csv over
samples/expected/orders-with-mistakes.errors.csv and review the diff.
"""

from __future__ import annotations

import csv
from pathlib import Path

from bench.generate import COLUMNS, generate_rows, write_csv, write_parquet

SAMPLES = Path("samples")

# The European ERP names its columns in German and writes 19,99 and local times.
EU_COLUMNS = {
    "Bestellnummer": "channel_order_id",
    "Bestelldatum": "created_at",  # also order_lines.created_at, through the mapping file
    "Geaendert": "channel_updated_at",  # also order_lines.updated_at
    "Bestellstatus": "status",
    "Vorname": "shipping_info.address.first_name",
    "Nachname": "shipping_info.address.last_name",
    "Strasse": "shipping_info.address.street",
    "PLZ": "shipping_info.address.zip_code",
    "Ort": "shipping_info.address.city",
    "Land": "shipping_info.address.country_iso_code",
    "Positionsnummer": "order_lines.channel_order_line_id",
    "Positionsstatus": "order_lines.status",
    "Menge": "order_lines.quantity",
    "Stornierbar": "order_lines.can_cancel",
    "Erstattbar": "order_lines.can_refund",
    "Artikelnummer": "order_lines.product.id",
    "Artikelname": "order_lines.product.title",
    "Preis": "order_lines.price.amount",
    "Versandkosten": "order_lines.total_shipping_price.amount",
    "MwSt-Satz": "order_lines.taxes[0].rate",
    "MwSt-Betrag": "order_lines.taxes[0].amount.amount",
}
EU_NOTE_COLUMN = "Interne Notiz"


def _eu_value(column: str, value: str) -> str:
    if column.endswith(("created_at", "updated_at")) and value.endswith("Z"):
        # The ERP writes Berlin wall-clock time without an offset (the mapping names the zone).
        return value[:-1].replace("T", " ")
    if column.endswith((".amount", ".rate")):
        return value.replace(".", ",")
    if column.endswith((".can_cancel", ".can_refund")):
        return {"true": "1", "false": "0"}.get(value, value)
    return value


def make_eu_erp() -> None:
    rows = list(generate_rows(22, seed=49, id_prefix="EU-"))
    with (SAMPLES / "orders-eu-erp.csv").open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow([*EU_COLUMNS, EU_NOTE_COLUMN])
        for number, row in enumerate(rows):
            cells = [_eu_value(path, row[path]) for path in EU_COLUMNS.values()]
            writer.writerow([*cells, "Rückruf; bitte prüfen" if number % 5 == 0 else ""])


MISTAKES: list[tuple[int, str, str]] = [
    # (data row index, column, wrong value): one kind of mistake each.
    (0, "order_lines.status", "SHIPPING"),
    (2, "order_lines.price.amount", "-12.50"),
    (3, "order_lines.product.title", ""),
    (5, "created_at", "2026-11-01 09:30:00"),
    (9, "order_lines.can_refund", "maybe"),
    (11, "order_lines.quantity", "2.5"),
    (14, "shipping_info.email", "not-an-email"),
    (17, "custom_attributes[1].value", "vip, newsletter"),
    (20, "order_lines.taxes[0].amount.amount", "12345678901234.567"),
    (22, "fulfillment.type", "BY_SELLER"),
]


def make_mistakes() -> None:
    rows = list(generate_rows(20, seed=101, max_lines=3, id_prefix="MX-"))
    for index, column, value in MISTAKES:
        if column.startswith("order_lines."):
            rows[index][column] = value
        else:  # an order-level mistake is repeated on every row of its order, as an ERP would
            for row in rows:
                if row["channel_order_id"] == rows[index]["channel_order_id"]:
                    row[column] = value
    # Two rows of one order disagreeing on an order-level field (the city).
    last_ids = [r["channel_order_id"] for r in rows[24:]]
    shared = next(i for i in last_ids if last_ids.count(i) > 1)
    order_rows = [r for r in rows if r["channel_order_id"] == shared]
    order_rows[-1]["shipping_info.address.city"] = "Lyon"
    # A line id used by two different orders.
    rows[-1]["order_lines.channel_order_line_id"] = rows[1]["order_lines.channel_order_line_id"]
    path = SAMPLES / "orders-with-mistakes.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    SAMPLES.mkdir(exist_ok=True)
    write_csv(SAMPLES / "orders-2026-11-22.csv", generate_rows(24, seed=2026))
    write_parquet(SAMPLES / "orders-2026-11-22.parquet", generate_rows(24, seed=2026))
    make_eu_erp()
    make_mistakes()


if __name__ == "__main__":
    main()
