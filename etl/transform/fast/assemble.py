"""Arrow chunk of whole items -> MappedItems and their JSON, fast, without a Python loop per cell.

Each distinct cell text of a chunk is converted and JSON-encoded once (cells are
dictionary-encoded). Which cells of a row are empty decides the shape of the row's JSON (key order,
lazily created objects, arrays with gaps closed): one template per shape, derived once by running
the generated equivalent of ``Mapper.build_item`` on placeholder values and letting orjson write it.
The rows' and items' JSON are then joined in Arrow, and orjson parses them back into the dicts the
validator needs. Items with a problem (a cell that does not convert, item-level cells that
disagree, no id or origin, a custom value of the wrong type) are built by ``mapping.Mapper``
itself, so violations are worded by one piece of code only; the equivalence test holds the JSON of
every other item to ``orjson.dumps`` of Mapper's body, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from etl.core.models import MappedItem, Origin
from etl.core.schema import FileKind, Key, Kind, Level, flat_model
from etl.read.tables import Table, text_array
from etl.settings.options import ColumnMapping, Conventions
from etl.transform.convert import (
    CONTROL_CHARACTER,
    ConversionError,
    convert,
    convert_custom_value,
    to_date_time_fast,
)
from etl.transform.fast.builder import Build, compile_builder
from etl.transform.fast.verdict import Unit, Verdicts, nested
from etl.transform.mapping import (
    Mapper,
    PlanColumn,
    column_conventions,
    is_tax_rate,
    percent_rate_warning,
    source_texts,
)

MISSING: Any = object()  # an empty cell: the field is absent
FAILED: Any = object()  # a cell that does not convert: its item is built by Mapper
SLOT = re.compile(rb'"@@(\d+|R)@@"')
Template = list[tuple[bytes, int | None]]
# Shapes whose conversion is plain (see Assembler._fast_json): at most 15 significant digits,
# years from 1000 (format_utc writes earlier ones without leading zeros), UTC already.
INTEGER_PLAIN = r"^(0|[1-9][0-9]{0,17})$"
NUMBER_POINT = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$"
NUMBER_COMMA = r"^(0|[1-9][0-9]{0,11})(,[0-9]{1,3})?$"
DATE_TIME_UTC = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](Z|\+00:00)$"
)
# A local time and its offset (-05:00, +05:30): converted to UTC in Arrow. Offsets of -00:00 and
# the other odd ones take the long way.
DATE_TIME_OFFSET = (
    r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\+([01][0-9]|2[0-3]):[0-5][0-9]|-([01][0-9]|2[0-3]):[0-5][1-9]"
    r"|-([01][0-9]|2[0-3]):[1-5]0|-(0[1-9]|1[0-9]|2[0-3]):00)$"
)
_REAL_DAYS: dict[str, bool] = {}


def _real_day(day: str) -> bool:
    """``YYYY-MM-DD`` names a day of the calendar (remembered: an export spans few days)."""
    real = _REAL_DAYS.get(day)
    if real is None:
        try:
            real = date.fromisoformat(day) is not None
        except ValueError:
            real = False
        if len(_REAL_DAYS) > 100_000:
            _REAL_DAYS.clear()
        _REAL_DAYS[day] = real
    return real  # (text before, slot) ...; slot -1 = the rows


@dataclass(slots=True)
class _Encoded:
    """One plan column over a chunk: per distinct value its presence and JSON, per row a code."""

    present: np.ndarray  # bool per distinct value
    failed: np.ndarray  # bool per distinct value
    json: pa.Array  # JSON text per distinct value ("" when absent or failed)
    codes: np.ndarray  # distinct-value index per row
    texts: np.ndarray | None  # text index per row, for the agreement check (None: a constant)


class Assembler:
    """Builds the items of one file, chunk by chunk; construct once per file (per process)."""

    def __init__(
        self,
        header: list[str],
        columns: list[PlanColumn],
        source: str,
        kind: FileKind,
        conventions: Conventions,
        mapping: ColumnMapping,
        default_origin: Origin | None,
        vouch_date_time: Callable[[list[str]], None] | None = None,
        formats: dict[str, Callable[[str], bool]] | None = None,
    ) -> None:
        self.header = header
        self.columns = columns
        self.source = source
        self.kind = kind
        self.conventions = conventions
        self.mapping = mapping
        self.default_origin = default_origin
        self.vouch_date_time = vouch_date_time
        self.item_columns = [c for c in columns if c.leaf.level is Level.ITEM]
        self.row_columns = [c for c in columns if c.leaf.level is Level.ROW]
        self.origin_columns = {
            str(c.leaf.keys[-1]): c
            for c in columns
            if c.leaf.level is Level.REQUEST and c.leaf.keys[0] == "origin"
        }
        self.id_column = next(c for c in columns if c.leaf.keys == (kind.item_id,))
        # Every plan column of a source reads it with the same value map.
        self._mapped = {c.source: c for c in columns if c.values and c.constant is None}
        # Tax rates, in plan order (Mapper's order of warnings): (at row level, index there).
        self._rates = [
            (True, self.row_columns.index(c))
            if c.leaf.level is Level.ROW
            else (False, self.item_columns.index(c))
            for c in columns
            if is_tax_rate(c.leaf)
        ]
        empty = flat_model(kind).required_empty_objects()
        self._build: Build = compile_builder(
            [c.leaf for c in self.item_columns],
            [c.leaf for c in self.row_columns],
            kind.row_property,
            [str(keys[0]) for keys in empty[Level.ITEM]],
            [str(keys[0]) for keys in empty[Level.ROW]],
        )
        self.verdicts = (
            Verdicts(
                kind,
                [c.leaf for c in self.item_columns],
                [c.leaf for c in self.row_columns],
                formats,
            )
            if formats is not None
            else None
        )
        self._structures: dict[tuple[str, bytes, int], bool] = {}
        self._converted: dict[tuple[Kind, str | None, str], tuple[Any, str]] = {}
        self._origins: dict[tuple[str, str], tuple[Origin | None, bool]] = {}
        self._templates: dict[tuple[str, bytes], Template] = {}
        self._gap_shapes: dict[tuple[str, bytes], bool] = {}
        self._indexed = {
            level: any(isinstance(k, int) for c in columns for k in c.leaf.keys)
            for level, columns in (("item", self.item_columns), ("row", self.row_columns))
        }

    # --- one chunk ------------------------------------------------------------------------------

    def items(
        self, batch: pa.RecordBatch, row_numbers: Sequence[int], starts: Sequence[int]
    ) -> tuple[list[MappedItem], list[bytes | None], np.ndarray]:
        """Item ``g`` of the chunk spans rows ``starts[g]:starts[g+1]``: every item, in order;
        the JSON of each item built here (None for those Mapper built: dump them if valid); and
        which items are known valid (``verdict``), whose body is left empty (parse the JSON)."""
        if len(self._converted) > 500_000:
            self._converted.clear()
        rows = batch.num_rows
        groups = len(starts) - 1
        first = np.asarray(starts[:-1], dtype=np.int64)
        texts: dict[str, tuple[list[str], np.ndarray]] = {}
        arrays: dict[str, tuple[pa.Array, np.ndarray]] = {}

        def dictionary(name: str) -> tuple[pa.Array, np.ndarray]:
            if name not in arrays:
                array = text_array(batch.column(name)).dictionary_encode()
                distinct, indices = array.dictionary, array.indices
                if name in self._mapped:  # words mapped per distinct text, then merged
                    mapped = source_texts(self._mapped[name], distinct).dictionary_encode()
                    distinct, indices = mapped.dictionary, mapped.indices.take(indices)
                codes = indices.to_numpy(zero_copy_only=False).astype(np.int64)
                arrays[name] = (distinct, codes)
            return arrays[name]

        def encode(name: str) -> tuple[list[str], np.ndarray]:
            if name not in texts:
                distinct, indices = dictionary(name)
                texts[name] = (distinct.to_pylist(), indices)
            return texts[name]

        flagged = np.zeros(groups, dtype=bool)
        continues = np.ones(rows, dtype=bool)  # row r belongs to the item of row r - 1
        continues[first] = False

        def flag_rows(row_mask: np.ndarray) -> None:
            hit = np.flatnonzero(row_mask)
            if hit.size:
                flagged[np.searchsorted(first, hit, side="right") - 1] = True

        item_encoded = [self._encode(c, dictionary, encode, rows) for c in self.item_columns]
        row_encoded = [self._encode(c, dictionary, encode, rows) for c in self.row_columns]
        self._type_custom(self.item_columns, item_encoded, encode, rows)
        self._type_custom(self.row_columns, row_encoded, encode, rows)
        for column in item_encoded:
            if column.failed.any():
                at_first = np.zeros(rows, dtype=bool)
                at_first[first] = column.failed[column.codes[first]]
                flag_rows(at_first)
            if column.texts is not None and rows > 1:
                changed = column.texts[1:] != column.texts[:-1]
                flag_rows(np.concatenate(([False], changed & continues[1:])))
        for column in row_encoded:
            if column.failed.any():
                flag_rows(column.failed[column.codes])
        item_ids, origins, tainted = self._keys(encode, first, groups)
        for g in range(groups):
            if not item_ids[g] or origins[g] is None or tainted[g]:
                flagged[g] = True

        good = np.flatnonzero(~flagged)
        documents: list[bytes | None] = [None] * groups
        valid = np.zeros(groups, dtype=bool)
        if good.size:
            item_presence = _presence(item_encoded, first[good])
            row_presence = _presence(row_encoded, np.arange(rows))
            json = self._json(item_encoded, row_encoded, starts, good, item_presence, row_presence)
            for g, document in zip(good.tolist(), json, strict=True):
                documents[g] = document
            if self.verdicts is not None and self.verdicts.usable:
                valid[good] = self._verdict(
                    item_encoded, row_encoded, first, good, item_presence, row_presence, starts
                )
            # The schema may find problems in an item not known valid; if its arrays are sent
            # without the gaps of the user's indexes, Mapper builds it: it notes those indexes,
            # which the problems then name.
            unsure = np.flatnonzero(~valid[good])
            if unsure.size:
                gapped = unsure[
                    self._gapped(item_presence[unsure], row_presence, good[unsure], starts)
                ]
                flagged[good[gapped]] = True
                for g in good[gapped].tolist():
                    documents[g] = None
                good = np.flatnonzero(~flagged)
        built: list[MappedItem | None] = [None] * groups
        starts_list = list(starts)
        loads = orjson.loads
        for g in good.tolist():
            start, end = starts_list[g], starts_list[g + 1]
            built[g] = MappedItem(
                item_id=item_ids[g],
                origin=origins[g],
                body={} if valid[g] else loads(documents[g]),  # type: ignore[arg-type]
                rows=tuple(row_numbers[start:end]),
                source=self.source,
            )
        for at_row, index in self._rates:
            encoded = (row_encoded if at_row else item_encoded)[index]
            self._warn_percent_rates(
                at_row, index, encoded, encode, built, starts_list, row_numbers
            )
        if flagged.any():
            rebuilt = self._rebuild(
                np.flatnonzero(flagged).tolist(), starts_list, encode, row_numbers
            )
            for g, item in rebuilt.items():
                built[g] = item
        return [item for item in built if item is not None], documents, valid

    def _warn_percent_rates(
        self,
        at_row: bool,
        index: int,
        encoded: _Encoded,
        encode: Callable[[str], tuple[list[str], np.ndarray]],
        built: list[MappedItem | None],
        starts: list[int],
        row_numbers: Sequence[int],
    ) -> None:
        """RATE_LOOKS_LIKE_PERCENT on the items built here, for each cell of one tax rate
        column above 1 (judged per distinct value), as Mapper._put words it."""
        wanted = np.flatnonzero(encoded.present & ~encoded.failed)
        if not wanted.size:
            return
        values = orjson.loads("[" + ",".join(encoded.json.take(pa.array(wanted)).to_pylist()) + "]")
        above = np.zeros(len(encoded.present), dtype=bool)
        above[wanted] = np.asarray(values, dtype=np.float64) > 1
        if not above.any():
            return
        first = np.asarray(starts[:-1], dtype=np.int64)
        column = (self.row_columns if at_row else self.item_columns)[index]
        rows = (
            np.flatnonzero(above[encoded.codes]) if at_row else first[above[encoded.codes[first]]]
        )
        texts = [column.constant] if column.constant is not None else encode(column.source)[0]
        groups = np.searchsorted(first, rows, side="right") - 1
        for row, group in zip(rows.tolist(), groups.tolist(), strict=True):
            item = built[group]
            if item is None:  # built by Mapper, which warns itself
                continue
            keys = column.leaf.keys
            path = (self.kind.row_property or "", row - starts[group], *keys) if at_row else keys
            text = texts[encoded.codes[row]]
            warning = percent_rate_warning(
                self.source, (row_numbers[row],), item.item_id, path, text
            )
            item.warnings.append(warning)

    # --- encoding --------------------------------------------------------------------------------

    def _encode(
        self,
        column: PlanColumn,
        dictionary: Callable[[str], tuple[pa.Array, np.ndarray]],
        encode: Callable[[str], tuple[list[str], np.ndarray]],
        rows: int,
    ) -> _Encoded:
        kind = column.leaf.kind
        conventions = column_conventions(self.conventions, self.mapping, column)
        if column.constant is not None:
            distinct_array = pa.array([column.constant], pa.string())
            codes, by_text = np.zeros(rows, dtype=np.int64), None
        else:
            distinct_array, codes = dictionary(column.source)
            by_text = codes
        present = pc.not_equal(distinct_array, "").to_numpy(zero_copy_only=False)
        failed = np.zeros(len(distinct_array), dtype=bool)
        if kind is Kind.CUSTOM_VALUE:  # encoded once the sibling type is known
            json = pa.array([""] * len(distinct_array), pa.string())
        elif kind is Kind.STRING:
            json, failed = _string_json_checked(distinct_array)
        else:
            fast, json = self._fast_json(kind, distinct_array, conventions)
            if not fast.all():
                distinct = (
                    [column.constant] if column.constant is not None else encode(column.source)[0]
                )
                slow = np.flatnonzero(~fast)
                texts: list[str] = []
                for index in slow.tolist():
                    text = distinct[index]
                    value, encoded = (
                        ("", "") if text == "" else self._converted_text(text, kind, conventions)
                    )
                    if value is FAILED:
                        failed[index] = True
                    texts.append(encoded)
                mask = pa.array(~fast)
                json = pc.replace_with_mask(json, mask, pa.array(texts, pa.string()))
        return _Encoded(present, failed, json, codes, by_text)

    def _fast_json(
        self, kind: Kind, texts: pa.Array, conventions: Conventions | None = None
    ) -> tuple[np.ndarray, pa.Array]:
        """The JSON of the texts whose conversion is plain, computed in Arrow: which they are,
        and their JSON (the others' is computed by ``convert``). A test holds each of these
        shapes to ``orjson.dumps(convert(text))``. Date-times in a date format of the export's
        have no plain shape: each distinct one is read by ``convert``."""
        conventions = self.conventions if conventions is None else conventions
        if kind is Kind.INTEGER:
            fast = pc.match_substring_regex(texts, INTEGER_PLAIN)
            return fast.to_numpy(zero_copy_only=False), texts
        if kind is Kind.NUMBER:
            shape = NUMBER_COMMA if conventions.decimal_comma else NUMBER_POINT
            fast = pc.match_substring_regex(texts, shape)
            json = pc.replace_substring_regex(texts, r"^([0-9]+)[.,]([0-9]*?)0*$", r"\1.\2")
            json = pc.replace_substring_regex(json, r"\.$", "")
            return fast.to_numpy(zero_copy_only=False), json
        if kind is Kind.DATE_TIME and conventions.date_format is None:
            fast = pc.match_substring_regex(texts, DATE_TIME_UTC).to_numpy(zero_copy_only=False)
            offset = pc.match_substring_regex(texts, DATE_TIME_OFFSET).to_numpy(
                zero_copy_only=False
            )
            if fast.any() or offset.any():
                days = pc.utf8_slice_codeunits(texts, 0, 10).dictionary_encode()
                real = np.fromiter(
                    (_real_day(day) for day in days.dictionary.to_pylist()),
                    dtype=bool,
                    count=len(days.dictionary),
                )
                real_rows = real[days.indices.to_numpy(zero_copy_only=False)]
                fast &= real_rows
                offset &= real_rows
            moments = pc.binary_join_element_wise(pc.utf8_slice_codeunits(texts, 0, 19), "Z", "")
            if offset.any():
                shifted, offset = _utc_of_offsets(texts, offset)
                moments = pc.replace_with_mask(
                    moments, pa.array(offset), shifted.filter(pa.array(offset))
                )
                fast |= offset
            if self.vouch_date_time is not None and fast.any():
                self.vouch_date_time(moments.filter(pa.array(fast)).to_pylist())
            return fast, pc.binary_join_element_wise('"', moments, '"', "")
        return np.zeros(len(texts), dtype=bool), pa.array([""] * len(texts), pa.string())

    def _converted_text(self, text: str, kind: Kind, conventions: Conventions) -> tuple[Any, str]:
        key = (kind, conventions.date_format, text)
        known = self._converted.get(key)
        if known is None:
            try:
                if kind is Kind.DATE_TIME:
                    value = to_date_time_fast(text, conventions)
                else:
                    value = convert(text, kind, conventions)
                encoded = orjson.dumps(value).decode()
            except (ConversionError, orjson.JSONEncodeError):
                value, encoded = FAILED, ""
            else:
                if kind is Kind.DATE_TIME and self.vouch_date_time is not None:
                    self.vouch_date_time([value])
            known = self._converted[key] = (value, encoded)
        return known

    def _type_custom(
        self,
        columns: list[PlanColumn],
        encoded: list[_Encoded],
        encode: Callable[[str], tuple[list[str], np.ndarray]],
        rows: int,
    ) -> None:
        """A custom attribute's value, read by its sibling type (as Mapper._type_custom_values)."""
        by_keys = {c.leaf.keys: i for i, c in enumerate(columns)}
        for index, column in enumerate(columns):
            if column.leaf.kind is not Kind.CUSTOM_VALUE:
                continue
            values = encoded[index]
            conventions = column_conventions(self.conventions, self.mapping, column)
            distinct_values = (
                [column.constant] if column.constant is not None else encode(column.source)[0]
            )
            type_index = by_keys.get((*column.leaf.keys[:-1], "type"))
            if type_index is None:
                type_codes = np.zeros(rows, dtype=np.int64)
                distinct_types: list[Any] = [None]
            else:
                type_column = columns[type_index]
                type_codes = encoded[type_index].codes
                distinct_types = [
                    text if text != "" else None
                    for text in (
                        [type_column.constant]
                        if type_column.constant is not None
                        else encode(type_column.source)[0]
                    )
                ]
            pairs, codes = np.unique(
                type_codes * len(distinct_values) + values.codes, return_inverse=True
            )
            dates: list[str] = []
            present = np.zeros(len(pairs), dtype=bool)
            failed = np.zeros(len(pairs), dtype=bool)
            json: list[str] = []
            for position, pair in enumerate(pairs.tolist()):
                text = distinct_values[pair % len(distinct_values)]
                attribute_type = distinct_types[pair // len(distinct_values)]
                if text == "":
                    json.append("")
                    continue
                present[position] = True
                try:
                    value = convert_custom_value(text, attribute_type, conventions)
                    json.append(orjson.dumps(value).decode())
                    if attribute_type == "DATE":  # written by format_utc, as any date-time
                        dates.append(value)
                except (ConversionError, orjson.JSONEncodeError):
                    failed[position] = True
                    json.append("")
            if dates and self.vouch_date_time is not None:
                self.vouch_date_time(dates)
            encoded[index] = _Encoded(
                present, failed, pa.array(json, pa.string()), codes.reshape(-1), values.texts
            )

    # --- JSON ------------------------------------------------------------------------------------

    def _json(
        self,
        item_encoded: list[_Encoded],
        row_encoded: list[_Encoded],
        starts: Sequence[int],
        good: np.ndarray,
        item_presence: np.ndarray,
        row_presence: np.ndarray,
    ) -> list[bytes]:
        """The JSON of the items ``good``, assembled from per-shape templates."""
        first = np.asarray(starts[:-1], dtype=np.int64)
        row_json: pa.Array | None = None
        if self.kind.row_property:
            every_row = np.arange(starts[-1])
            row_json = self._fill("row", row_encoded, every_row, row_presence, None)
            row_lists = pa.ListArray.from_arrays(
                pa.array(np.asarray(starts, dtype=np.int32)), row_json
            )
            row_json = pc.binary_join(row_lists.take(pa.array(good)), ",")
        item_json = self._fill("item", item_encoded, first[good], item_presence, row_json)
        return item_json.cast(pa.binary()).to_pylist()  # type: ignore[no-any-return]

    def _fill(
        self,
        level: str,
        encoded: list[_Encoded],
        rows: np.ndarray,
        presence: np.ndarray,
        nested: pa.Array | None,
    ) -> pa.Array:
        """JSON of one level for ``rows`` (item level: the first rows of the items), in order."""
        shapes, shape_of = _shapes(presence)
        parts: list[pa.Array] = []
        order: list[np.ndarray] = []
        for shape_index in range(len(shapes)):
            members = np.flatnonzero(shape_of == shape_index)
            template = self._template(level, presence[members[0]])
            pieces: list[Any] = []
            for text, slot in template:
                if text:
                    pieces.append(pa.scalar(text.decode(), pa.string()))
                if slot is None:
                    continue
                if slot == -1:
                    assert nested is not None
                    pieces.append(pa.scalar("[", pa.string()))
                    pieces.append(nested.take(pa.array(members)))
                    pieces.append(pa.scalar("]", pa.string()))
                else:
                    column = encoded[slot]
                    pieces.append(column.json.take(pa.array(column.codes[rows[members]])))
            if any(isinstance(p, pa.Array) for p in pieces):
                parts.append(pc.binary_join_element_wise(*pieces, ""))
            else:
                constant = "".join(p.as_py() for p in pieces)
                parts.append(pa.array([constant] * len(members), pa.string()))
            order.append(members)
        joined = pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
        if len(parts) == 1:
            return joined
        return joined.take(pa.array(np.argsort(np.concatenate(order), kind="stable")))

    def _verdict(
        self,
        item_encoded: list[_Encoded],
        row_encoded: list[_Encoded],
        first: np.ndarray,
        good: np.ndarray,
        item_presence: np.ndarray,
        row_presence: np.ndarray,
        starts: Sequence[int],
    ) -> np.ndarray:
        """Which of the items ``good`` are valid, decided from their parts (``verdict``)."""
        verdicts = self.verdicts
        assert verdicts is not None
        sizes = np.diff(np.asarray(starts, dtype=np.int64))[good]
        valid = np.ones(len(good), dtype=bool)
        # The structure of the item level (with its number of rows) and of every row.
        shapes, shape_of = _shapes(item_presence)
        for index in range(len(shapes)):
            members = np.flatnonzero(shape_of == index)
            for count in np.unique(sizes[members]).tolist():
                if not self._structure_ok("item", item_presence[members[0]], count):
                    valid[members[sizes[members] == count]] = False
        row_ok = np.ones(len(row_presence), dtype=bool)
        if self.kind.row_property:
            shapes, shape_of = _shapes(row_presence)
            for index, _ in enumerate(shapes):
                members = np.flatnonzero(shape_of == index)
                if not self._structure_ok("row", row_presence[members[0]], 1):
                    row_ok[members] = False
        # Every value against its field's schema, once per distinct value.
        at_first = first[good]
        for level, encoded, rows in (
            (Level.ITEM, item_encoded, at_first),
            (Level.ROW, row_encoded, None),
        ):
            for index, column in enumerate(encoded):
                check = verdicts.checks[level][index]
                if check is None:
                    continue
                ok = self._values_ok(column, check)
                if rows is None:
                    row_ok &= ok[column.codes]
                else:
                    valid &= ok[column.codes[rows]]
            for unit in verdicts.units[level]:
                ok_rows = self._unit_ok(level, unit, encoded, rows if rows is not None else None)
                if rows is None:
                    row_ok &= ok_rows
                else:
                    valid &= ok_rows
        if len(row_ok):
            valid &= np.logical_and.reduceat(row_ok, first)[good]
        return valid

    def _structure_ok(self, level: str, present: np.ndarray, count: int) -> bool:
        key = (level, np.packbits(present).tobytes(), count)
        known = self._structures.get(key)
        if known is None:
            verdicts = self.verdicts
            assert verdicts is not None
            marks = [0 if p else MISSING for p in present.tolist()]
            if level == "row":
                item_values = [[MISSING] for _ in self.item_columns]
                body = self._build([0], [0, 1], item_values, [[m] for m in marks], MISSING)[0]
                document = body[str(self.kind.row_property)][0]
                check = verdicts.row_structure
            else:
                row_values: list[list[Any]] = [[] for _ in self.row_columns]
                document = self._build([0], [0, 0], [[m] for m in marks], row_values, MISSING)[0]
                if self.kind.row_property:
                    document[self.kind.row_property] = [None] * count
                check = verdicts.item_structure
            known = self._structures[key] = check is None or bool(check.is_valid(document))
        return known

    def _values_ok(self, column: _Encoded, check: Any) -> np.ndarray:
        """Per distinct value: absent, or valid against the field's schema."""
        single, many = check
        ok: np.ndarray = ~column.present | column.failed  # failed items are not judged here
        wanted = np.flatnonzero(~ok)
        if wanted.size:
            texts = column.json.take(pa.array(wanted)).to_pylist()
            values = orjson.loads("[" + ",".join(texts) + "]")
            if many.is_valid(values):
                ok[wanted] = True
            else:
                for position, value in zip(wanted.tolist(), values, strict=True):
                    ok[position] = bool(single.is_valid(value))
        return ok

    def _unit_ok(
        self, level: Level, unit: Unit, encoded: list[_Encoded], rows: np.ndarray | None
    ) -> np.ndarray:
        """Per row (or per item at its first row): the unit is absent or valid as a whole."""
        members = [encoded[i] for i in unit.members]
        codes = np.stack([m.codes if rows is None else m.codes[rows] for m in members], axis=1)
        signatures, signature_of = _distinct_rows(codes, [len(m.present) for m in members])
        columns = self.item_columns if level is Level.ITEM else self.row_columns
        depth = len(unit.path)
        # Each member's distinct values parsed in one call (a unit such as a custom attribute
        # with a date for value has about as many distinct contents as items).
        usable = [m.present & ~m.failed for m in members]
        values = [
            orjson.loads("[" + ",".join(t or "null" for t in m.json.to_pylist()) + "]")
            for m in members
        ]
        keys = [columns[index].leaf.keys[depth:] for index in unit.members]
        flat = all(len(k) == 1 and isinstance(k[0], str) for k in keys)
        contents: list[Any] = []
        positions: list[int] = []
        for position, signature in enumerate(signatures.tolist()):
            parts = [
                (keys[i], values[i][code]) for i, code in enumerate(signature) if usable[i][code]
            ]
            if parts:
                # A flat object (a custom attribute's id, type and value) needs no nesting.
                contents.append(dict((k[0], v) for k, v in parts) if flat else nested(parts))
                positions.append(position)
        ok = np.ones(len(signatures), dtype=bool)
        if contents and not unit.many.is_valid(contents):
            for position, content in zip(positions, contents, strict=True):
                ok[position] = bool(unit.validator.is_valid(content))
        judged: np.ndarray = ok[signature_of]
        return judged

    def _gapped(
        self,
        item_presence: np.ndarray,
        row_presence: np.ndarray,
        groups: np.ndarray,
        item_starts: Sequence[int],
    ) -> np.ndarray:
        """Which of the items ``groups`` (their item-level presence given) fill an indexed
        array with a gap (``taxes[2]`` without ``taxes[0]``), at item level or on a row."""
        gapped = self._shapes_gapped("item", item_presence)
        if self._indexed["row"]:
            starts = np.asarray(item_starts, dtype=np.int64)
            sizes = starts[groups + 1] - starts[groups]
            rows = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in groups.tolist()])
            on_rows = self._shapes_gapped("row", row_presence[rows])
            gapped |= np.add.reduceat(on_rows, np.concatenate(([0], np.cumsum(sizes)[:-1]))) > 0
        return gapped

    def _shapes_gapped(self, level: str, presence: np.ndarray) -> np.ndarray:
        """Per row of ``presence`` (filled columns of the level): an indexed array has a gap."""
        if not self._indexed[level] or not len(presence):
            return np.zeros(len(presence), dtype=bool)
        shapes, shape_of = _shapes(presence)
        width = presence.shape[1]
        answers = np.array(
            [self._gaps(level, np.unpackbits(shape, count=width).astype(bool)) for shape in shapes]
        )
        gapped: np.ndarray = answers[shape_of]
        return gapped

    def _gaps(self, level: str, present: np.ndarray) -> bool:
        """One shape: does an array of its filled columns skip an index (remembered)."""
        key = (level, np.packbits(present).tobytes())
        known = self._gap_shapes.get(key)
        if known is None:
            columns = self.item_columns if level == "item" else self.row_columns
            found: dict[tuple[Key, ...], set[int]] = {}
            for column, filled in zip(columns, present.tolist(), strict=True):
                keys = column.leaf.keys
                for depth, index in enumerate(keys):
                    if filled and isinstance(index, int):
                        found.setdefault(keys[:depth], set()).add(index)
            known = self._gap_shapes[key] = any(max(i) != len(i) - 1 for i in found.values())
        return known

    def _template(self, level: str, present: np.ndarray) -> Template:
        """The JSON of one shape, cut at the values: derived by building a placeholder item."""
        key = (level, np.packbits(present).tobytes())
        template = self._templates.get(key)
        if template is not None:
            return template
        marks = [f"@@{j}@@" if p else MISSING for j, p in enumerate(present.tolist())]
        row_property = self.kind.row_property
        if level == "row":
            item_values = [[MISSING] for _ in self.item_columns]
            body = self._build([0], [0, 1], item_values, [[m] for m in marks], MISSING)[0]
            document = orjson.dumps(body[str(row_property)][0])
        else:
            row_values: list[list[Any]] = [[] for _ in self.row_columns]
            body = self._build([0], [0, 0], [[m] for m in marks], row_values, MISSING)[0]
            if row_property:
                body[row_property] = "@@R@@"
            document = orjson.dumps(body)
        template = []
        position = 0
        for match in SLOT.finditer(document):
            slot = match.group(1)
            template.append((document[position : match.start()], -1 if slot == b"R" else int(slot)))
            position = match.end()
        template.append((document[position:], None))
        self._templates[key] = template
        return template

    # --- keys and the items Mapper builds --------------------------------------------------------

    def _keys(
        self,
        encode: Callable[[str], tuple[list[str], np.ndarray]],
        first: np.ndarray,
        groups: int,
    ) -> tuple[list[str], list[Origin | None], list[bool]]:
        """Each item's id and origin, and whether its origin cells hold a control character."""

        def at_starts(column: PlanColumn | None) -> list[str]:
            if column is None:
                return [""] * groups
            if column.constant is not None:
                return [column.constant] * groups
            distinct, codes = encode(column.source)
            return [distinct[i] for i in codes[first].tolist()]

        item_ids = at_starts(self.id_column)
        channels = at_starts(self.origin_columns.get("channel_id"))
        stores = at_starts(self.origin_columns.get("channel_store_id"))
        default = self.default_origin
        origins: list[Origin | None] = []
        tainted: list[bool] = []
        for channel, store in zip(channels, stores, strict=True):
            key = (channel, store)
            known = self._origins.get(key)
            if known is None:
                bad = CONTROL_CHARACTER.search(channel + store) is not None
                channel = channel or (default.channel_id if default else "")
                store = store or (default.channel_store_id if default else "")
                origin = Origin(channel, store) if channel and store else None
                known = self._origins[key] = (origin, bad)
            origins.append(known[0])
            tainted.append(known[1])
        return item_ids, origins, tainted

    def _rebuild(
        self,
        groups: list[int],
        starts: list[int],
        encode: Callable[[str], tuple[list[str], np.ndarray]],
        row_numbers: Sequence[int],
    ) -> dict[int, MappedItem]:
        """Items with a problem, built by the reference Mapper over just their rows."""
        selected = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in groups])
        cells: dict[str, list[str]] = {}
        for column in self.columns:
            if column.constant is None and column.source not in cells:
                distinct, codes = encode(column.source)
                cells[column.source] = [distinct[i] for i in codes[selected].tolist()]
        numbers = [row_numbers[i] for i in selected.tolist()]
        table = Table(columns=self.header, cells=cells, row_numbers=numbers)
        mapper = Mapper(
            table,
            self.source,
            self.kind,
            self.conventions,
            self.mapping,
            self.default_origin,
            plan=[replace(c, values=()) for c in self.columns],  # the cells are mapped already
        )
        id_cells = next(c.cells for c in mapper.columns if c.leaf.keys == (self.kind.item_id,))
        built: dict[int, MappedItem] = {}
        offset = 0
        for g in groups:
            size = starts[g + 1] - starts[g]
            local = list(range(offset, offset + size))
            offset += size
            built[g] = mapper.build_item(mapper.origin_of(local[0]), id_cells[local[0]], local)
        return built


