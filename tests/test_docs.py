"""README tells the truth about the command line (in the manner of sqlite-utils' test_docs.py):
every sub-command and flag that `--help` shows is in README, and every `etl` command README
shows exists; its Python examples run, and print what it shows."""

from __future__ import annotations

import argparse
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from etl.cli.parser import build_parser
from etl.sandbox import SandboxServer
from etl.sandbox.server import build_parser as sandbox_parser

from .conftest import REPO, connect_env

README = (REPO / "README.md").read_text(encoding="utf-8")
SANDBOX_README = (REPO / "etl" / "sandbox" / "README.md").read_text(encoding="utf-8")


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option not in ("--help", "--version")
    )


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"`etl {command}" in README


@pytest.mark.parametrize(
    ("command", "flag"),
    [
        (command, flag)
        for command, parser in sorted(_subcommands().items())
        if command != "sandbox"
        for flag in _flags(parser)
    ]
    + [("sandbox", flag) for flag in _flags(sandbox_parser())],
)
def test_every_flag_is_in_the_readme(command: str, flag: str) -> None:
    """The sandbox's own flags are in its README, which the main one points to."""
    text = SANDBOX_README if command == "sandbox" else README
    assert re.search(rf"`[^`]*{re.escape(flag)}\b", text), f"etl {command} {flag}"


def test_the_readme_points_to_the_sandbox_readme() -> None:
    assert "etl/sandbox/README.md" in README


def test_every_command_the_readme_shows_exists() -> None:
    shown = set(re.findall(r"`etl ([a-z-]+)", README))
    assert shown <= set(_subcommands()), shown - set(_subcommands())


def test_the_readme_does_not_say_pending_actions_are_untracked() -> None:
    assert "not\n  tracked yet" not in README and "not tracked yet" not in README


def _python_examples() -> list[str]:
    """The ```python blocks of README's "From Python" section, in order."""
    start = README.index("## From Python")
    section = README[start : README.index("\n## ", start + 1)]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def _shown_output(code: str) -> list[str]:
    """What the examples say they print: the comment lines right after each print(...)."""
    shown: list[str] = []
    lines = code.splitlines()
    for number, line in enumerate(lines):
        if line.startswith("print("):
            following = lines[number + 1 :]
            while following and following[0].startswith("# "):
                shown.append(following.pop(0)[2:])
    return shown


def test_the_python_examples_run_and_print_what_the_readme_shows(
    sandbox: SandboxServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Run as a notebook would, in a folder with the samples, against the sandbox on loopback."""
    examples = _python_examples()
    assert len(examples) == 2
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    monkeypatch.chdir(tmp_path)
    for variable in [v for v in os.environ if v.startswith("CONNECT_")]:
        monkeypatch.delenv(variable)  # only the sandbox's, whatever the machine sets
    for variable, value in connect_env(sandbox).items():
        monkeypatch.setenv(variable, value)
    namespace: dict[str, Any] = {}
    for code in examples:
        exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [line for code in examples for line in _shown_output(code)]
    assert len(namespace["rejected"]) == 13  # every problem of the file, in the exception
    assert len(sandbox.stored_orders()) == 8
    assert (tmp_path / "outbox" / "failed" / namespace["sent"].summary.run_id).is_dir()
    assert namespace["inbox_run"].summary.files == []  # the inbox was left empty
