"""``ckpttools diff``: compare two checkpoints; exit 0 when equal, 1 when they differ."""

from __future__ import annotations

import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..errors import EXIT_DIFFERENT
from ..ops.diff import CHANGED, CLOSE, IDENTICAL, Diff, diff
from .render import print_json, shape_text
from .storage_options import storage_option


@click.command(name="diff")
@click.argument("a")
@click.argument("b")
@storage_option
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN", help="Only variables matching PATTERN (repeatable).")
@click.option("--all", "-a", "include_all", is_flag=True, help="Also compare optimizer slots and training state.")
@click.option("--rtol", type=float, default=0.0, show_default=True, help="Relative tolerance for 'close'.")
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute tolerance for 'close'.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code tells.")
def diff_command(a: str, b: str, scopes: tuple[str, ...], include_all: bool, rtol: float, atol: float,
                 as_json: bool, quiet: bool) -> None:
    """Compare two checkpoints (or .npz/.safetensors files) variable by variable.

    Reports variables only in A or only in B, shape or dtype changes, and value
    changes (max absolute and relative difference). Exit code 0 when equal
    (within --rtol/--atol), 1 when they differ.

    \b
    Examples:
      ckpttools diff runs/pretrained runs/finetuned --scopes 'conv_block[1-3]'
      ckpttools diff model.ckpt-100 weights.npz --atol 1e-6 --json
    """
    result = diff(a, b, scopes, include_all, rtol, atol)
    if as_json:
        print_json(diff_json(a, b, result))
    elif not quiet:
        _print(Console(), a, b, result)
    if not result.equal:
        sys.exit(EXIT_DIFFERENT)


def diff_json(a: str, b: str, result: Diff) -> dict:
    """The documented ``ckpttools diff --json`` document (schema ``ckpttools.diff/1``)."""
    return {
        "schema": "ckpttools.diff/1",
        "a": a,
        "b": b,
        "equal": result.equal,
        "only_in_a": [info.name for info in result.only_in_a],
        "only_in_b": [info.name for info in result.only_in_b],
        "shape_changed": [{"name": x.name, "a": list(x.shape), "b": list(y.shape)} for x, y in result.shape_changed],
        "dtype_changed": [{"name": x.name, "a": x.dtype, "b": y.dtype} for x, y in result.dtype_changed],
        "values": [
            {"name": v.name, "status": v.status, "max_abs": v.max_abs, "max_rel": v.max_rel, "mismatched": v.mismatched}
            for v in result.values
        ],
    }


def _print(console: Console, a: str, b: str, result: Diff) -> None:
    table = Table(title=f"A = {escape(a)}\nB = {escape(b)}", title_justify="left", header_style="bold")
    for column in ("variable", "status", "detail"):
        table.add_column(column, overflow="fold")
    for info in result.only_in_a:
        table.add_row(escape(info.name), "[red]only in A[/red]",
                      f"{info.dtype} {shape_text(info.shape)}, missing from B")
    for info in result.only_in_b:
        table.add_row(escape(info.name), "[red]only in B[/red]",
                      f"{info.dtype} {shape_text(info.shape)}, missing from A")
    for x, y in result.shape_changed:
        table.add_row(escape(x.name), "[red]shape[/red]", f"A {shape_text(x.shape)} vs B {shape_text(y.shape)}")
    for x, y in result.dtype_changed:
        table.add_row(escape(x.name), "[red]dtype[/red]", f"A {x.dtype} vs B {y.dtype}")
    for value in result.values:
        if value.status == CHANGED:
            detail = f"{value.mismatched:,} values differ" + (
                f"; max abs {value.max_abs:.3g}, max rel {value.max_rel:.3g}" if value.max_abs is not None else "")
            table.add_row(escape(value.name), "[red]changed[/red]", detail)
        elif value.status == CLOSE:
            table.add_row(escape(value.name), "[yellow]close[/yellow]",
                          f"within tolerance; max abs {value.max_abs:.3g}, max rel {value.max_rel:.3g}")
    identical = sum(1 for v in result.values if v.status == IDENTICAL)
    if table.row_count:
        console.print(table)
    verdict = "equal" if result.equal else "differ"
    unmatched = len(result.only_in_a) + len(result.only_in_b)
    retyped = len(result.shape_changed) + len(result.dtype_changed)
    console.print(f"{identical} identical, {len(result.values) - identical} changed or close, {unmatched} unmatched, "
                  f"{retyped} shape/dtype changes: [bold]{verdict}[/bold]", highlight=False)
