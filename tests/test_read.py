"""CSV dialects and Parquet types, read from real files; unreadable files say why."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl.core.errors import UnreadableFile
from etl.read.tables import fingerprint, read_table, sniff_delimiter
from etl.settings.options import ReadOptions


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters_are_sniffed(tmp_path: Path, delimiter: str) -> None:
    text = delimiter.join(["a", "b", "c"]) + "\n" + delimiter.join(["1", "2,5", "x"]) + "\n"
    if delimiter == ",":
        text = 'a,b,c\n1,"2,5",x\n'
    table = read_table(write(tmp_path / "f.csv", text.encode()))
    assert table.columns == ["a", "b", "c"]
    assert table.cells["b"] == ["2,5"]


def test_bom_quotes_commas_newlines_and_na_survive(tmp_path: Path) -> None:
    data = '\ufeffid,title,note\n00042,"Mug, ""big""","two\nlines"\nNA,,x\n'.encode()
    table = read_table(write(tmp_path / "f.csv", data))
    assert table.columns == ["id", "title", "note"]
    assert table.cells["id"] == ["00042", "NA"]
    assert table.cells["title"] == ['Mug, "big"', ""]
    assert table.cells["note"] == ["two\nlines", "x"]
    assert table.row_numbers == [2, 3]


def test_blank_lines_count_as_spreadsheet_rows(tmp_path: Path) -> None:
    data = b'a,b\n1,"multi\nline"\n\n2,y\n'
    table = read_table(write(tmp_path / "f.csv", data))
    assert table.cells["a"] == ["1", "2"]
    assert table.row_numbers == [2, 4]


def test_other_encodings_by_option(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", "a,b\n1,café\n".encode("cp1252"))
    with pytest.raises(UnreadableFile, match=r"not valid UTF-8 \(byte 0xE9 on line 2\)"):
        read_table(path)
    assert read_table(path, ReadOptions(encoding="cp1252")).cells["b"] == ["café"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b'a,b\n1,"open\n2,3\n', "a quoted field is never closed"),
        (b"a,b\n1,2,3\n", "do not have the header's 2 columns"),
        (b"a,a\n1,2\n", "more than once: a"),
        (b"a,,c\n1,2,3\n", "have no name"),
        (b"\n\n", "header row is empty"),
    ],
)
def test_unreadable_csv_says_why(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(UnreadableFile, match=reason):
        read_table(write(tmp_path / "f.csv", data))


def test_a_header_without_rows_is_a_table_without_rows(tmp_path: Path) -> None:
    """A day without orders: read, not refused (the pipeline reports the file as empty)."""
    for data in (b"a,b\n", b"a,b", b"a,b\r\n\r\n"):
        table = read_table(write(tmp_path / "f.csv", data))
        assert (table.columns, table.cells, table.row_numbers) == (
            ["a", "b"],
            {"a": [], "b": []},
            [],
        )
    parquet = tmp_path / "f.parquet"
    pq.write_table(
        pa.table({"a": pa.array([], pa.int64()), "b": pa.array([], pa.string())}), parquet
    )
    table = read_table(parquet)
    assert (table.columns, table.cells, table.row_numbers) == (["a", "b"], {"a": [], "b": []}, [])


def test_a_quote_inside_an_unquoted_field_is_text_not_an_open_quote(tmp_path: Path) -> None:
    table = read_table(write(tmp_path / "f.csv", b'a,b\n1,27" screen\n'))
    assert table.cells["b"] == ['27" screen']


def test_parquet_native_types_become_the_text_the_csv_path_reads(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    table = pa.table(
        {
            "id": pa.array(["007", None]),
            "n": pa.array([3, None], type=pa.int64()),
            "f": pa.array([2.0, 19.99]),
            "d": pa.array([Decimal("19.90"), None], type=pa.decimal128(10, 2)),
            "b": pa.array([True, False]),
            "t": pa.array(
                [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None], pa.timestamp("us", "UTC")
            ),
            "naive": pa.array([datetime(2026, 1, 2, 3, 4, 5), None], pa.timestamp("us")),
            "tags": pa.array([["a", "b"], None], pa.list_(pa.string())),
        }
    )
    pq.write_table(table, path)
    cells = read_table(path).cells
    assert cells["id"] == ["007", ""]
    assert cells["n"] == ["3", ""]
    assert cells["f"] == ["2", "19.99"]
    assert cells["d"] == ["19.90", ""]
    assert cells["b"] == ["true", "false"]
    assert cells["t"] == ["2026-01-02T03:04:05+00:00", ""]
    assert cells["naive"] == ["2026-01-02T03:04:05", ""]
    assert cells["tags"] == ['["a","b"]', ""]


@pytest.mark.parametrize("data", [b"PAR1garbage", b"not parquet at all"])
def test_broken_parquet_says_why(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="not a readable Parquet file"):
        read_table(write(tmp_path / "f.parquet", data))


def test_truncated_parquet_says_why(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"a": ["x"] * 100}), path)
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(UnreadableFile, match="not a readable Parquet file"):
        read_table(path)


def test_fingerprint_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", b"abc")
    assert fingerprint(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_sniffer_prefers_the_consistent_delimiter() -> None:
    assert sniff_delimiter("a;b;c\n1;2,5;3\n4;5;6\n") == ";"
    assert sniff_delimiter("a,b\n1,2\n") == ","
