"""Names and paths are text: on a terminal, rich must print them as they are, never read them as markup.

TF2 object paths, npz keys and file names may hold brackets. Unescaped, ``layer[v2]`` printed as ``layer``
(a wrong name) and ``odd[/y]`` crashed the command with a MarkupError.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

import ckpttools
from ckpttools.cli import main
from ckpttools.cli.diff import _print as print_diff
from ckpttools.cli.rich_render import RichOutput
from ckpttools.ops.diff import diff
from ckpttools.ops.listing import list_variables

NAMES = ("layer[v2]/kernel", "odd[/y]/w", "plain/bias")


@pytest.fixture
def bracketed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # short relative paths: titles are not wrapped
    monkeypatch.setenv("COLUMNS", "400")
    path = Path("w[v2].npz")
    np.savez(path, **{name: np.full((2, 3), i, np.float32) for i, name in enumerate(NAMES)})
    return path


def _console() -> tuple[Console, io.StringIO]:
    text = io.StringIO()
    return Console(file=text, width=400, color_system=None), text  # markup is still parsed, no escape codes


def test_ls_table_and_tree_print_names_verbatim(bracketed: Path) -> None:
    with ckpttools.open_checkpoint(bracketed) as ckpt:
        listing = list_variables(ckpt)
        for draw in ("table", "tree"):
            console, text = _console()
            errors, _ = _console()
            out = RichOutput(console, errors)
            out.table(ckpt, listing, None) if draw == "table" else out.tree(ckpt, listing)
            shown = text.getvalue()
            assert "w[v2].npz" in shown, draw
            for part in ("layer[v2]", "odd[/y]") if draw == "tree" else NAMES:
                assert part in shown, (draw, part)


def test_diff_table_prints_names_verbatim(bracketed: Path, tmp_path: Path) -> None:
    other = Path("other.npz")
    np.savez(other, **{name: np.zeros((2, 3), np.float32) for name in NAMES})
    console, text = _console()
    print_diff(console, str(bracketed), str(other), diff(str(bracketed), str(other)))
    shown = text.getvalue()
    assert "w[v2].npz" in shown and all(name in shown for name in NAMES[1:])


def test_extract_reports_a_bracketed_output_path(bracketed: Path, tmp_path: Path) -> None:
    out = Path("out[b]x")
    out.mkdir()
    result = CliRunner().invoke(main, ["extract", str(bracketed), "-o", str(out / "w[v2].npz")])
    assert result.exit_code == 0, result.output
    assert f"to {out / 'w[v2].npz'}" in result.stderr
    with np.load(out / "w[v2].npz") as written:
        assert sorted(written.files) == sorted(NAMES)