def _utc_of_offsets(texts: pa.Array, offset: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """``YYYY-MM-DDTHH:MM:SS+HH:MM`` texts (those ``offset`` marks) as format_utc writes them,
    and which are plain: the moment stays within years 1000-9999 in UTC (format_utc writes
    earlier years without their leading zeros; later ones do not exist)."""
    mask = pa.array(offset)
    some = pc.if_else(mask, texts, pa.scalar("2000-01-01T00:00:00+00:00"))
    utc = pc.strptime(some, format="%Y-%m-%dT%H:%M:%S%z", unit="s", error_is_null=True)
    years = pc.year(utc).to_numpy(zero_copy_only=False)
    plain = offset & (years >= 1000) & (years <= 9999)
    # Cast as a timestamp without a zone: the same instants, written twenty times faster than
    # with the zone (which Arrow converts value by value).
    naive = utc.cast(pa.timestamp("s")).cast(pa.string())
    text = pc.replace_substring(naive, " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, "Z", ""), plain


def _presence(encoded: list[_Encoded], rows: np.ndarray) -> np.ndarray:
    """Which of the columns are filled, for each of ``rows``."""
    if not encoded:
        return np.zeros((len(rows), 1), dtype=bool)
    return np.stack([e.present[e.codes[rows]] for e in encoded], axis=1)


def _shapes(presence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct shapes (filled columns) and each row's shape."""
    packed = np.packbits(presence, axis=1)
    return _distinct_rows(packed, [256] * packed.shape[1])


def _distinct_rows(matrix: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(matrix, axis=0, return_inverse=True)``, through one integer key per row when
    the values fit (``sizes``: an exclusive bound of each column), which sorts far faster."""
    with np.errstate(over="ignore"):  # thousands of columns: infinity, which is not below
        product = float(np.prod(np.asarray(sizes, dtype=np.float64)))
    if product < 2.0**62:
        keys = np.zeros(len(matrix), dtype=np.int64)
        for column, size in zip(matrix.T, sizes, strict=True):
            keys = keys * int(size) + column.astype(np.int64)
        _, where, inverse = np.unique(keys, return_index=True, return_inverse=True)
        return matrix[where], inverse.reshape(-1)
    distinct, inverse = np.unique(matrix, axis=0, return_inverse=True)
    return distinct, inverse.reshape(-1)


def _string_json(texts: pa.Array) -> pa.Array:
    """``orjson.dumps`` of each text, in Arrow: quoted as is unless it must be escaped."""
    return _string_json_checked(texts)[0]


def _string_json_checked(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """``_string_json``, and which texts hold a control character (refused, see
    convert.CONTROL_CHARACTER), looked for among the few that must be escaped."""
    quoted = pc.binary_join_element_wise('"', texts, '"', "")
    escape = pc.match_substring_regex(texts, r'["\\\x00-\x1f]').to_numpy(zero_copy_only=False)
    control = np.zeros(len(texts), dtype=bool)
    if not escape.any():
        return quoted, control
    where = np.flatnonzero(escape)
    special = [texts[int(i)].as_py() for i in where]
    control[where] = [CONTROL_CHARACTER.search(text) is not None for text in special]
    escaped = [orjson.dumps(text).decode() for text in special]
    json = pc.replace_with_mask(quoted, pa.array(escape), pa.array(escaped, pa.string()))
    return json, control
