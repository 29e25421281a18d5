"""Terminal tables readable at 80 and 100 columns, and fast when big (terminal only; imports rich).

Names wrap at ``/`` boundaries, never inside a scope's name; numbers and totals never wrap nor get
cut; a second, dim name (a TF2 variable's own name) can fold under the first instead of taking a
column of its own. A ``Grid`` holds a table as strings, so its widths are computed without rich's
per-cell measuring; ``RichGrid`` draws it with rich, ``FastGrid`` (big tables) draws the same lines
directly.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text

UNDER_INDENT = "  "  # a folded second name is indented under the first


_PIECE = re.compile(r"[^/ ]*(?:/| +|$)")


def path_pieces(name: str) -> list[str]:
    """``a/b/c`` -> ``['a/', 'b/', 'c']``: the units a name (or a list of names, ``x, a/b``) may wrap between."""
    return [piece for piece in _PIECE.findall(name) if piece]


def wrap_path(name: str, width: int, indent: str = "") -> list[str]:
    """Lines of at most ``width`` cells, broken after a ``/`` (or a space); a piece longer than a line is folded."""
    width = max(width, len(indent) + 1)
    lines: list[str] = []
    line = indent
    for piece in path_pieces(name) or [""]:
        if cell_len(line) + cell_len(piece.rstrip()) > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        while cell_len(line) + cell_len(piece.rstrip()) > width:  # one scope name wider than the column: fold
            room = width - cell_len(line)
            lines.append(line + piece[:room])
            piece, line = piece[room:], indent
        line += piece
    lines.append(line.rstrip())
    return lines


class PathText:
    """A cell holding a ``/``-separated name, optionally with a second name folded under it (dim)."""

    def __init__(self, name: str, under: str | None = None, style: str | Style = "",
                 under_style: str | Style = "dim") -> None:
        self.name = name
        self.under = under
        self.style = style
        self.under_style = under_style

    def _texts(self) -> list[tuple[str, str]]:
        texts = [(self.name, "")]
        if self.under:
            texts.append((self.under, UNDER_INDENT))
        return texts

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest_piece = max(len(indent) + max((cell_len(p.rstrip()) for p in path_pieces(text)), default=0)
                            for text, indent in self._texts())
        whole = max(len(indent) + cell_len(text) for text, indent in self._texts())
        return Measurement(longest_piece, whole).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        for (text, indent), text_style in zip(self._texts(), (self.style, self.under_style)):
            style = console.get_style(text_style) if text_style else None
            for line in wrap_path(text, width, indent):
                yield Segment(line, style)
                yield Segment.line()


class Whole:
    """A cell that never wraps: its minimum width is its full width (totals, numbers)."""

    def __init__(self, text: str, style: str | Style = "") -> None:
        self.text = text
        self.style = style

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(cell_len(self.text), cell_len(self.text))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = max(options.max_width - cell_len(self.text), 0)
        left = room if options.justify == "right" else room // 2 if options.justify == "center" else 0
        yield Segment(" " * left + self.text, console.get_style(self.style) if self.style else None)
        yield Segment.line()


# --- a table described by its strings: cheap to measure, drawn by rich or, when big, directly ---------------

PATH, FIXED, TEXT = "path", "fixed", "text"  # how a column's cells may wrap: at '/', never, at spaces
FAST_ROWS = 300  # above this many rows, lines are drawn directly: rich measures every cell (~3k rows/s)


@dataclass(frozen=True)
class Cell:
    """A cell's text with a style of its own (``Cell("changed", "red")``)."""

    text: str
    style: str = ""


@dataclass
class Column:
    header: str
    kind: str = TEXT
    justify: str = "left"
    footer: str = ""
    style: str = ""
    give: int = 0  # when the table is too wide, columns that give more shrink first (then the widest)


