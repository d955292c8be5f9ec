"""Regenerate the files in samples/ (deterministic; run from the repository root).

    python scripts/make_samples.py

The expected errors of the file with mistakes are written by hand-checked `etl check` output:
after changing the mistakes, copy the new errors.csv over
samples/expected/orders-with-mistakes.errors.csv and review the diff.
"""

from __future__ import annotations

import csv
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
import xlsxwriter

from bench.generate import COLUMNS, generate_rows, write_csv, write_parquet
from etl.core.kinds import FIX_COLUMN
from etl.core.schema import ORDERS, Kind, flat_model
from etl.run.check import iter_validated, prepare
from etl.settings.config import Settings

SAMPLES = Path("samples")
WORKBOOK = SAMPLES / "orders-2026-11-23.xlsx"
JSON_LINES = SAMPLES / "orders-2026-11-23.jsonl"
FIXED = SAMPLES / "fixed" / "orders-with-mistakes.rejected.csv"
# Fixed in the workbook's properties, so that the same rows make the same bytes.
SAVED_AT = datetime(2026, 11, 23, 8, 0, 0)

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


def mistake_rows() -> list[dict[str, str]]:
    """The rows of the file with mistakes, before the mistakes."""
    return list(generate_rows(20, seed=101, max_lines=3, id_prefix="MX-"))


def make_mistakes() -> None:
    rows = mistake_rows()
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


def workbook_rows() -> list[dict[str, str]]:
    return list(generate_rows(24, seed=2027, id_prefix="XL-"))


def _cell(kind: Kind, text: str) -> str | int | float | bool | datetime:
    """A cell as a spreadsheet holds it: numbers, booleans and date-times as Excel's own cells
    (date-times as UTC wall clock: the mapping says so); text, ids with zeros included, as text."""
    if not text:
        return text
    if kind is Kind.INTEGER:
        return int(text)
    if kind is Kind.NUMBER:
        return float(Decimal(text))
    if kind is Kind.BOOLEAN:
        return text == "true"
    if kind is Kind.DATE_TIME:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)
    return text


def make_workbook() -> None:
    """An Excel export: a note on the first sheet, the orders on the sheet "Orders" (named by
    samples/workbook.mapping.toml), typed cells."""
    rows = workbook_rows()
    model = flat_model(ORDERS)
    kinds = {column: model.leaf(column).kind for column in COLUMNS}
    workbook = xlsxwriter.Workbook(str(WORKBOOK))
    workbook.set_properties({"created": SAVED_AT})
    moment = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    workbook.add_worksheet("Read me").write_string(
        0, 0, "Orders export of 2026-11-23 (times in UTC); the orders are on the sheet Orders"
    )
    sheet = workbook.add_worksheet("Orders")
    sheet.write_row(0, 0, COLUMNS)
    for r, row in enumerate(rows, start=1):
        for c, column in enumerate(COLUMNS):
            value = _cell(kinds[column], row[column])
            if value == "":
                continue
            if isinstance(value, datetime):
                sheet.write_datetime(r, c, value, moment)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value)
            else:
                sheet.write_number(r, c, value)
    workbook.close()


def json_lines_rows() -> list[dict[str, str]]:
    return list(generate_rows(24, seed=2028, id_prefix="JL-"))


def nested_orders(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """The orders these flat rows make, nested as the API takes them, each with its origin."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "orders.csv"
        write_csv(path, iter(rows))
        items = [i for chunk in iter_validated(prepare(path, Settings())) for i in chunk]
    assert all(not item.violations and item.origin for item in items)
    return [{"origin": i.origin.as_json() if i.origin else {}, **i.body} for i in items]


def make_json_lines() -> None:
    """A partner's export: one nested order per line."""
    lines = [orjson.dumps(order) + b"\n" for order in nested_orders(json_lines_rows())]
    JSON_LINES.write_bytes(b"".join(lines))


def make_fixed_rejected() -> None:
    """What a person makes of the rejected file of orders-with-mistakes.csv: its rows (those
    of the orders not accepted), each mistake corrected, the advice column left in."""
    clean = mistake_rows()
    with (SAMPLES / "orders-with-mistakes.csv").open(encoding="utf-8", newline="") as handle:
        wrong = list(csv.DictReader(handle))
    touched = {w["channel_order_id"] for c, w in zip(clean, wrong, strict=True) if c != w}
    # The line id the last row took from row 1 makes that order invalid too.
    touched.add(wrong[1]["channel_order_id"])
    FIXED.parent.mkdir(exist_ok=True)
    with FIXED.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*COLUMNS, FIX_COLUMN])
        writer.writeheader()
        for row in clean:
            if row["channel_order_id"] in touched:
                writer.writerow({**row, FIX_COLUMN: "fixed"})


def main() -> None:
    SAMPLES.mkdir(exist_ok=True)
    write_csv(SAMPLES / "orders-2026-11-22.csv", generate_rows(24, seed=2026))
    write_parquet(SAMPLES / "orders-2026-11-22.parquet", generate_rows(24, seed=2026))
    make_eu_erp()
    make_mistakes()
    make_workbook()
    make_json_lines()
    make_fixed_rejected()


if __name__ == "__main__":
    main()
