"""Issue 14, "say it in the user's terms": every problem names the column of the user's file (as
they named it, before a mapping renamed it) and the row of the cell, besides the JSONPath; a
required column the whole file lacks is said once for the file, not once per order and line.

`etl check` and `etl run` are held to the same words (they share ``pipeline.validated_chunks``).
"""

from __future__ import annotations

import csv
from pathlib import Path

from etl.deliver.client import ConnectClient
from etl.report.html import load_report
from etl.run.sync import Sync
from etl.sandbox import SandboxServer
from etl.settings.config import ExportFormat, load_mapping_file

from .conftest import SAMPLES, RunCli, base_line, settings_for, write_rows

EU_MAPPING = SAMPLES / "eu-erp.mapping.toml"
# Seven of the columns every order needs (`etl template orders --required`), in that order.
SEVEN = (
    "created_at",
    "fulfillment.type",
    "status",
    "order_lines.can_cancel",
    "order_lines.price.currency",
    "order_lines.quantity",
    "order_lines.status",
)


def only_run_dir(outbox: Path) -> Path:
    (run_dir,) = (outbox / "runs").iterdir()
    return run_dir


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def check(run_cli: RunCli, path: Path, out: Path, *args: str | Path) -> tuple[int, Path]:
    code, _, err = run_cli("check", path, "--outbox", out, *args)
    assert err == "" or "PROBLEMS" in err, err
    return code, only_run_dir(out)


def eu_file(path: Path, changes: dict[tuple[int, str], str]) -> Path:
    """The European ERP sample (German columns, semicolons) with cells changed, by spreadsheet
    row and the ERP's column name."""
    with (SAMPLES / "orders-eu-erp.csv").open(encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle, delimiter=";"))
    for (row, column), value in changes.items():
        rows[row - 2][header.index(column)] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def eu_mistakes(path: Path) -> Path:
    # Row 2 is order EU-SH-00000000 (one line); rows 3-9 are EU-MA-00000001 (seven lines).
    status = {(row, "Bestellstatus"): "SHIPPING" for row in range(3, 10)}
    return eu_file(path, {(4, "Menge"): "2,5", **status, (2, "Bestelldatum"): "gestern"})


def where(errors: list[dict[str, str]]) -> set[tuple[str, str, str, str]]:
    return {(e["row"], e["field"], e["column"], e["code"]) for e in errors}


def missing_columns_file(path: Path, drop: tuple[str, ...] = SEVEN) -> Path:
    """Three orders of three lines, without the columns ``drop``; one negative price."""
    rows = []
    for order in range(3):
        for line in range(3):
            row = base_line(f"O{order}", f"L{order}{line}")
            for column in drop:
                del row[column]
            rows.append(row)
    rows[4]["order_lines.price.amount"] = "-1"
    return write_rows(path, rows)


# --- 1. the user's column and the cell's row --------------------------------------------------