@dataclass
class Grid:
    """Rows of plain strings (a PATH cell may be ``(name, name_under_it)``) and how to show them."""

    title: str
    columns: list[Column]
    rows: list[list[Any]] = field(default_factory=list)
    row_styles: list[str] = field(default_factory=list)
    compact: bool = False  # no outer edges, no padding: one space between columns

    def add_row(self, cells: Sequence[Any], style: str = "") -> None:
        self.rows.append(list(cells))
        self.row_styles.append(style)

    @property
    def chrome(self) -> int:
        """Cells taken by borders and padding."""
        count = len(self.columns)
        return count - 1 if self.compact else 3 * count + 1

    def _texts(self, index: int, whole: bool = False) -> Iterator[tuple[str, str]]:
        """A column's texts with their indent; ``whole``: only those that never wrap (header, footer)."""
        column = self.columns[index]
        yield column.header, ""
        if column.footer:
            yield column.footer, ""
        if whole:
            return
        for cells in self.rows:
            cell = cells[index]
            if isinstance(cell, tuple):
                yield cell[0], ""
                if cell[1]:
                    yield cell[1], UNDER_INDENT
            else:
                yield cell.text if isinstance(cell, Cell) else cell, ""

    def natural_widths(self) -> list[int]:
        return [max(len(indent) + cell_len(text) for text, indent in self._texts(i)) for i in range(len(self.columns))]

    def minimum_widths(self) -> list[int]:
        widths = []
        for index, column in enumerate(self.columns):
            whole = max(cell_len(text) for text, _ in self._texts(index, whole=True))
            if column.kind == FIXED:
                widths.append(max(cell_len(text) for text, _ in self._texts(index)))
            elif column.kind == PATH:
                widths.append(max(whole, *(len(indent) + max((cell_len(p.rstrip()) for p in path_pieces(text)),
                                                              default=0) for text, indent in self._texts(index))))
            else:
                words = (max((cell_len(word) for word in text.split()), default=0) for text, _ in self._texts(index))
                widths.append(max(whole, *words))
        return widths

    def width(self) -> int:
        """The width the table takes with nothing wrapped."""
        return sum(self.natural_widths()) + self.chrome

    def widths_for(self, total: int) -> list[int]:
        """Column widths within ``total`` cells: the widest wrappable column gives way first."""
        widths = self.natural_widths()
        floors = self.minimum_widths()
        room = total - self.chrome
        for allow_fold in (False, True):  # first keep every name piece whole; fold only when that cannot fit
            while sum(widths) > room:
                shrinkable = [i for i, c in enumerate(self.columns) if c.kind != FIXED
                              and widths[i] > (4 if allow_fold else floors[i])]
                if not shrinkable:
                    break
                widest = max(shrinkable, key=lambda i: (self.columns[i].give, widths[i]))
                widths[widest] -= 1
        return widths

    def to_rich(self, widths: Sequence[int] | None = None) -> Table:
        """The rich Table, with the columns' ``widths`` fixed when given (see ``RichGrid``)."""
        table = Table(title=self.title, title_justify="left", show_footer=any(c.footer for c in self.columns),
                      header_style="bold")
        if self.compact:
            table.box, table.show_edge, table.padding = box.SIMPLE_HEAD, False, (0, 0)
        for index, column in enumerate(self.columns):
            footer = Whole(column.footer) if column.footer else ""
            table.add_column(escape(column.header), justify=column.justify, no_wrap=column.kind == FIXED,
                             footer=footer, style=column.style or None, width=widths[index] if widths else None,
                             overflow="fold")
        for cells, style in zip(self.rows, self.row_styles):
            table.add_row(*(self._rich_cell(column, cell, style) for column, cell in zip(self.columns, cells)),
                          style=style or None)
        return table

    @staticmethod
    def _rich_cell(column: Column, cell: Any, style: str) -> Any:
        if column.kind == PATH:
            name, under = cell if isinstance(cell, tuple) else (cell, None)
            return PathText(name, under, style)
        if isinstance(cell, Cell):
            cell, style = cell.text, cell.style or style
        if column.kind == FIXED:
            return Whole(cell, style)
        return Text(cell, style=style) if style else escape(cell)

    def renderable(self, fast_rows: int | None = None) -> Any:
        """Rich's Table for small tables; past ``FAST_ROWS`` rows, the same drawing done directly."""
        return FastGrid(self) if len(self.rows) > (FAST_ROWS if fast_rows is None else fast_rows) else RichGrid(self)


