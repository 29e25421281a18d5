"""Rich tables and trees for a terminal; imported only when stdout is one."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.tree import Tree

from ..checkpoint import Checkpoint
from ..info import MODEL
from ..ops.listing import Listing, scope_tree
from .render import STATS_COLUMNS, human_bytes, range_text, row, scope_text, shape_text, shard_text, walk_tree


class RichOutput:
    """Tables and trees drawn with rich on stdout; notes on stderr."""

    def __init__(self, console: Console | None = None, errors: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=False)
        self.errors = errors or Console(stderr=True)

    def notes(self, notes: Sequence[str]) -> None:
        for note in notes:
            self.errors.print(f"[dim]note:[/dim] {escape(note)}", highlight=False, soft_wrap=True, markup=True)

    def table(self, ckpt: Checkpoint, listing: Listing, stats: dict | None) -> None:
        table = Table(title=f"{escape(ckpt.prefix)} [dim]({ckpt.format})[/dim]", title_justify="left",
                      show_footer=True, header_style="bold")
        table.add_column("name", footer=f"{listing.totals.variables} variables", overflow="fold")
        table.add_column("dtype")
        table.add_column("shape")
        table.add_column("parameters", justify="right", footer=f"{listing.totals.parameters:,}")
        table.add_column("bytes", justify="right", footer=human_bytes(listing.totals.nbytes))
        for column in STATS_COLUMNS if stats is not None else ():
            table.add_column(column, justify="right")
        # TF2: the variable's own name (Keras: sequential/dense/kernel) beside its object path
        own_names = any(info.original_name and info.original_name != info.name for info in listing.shown)
        if own_names:
            table.add_column("variable name", style="dim", overflow="fold")
        for info in listing.shown:
            cells = [escape(cell) for cell in row(info, stats)]  # names are text, never markup
            cells[4] = f"{info.nbytes:,}"
            if own_names:
                cells.append(escape(info.original_name or ""))
            table.add_row(*cells, style=None if info.role == MODEL else "dim")
        self.console.print(table)

    def tree(self, ckpt: Checkpoint, listing: Listing) -> None:
        root = scope_tree(listing.shown)
        title = f"{escape(ckpt.prefix)}  {root.parameters:,} parameters, {human_bytes(root.nbytes)}"
        tree = Tree(title, guide_style="dim")
        branches = {-1: tree}
        for depth, name, node in walk_tree(root):
            branches[depth] = branches[depth - 1].add(scope_text(name, node, markup=True))
        self.console.print(tree, highlight=False)

    def slices(self, listing: Listing) -> None:
        parted = [info for info in listing.shown if info.partitioned]
        if not parted:
            self.errors.print("note: no partitioned variables among those selected", highlight=False)
            return
        table = Table(title="partitioned variables", title_justify="left", header_style="bold")
        for column in ("variable", "part", "range", "shape", "shard", "bytes"):
            table.add_column(column, justify="right" if column in ("part", "bytes") else "left")
        for info in parted:
            table.add_row(f"{escape(info.name)} {shape_text(info.shape)}", "", "", "", "", human_bytes(info.nbytes),
                          style="bold")
            for number, part in enumerate(info.slices):
                table.add_row("", str(number), range_text(part.start, part.stop), shape_text(part.shape),
                              shard_text(part.shard), human_bytes(part.nbytes))
        self.console.print(table)
