"""``ckpttools diff``: compare two checkpoints; exit 0 when equal, 1 when they differ."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import click

from ..checkpoint import open_checkpoint
from ..errors import EXIT_DIFFERENT
from ..ops.diff import CHANGED, CLOSE, IDENTICAL, Diff, DiffOptions, bytes_to_compare, compare
from .progress import byte_progress
from .storage_options import storage_option
from .text import plural, print_json, shape_text, stdout_is_terminal, write_notes

JSON_SCHEMA = "ckpttools.diff/1"
PLAIN_COLUMNS = ("name", "status", "mismatched", "max_abs", "max_rel", "detail")


@click.command(name="diff")
@click.argument("a")
@click.argument("b")
@storage_option
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN", help="Only variables matching PATTERN (repeatable).")
@click.option("--all", "-a", "include_all", is_flag=True, help="Also compare optimizer slots and training state.")
@click.option("--rtol", type=float, default=0.0, show_default=True, help="Relative tolerance for 'close'.")
@click.option("--atol", type=float, default=0.0, show_default=True, help="Absolute tolerance for 'close'.")
@click.option("--map", "mapping", multiple=True, metavar="OLD=NEW",
              help="Rename A's variables before matching them with B's (repeatable; OLD=NEW scope rename or "
                   "re:REGEX=REPLACEMENT, as in 'transfer --map').")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report (schema in the README).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code tells.")
def diff_command(a: str, b: str, scopes: tuple[str, ...], include_all: bool, rtol: float, atol: float,
                 mapping: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Compare two checkpoints (or .npz/.safetensors/Keras files) variable by variable.

    Reports variables only in A or only in B, shape or dtype changes, and value
    changes (max absolute and relative difference). On a terminal: a table of
    what differs; piped: one tab-separated line per variable (name, status,
    mismatched, max_abs, max_rel, detail), the summary on stderr.

    \b
    Examples:
      ckpttools diff runs/pretrained runs/finetuned --scopes 'conv_block[1-3]'
      ckpttools diff model.ckpt-100 weights.npz --atol 1e-6 --json
      ckpttools diff a.npz b.npz | awk -F'\\t' '$2 == "changed"'
      ckpttools diff model.keras tf_ckpt --map 're:^dense/=model/_operations/0/'
    \b
    Exit codes: 0 equal (within --rtol/--atol), 1 they differ, 2 bad option or --map,
    3 a checkpoint not found, 4 bad or corrupt data, 130 Ctrl-C.
    """
    options = DiffOptions(scopes, include_all, rtol, atol, mapping)
    with open_checkpoint(a) as left, open_checkpoint(b) as right:
        total = bytes_to_compare(left, right, options)
        with byte_progress(total, "comparing values") as advance:
            result = compare(left, right, options, advance)
    if as_json:
        print_json(diff_json(a, b, result))
    elif not quiet:
        write_notes(result.notes)
        if stdout_is_terminal():
            from rich.console import Console

            _print(Console(), result.a, result.b, result)
        else:
            sys.stdout.write("".join("\t".join(fields) + "\n" for fields in plain_rows(result)))
            sys.stderr.write(summary_text(result) + "\n")
    if not result.equal:
        sys.exit(EXIT_DIFFERENT)


def diff_json(a: str, b: str, result: Diff) -> dict:
    """The documented ``ckpttools diff --json`` document (schema ``ckpttools.diff/1``)."""
    return {
        "schema": JSON_SCHEMA,
        "a": result.a,
        "b": result.b,
        "a_path": a,
        "b_path": b,
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


def summary_text(result: Diff) -> str:
    """``13 identical, 1 changed: differ``: only the kinds that occur (identical always), then the verdict."""
    parts = [f"{result.count(IDENTICAL):,} identical"]
    for count, text in ((result.count(CHANGED), "changed"), (result.count(CLOSE), "close (within tolerance)"),
                        (len(result.only_in_a), "only in A"), (len(result.only_in_b), "only in B")):
        if count:
            parts.append(f"{count:,} {text}")
    if result.shape_changed:
        parts.append(plural(len(result.shape_changed), "shape change"))
    if result.dtype_changed:
        parts.append(plural(len(result.dtype_changed), "dtype change"))
    return ", ".join(parts) + (": equal" if result.equal else ": differ")


def _rows(result: Diff) -> Iterator[tuple[str, str, str, str]]:
    """(name, status, status word shown, detail) for everything that is not identical, in table order."""
    for info in result.only_in_a:
        yield info.name, "only_in_a", "only in A", f"{info.dtype} {shape_text(info.shape)}, missing from B"
    for info in result.only_in_b:
        yield info.name, "only_in_b", "only in B", f"{info.dtype} {shape_text(info.shape)}, missing from A"
    for x, y in result.shape_changed:
        yield x.name, "shape", "shape", f"A {shape_text(x.shape)} vs B {shape_text(y.shape)}"
    for x, y in result.dtype_changed:
        yield x.name, "dtype", "dtype", f"A {x.dtype} vs B {y.dtype}"
    for value in result.values:
        if value.status == CHANGED:
            detail = f"{plural(value.mismatched, 'value')} {'differs' if value.mismatched == 1 else 'differ'}"
            if value.max_abs is not None:
                detail += f"; max abs {value.max_abs:.3g}, max rel {value.max_rel:.3g}"
            yield value.name, CHANGED, "changed", detail
        elif value.status == CLOSE:
            yield value.name, CLOSE, "close", (f"within tolerance; max abs {value.max_abs:.3g}, "
                                               f"max rel {value.max_rel:.3g}")


def plain_rows(result: Diff) -> list[list[str]]:
    """One line per variable for scripts: name, status, mismatched, max_abs, max_rel, detail ('-' when none)."""
    values = {v.name: v for v in result.values}
    rows = []
    for name, status, _, detail in _rows(result):
        value = values.get(name)
        numbers = ["-"] * 3 if value is None else [str(value.mismatched), _exact(value.max_abs),
                                                    _exact(value.max_rel)]
        rows.append([name, status, *numbers, detail if value is None else ""])
    rows += [[v.name, IDENTICAL, "0", "0", "0", ""] for v in result.values if v.status == IDENTICAL]
    return rows


def _exact(number: float | None) -> str:
    """The shortest text that reads back as the same float (``0.25``, ``0.5409806336779245``)."""
    return "-" if number is None else repr(float(number))


_STYLE = {"changed": "red", "close": "yellow"}


def _print(console, a: str, b: str, result: Diff) -> None:  # console: rich.console.Console
    """The terminal view: a table of what differs (names wrap at '/'; big tables drawn fast), then the summary."""
    from rich.markup import escape

    from .tables import FIXED, PATH, Cell, Column, Grid

    grid = Grid(f"A = {escape(a)}\nB = {escape(b)}", [Column("variable", PATH), Column("status", FIXED),
                                                       Column("detail")])
    for name, _, shown, detail in _rows(result):
        grid.add_row([name, Cell(shown, _STYLE.get(shown, "red")), detail])
    if grid.rows:
        console.print(grid.renderable())
    verdict = summary_text(result)
    head, _, tail = verdict.rpartition(": ")
    console.print(f"{escape(head)}: [bold]{tail}[/bold]", highlight=False)
