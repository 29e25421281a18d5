"""Rich tables and trees for a terminal; imported only when stdout is one."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, RenderableType
from rich.markup import escape
from rich.tree import Tree

from ..checkpoint import Checkpoint
from ..info import MODEL
from ..ops.listing import Listing, scope_tree
from .listing_text import STATS_COLUMNS, row, scope_detail, walk_tree
from .tables import FIXED, PATH, Column, Grid
from .text import human_bytes, plural, range_text, shape_text, shard_text


class RichOutput:
    """Tables and trees drawn with rich on stdout; notes on stderr."""

    def __init__(self, console: Console | None = None, errors: Console | None = None) -> None:
        self.console = console or Console(soft_wrap=False)
        self.errors = errors or Console(stderr=True)

    def notes(self, notes: Sequence[str]) -> None:
        for note in notes:
            self.errors.print(f"[dim]note:[/dim] {escape(note)}", highlight=False, soft_wrap=True, markup=True)

    def table(self, ckpt: Checkpoint, listing: Listing, stats: dict | None) -> None:
        """The listing table, laid out for the console's width (see ``listing_table``)."""
        self.console.print(listing_table(ckpt, listing, stats, self.console))

    def tree(self, ckpt: Checkpoint, listing: Listing) -> None:
        root = scope_tree(listing.shown)
        title = f"{escape(ckpt.prefix)}  {plural(root.parameters, 'parameter')}, {human_bytes(root.nbytes)}"
        tree = Tree(title, guide_style="dim")
        branches = {-1: tree}
        for depth, name, node in walk_tree(root):
            detail = escape(scope_detail(node, plain=False))
            label = f"{escape(name)}  [dim]{detail}[/dim]" if node.tensor else f"[bold]{escape(name)}[/bold]  {detail}"
            branches[depth] = branches[depth - 1].add(label)
        self.console.print(tree, highlight=False)

    def slices(self, listing: Listing) -> None:
        parted = [info for info in listing.shown if info.partitioned]
        if not parted:
            self.errors.print("note: no partitioned variables among those selected", highlight=False)
            return
        grid = Grid("partitioned variables", [Column("variable", PATH), Column("part", FIXED, "right"),
                                              Column("range"), Column("shape"), Column("shard", FIXED),
                                              Column("bytes", FIXED, "right")])
        for info in parted:
            grid.add_row([f"{info.name} {shape_text(info.shape)}", "", "", "", "", human_bytes(info.nbytes)], "bold")
            for number, part in enumerate(info.slices):
                grid.add_row(["", str(number), range_text(part.start, part.stop), shape_text(part.shape),
                              shard_text(part.shard), human_bytes(part.nbytes)])
        self.console.print(grid.renderable())


def listing_table(ckpt: Checkpoint, listing: Listing, stats: dict | None, console: Console) -> RenderableType:
    """The ``ls`` table at the console's width: names wrap at ``/``, numbers and totals never wrap.

    TF2 variables' own names (Keras: ``sequential/dense/kernel``) get a column when it fits and fold
    under the object path otherwise; with ``--stats`` on a narrow terminal, parameters and bytes
    (in the totals and the piped form) make room for the values, then a compact frame. Layouts are
    compared by their strings' widths (cheap); big listings are drawn without rich's measuring pass.
    """
    own_names = any(info.original_name and info.original_name != info.name for info in listing.shown)
    # (own names in a column of their own, parameters and bytes columns, compact), widest first
    layouts = [(True, True, False)] if own_names else []
    layouts += [(False, True, False)]
    if stats is not None:
        layouts += [(False, False, False), (False, False, True)]
    grid = None
    for separate_names, sizes, compact in layouts:
        grid = listing_grid(ckpt, listing, stats, own_names, separate_names, sizes, compact)
        if grid.width() <= console.width:
            break
    return grid.renderable()


def listing_grid(ckpt: Checkpoint, listing: Listing, stats: dict | None, own_names: bool, separate_names: bool,
                 sizes: bool, compact: bool) -> Grid:
    """The listing as strings in one layout (see ``listing_table``)."""
    totals = listing.totals
    columns = [Column("name", PATH, footer=plural(totals.variables, "variable")), Column("dtype", FIXED),
               Column("shape")]
    if sizes:
        columns += [Column("parameters", FIXED, "right", f"{totals.parameters:,}"),
                    Column("bytes", FIXED, "right", human_bytes(totals.nbytes))]
    columns += [Column(name, FIXED, "right") for name in (STATS_COLUMNS if stats is not None else ())]
    if separate_names:
        columns.append(Column("variable name", PATH, style="dim"))
    grid = Grid(f"{escape(ckpt.prefix)} [dim]({ckpt.format})[/dim]", columns, compact=compact)
    for info in listing.shown:
        cells: list = row(info, stats, plain=False, digits=3 if compact else None)
        own = info.original_name if own_names and info.original_name != info.name else None
        cells[0] = (info.name, None if separate_names else own)
        cells = cells[:3] + (cells[3:] if sizes else cells[5:])
        if separate_names:
            cells.append(info.original_name or "")
        grid.add_row(cells, "" if info.role == MODEL else "dim")
    return grid
