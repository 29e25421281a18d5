"""`ckpttools --help` lists every command without importing the command modules (it must cost no more
than an `ls`; bench/bench_cli_help.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from ckpttools.cli import _Group, main

PROBE = """
import json, sys
from ckpttools.cli import main
try:
    main(sys.argv[1:], prog_name="ckpttools")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize("name", sorted(_Group.lazy_commands))
def test_summary_is_the_first_paragraph_of_the_commands_help(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    first = " ".join(command.help.split("\n\n")[0].split())
    assert _Group.summaries.get(name) == first, f"update _Group.summaries[{name!r}] in ckpttools/cli/__init__.py"


def test_group_help_lists_what_the_commands_would_say() -> None:
    listed = CliRunner().invoke(main, ["--help"]).stdout.split("Commands:\n")[1]
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    width = max(len(name) for name in names)
    for name in names:
        short = main.get_command(ctx, name).get_short_help_str(80 - 6 - width)
        assert f"  {name.ljust(width)}  {short}\n" in listed


@pytest.mark.parametrize("argv", [["--help"], []])
def test_group_help_imports_no_command_module(argv: list[str]) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                            env={**os.environ, "COLUMNS": "80"})
    assert "Commands:" in result.stdout + result.stderr
    modules = json.loads(result.stderr.strip().splitlines()[-1])
    loaded = [m for m in modules if m.startswith("ckpttools.cli.") or m.split(".")[0] in ("numpy", "rich")]
    assert loaded == []
