"""The pieces of the fast path, each held to the slow function it stands in for."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.core.errors import RetriableApiError
from etl.core.formats import is_date_time
from etl.core.schema import Kind
from etl.deliver.sending import SendingPipeline, Sent
from etl.read.tables import _parquet_text, text_array
from etl.report.files import BackgroundWriter
from etl.run.check import prefetched, prepare
from etl.settings.config import Settings
from etl.settings.options import Conventions
from etl.transform.convert import ConversionError, convert, format_utc, to_date_time_fast
from etl.transform.fast.assemble import (
    DATE_TIME_UTC,
    INTEGER_PLAIN,
    NUMBER_COMMA,
    NUMBER_POINT,
    Assembler,
)
from etl.transform.fast.assemble import _string_json as string_json
from etl.transform.fast.seen import SeenKeys, distinct_pairs, scope_hashes, text_hashes

from .conftest import base_line, write_rows


def _slow_json(text: str, kind: Kind, conventions: Conventions) -> str | None:
    try:
        return orjson.dumps(convert(text, kind, conventions)).decode()
    except ConversionError:
        return None


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.from_regex(r"\A(0|[1-9][0-9]{0,13})([.,][0-9]{0,4})?\Z"),
        st.from_regex(r"\A[+-]?0*[0-9]{1,20}\Z"),
        st.text(alphabet="0123456789.,+-e ", max_size=12),
    ),
    st.booleans(),
)
def test_plain_numbers_are_encoded_as_orjson_writes_them(text: str, comma: bool) -> None:
    """Assembler._fast_json agrees with convert + orjson wherever it claims a value."""
    conventions = Conventions(decimal_comma=comma)
    assembler = Assembler.__new__(Assembler)
    assembler.conventions = conventions
    assembler.vouch_date_time = None
    for kind in (Kind.NUMBER, Kind.INTEGER):
        fast, json = assembler._fast_json(kind, pa.array([text], pa.string()))
        if fast[0]:
            assert json[0].as_py() == _slow_json(text, kind, conventions), (kind, text)
    assert INTEGER_PLAIN and NUMBER_POINT and NUMBER_COMMA  # the shapes under test


def _outcome(function: object, text: str) -> str:
    try:
        return str(function(text, Conventions()))  # type: ignore[operator]
    except ConversionError as error:
        return error.code


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30)))
def test_utc_date_times_are_written_back_as_they_are(moment: datetime) -> None:
    text = f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S") + "Z"
    conventions = Conventions()
    slow = lambda text, conventions: convert(text, Kind.DATE_TIME, conventions)  # noqa: E731
    assert _outcome(to_date_time_fast, text) == _outcome(slow, text)
    plus = text[:-1] + "+00:00"
    assert _outcome(to_date_time_fast, plus) == _outcome(slow, plus)
    assembler = Assembler.__new__(Assembler)
    assembler.conventions = conventions
    assembler.vouch_date_time = None
    fast, json = assembler._fast_json(Kind.DATE_TIME, pa.array([text, plus], pa.string()))
    for index, value in enumerate((text, plus)):
        if fast[index]:
            assert json[index].as_py() == _slow_json(value, Kind.DATE_TIME, conventions)
    assert DATE_TIME_UTC


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1),
)
def test_date_times_with_an_offset_are_converted_in_arrow(moment: datetime, minutes: int) -> None:
    """Issue 16: exports write their local time and its offset (-05:00, +05:30); a plain one
    is converted in Arrow, to exactly what convert writes (or refused the long way)."""
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    text = f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S") + offset
    conventions = Conventions()
    assembler = Assembler.__new__(Assembler)
    assembler.conventions = conventions
    assembler.vouch_date_time = None
    fast, json = assembler._fast_json(Kind.DATE_TIME, pa.array([text], pa.string()))
    slow = _slow_json(text, Kind.DATE_TIME, conventions)
    if fast[0]:
        assert json[0].as_py() == slow, text
    else:  # only a moment that leaves years 1000-9999 in UTC takes the long way
        utc = slow[1:5] if slow is not None else ""
        assert slow is None or not utc.isdigit() or not 1000 <= int(utc) <= 9999, text


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-01T03:00:20-05:00",
        "2026-11-01T13:30:20+05:30",
        "2024-02-29T23:30:00-01:00",
        "2026-12-31T23:59:59-23:59",
        "1000-01-01T00:30:00+01:00",  # 0999 in UTC: written as format_utc writes it
        "9999-12-31T23:30:00-01:00",  # after year 9999 in UTC: refused
        "2026-02-29T10:00:00+01:00",  # no such day
        "2026-11-01T10:00:00-00:00",
        "2026-11-01T10:00:00+24:00",
        "2026-11-01T10:00:00+0530",
    ],
)
def test_date_times_with_odd_offsets_agree_with_convert(text: str) -> None:
    conventions = Conventions()
    assembler = Assembler.__new__(Assembler)
    assembler.conventions = conventions
    assembler.vouch_date_time = None
    fast, json = assembler._fast_json(Kind.DATE_TIME, pa.array([text], pa.string()))
    if fast[0]:
        assert json[0].as_py() == _slow_json(text, Kind.DATE_TIME, conventions)
    expected_fast = text in ("2026-11-01T03:00:20-05:00", "2026-11-01T13:30:20+05:30")
    assert fast[0] or not expected_fast


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-29T10:00:00Z",
        "2026-11-01T24:00:00Z",
        "0999-01-01T00:00:00Z",
        "2026-1" + chr(0xFF11) + "-01T00:00:00Z",  # a full-width digit
    ],
)
def test_impossible_or_odd_date_times_take_the_long_way(text: str) -> None:
    conventions = Conventions()
    try:
        expected: str | None = convert(text, Kind.DATE_TIME, conventions)
    except ConversionError:
        expected = None
    try:
        actual: str | None = to_date_time_fast(text, conventions)
    except ConversionError:
        actual = None
    assert actual == expected


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    )
)
def test_format_utc_with_a_four_digit_year_is_always_a_valid_date_time(moment: datetime) -> None:
    """What SchemaValidator.vouch_date_time relies on."""
    text = format_utc(moment)
    assert text[4] == "-" and is_date_time(text)


def test_format_utc_before_year_1000_is_not_vouched() -> None:
    text = format_utc(datetime(999, 5, 1, tzinfo=timezone(timedelta(hours=0))))
    assert text[4:5] != "-" and not is_date_time(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=20))
def test_texts_are_quoted_as_orjson_quotes_them(texts: list[str]) -> None:
    json = string_json(pa.array(texts, pa.string())).to_pylist()
    assert json == [orjson.dumps(t).decode() for t in texts]


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 2.5, None, float("nan"), -0.0, 1e20, 0.1],
        [1, None, 3, 10**15, -7],
        [True, False, None],
        [Decimal("19.99"), None, Decimal("0.00"), Decimal("-1.50"), Decimal("1000")],
        [datetime(2026, 1, 2, 3, 4, 5), None, datetime(1969, 12, 31, 23, 59, 59)],
        [datetime(2026, 1, 2, 3, 4, 5, 120, tzinfo=UTC), datetime(999, 1, 1, tzinfo=UTC)],
        [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None],
        [datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1000, 1, 1, tzinfo=UTC)],
        [datetime(9999, 12, 31, 23, 59, 59), datetime(1000, 1, 1), datetime(1970, 1, 1)],
        ["a", None, ""],
        [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), None],
        [["x", "y"], None],
    ],
)
def test_parquet_columns_become_the_text_read_table_gives(values: list[object]) -> None:
    array = pa.array(values)
    assert text_array(array).to_pylist() == [_parquet_text(v) for v in array.to_pylist()]
    if pa.types.is_timestamp(array.type):
        for unit in ("s", "ms", "us", "ns"):
            try:
                other = array.cast(pa.timestamp(unit, tz=array.type.tz))
            except pa.ArrowInvalid:
                continue
            expected = [_parquet_text(v) for v in other.to_pylist()]
            assert text_array(other).to_pylist() == expected


def test_seen_keys_finds_what_was_added_across_levels() -> None:
    seen = SeenKeys()
    texts = [f"L{i:09d}" for i in range(5000)]
    first, second = text_hashes(texts)
    for start in range(0, 5000, 700):
        part = slice(start, start + 700)
        assert (seen.find(first[part], second[part]) == -1).all()
        seen.add(first[part], second[part], np.arange(5000)[part])
    assert len(seen) == 5000
    assert seen.find(first, second).tolist() == list(range(5000))
    other, other_second = text_hashes(["nope", "L000000001x"])
    assert seen.find(other, other_second).tolist() == [-1, -1]


def test_equal_texts_of_different_scopes_are_different_keys() -> None:
    scope = scope_hashes(["CH-1", "CH-2"])
    first, second = text_hashes(["L1", "L1", "L1"], scope[[0, 1, 0]])
    where, inverse = distinct_pairs(first, second)
    assert len(where) == 2 and inverse[0] == inverse[2] != inverse[1]


def test_pairs_sharing_a_first_hash_stay_distinct() -> None:
    first = np.array([7, 3, 7, 7, 3], dtype=np.uint64)
    second = np.array([1, 5, 2, 1, 5], dtype=np.uint64)
    where, inverse = distinct_pairs(first, second)
    assert len(where) == 3
    assert inverse[0] == inverse[3] != inverse[2] and inverse[1] == inverse[4]
    assert sorted(where.tolist()) == [0, 1, 2]  # first occurrences


def test_seen_keys_take_sorted_and_unsorted_keys_alike() -> None:
    first, second = text_hashes([f"K{i}" for i in range(3000)])
    order = np.argsort(first)
    low, rest = order[:1000], np.sort(order[1000:])
    seen = SeenKeys()
    seen.add(first[low], second[low], low)  # sorted by hash: kept as given
    seen.add(first[rest[:1000]], second[rest[:1000]], rest[:1000])  # unsorted: sorted here
    expected = np.full(3000, -1)
    expected[low], expected[rest[:1000]] = low, rest[:1000]
    assert (seen.find(first, second) == expected).all()
    assert (seen.find(first[order], second[order]) == expected[order]).all()


def test_chunks_never_straddle_mappers_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import etl.transform.fast.stream

    monkeypatch.setattr(etl.transform.fast.stream, "CHUNK_ITEMS", 30)
    rows = [base_line(f"O{n:03d}", f"L{n}-{k}") for n in range(100) for k in range(n % 3 + 1)]
    stream = prepare(write_rows(tmp_path / "orders.csv", rows), Settings()).stream
    assert stream is not None and stream.rows == len(rows) and stream.items == 100
    seen = []
    for chunk in stream.chunks(12):
        first, last = chunk.first_item, chunk.first_item + len(chunk.starts) - 2
        assert first // 30 == last // 30
        assert chunk.batch.num_rows == chunk.starts[-1]
        seen.extend(range(first, last + 1))
    assert seen == list(range(100))


def test_prefetched_runs_ahead_and_raises_where_it_is_read() -> None:
    produced: list[int] = []

    def values() -> object:
        for value in range(5):
            produced.append(value)
            yield value
        raise ValueError("broken file")

    got = []
    with pytest.raises(ValueError, match="broken file"):
        for value in prefetched(values(), depth=2):  # type: ignore[arg-type]
            time.sleep(0.01)
            got.append(value)
    assert got == list(range(5))


def test_background_writer_writes_everything_in_order() -> None:
    sink = io.BytesIO()
    with BackgroundWriter(sink, limit=10) as writer:  # type: ignore[arg-type]
        for number in range(1000):
            writer.write(b"%d\n" % number)
    assert sink.getvalue() == b"".join(b"%d\n" % n for n in range(1000))


def test_sending_records_in_order_while_the_next_batch_is_sent() -> None:
    """Sending overlaps recording (the sender thread), and the record keeps the file's order."""
    from etl.deliver.batch import Batch

    events: list[str] = []
    sending_thread: set[str] = set()
    recording = threading.Event()
    overlapped: list[str] = []  # batches sent while another was being recorded

    def deliver(batch: Batch) -> Sent:
        sending_thread.add(threading.current_thread().name)
        time.sleep(0.02)
        if recording.is_set():
            overlapped.append(batch.batch_id)
        return Sent()

    def record(batch: Batch, sent: Sent) -> None:
        recording.set()
        events.append(batch.batch_id)
        time.sleep(0.02)
        recording.clear()

    with SendingPipeline(deliver, record) as sending:
        for number in range(10):
            sending.send(Batch(f"b{number}", None, ()))
            if number == 4:
                sending.then(lambda: events.append("screened"))
    assert events == [f"b{n}" for n in range(5)] + ["screened"] + [f"b{n}" for n in range(5, 10)]
    assert threading.current_thread().name not in sending_thread
    # Sending and recording overlapped (seen, not timed: a busy machine makes timings lie).
    assert overlapped


