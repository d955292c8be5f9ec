"""Valid items -> batches within the API's limits: one origin per request, at most max_items."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from etl.models import MappedItem, Origin


@dataclass(frozen=True, slots=True)
class Batch:
    """One would-be request: its id, its origin and its items in file order."""

    batch_id: str
    origin: Origin | None  # None for operations whose request carries no origin
    items: tuple[MappedItem, ...]

    def body(self, items_property: str) -> dict[str, Any]:
        return request_body(self.origin, items_property, self.items)


def request_body(
    origin: Origin | None, items_property: str, items: Iterable[MappedItem]
) -> dict[str, Any]:
    """``{"origin": ..., "<items>": [...]}``, without origin for operations that have none."""
    body: dict[str, Any] = {} if origin is None else {"origin": origin.as_json()}
    body[items_property] = [item.body for item in items]
    return body


class Batcher:
    """Fills one batch per origin and hands it out when full; ``flush()`` hands out the rest.

    Batch ids are ``<prefix>-<sequence>``, so the same input batched the same way gets the same ids.
    """

    def __init__(self, prefix: str, max_items: int) -> None:
        self.prefix = prefix
        self.max_items = max_items
        self._open: dict[Origin | None, list[MappedItem]] = {}
        self._sequence = 0

    def _emit(self, origin: Origin | None) -> Batch:
        self._sequence += 1
        items = tuple(self._open.pop(origin))
        return Batch(f"{self.prefix}-{self._sequence:05d}", origin, items)

    def add(self, items: Iterable[MappedItem]) -> Iterator[Batch]:
        for item in items:
            pending = self._open.setdefault(item.origin, [])
            pending.append(item)
            if len(pending) >= self.max_items:
                yield self._emit(item.origin)

    def flush(self) -> Iterator[Batch]:
        for origin in list(self._open):
            yield self._emit(origin)
