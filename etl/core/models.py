"""Values passed between the stages: violations, mapped orders, outcomes.

Violations, origins and results are frozen; a ``MappedItem`` is not: validation adds its
violations, and the run attaches its JSON (``document``) on the way out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    """What happened to one order (DESIGN.md section 5)."""

    VALID = "VALID"  # `etl check` only: would be sent
    ACCEPTED = "ACCEPTED"
    INVALID = "INVALID"
    REJECTED = "REJECTED"
    UNCHANGED = "UNCHANGED"
    STALE = "STALE"
    FAILED = "FAILED"
    QUEUED = "QUEUED"  # in the ledger's durable queue: sent at the next allowed flush
    UNKNOWN = "UNKNOWN"  # sent, no answer: Connect may have it; not resent (not idempotent)


# Outcomes after which an item needs nothing more from this tool: a file whose items all ended
# so is delivered, and a copy of it dropped again is a duplicate.
SETTLED = frozenset({Outcome.ACCEPTED, Outcome.UNCHANGED, Outcome.STALE, Outcome.QUEUED})


@dataclass(frozen=True, slots=True)
class Origin:
    """The channel and store an order belongs to; one request never mixes origins."""

    channel_id: str
    channel_store_id: str

    def as_json(self) -> dict[str, str]:
        return {"channel_id": self.channel_id, "channel_store_id": self.channel_store_id}


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with one item, located so a person can find and fix it."""

    file: str
    rows: tuple[int, ...]
    item_id: str | None
    path: str  # JSONPath inside the item, e.g. $.order_lines[1].price.amount; "$" for the item
    code: str
    message: str
    value: str | None = None  # already masked when the field holds personal data
    # The column of the user's file to fix, as they named it ("Menge", before a mapping renamed
    # it to order_lines.quantity); "" until named (etl/transform/columns.py), or for a problem
    # of no column.
    column: str = ""

    @property
    def whole_file(self) -> bool:
        """A problem of the file itself (a column it lacks, the file unreadable): no row."""
        return not self.rows


Json = bytes | memoryview  # an item's JSON, as encoded once


@dataclass(slots=True)
class MappedItem:
    """One item (an order) built from its rows, with the problems found while building it.

    A valid order on its way to the API carries its JSON (``document``), encoded once by the
    assembler: it is hashed and sent as it is, and ``body`` may then be left empty."""

    item_id: str
    origin: Origin | None
    body: dict[str, Any]
    rows: tuple[int, ...]
    source: str
    violations: list[Violation] = field(default_factory=list)
    # Problems that do not hold the item back (a tax rate written as a percentage): reported
    # beside the violations, never counted as one; an item with warnings alone is valid.
    warnings: list[Violation] = field(default_factory=list)
    document: Json | None = None
    # Arrays sent without the gaps of the user's indexes (custom_attributes[7] alone is sent as
    # the first element): by the array's path in ``body``, the user's index of each element, so
    # that a problem names the user's column. None: no array had a gap.
    indexes: dict[tuple[str | int, ...], tuple[int, ...]] | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity across files and runs: channel, store and the item's own id."""
        origin = self.origin or Origin("", "")
        return (origin.channel_id, origin.channel_store_id, self.item_id)


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The final word on one item, as written to ``<input>.items.csv``."""

    item_id: str
    origin: Origin | None
    rows: tuple[int, ...]
    outcome: Outcome
    batch_id: str = ""
    http_status: int | None = None
    code: str = ""
    message: str = ""
