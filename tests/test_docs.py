"""The README documents every command and option the CLI has, and its test command is the one CI runs."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from ckpttools.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
COMMANDS = main.list_commands(click.Context(main))


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_and_option_is_in_the_readme(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert f"ckpttools {name}" in README, f"README does not show `ckpttools {name}`"
    for param in command.params:
        for option in param.opts:
            if option.startswith("--") and option != "--help":
                assert option in README, f"README does not mention `{name} {option}`"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_examples(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert "Example" in (command.help or ""), f"`ckpttools {name} --help` has no Example block"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && python -m pytest -q" in README
    assert "python -m pip install --quiet -e '.[test]'" in ci and "python -m pytest -q" in ci