def test_a_mistake_in_a_mapped_column_names_the_users_column_and_row(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = eu_mistakes(tmp_path / "orders-eu-mistakes.csv")
    code, run_dir = check(run_cli, path, tmp_path / "out", "--mapping", EU_MAPPING)
    assert code == 1
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    assert list(errors[0]) == [
        "file",
        "row",
        "id",
        "field",
        "column",
        "code",
        "message",
        "value",
    ]
    assert where(errors) == {
        ("4", "$.order_lines[1].quantity", "Menge", "NOT_AN_INTEGER"),
        # An order-level value: the order's first row, not every row of the order.
        ("3", "$.status", "Bestellstatus", "NOT_ALLOWED_VALUE"),
        # One column of the ERP fills two fields: both problems name it.
        ("2", "$.created_at", "Bestelldatum", "NOT_A_DATE_TIME"),
        ("2", "$.order_lines[0].created_at", "Bestelldatum", "NOT_A_DATE_TIME"),
    }


def test_without_a_mapping_the_column_is_the_flat_path(tmp_path: Path, run_cli: RunCli) -> None:
    rows = [
        base_line("A", "L1", shipping_info__email="jane.doe"),
        base_line("A", "L2", shipping_info__email="jane.doe", order_lines__quantity="two"),
        base_line("B", "L3", **{"order_lines.taxes[4].code": "VAT"}),
    ]
    path = write_rows(tmp_path / "orders-flat.csv", rows)
    code, run_dir = check(run_cli, path, tmp_path / "out")
    assert code == 1
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    assert where(errors) == {
        ("2", "$.shipping_info.email", "shipping_info.email", "INVALID_EMAIL"),
        ("3", "$.order_lines[1].quantity", "order_lines.quantity", "NOT_AN_INTEGER"),
        (
            "4",
            "$.order_lines[0].taxes[4].amount",
            "order_lines.taxes[4].amount.amount, order_lines.taxes[4].amount.currency",
            "REQUIRED_FIELD_MISSING",
        ),
    }
    absent = next(e for e in errors if e["code"] == "REQUIRED_FIELD_MISSING")
    assert absent["message"] == (
        "order_lines[0].taxes[4].amount: is required but empty or missing (the file has no "
        "columns order_lines.taxes[4].amount.amount, order_lines.taxes[4].amount.currency)"
    )


def test_an_empty_required_object_names_the_columns_to_fill(
    tmp_path: Path, run_cli: RunCli
) -> None:
    rows = [
        base_line("A", "L1", fulfillment__type=""),
        base_line("A", "L2", fulfillment__type=""),
        base_line("B", "L3", order_lines__price__amount="", order_lines__price__currency=""),
    ]
    path = write_rows(tmp_path / "orders-empty.csv", rows)
    code, run_dir = check(run_cli, path, tmp_path / "out")
    assert code == 1
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    assert where(errors) == {
        ("2", "$.fulfillment", "fulfillment.type", "REQUIRED_FIELD_MISSING"),
        (
            "4",
            "$.order_lines[0].price",
            "order_lines.price.amount, order_lines.price.currency",
            "REQUIRED_FIELD_MISSING",
        ),
    }
    # The columns are in the file, only empty here: nothing is said about absent columns.
    assert all("has no column" not in e["message"] for e in errors)


def test_a_constant_and_a_renamed_empty_column_are_named_as_the_mapping_names_them(
    tmp_path: Path, run_cli: RunCli
) -> None:
    mapping = tmp_path / "erp.mapping.toml"
    mapping.write_text(
        '[columns]\n"Versand" = "fulfillment.type"\n"Titel" = "order_lines.product.title"\n'
        '[constants]\n"order_lines.price.currency" = "EUR"\n"status" = "SHIPPING"\n'
    )
    rows = []
    for order, line, kind, title in (
        ("A", "L1", "", "Mug"),
        ("B", "L2", "FULFILLED_BY_SELLER", ""),
    ):
        row = base_line(order, line)
        for column in ("fulfillment.type", "order_lines.product.title", "status"):
            del row[column]
        del row["order_lines.price.currency"]
        rows.append({**row, "Versand": kind, "Titel": title})
    path = write_rows(tmp_path / "orders-erp.csv", rows)
    code, run_dir = check(run_cli, path, tmp_path / "out", "--mapping", mapping)
    assert code == 1
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    assert where(errors) == {
        ("2", "$.fulfillment", "Versand", "REQUIRED_FIELD_MISSING"),
        ("2", "$.status", "[constants] status", "NOT_ALLOWED_VALUE"),
        ("3", "$.status", "[constants] status", "NOT_ALLOWED_VALUE"),
        ("3", "$.order_lines[0].product.title", "Titel", "REQUIRED_FIELD_MISSING"),
    }


def test_the_html_report_shows_the_users_column(tmp_path: Path, run_cli: RunCli) -> None:
    path = eu_mistakes(tmp_path / "orders-eu-mistakes.csv")
    _, run_dir = check(run_cli, path, tmp_path / "out", "--mapping", EU_MAPPING)
    (view,) = load_report(run_dir).files
    assert {(p.rows, p.field, p.column) for p in view.problems} >= {
        ("4", "$.order_lines[1].quantity", "Menge")
    }
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert '<th scope="col">column</th>' in page
    assert "<code>Menge</code>" in page


def test_run_names_the_same_columns_and_rows_as_check(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli
) -> None:
    source = load_mapping_file(EU_MAPPING, ExportFormat())
    settings = settings_for(sandbox, tmp_path, default_source=source)
    path = eu_mistakes(settings.inbox / "orders-eu-mistakes.csv")
    _, check_dir = check(run_cli, path, tmp_path / "check-out", "--mapping", EU_MAPPING)
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 1
    run_dir = settings.outbox / "runs" / run.run_id
    checked = read_csv(check_dir / f"{path.name}.errors.csv")
    assert read_csv(run_dir / f"{path.name}.errors.csv") == checked
    assert len(checked) == 4


# --- 2. required columns a file lacks: said once for the file ---------------------------------


def test_required_columns_missing_are_said_once_per_file(tmp_path: Path, run_cli: RunCli) -> None:
    path = missing_columns_file(tmp_path / "orders-missing.csv")
    code, out, _ = run_cli("check", path, "--outbox", tmp_path / "out")
    assert code == 1
    assert "3 invalid; 8 problem(s)" in out
    run_dir = only_run_dir(tmp_path / "out")
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    # Once per missing column (not 45 times: once per order and per line), then the one mistake
    # in a column the file has.
    assert [(e["row"], e["id"], e["column"], e["code"]) for e in errors] == [
        *(("", "", column, "MISSING_COLUMN") for column in SEVEN),
        ("6", "O1", "order_lines.price.amount", "NEGATIVE_AMOUNT"),
    ]
    by_column = {e["column"]: e for e in errors}
    assert by_column["fulfillment.type"]["message"] == (
        "the file has no column fulfillment.type, which every order needs "
        "(`etl template orders --required` lists them)"
    )
    assert by_column["fulfillment.type"]["field"] == "$.fulfillment.type"
    assert by_column["order_lines.quantity"]["field"] == "$.order_lines[*].quantity"
    # The orders cannot be sent: INVALID, with the file's problem as their code.
    items = read_csv(run_dir / f"{path.name}.items.csv")
    assert [(i["id"], i["outcome"], i["code"]) for i in items] == [
        (f"O{n}", "INVALID", "MISSING_COLUMN") for n in range(3)
    ]
    assert items[0]["message"] == (
        "the file has no column created_at, which every order needs (`etl template orders "
        "--required` lists them) (and 6 more problem(s))"
    )


def test_a_renamed_column_missing_from_the_file_is_named_as_the_mapping_names_it(
    tmp_path: Path, run_cli: RunCli
) -> None:
    mapping = tmp_path / "erp.mapping.toml"
    mapping.write_text('[columns]\n"Menge" = "order_lines.quantity"\n')
    path = missing_columns_file(tmp_path / "orders-no-menge.csv", drop=("order_lines.quantity",))
    code, run_dir = check(run_cli, path, tmp_path / "out", "--mapping", mapping)
    assert code == 1
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    first, price = errors  # and the negative price
    assert (first["column"], first["code"], first["message"]) == (
        "Menge",
        "MISSING_COLUMN",
        "the file has no column Menge (the mapping's name for order_lines.quantity), which "
        "every order needs (`etl template orders --required` lists them)",
    )
    assert price["code"] == "NEGATIVE_AMOUNT"


def test_the_default_origin_and_constants_supply_required_columns(
    tmp_path: Path, run_cli: RunCli
) -> None:
    mapping = tmp_path / "erp.mapping.toml"
    mapping.write_text('[constants]\n"fulfillment.type" = "FULFILLED_BY_SELLER"\n')
    drop = ("origin.channel_id", "origin.channel_store_id", "fulfillment.type")
    rows = [{k: v for k, v in base_line(f"O{n}", f"L{n}").items() if k not in drop} for n in (1, 2)]
    path = write_rows(tmp_path / "orders-no-origin.csv", rows)
    code, run_dir = check(
        run_cli,
        path,
        tmp_path / "given",
        "--mapping",
        mapping,
        "--channel-id",
        "CH",
        "--store-id",
        "S1",
    )
    assert code == 0
    assert read_csv(run_dir / f"{path.name}.errors.csv") == []
    # Without a default origin: the two origin columns, once each; no MISSING_ORIGIN per order.
    code, run_dir = check(run_cli, path, tmp_path / "none", "--mapping", mapping)
    assert code == 1
    errors = read_csv(run_dir / f"{path.name}.errors.csv")
    assert [(e["row"], e["column"], e["code"]) for e in errors] == [
        ("", "origin.channel_id", "MISSING_COLUMN"),
        ("", "origin.channel_store_id", "MISSING_COLUMN"),
    ]
    assert errors[0]["message"] == (
        "the file has no column origin.channel_id, which every order needs unless a default "
        "origin is set (CONNECT_CHANNEL_ID and CONNECT_STORE_ID) (`etl template orders "
        "--required` lists them)"
    )


def test_run_says_it_once_and_sends_nothing(
    sandbox: SandboxServer, tmp_path: Path, run_cli: RunCli
) -> None:
    settings = settings_for(sandbox, tmp_path)
    path = missing_columns_file(settings.inbox / "orders-missing.csv")
    data = path.read_bytes()
    _, check_dir = check(run_cli, path, tmp_path / "check-out")
    run = Sync(settings, lambda: ConnectClient(settings, sleep=lambda s: None))()
    assert run.exit_code == 1
    (summary,) = run.files
    assert (summary.outcomes, summary.violations) == ({"INVALID": 3}, 8)
    run_dir = settings.outbox / "runs" / run.run_id
    name = path.name
    assert read_csv(run_dir / f"{name}.errors.csv") == read_csv(check_dir / f"{name}.errors.csv")
    items = read_csv(run_dir / f"{name}.items.csv")
    assert {(i["outcome"], i["code"]) for i in items} == {("INVALID", "MISSING_COLUMN")}
    assert sandbox.stored_orders() == []
    assert (settings.outbox / "failed" / run.run_id / name).read_bytes() == data


def test_a_warning_names_the_users_column_too(tmp_path: Path, run_cli: RunCli) -> None:
    """A tax rate written as a percent (a warning, the order still valid) names the column."""
    mapping = tmp_path / "erp.mapping.toml"
    mapping.write_text('[columns]\n"MwSt-Satz" = "order_lines.taxes[0].rate"\n')
    row = base_line("A", "LA")
    row["order_lines.taxes[0].code"] = "VAT"
    row["order_lines.taxes[0].amount.amount"] = "3.33"
    row["order_lines.taxes[0].amount.currency"] = "EUR"
    row["MwSt-Satz"] = "20"
    path = write_rows(tmp_path / "orders-rates.csv", [row])
    code, run_dir = check(run_cli, path, tmp_path / "out", "--mapping", mapping)
    assert code == 0
    (warning,) = read_csv(run_dir / f"{path.name}.errors.csv")
    assert (warning["column"], warning["code"]) == ("MwSt-Satz", "RATE_LOOKS_LIKE_PERCENT")
