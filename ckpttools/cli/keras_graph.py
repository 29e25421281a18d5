"""``ckpttools graph`` on a Keras file: the layer table of its model config (``graphs.keras``), or ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..graphs.keras import KerasArchitecture, LayerRow, load_architecture
from .render import print_json

JSON_SCHEMA = "ckpttools.graph/1"


def show_keras(path: str, scopes: Sequence[str], limit: int | None, as_json: bool) -> None:
    """Print the architecture of the Keras model in ``path``."""
    arch = load_architecture(path, scopes)
    rows = arch.layers[:limit] if limit is not None else arch.layers
    if as_json:
        print_json(architecture_json(arch, rows, scopes, limit))
        return
    notes = [f"pattern '{p}' matched no layer" for p in arch.unmatched_patterns]
    if scopes:
        notes.append(f"{len(arch.layers)} of {arch.total_layers} layers selected")
    for note in notes:
        sys.stderr.write(f"note: {note}\n")
    top = sum(row.parameters for row in arch.layers if row.depth == 0)
    total = f"{arch.total_layers} layers, {arch.parameters:,} parameters"
    if not sys.stdout.isatty():
        sys.stdout.write("".join("\t".join(_plain(row)) + "\n" for row in rows))
        sys.stderr.write(total + "\n")
        return
    console = Console(soft_wrap=False)
    table = Table(title=escape(_title(arch)), title_justify="left", header_style="bold")
    for column, justify in (("layer", "left"), ("class", "left"), ("output shape", "left"),
                            ("parameters", "right"), ("inbound", "left")):
        short = column in ("output shape", "parameters")  # never broken inside a number
        table.add_column(column, justify=justify, overflow="fold", no_wrap=short)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(escape("  " * row.depth + row.name), escape(row.class_name), _shape(row.output_shape),
                      f"{row.parameters:,}", escape(", ".join(row.inbound)))
    console.print(table, highlight=False)
    console.print(total if top == arch.parameters else f"{total} ({top:,} in layers)", highlight=False)
    for row in rows:
        if row.note:
            console.print(f"[dim]note:[/dim] {escape(row.name)}: {escape(row.note)}", highlight=False)


def architecture_json(arch: KerasArchitecture, rows: Sequence[LayerRow], scopes: Sequence[str],
                      limit: int | None) -> dict[str, Any]:
    """The ``graph --json`` document for a Keras file (schema ``ckpttools.graph/1``, ``layers`` view)."""
    return {
        "schema": JSON_SCHEMA,
        "source": {"path": arch.path, "format": "keras", "container": arch.format, "model": arch.model_name,
                   "class_name": arch.model_class, "keras_version": arch.keras_version},
        "selection": {"scopes": list(scopes), "limit": limit, "matched": len(arch.layers),
                      "total": arch.total_layers, "unmatched_patterns": arch.unmatched_patterns},
        "layers": [{"name": row.name, "class_name": row.class_name, "output_shape": row.output_shape,
                    "parameters": row.parameters, "inbound": row.inbound, "depth": row.depth, "note": row.note}
                   for row in rows],
        "summary": {"layers": arch.total_layers, "parameters": arch.parameters},
    }  # fmt: skip


def _title(arch: KerasArchitecture) -> str:
    version = f", Keras {arch.keras_version}" if arch.keras_version else ""
    return f"{arch.path} ({arch.model_class} '{arch.model_name}'{version})"


def _plain(row: LayerRow) -> list[str]:
    return [row.name, row.class_name, _shape(row.output_shape), str(row.parameters), ",".join(row.inbound),
            row.note or ""]


def _shape(shape: list | None) -> str:
    if not isinstance(shape, list):
        return "?"
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
