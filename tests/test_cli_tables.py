"""Terminal tables at 80 and 100 columns, rendered by a fixed-width rich Console and compared as text.

Names wrap at ``/`` boundaries, numbers and totals are never cut or wrapped, TF2 own names fold under
the object path when they do not fit in a column of their own.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import ckpttools
from ckpttools.cli.rich_render import RichOutput
from ckpttools.cli.tables import wrap_path
from ckpttools.ops.listing import list_variables

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
WIDTHS = (80, 100)


def render(path: Path, width: int, stats: bool = False) -> tuple[str, list]:
    text = io.StringIO()
    console = Console(file=text, width=width, color_system=None, force_terminal=False)
    with ckpttools.open_checkpoint(path) as ckpt:
        listing = list_variables(ckpt)
        values = None
        if stats:
            from ckpttools.cli.render import read_stats

            values = read_stats(ckpt, listing.shown)
        RichOutput(console, console).table(ckpt, listing, values)
    return text.getvalue(), listing.shown


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("│┃").split("│")]


def name_lines(text: str) -> list[list[str]]:
    """The first column's fragments, grouped per row (a row starts where the dtype cell is filled)."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if not line.startswith("│") or "variables" in line or "variable " in line:
            continue
        parts = cells(line)
        if parts[1]:
            rows.append([parts[0]])
        elif rows and parts[0]:
            rows[-1].append(parts[0])
    return rows


def test_wrap_path_breaks_after_slashes_only() -> None:
    assert wrap_path("cnn/conv_block1/conv/kernel", 17) == ["cnn/conv_block1/", "conv/kernel"]
    assert wrap_path("cnn/conv_block1/conv/kernel", 100) == ["cnn/conv_block1/conv/kernel"]
    assert wrap_path("a/averyveryverylongname", 8) == ["a/", "averyver", "yverylon", "gname"]  # no choice
    assert wrap_path("x/y", 4, indent="  ") == ["  x/", "  y"]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("sample", ["tf1_cnn", "tf2_keras", "sharded"])
