"""The rooms of ``etl/`` import one way: a room imports only the rooms listed below it here.

The stages (read, transform, deliver, state, report) know core and settings, never each other, with
one exception in the pipeline's own direction: transform pulls its rows from read (the fast path
streams a file's chunks straight into the assembler). Above them, operations and monitor combine
stages; run is the only room that knows the order of the stages; api and cli sit on top. The
sandbox shares no code with the client: it reads only the shipped schemas and formats."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "etl"
FOUNDATION = frozenset({"core", "settings"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    "core": frozenset(),
    "settings": frozenset({"core"}),
    "read": FOUNDATION,
    "transform": FOUNDATION | {"read"},
    "deliver": FOUNDATION,
    "state": FOUNDATION,
    "report": FOUNDATION,
    "operations": FOUNDATION | {"deliver", "state", "report"},
    "monitor": FOUNDATION | {"deliver", "state", "report"},
    "run": FOUNDATION
    | {"read", "transform", "deliver", "state", "report", "operations", "monitor", "sandbox"},
    "api": FOUNDATION | {"read", "transform", "deliver", "state", "report", "operations", "run"},
    "cli": frozenset(
        {"core", "settings", "read", "transform", "deliver", "state", "report"}
        | {"operations", "monitor", "run", "api", "sandbox"}
    ),
    "sandbox": frozenset({"core"}),
    "__init__": frozenset({"core", "api"}),
    "__main__": frozenset({"cli"}),
}


def room_of(module: str) -> str:
    """``etl.transform.fast.stream`` -> ``transform``; ``etl.api`` -> ``api``."""
    return module.split(".")[1]


def module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every ``etl.`` module the file imports, at any depth of the file."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = [base] if base != "etl" else [f"etl.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("etl."):
                yield node.lineno, name


def crossings(package: Path) -> list[str]:
    found = []
    for path in sorted(package.rglob("*.py")):
        own = room_of(module_name(path, package)) if path.parent != package else path.stem
        for line, name in imports(path, package):
            other = room_of(name)
            if other != own and other not in MAY_IMPORT.get(own, frozenset()):
                found.append(f"etl/{path.relative_to(package)}:{line} ({own}) imports {name}")
    return found


def test_every_room_imports_only_the_rooms_below_it() -> None:
    assert crossings(PACKAGE) == []


def test_no_module_imports_another_modules_private_names() -> None:
    private = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("etl"):
                private += [
                    f"etl/{path.relative_to(PACKAGE)}:{node.lineno} {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and alias.name != "__version__"
                ]
    assert private == []


def test_every_room_of_the_package_has_its_place_in_the_order() -> None:
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    rooms |= {p.stem for p in PACKAGE.glob("*.py")}
    assert rooms <= set(MAY_IMPORT), f"rooms without a place: {sorted(rooms - set(MAY_IMPORT))}"


@pytest.mark.parametrize(
    ("room", "line"),
    [
        ("read", "from etl.transform.mapping import Mapper"),  # a stage importing another
        ("deliver", "from etl.state.ledger import Ledger"),
        ("core", "import etl.run.sync"),  # a room importing one above it
        ("transform", "from ...run import check"),  # relative imports count too
    ],
)
def test_the_check_fails_when_a_room_imports_one_it_may_not(
    tmp_path: Path, room: str, line: str
) -> None:
    package = tmp_path / "etl"
    (package / room / "deep").mkdir(parents=True)
    for folder in (package, package / room, package / room / "deep"):
        (folder / "__init__.py").write_text("")
    (package / room / "deep" / "bad.py").write_text(f"{line}\n")
    assert len(crossings(package)) == 1


def test_every_problem_code_has_a_hint_and_every_hint_a_code() -> None:
    from etl.core.codes import Problem
    from etl.report.hints import CODE_HINTS

    assert set(CODE_HINTS) == set(Problem)


def test_problem_codes_are_written_as_members_not_as_text() -> None:
    """A Violation's code is a Problem member: a code typed as text escapes the hints' check."""
    typed = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "sandbox" in path.parts:
            continue  # the sandbox answers Connect's own codes
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "Violation"):
                continue
            code = node.args[4] if len(node.args) > 4 else None
            code = next((k.value for k in node.keywords if k.arg == "code"), code)
            if isinstance(code, ast.Constant):
                typed.append(f"etl/{path.relative_to(PACKAGE)}:{node.lineno} {code.value!r}")
    assert typed == []
