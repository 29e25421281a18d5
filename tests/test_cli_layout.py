"""CLI module layout: no import cycles among ckpttools.cli modules, and piped output never imports rich."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "ckpttools" / "cli"
CNN = ROOT / "sample_checkpoints" / "tf1_cnn"


def _imports(path: Path) -> set[str]:
    """The ckpttools.cli modules a module imports (at any level, lazily or not)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names = [node.module] if node.module else [alias.name for alias in node.names]
            found.update(name.split(".")[0] for name in names)
    return {name for name in found if (CLI / f"{name}.py").exists()}


def test_no_import_cycles_among_cli_modules() -> None:
    graph = {path.stem: _imports(path) for path in CLI.glob("*.py") if path.stem != "__init__"}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        for imported in graph.get(module, ()):
            assert imported not in trail, f"import cycle: {' -> '.join(trail + (imported,))}"
            visit(imported, trail + (imported,))

    for module in graph:
        visit(module, (module,))
    assert "render" not in graph["rich_render"] and "rich_render" in graph["render"]  # one way only


PIPED = """
import json, sys
from ckpttools.cli import main
try:
    main(sys.argv[1:], prog_name="ckpttools")
except SystemExit as exc:
    assert exc.code in (0, 1, None), exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "rich")), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [("ls", "--stats", str(CNN)), ("ls", "--tree", "--all", str(CNN)),
                                  ("diff", str(CNN), str(CNN)),
                                  ("extract", str(CNN), "-o", "{tmp}/w.npz")])
def test_piped_commands_never_import_rich(args: tuple[str, ...], tmp_path: Path) -> None:
    argv = [arg.format(tmp=tmp_path) for arg in args]
    result = subprocess.run([sys.executable, "-c", PIPED, *argv], capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
