"""Reports as Arrow tables, for the Python API: the columns of items.csv and errors.csv, typed
(``.to_pandas()`` gives a DataFrame), and the items of each file per outcome.

Unlike the CSV files, cells are not guarded against spreadsheets' formulas nor clipped: a
program reads them, not a spreadsheet. Values of personal fields are masked as in errors.csv.
"""

from __future__ import annotations

from collections.abc import Iterable

import pyarrow as pa

from etl.core.models import ItemResult, Violation
from etl.core.summary import FileSummary

# The columns of errors.csv, typed; ``rows``: every row a problem names (``row`` is the first),
# ``warning``: a problem that holds nothing back (the order is still sent).
PROBLEM_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("row", pa.int64()),
        ("rows", pa.list_(pa.int64())),
        ("id", pa.string()),
        ("field", pa.string()),
        ("column", pa.string()),
        ("code", pa.string()),
        ("message", pa.string()),
        ("value", pa.string()),
        ("warning", pa.bool_()),
    ]
)
# The columns of items.csv, typed.
ITEM_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("rows", pa.list_(pa.int64())),
        ("channel_id", pa.string()),
        ("channel_store_id", pa.string()),
        ("id", pa.string()),
        ("outcome", pa.string()),
        ("batch", pa.string()),
        ("http_status", pa.int64()),
        ("code", pa.string()),
        ("message", pa.string()),
    ]
)
COUNT_SCHEMA = pa.schema([("file", pa.string()), ("outcome", pa.string()), ("items", pa.int64())])


def count_table(files: Iterable[FileSummary]) -> pa.Table:
    """One row per file and outcome: how many items came to it."""
    rows = [
        {"file": file.name, "outcome": outcome, "items": count}
        for file in files
        for outcome, count in sorted(file.outcomes.items())
    ]
    return pa.Table.from_pylist(rows, schema=COUNT_SCHEMA)


def problem_table(problems: Iterable[tuple[str, Violation, bool]]) -> pa.Table:
    """(file name, problem, whether it is a warning) as errors.csv's columns, typed."""
    rows = [
        {
            "file": name,
            "row": v.rows[0] if v.rows else None,
            "rows": list(v.rows),
            "id": v.item_id or "",
            "field": v.path,
            "column": v.column,
            "code": v.code,
            "message": v.message,
            "value": v.value,
            "warning": warning,
        }
        for name, v, warning in problems
    ]
    return pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA)


def item_table(results: Iterable[tuple[str, ItemResult]]) -> pa.Table:
    """(file name, result) as items.csv's columns, typed."""
    rows = [
        {
            "file": name,
            "rows": list(r.rows),
            "channel_id": r.origin.channel_id if r.origin else "",
            "channel_store_id": r.origin.channel_store_id if r.origin else "",
            "id": r.item_id,
            "outcome": r.outcome.value,
            "batch": r.batch_id,
            "http_status": r.http_status,
            "code": r.code,
            "message": r.message,
        }
        for name, r in results
    ]
    return pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)
