"""Problems in the user's terms: the column of their file each one is about, as they named it.

Every stage that finds a problem locates it by a JSONPath inside the item
(``$.order_lines[1].quantity``): exact, but not what the user's file says ("Menge", before a
mapping renamed it). ``UserColumns.restate`` names the column behind each path once the chunk's
violations are all known, in both the streamed and the whole-table path: once per distinct path
and code, never per cell.
"""

from __future__ import annotations

import dataclasses
import re

from etl.mapping import ColumnMapping, PlanColumn, json_path
from etl.models import MappedItem, Violation
from etl.schema import FileKind, Leaf, Level, UnknownColumn, flat_model

REQUIRED = "REQUIRED_FIELD_MISSING"
# The origin lives outside the item, so a missing one is a problem of the item as a whole ("$").
PATHLESS = {"MISSING_ORIGIN": "origin"}


def constant_name(column: str) -> str:
    """How a problem names a value set by the mapping's [constants] rather than by a column."""
    return f"[constants] {column}"


class UserColumns:
    """The user's names for the columns of one file: construct once per file (per process)."""

    def __init__(self, kind: FileKind, columns: list[PlanColumn], mapping: ColumnMapping) -> None:
        self.kind = kind
        self.model = flat_model(kind)
        self.present: dict[str, str] = {}  # flat column -> the user's name for it
        for column in columns:
            flat = flat_column(column.leaf, kind.row_property)
            user = column.source if column.constant is None else constant_name(flat)
            self.present[flat] = user
        # A field the mapping would fill from a column the file lacks is named by that column.
        self.renamed: dict[str, str] = {}
        for name, targets in mapping.renames.items():
            for target in targets:
                self.renamed.setdefault(target, name)
        self._row_index = (
            re.compile(rf"^{re.escape(kind.row_property)}\[\d+\]") if kind.row_property else None
        )
        self._said: dict[tuple[str, str], tuple[str, str]] = {}  # (flat path, code) -> words

    def name(self, flat: str) -> str:
        """The user's name for a flat column: their own, else the path itself."""
        return self.present.get(flat) or self.renamed.get(flat) or flat

    def restate(self, items: list[MappedItem]) -> None:
        """Name the column of every violation of ``items`` (changed in place)."""
        for item in items:
            if item.violations:
                item.violations = [self._restated(v) for v in item.violations]

    def _restated(self, violation: Violation) -> Violation:
        if violation.column:
            return violation
        key = (self._flat_path(violation.path), violation.code)
        said = self._said.get(key)
        if said is None:
            said = self._said[key] = self._words(*key)
        column, addition = said
        if not column:
            return violation
        return dataclasses.replace(violation, column=column, message=violation.message + addition)

    def _flat_path(self, path: str) -> str:
        """``$.order_lines[1].taxes[0].code`` -> ``order_lines.taxes[0].code``: the row's index
        is where the line is, not which column."""
        flat = path.removeprefix("$").removeprefix(".")
        if self._row_index is not None:
            flat = self._row_index.sub(str(self.kind.row_property), flat, count=1)
        return flat

    def _words(self, flat: str, code: str) -> tuple[str, str]:
        """The column cell of a problem, and what its message needs added: that the columns to
        fill are not in the file at all (a field only some orders need, say)."""
        columns = self.columns_of(PATHLESS.get(code, flat))
        if not columns:
            return "", ""
        names = [self.name(c) for c in columns]
        absent = [self.name(c) for c in columns if c not in self.present]
        addition = ""
        if absent and code == REQUIRED:
            noun = "column" if len(absent) == 1 else "columns"
            addition = f" (the file has no {noun} {', '.join(absent)})"
        return ", ".join(names), addition

    def columns_of(self, flat: str) -> list[str]:
        """The flat columns behind a path: the leaf itself; for an object, the columns to fill
        for it to be sent (``fulfillment`` -> ``fulfillment.type``), else the file's columns
        under it; [] for the item as a whole."""
        if not flat:
            return []
        try:
            self.model.leaf(flat)
            return [flat]
        except UnknownColumn:
            pass
        required = self.model.required_under(flat)
        if required:
            return required
        return [c for c in self.present if c.startswith((f"{flat}.", f"{flat}["))]


def flat_column(leaf: Leaf, row_property: str | None) -> str:
    """A leaf's column as a problem's path names it (``order_lines.taxes[0].code``; the user
    may have written ``taxes[00]``)."""
    own = json_path(leaf.keys)[2:]
    return f"{row_property}.{own}" if leaf.level is Level.ROW else own