def test_after_a_failed_batch_nothing_more_is_sent() -> None:
    from etl.deliver.batch import Batch

    sent: list[str] = []
    down: list[str] = []

    def deliver(batch: Batch) -> Sent:
        if down:
            return Sent(skipped=down[0])
        sent.append(batch.batch_id)
        down.append("the API is down")
        return Sent(error=RetriableApiError("503"))

    outcomes: list[tuple[str, str]] = []
    # One sender: with several, the batches already on the wire when b0 fails are sent anyway
    # (Sync's own deliver skips every batch that starts after a failure is known).
    with SendingPipeline(
        deliver, lambda b, s: outcomes.append((b.batch_id, repr(s))), senders=1
    ) as sending:
        for number in range(4):
            sending.send(Batch(f"b{number}", None, ()))
    assert sent == ["b0"]
    assert [b for b, _ in outcomes] == ["b0", "b1", "b2", "b3"]
    assert all("skipped='the API is down'" in s for _, s in outcomes[1:])


def test_several_batches_are_on_the_wire_when_an_answer_takes_longer_than_the_pace() -> None:
    """Connect answers an upsert of 100 orders in more than the 50 ms that 20 requests/s leave
    each one: a single request at a time would fall behind the pace. Several are on the wire
    at once, and the record still follows the file's order."""
    from etl.deliver.batch import Batch

    lock = threading.Lock()
    on_the_wire = 0
    most = 0
    finished = threading.Event()

    def deliver(batch: Batch) -> Sent:
        nonlocal on_the_wire, most
        with lock:
            on_the_wire += 1
            most = max(most, on_the_wire)
        # Waits until another batch is on the wire too (or 2 s): seen, not timed.
        finished.wait(0.2 if most > 1 else 2.0)
        with lock:
            on_the_wire -= 1
            if most > 1:
                finished.set()
        return Sent()

    recorded: list[str] = []
    with SendingPipeline(deliver, lambda batch, sent: recorded.append(batch.batch_id)) as sending:
        for number in range(8):
            sending.send(Batch(f"b{number}", None, ()))
    assert most >= 2
    assert recorded == [f"b{n}" for n in range(8)]
