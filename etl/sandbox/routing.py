"""Route templates with ``{name}`` segments: a path and method -> a route and its parameters."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import unquote

R = TypeVar("R")
PARAMETER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Match(Generic[R]):
    """What a path resolved to: the route for the method, or the methods the path allows."""

    route: R | None
    params: dict[str, str] = field(default_factory=dict)
    allowed: tuple[str, ...] = ()


def compile_template(template: str) -> re.Pattern[str]:
    """``/a/{id}/b`` -> a pattern where each ``{name}`` is one non-empty path segment."""
    out, last = [], 0
    for found in PARAMETER.finditer(template):
        out.append(re.escape(template[last : found.start()]))
        out.append(f"(?P<{found.group(1)}>[^/]+)")
        last = found.end()
    out.append(re.escape(template[last:]))
    return re.compile("".join(out))


class RouteTable(Generic[R]):
    """Templates without parameters are one dict lookup (the hot upsertOrders path)."""

    def __init__(self, table: Mapping[str, Mapping[str, R]]) -> None:
        self._exact: dict[str, Mapping[str, R]] = {}
        self._patterns: list[tuple[re.Pattern[str], Mapping[str, R]]] = []
        for template, methods in table.items():
            if PARAMETER.search(template):
                self._patterns.append((compile_template(template), methods))
            else:
                self._exact[template] = methods

    def resolve(self, method: str, path: str) -> Match[R] | None:
        """The route for ``method`` at ``path``; None when no template matches the path.

        Two templates may match one path (``/orders/actions/documents``); the first one, in
        table order, that has the method wins.
        """
        allowed: set[str] = set()
        exact = self._exact.get(path)
        if exact is not None:
            route = exact.get(method)
            if route is not None:
                return Match(route)
            allowed.update(exact)
        for pattern, methods in self._patterns:
            found = pattern.fullmatch(path)
            if found is None:
                continue
            route = methods.get(method)
            if route is not None:
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                return Match(route, params)
            allowed.update(methods)
        return Match(None, allowed=tuple(sorted(allowed))) if allowed else None
