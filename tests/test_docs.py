"""README tells the truth about the command line (in the manner of sqlite-utils' test_docs.py):
every sub-command and flag that `--help` shows is in README, and every `etl` command README
shows exists."""

from __future__ import annotations

import argparse
import re

import pytest

from etl.cli.main import build_parser
from etl.sandbox.server import build_parser as sandbox_parser

from .conftest import REPO

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
