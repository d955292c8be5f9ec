"""Problems in the user's terms: the column of their file each one is about, as they named it,
and the required columns the whole file lacks, said once for the file.

Every stage that finds a problem locates it by a JSONPath inside the item
(``$.order_lines[1].quantity``): exact, but not what the user's file says ("Menge", before a
mapping renamed it). ``UserColumns.restate`` names the column behind each path once the chunk's
violations are all known, in both the streamed and the whole-table path: once per distinct path
and code, never per cell. A column every item needs that the file lacks is one problem of the
file (``problems``, row empty), not one per item and line: every item carries it (so none is
sent, and items.csv names it), in place of the item's own violations it explains.
"""

from __future__ import annotations

import dataclasses
import re

from etl.core.codes import Problem
from etl.core.models import MappedItem, Origin, Violation
from etl.core.schema import FileKind, Leaf, Level, UnknownColumn, flat_model
from etl.settings.options import ColumnMapping
from etl.transform.mapping import PlanColumn, json_path

# The origin lives outside the item, so a missing one is a problem of the item as a whole ("$").
PATHLESS: dict[str, str] = {Problem.MISSING_ORIGIN: "origin"}


def constant_name(column: str) -> str:
    """How a problem names a value set by the mapping's [constants] rather than by a column."""
    return f"[constants] {column}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Words:
    """What restating says about the problems of one path and code."""

    column: str  # the column cell
    addition: str = ""  # added to the message
    explained: bool = False  # by a problem of the file: not repeated for each item


class UserColumns:
    """The user's names for the columns of one file: construct once per file (per process)."""

    def __init__(
        self,
        kind: FileKind,
        columns: list[PlanColumn],
        mapping: ColumnMapping,
        default_origin: Origin | None = None,
        source: str = "",
    ) -> None:
        self.kind = kind
        self.model = flat_model(kind)
        self.mapping = mapping
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
        self._said: dict[tuple[str, str], _Words] = {}  # by (flat path, code)
        self.missing = self._missing(default_origin)
        self.problems = [self._missing_problem(flat, source) for flat in self.missing]

    def name(self, flat: str) -> str:
        """The user's name for a flat column: their own, else the path itself."""
        return self.present.get(flat) or self.renamed.get(flat) or flat

    # --- the file --------------------------------------------------------------------------------

    def _missing(self, default_origin: Origin | None) -> list[str]:
        """The columns every item needs (`etl template KIND --required`) that nothing fills: not
        a column of the file, not a constant, not the default origin."""
        missing: list[str] = []
        for column in self.model.described():
            if not column.required or column.name in self.present:
                continue
            if column.level is Level.REQUEST and default_origin is not None:
                continue  # the origin, which the default gives every row that leaves it empty
            missing.append(column.name)
        return missing

    def _missing_problem(self, flat: str, source: str) -> Violation:
        kind = self.kind
        name = self.name(flat)
        if name in self.mapping.ignore:
            what = f"the mapping ignores the column {name}"
        elif name != flat:
            what = f"the file has no column {name} (the mapping's name for {flat})"
        else:
            what = f"the file has no column {name}"
        needs = f"which every {kind.singular or 'row'} needs"
        if self.model.leaf(flat).level is Level.REQUEST:
            needs += " unless a default origin is set (CONNECT_CHANNEL_ID and CONNECT_STORE_ID)"
        field = flat
        if kind.row_property and flat.startswith(f"{kind.row_property}."):
            field = f"{kind.row_property}[*]{flat[len(kind.row_property) :]}"
        return Violation(
            file=source,
            rows=(),
            item_id=None,
            path=f"$.{field}",
            code=Problem.MISSING_COLUMN,
            message=f"{what}, {needs} (`etl template {kind.name} --required` lists them)",
            column=name,
        )

    # --- the items -------------------------------------------------------------------------------

    def restate(self, items: list[MappedItem]) -> None:
        """Name the column of every violation of ``items``, and give each the file's problems in
        place of its own violations they explain (changed in place; restating twice is once)."""
        problems = self.problems
        for item in items:
            if item.warnings:  # a warning names its column too (a rate written as a percent)
                item.warnings = [
                    said for w in item.warnings if (said := self._restated(w)) is not None
                ]
            if not item.violations and not problems:
                continue
            own = [
                said
                for violation in item.violations
                if not violation.whole_file and (said := self._restated(violation)) is not None
            ]
            item.violations = [*problems, *own]

    def _restated(self, violation: Violation) -> Violation | None:
        """The violation with its column named; None when a problem of the file explains it."""
        if violation.column:
            return violation
        key = (self._flat_path(violation.path), violation.code)
        words = self._said.get(key)
        if words is None:
            words = self._said[key] = self._words(*key)
        if words.explained:
            return None
        if not words.column:
            return violation
        return dataclasses.replace(
            violation, column=words.column, message=violation.message + words.addition
        )

    def _flat_path(self, path: str) -> str:
        """``$.order_lines[1].taxes[0].code`` -> ``order_lines.taxes[0].code``: the row's index
        is where the line is, not which column."""
        flat = path.removeprefix("$").removeprefix(".")
        if self._row_index is not None:
            flat = self._row_index.sub(str(self.kind.row_property), flat, count=1)
        return flat

    def _words(self, flat: str, code: str) -> _Words:
        """The column cell of a problem; what its message needs added (that the columns to fill
        are not in the file at all: a field only some items need); whether the file's missing
        columns explain it."""
        columns = self.columns_of(PATHLESS.get(code, flat))
        if code in (Problem.REQUIRED_FIELD_MISSING, Problem.MISSING_ORIGIN) and columns:
            left = [c for c in columns if c not in self.missing]
            # An origin is whole or missing: one column the file lacks and no item has one.
            if not left or (code == Problem.MISSING_ORIGIN and len(left) < len(columns)):
                return _Words("", explained=True)
            columns = left
        if not columns:
            return _Words("")
        names = [self.name(c) for c in columns]
        absent = [self.name(c) for c in columns if c not in self.present]
        addition = ""
        if absent and code == Problem.REQUIRED_FIELD_MISSING:
            noun = "column" if len(absent) == 1 else "columns"
            addition = f" (the file has no {noun} {', '.join(absent)})"
        return _Words(", ".join(names), addition)

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
