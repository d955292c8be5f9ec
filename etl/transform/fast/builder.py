"""Leaves of one level -> a generated function that builds item bodies exactly as Mapper does.

``Mapper.build_item`` and ``_finish`` walk every cell and every leaf's path for every item; the
generated function does the same work in straight-line code, one statement per leaf, with the
intermediate objects created when their first field is filled (so keys come in the same order),
arrays keyed by index turned into lists with gaps closed, and required empty objects added.
``assemble`` runs it on placeholders to learn the shape of each row's and order's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from etl.core.schema import Key, Leaf

Build = Callable[
    [Sequence[int], Sequence[int], Sequence[list[Any]], Sequence[list[Any]], Any],
    list[dict[str, Any]],
]


def compile_builder(
    item_leaves: list[Leaf],
    row_leaves: list[Leaf],
    row_property: str | None,
    empty_item: list[str],
    empty_row: list[str],
) -> Build:
    """A function building item bodies as Mapper.build_item + _finish (without custom typing).

    ``build(groups, starts, I, R, M)``: item ``g`` spans rows ``starts[g]:starts[g+1]``; ``I[j][g]``
    is the converted value of item-level column j for item g, ``R[j][r]`` the one of row-level
    column j for row r; ``M`` marks an empty cell.
    """
    code = ["def build(groups, starts, I, R, M):"]
    if item_leaves:
        code.append("    " + "".join(f"I{j}, " for j in range(len(item_leaves))) + "= I")
    if row_leaves:
        code.append("    " + "".join(f"R{j}, " for j in range(len(row_leaves))) + "= R")
    code += ["    out = []", "    for g in groups:", "        body = {}"]
    code += _level(item_leaves, "I", "g", "body", "        ")
    if row_property:
        code += [
            "        lines = []",
            "        for r in range(starts[g], starts[g + 1]):",
            "            row = {}",
        ]
        code += _level(row_leaves, "R", "r", "row", "            ")
        for name in empty_row:
            code.append(f"            if {name!r} not in row: row[{name!r}] = {{}}")
        code.append("            lines.append(row)")
        code.append(f"        body[{row_property!r}] = lines")
    for name in empty_item:
        code.append(f"        if {name!r} not in body: body[{name!r}] = {{}}")
    code += ["        out.append(body)", "    return out"]
    namespace: dict[str, Any] = {}
    exec("\n".join(code), namespace)
    build: Build = namespace["build"]
    return build


def _level(leaves: list[Leaf], prefix: str, index: str, root: str, indent: str) -> list[str]:
    """Statements filling ``root`` from the leaves of one level, then turning arrays to lists."""
    names: dict[tuple[Key, ...], str] = {}
    arrays: list[tuple[Key, ...]] = []
    for leaf in leaves:
        for depth in range(1, len(leaf.keys)):
            path = leaf.keys[:depth]
            if path not in names:
                names[path] = f"c{len(names)}_{prefix}"
                if isinstance(leaf.keys[depth], int) and path not in arrays:
                    arrays.append(path)
    code = [f"{indent}{name} = None" for name in names.values()]
    for j, leaf in enumerate(leaves):
        code.append(f"{indent}v = {prefix}{j}[{index}]")
        code.append(f"{indent}if v is not M:")
        parent = root
        for depth in range(1, len(leaf.keys)):
            path = leaf.keys[:depth]
            name = names[path]
            code.append(f"{indent}    if {name} is None:")
            code.append(f"{indent}        {name} = {parent}[{path[-1]!r}] = {{}}")
            parent = name
        code.append(f"{indent}    {parent}[{leaf.keys[-1]!r}] = v")
    # Deepest first is not needed: an element dict is the same object once it sits in a list.
    for path in arrays:
        name = names[path]
        parent = names[path[:-1]] if len(path) > 1 else root
        code.append(f"{indent}if {name} is not None:")
        code.append(f"{indent}    {parent}[{path[-1]!r}] = [{name}[k] for k in sorted({name})]")
    return code