class RichGrid:
    """A Grid drawn by rich, with the column widths Grid computes (rich alone would cut headers: 'na…')."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.grid.to_rich(self.grid.widths_for(options.max_width))


class FastGrid:
    """Draws a Grid line by line with widths computed from its strings: no per-cell measuring pass."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        grid = self.grid
        widths = grid.widths_for(options.max_width)
        get = console.get_style
        border = Style.null()
        yield from _title_lines(console, grid.title, sum(widths) + grid.chrome)
        rules = _COMPACT if grid.compact else _HEAVY
        if not grid.compact:
            yield Segment(rules["top"](widths), border)
            yield Segment.line()
        yield from self._line(console, [c.header for c in grid.columns], widths, get("bold"), rules["head"], border,
                              header=True)
        yield Segment(rules["head_rule"](widths), border)
        yield Segment.line()
        for cells, style in zip(grid.rows, grid.row_styles):
            yield from self._line(console, cells, widths, get(style) if style else Style.null(), rules["row"], border)
        if any(c.footer for c in grid.columns):
            yield Segment(rules["foot_rule"](widths), border)
            yield Segment.line()
            yield from self._line(console, [c.footer for c in grid.columns], widths, Style.null(), rules["row"], border,
                                  header=True)  # (a total never wraps)
        if not grid.compact:
            yield Segment(rules["bottom"](widths), border)
            yield Segment.line()

    def _line(self, console: Console, cells: Sequence[Any], widths: Sequence[int], style: Style, edge: str,
              border: Style, header: bool = False) -> Iterator[Segment]:
        grid = self.grid
        blocks = []
        for column, cell, width in zip(grid.columns, cells, widths):
            if column.kind == PATH and not header:
                name, under = cell if isinstance(cell, tuple) else (cell, None)
                lines = [(line, "") for line in wrap_path(name, width)]
                lines += [(line, "dim") for line in (wrap_path(under, width, UNDER_INDENT) if under else [])]
            else:
                text, own = (cell.text, cell.style) if isinstance(cell, Cell) else (cell, "")
                if column.kind == TEXT and not header:
                    lines = [(line, own) for line in (textwrap.wrap(text, width, break_on_hyphens=False) or [""])]
                else:
                    lines = [(text, own)]
            blocks.append(lines)
        height = max(len(lines) for lines in blocks)
        pad = "" if grid.compact else " "
        for number in range(height):
            if not grid.compact:
                yield Segment(edge, border)
            for index, (column, lines, width) in enumerate(zip(grid.columns, blocks, widths)):
                text, own = lines[number] if number < len(lines) else ("", "")
                room = max(width - cell_len(text), 0)
                text = " " * room + text if column.justify == "right" and not header else text + " " * room
                if header and column.justify == "right":
                    text = text.strip().rjust(width)
                cell_style = style + console.get_style(own) if own else style
                yield Segment(pad, style)
                yield Segment(text, cell_style)
                yield Segment(pad, style)
                if index < len(widths) - 1:
                    yield Segment(" " if grid.compact else edge, border)
            if not grid.compact:
                yield Segment(edge, border)
            yield Segment.line()


def _title_lines(console: Console, title: str, width: int) -> Iterator[Segment]:
    if not title:
        return
    text = Text.from_markup(title, style="italic")
    for line in text.wrap(console, width):
        yield from line.render(console)
        yield Segment.line()


def _rule(left: str, fill: str, cross: str, right: str) -> Any:
    return lambda widths: left + cross.join(fill * (w + 2) for w in widths) + right


_HEAVY = {"top": _rule("┏", "━", "┳", "┓"), "head": "┃", "head_rule": _rule("┡", "━", "╇", "┩"), "row": "│",
          "foot_rule": _rule("├", "─", "┼", "┤"), "bottom": _rule("└", "─", "┴", "┘")}
_COMPACT = {"head": " ", "head_rule": lambda widths: "─" * (sum(widths) + len(widths) - 1), "row": " ",
            "foot_rule": lambda widths: " " * (sum(widths) + len(widths) - 1)}  # as rich's SIMPLE_HEAD box