def test_listing_fits_and_names_wrap_at_slashes(sample: str, width: int) -> None:
    text, shown = render(SAMPLES / sample, width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    assert "…" not in text
    for info in shown:  # parameters and bytes whole, with separators, on the variable's first line
        assert any(f" {info.size:,} │" in line and f" {info.nbytes:,} │" in line for line in lines), info.name
    footer = next(line for line in lines if f"{len(shown)} variables" in line)
    total = sum(info.size for info in shown if info.role == "model")
    assert f" {total:,} │" in footer  # the total row is one line
    names = {info.name for info in shown}
    own = {info.original_name for info in shown if info.original_name and info.original_name != info.name}
    for fragments in name_lines(text):
        name = fragments[0]
        rest = fragments[1:]
        while rest and not rest[0].startswith(("sequential", "model", "functional")) and name not in names:
            name += rest.pop(0)  # continuation of the name, cut after a '/'
        assert name in names, (name, fragments)
        for piece in fragments[:-1]:
            assert piece.endswith("/") or piece + "".join(fragments[1:]) in names or rest, fragments
        if rest:
            assert "".join(rest) in own


def test_tf2_own_names_fold_under_the_path_at_80_columns() -> None:
    text, shown = render(SAMPLES / "tf2_keras", 80)
    assert "variable name" not in text  # no column of its own
    flat = text.replace(" ", "").replace("│", "").replace("\n", "")
    for info in shown:
        assert info.original_name.replace("/", "") in flat.replace("/", "")
    wide, _ = render(SAMPLES / "tf2_keras", 200)
    assert "variable name" in wide  # a column when there is room


@pytest.fixture
def wide_values(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    path = tmp_path / "values.npz"
    np.savez(path, **{
        "model/encoder/layer_with_a_long_name/attention/query/kernel": rng.normal(size=(64, 64)).astype(np.float32),
        "model/encoder/tiny": np.array([1.234567e-7, -3.5e-9], np.float32),
        "model/decoder/bias": np.array([-12345.678, 98765.4321], np.float64),
    })  # fmt: skip
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_stats_columns_are_compact_and_whole(wide_values: Path, width: int) -> None:
    text, shown = render(wide_values, width, stats=True)
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "…" not in text
    with np.load(wide_values) as archive:
        for name in archive.files:
            value = archive[name].astype(np.float64)
            for number in (value.min(), value.max()):
                shown_as = [tok for tok in text.split() if _close(tok, number)]
                assert shown_as, (name, number, text)


def _close(token: str, number: float) -> bool:
    try:
        return abs(float(token) - number) <= 5e-3 * abs(number)  # 3 significant digits at least
    except ValueError:
        return False


def test_diff_table_names_wrap_at_slashes() -> None:
    from ckpttools.cli.diff import _print
    from ckpttools.ops.diff import Diff, ValueDiff

    result = Diff(values=[ValueDiff("model/encoder/layer_with_a_long_name/attention/query/kernel", "changed",
                                    0.5, 0.25, 1234)])
    text = io.StringIO()
    _print(Console(file=text, width=80, color_system=None), "a", "b", result)
    shown = text.getvalue()
    assert all(len(line) <= 80 for line in shown.splitlines())
    fragments = [cells(line)[0] for line in shown.splitlines() if line.startswith("│") and cells(line)[0]]
    assert "".join(fragments) == "model/encoder/layer_with_a_long_name/attention/query/kernel"
    assert all(piece.endswith("/") for piece in fragments[:-1]), fragments
    assert "1,234 values differ" in " ".join(shown.split()) or "1,234" in shown


def _graph_output(width: int) -> tuple:
    from ckpttools.cli.graph_render import GraphOutput

    out, err = io.StringIO(), io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=True)
    errors = Console(file=err, width=width, color_system=None, force_terminal=True)
    return GraphOutput(console, errors), out, err


@pytest.mark.parametrize(("limit", "expected"), [(None, 200), (300, 300)])
def test_big_graph_table_on_a_terminal_shows_the_first_rows_and_says_so(limit: int | None, expected: int) -> None:
    from ckpttools.cli.graph_render import TERMINAL_ROWS
    from ckpttools.graphs import describe_nodes, load_graph

    loaded = load_graph(str(SAMPLES / "tf1_cnn" / "model.ckpt-20.meta"))
    nodes = loaded.graph_def.node
    rows = describe_nodes(list(nodes)[:limit] if limit else nodes, nodes)
    out, text, notes = _graph_output(100)
    out.nodes(rows, "title", limit)
    ops = [cells(line)[1] for line in text.getvalue().splitlines() if line.startswith("│")]
    assert sum(1 for op in ops if op) == expected == (TERMINAL_ROWS if limit is None else limit)
    if limit is None:
        assert f"showing the first {TERMINAL_ROWS} of {len(nodes):,} nodes" in notes.getvalue()
        assert "--limit N" in notes.getvalue()
    else:
        assert notes.getvalue() == ""
    assert all(len(line) <= 100 for line in text.getvalue().splitlines())


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("sample", ["tf1_cnn", "tf2_keras", "wide"])
def test_big_listings_drawn_directly_look_exactly_like_rich(sample: str, width: int, wide_values: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Past FAST_ROWS rows the table is drawn without rich's measuring pass; it must not look different."""
    from ckpttools.cli import tables
    from ckpttools.cli.render import read_stats
    from ckpttools.cli.rich_render import listing_table

    path = wide_values if sample == "wide" else SAMPLES / sample
    shown = []
    for fast_rows in (10**9, 0):
        monkeypatch.setattr(tables, "FAST_ROWS", fast_rows)
        for stats in (False, True):
            text = io.StringIO()
            console = Console(file=text, width=width, color_system=None)
            with ckpttools.open_checkpoint(path) as ckpt:
                listing = list_variables(ckpt)
                values = read_stats(ckpt, listing.shown) if stats else None
                table = listing_table(ckpt, listing, values, console)
                assert isinstance(table, tables.FastGrid) == (fast_rows == 0)
                console.print(table)
            shown.append([line.rstrip() for line in text.getvalue().splitlines()])
    assert shown[:2] == shown[2:]


def test_big_diff_table_drawn_directly_looks_exactly_like_rich(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    from ckpttools.cli import tables
    from ckpttools.cli.diff import _print
    from ckpttools.ops.diff import diff

    names = [f"model/block{i // 10}/a_rather_long_layer_name_{i % 10}/kernel" for i in range(40)]
    np.savez(tmp_path / "a.npz", **{name: np.zeros(3, np.float32) for name in names})
    np.savez(tmp_path / "b.npz", **{name: np.full(3, i, np.float32) for i, name in enumerate(names[1:])})
    result = diff(str(tmp_path / "a.npz"), str(tmp_path / "b.npz"))
    shown = []
    for fast_rows in (10**9, 0):
        monkeypatch.setattr(tables, "FAST_ROWS", fast_rows)
        text = io.StringIO()
        _print(Console(file=text, width=80, color_system=None), "a.npz", "b.npz", result)
        shown.append([line.rstrip() for line in text.getvalue().splitlines()])
    assert shown[0] == shown[1]
    assert all(len(line) <= 80 for line in shown[0])
    assert "3 values differ" in "\n".join(shown[0]) and "only in A" in "\n".join(shown[0])


@pytest.mark.parametrize("width", WIDTHS)
def test_graph_node_table_fits_and_draws_the_same_fast(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from ckpttools.cli import tables
    from ckpttools.graphs import describe_nodes, load_graph, select_nodes

    loaded = load_graph(str(SAMPLES / "tf1_cnn" / "model.ckpt-20.meta"))
    nodes = loaded.graph_def.node
    rows = describe_nodes(select_nodes(nodes, ["conv_block1"], ["Conv2D", "MaxPool", "Relu", "FusedBatchNormV3"],
                                       None).shown, nodes)
    shown = []
    for fast_rows in (10**9, 0):
        monkeypatch.setattr(tables, "FAST_ROWS", fast_rows)
        out, text, _ = _graph_output(width)
        out.nodes(rows, "title")
        shown.append([line.rstrip() for line in text.getvalue().splitlines()])
    assert shown[0] == shown[1]
    lines = shown[0]
    assert all(len(line) <= width for line in lines) and "…" not in "\n".join(lines)
    names = [cells(line)[0] for line in lines if line.startswith("│")]
    joined, current = [], ""
    for piece in names:  # a name's pieces end with '/' until its last one
        current += piece
        if piece and not piece.endswith("/"):
            joined.append(current)
            current = ""
    assert joined == [row.name for row in rows]
