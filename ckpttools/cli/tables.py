"""Rich table pieces that keep tables readable at 80 and 100 columns (terminal only; imports rich).

Names wrap at ``/`` boundaries, never inside a scope's name; numbers and totals never wrap nor get
cut; a second, dim name (a TF2 variable's own name) can fold under the first instead of taking a
column of its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.table import Table

UNDER_INDENT = "  "  # a folded second name is indented under the first


def path_pieces(name: str) -> list[str]:
    """``a/b/c`` -> ``['a/', 'b/', 'c']``: the units a name may wrap between."""
    pieces = [part + "/" for part in name.split("/")]
    pieces[-1] = pieces[-1][:-1]
    return [piece for piece in pieces if piece]


def wrap_path(name: str, width: int, indent: str = "") -> list[str]:
    """Lines of at most ``width`` cells, broken after a ``/``; a piece longer than a line is folded."""
    width = max(width, len(indent) + 1)
    lines: list[str] = []
    line = indent
    for piece in path_pieces(name) or [""]:
        if cell_len(line) + cell_len(piece) > width and line.strip():
            lines.append(line)
            line = indent
        while cell_len(line) + cell_len(piece) > width:  # one scope name wider than the column: fold it
            room = width - cell_len(line)
            lines.append(line + piece[:room])
            piece, line = piece[room:], indent
        line += piece
    lines.append(line)
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
        longest_piece = max(len(indent) + max((cell_len(p) for p in path_pieces(text)), default=0)
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


def name_cell(name: str, under: str | None = None, style: str = "") -> PathText:
    return PathText(name, under, style)


def natural_width(table: Table, console: Console) -> int:
    """The width ``table`` takes with nothing wrapped (to decide between layouts before printing)."""
    return Measurement.get(console, console.options.update_width(10**6), table).maximum


def lines_of(renderable: object, width: int) -> Iterator[str]:
    """Render to plain text lines at ``width`` columns (no colour): for tests and measuring."""
    console = Console(width=width, color_system=None, force_terminal=False, record=True, file=_Null())
    console.print(renderable)
    yield from console.export_text().splitlines()


class _Null:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
