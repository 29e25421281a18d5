"""Turn listings into rich tables and trees, tab-separated lines, or JSON.

The only module (with ``progress``) that knows about rich. Tables and trees go
to stdout; notes and progress go to stderr so piped output stays pure data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.filesize import decimal as human_bytes
from rich.table import Table
from rich.tree import Tree

from ..checkpoint import Checkpoint
from ..info import MODEL, TensorInfo
from ..listing import Listing, ScopeNode, scope_tree
from ..stats import TensorStats, tensor_stats
from .progress import byte_progress

JSON_SCHEMA = "ckpttools.ls/1"


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def listing_notes(ckpt: Checkpoint, listing: Listing) -> list[str]:
    """The one-line remarks shown beside a listing (on stderr)."""
    notes = []
    if ckpt.note:
        notes.append(ckpt.note)
    notes += ckpt.warnings
    missing = ckpt.missing_data_files()
    if missing:
        notes.append(f"data file missing: {', '.join(missing)} (listing works; values cannot be read)")
    if listing.hidden:
        kinds = ", ".join(f"{count} {role}" for role, count in sorted(listing.hidden_roles.items()))
        nbytes = sum(info.nbytes for info in listing.hidden)
        count = len(listing.hidden)
        notes.append(f"{count} non-model variables hidden ({kinds}; {human_bytes(nbytes)}); --all shows them")
    for pattern in listing.unmatched_patterns:
        notes.append(f"pattern '{pattern}' matched no variable")
    return notes


def read_stats(ckpt: Checkpoint, infos: Sequence[TensorInfo]) -> dict[str, TensorStats | None]:
    """Read each tensor once and summarise it, with a progress bar on big checkpoints."""
    stats: dict[str, TensorStats | None] = {}
    with byte_progress(sum(info.nbytes for info in infos), "reading values") as advance:
        for info in infos:
            stats[info.name] = tensor_stats(ckpt.get(info.name))
            advance(info.nbytes)
    return stats


class Output:
    """Where listings go: a rich table on a terminal, tab-separated lines when piped."""

    def __init__(self, console: Console, errors: Console) -> None:
        self.console = console
        self.errors = errors
        self.plain = not console.is_terminal

    @classmethod
    def for_stdout(cls) -> Output:
        return cls(Console(soft_wrap=False), Console(stderr=True))

    def notes(self, notes: Sequence[str]) -> None:
        for note in notes:
            self.errors.print(f"[dim]note:[/dim] {note}", highlight=False, soft_wrap=True)

    def json(self, document: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")

    def table(self, ckpt: Checkpoint, listing: Listing, stats: dict | None) -> None:
        rows = [_row(info, stats) for info in listing.shown]
        if self.plain:
            for row in rows:
                sys.stdout.write("\t".join(row) + "\n")
            self.errors.print(_totals_text(listing), highlight=False)
            return
        table = Table(title=f"{ckpt.prefix} [dim]({ckpt.format})[/dim]", title_justify="left",
                      show_footer=True, header_style="bold")
        table.add_column("name", footer=f"{listing.totals.variables} variables", overflow="fold")
        table.add_column("dtype")
        table.add_column("shape")
        table.add_column("parameters", justify="right", footer=f"{listing.totals.parameters:,}")
        table.add_column("bytes", justify="right", footer=human_bytes(listing.totals.nbytes))
        for column in _STATS_COLUMNS if stats is not None else ():
            table.add_column(column, justify="right")
        for info, row in zip(listing.shown, rows):
            row[4] = f"{info.nbytes:,}"
            table.add_row(*row, style=None if info.role == MODEL else "dim")
        self.console.print(table)

    def tree(self, ckpt: Checkpoint, listing: Listing) -> None:
        root = scope_tree(listing.shown)
        label = f"{ckpt.prefix}  {root.parameters:,} parameters, {human_bytes(root.nbytes)}"
        tree = Tree(label, guide_style="dim")
        _grow(tree, root)
        self.console.print(tree, highlight=False)

    def slices(self, listing: Listing) -> None:
        parted = [info for info in listing.shown if info.partitioned]
        if not parted:
            self.errors.print("note: no partitioned variables among those selected", highlight=False)
            return
        if self.plain:
            for info in parted:
                for number, part in enumerate(info.slices):
                    fields = [info.name, str(number), _range_text(part.start, part.stop),
                              shape_text(part.shape), _shard_text(part.shard), str(part.nbytes)]
                    sys.stdout.write("\t".join(fields) + "\n")
            return
        table = Table(title="partitioned variables", title_justify="left", header_style="bold")
        for column in ("variable", "part", "range", "shape", "shard", "bytes"):
            table.add_column(column, justify="right" if column in ("part", "bytes") else "left")
        for info in parted:
            table.add_row(f"{info.name} {shape_text(info.shape)}", "", "", "", "", human_bytes(info.nbytes),
                          style="bold")
            for number, part in enumerate(info.slices):
                table.add_row("", str(number), _range_text(part.start, part.stop), shape_text(part.shape),
                              _shard_text(part.shard), human_bytes(part.nbytes))
        self.console.print(table)


_STATS_COLUMNS = ("min", "max", "mean", "std", "nan", "inf")


def _row(info: TensorInfo, stats: dict | None) -> list[str]:
    row = [info.name, info.dtype, shape_text(info.shape), f"{info.size:,}", str(info.nbytes)]
    if stats is None:
        return row
    found = stats.get(info.name)
    if found is None:
        return row + ["-"] * len(_STATS_COLUMNS)
    numbers = [found.min, found.max, found.mean, found.std]
    return row + ["-" if n is None else f"{n:.6g}" for n in numbers] + [str(found.nan), str(found.inf)]


def _totals_text(listing: Listing) -> str:
    totals = listing.totals
    return f"total: {totals.variables} variables, {totals.parameters:,} parameters, {human_bytes(totals.nbytes)}"


def _range_text(start: Sequence[int], stop: Sequence[int]) -> str:
    return "[" + ", ".join(f"{a}:{b}" for a, b in zip(start, stop)) + "]"


def _shard_text(shard: int | None) -> str:
    return "-" if shard is None else str(shard)


def _grow(branch: Tree, node: ScopeNode) -> None:
    for child in node.children.values():
        name = child.name
        while len(child.children) == 1 and child.tensor is None:  # fold a/b/c chains into one line
            child = next(iter(child.children.values()))
            name = f"{name}/{child.name}"
        if child.tensor is not None and not child.children:
            info = child.tensor
            text = f"{name}  [dim]{info.dtype} {shape_text(info.shape)}  {info.size:,}[/dim]"
        else:
            text = f"[bold]{name}[/bold]  {child.parameters:,} parameters, {human_bytes(child.nbytes)}"
        _grow(branch.add(text), child)


# --- JSON --------------------------------------------------------------------


def listing_json(path: str, ckpt: Checkpoint, listing: Listing, stats: dict | None,
                 with_tree: bool = False, with_slices: bool = True) -> dict[str, Any]:
    """The documented ``ckpttools ls --json`` document (schema ``ckpttools.ls/1``)."""
    document: dict[str, Any] = {
        "schema": JSON_SCHEMA,
        "checkpoint": {
            "path": path,
            "prefix": ckpt.prefix,
            "format": ckpt.format,
            "saved_model": ckpt.saved_model,
            "note": ckpt.note,
            "missing_data_files": ckpt.missing_data_files(),
        },
        "variables": [tensor_json(info, stats) for info in listing.shown],
        "hidden": {
            "variables": len(listing.hidden),
            "nbytes": sum(info.nbytes for info in listing.hidden),
            "roles": listing.hidden_roles,
        },
        "totals": {
            "variables": listing.totals.variables,
            "parameters": listing.totals.parameters,
            "nbytes": listing.totals.nbytes,
        },
        "unmatched_patterns": listing.unmatched_patterns,
    }
    if with_tree:
        document["tree"] = _tree_json(scope_tree(listing.shown))
    return document


def tensor_json(info: TensorInfo, stats: dict | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": info.name,
        "key": info.key,
        "dtype": info.dtype,
        "shape": list(info.shape),
        "size": info.size,
        "nbytes": info.nbytes,
        "role": info.role,
        "slot_of": info.slot_of,
        "slot_name": info.slot_name,
        "original_name": info.original_name,
        "slices": [
            {"start": list(s.start), "shape": list(s.shape), "shard": s.shard, "nbytes": s.nbytes}
            for s in info.slices
        ],
    }
    if stats is not None:
        found = stats.get(info.name)
        item["stats"] = None if found is None else {
            "min": found.min, "max": found.max, "mean": found.mean, "std": found.std,
            "nan": found.nan, "inf": found.inf,
        }
    return item


def _tree_json(node: ScopeNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "variables": node.variables,
        "parameters": node.parameters,
        "nbytes": node.nbytes,
        "children": [_tree_json(child) for child in node.children.values()],
    }
