"""Valid items -> batches within the API's limits: one origin per request, at most max_items."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from etl.core.models import Json, MappedItem, Origin


@dataclass(frozen=True, slots=True)
class Batch:
    """One would-be request: its id, its origin and its items in file order."""

    batch_id: str
    origin: Origin | None  # None for operations whose request carries no origin
    items: tuple[MappedItem, ...]

    def body(self, items_property: str) -> dict[str, Any]:
        return request_body(self.origin, items_property, self.items)


def request_parts(
    origin: Origin | None, items_property: str, documents: list[Json], end: bytes = b"]}"
) -> list[Json]:
    """The pieces of ``{"origin":...,"<items>":[...]}`` around the items' own JSON, to be
    joined once (a million lines make 800 MB of requests: each extra copy costs)."""
    head = b"{" if origin is None else b'{"origin":' + orjson.dumps(origin.as_json()) + b","
    parts: list[Json] = [head + orjson.dumps(items_property) + b":["]
    for document in documents:
        parts += (document, b",")
    if documents:
        parts.pop()
    parts.append(end)
    return parts


def request_bytes(origin: Origin | None, items_property: str, items: Sequence[MappedItem]) -> bytes:
    """The request as sent: the items' JSON joined as it was encoded when every item has it
    (orders), else their bodies encoded now."""
    documents = [item.document for item in items]
    if all(document is not None for document in documents):
        return b"".join(request_parts(origin, items_property, documents))  # type: ignore[arg-type]
    return orjson.dumps(request_body(origin, items_property, items))


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
