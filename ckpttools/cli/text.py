"""Plain-text helpers every command shares: counts, sizes, shapes, notes, JSON; no rich, no click.

Kept apart from the renderers so that the plain (piped) path and the rich (terminal) path can both
use them without importing each other, and so piped output never loads rich.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TextIO


def plural(count: int, word: str, many: str | None = None, grouped: bool = True) -> str:
    """``1 variable``, ``2 variables``, ``1,204 values``; ``many`` for irregular plurals (``1 match``...).

    ``grouped=False`` drops the thousands separators (``1204 values``), for text that scripts parse.
    """
    return f"{count_text(count, plain=not grouped)} {word if count == 1 else (many or word + 's')}"


def shape_text(shape: Sequence[int]) -> str:
    """``[3, 3, 1, 8]``; ``[]`` for a scalar."""
    return cached_shape_text(tuple(shape))


@lru_cache(maxsize=4096)
def cached_shape_text(shape: tuple[int, ...]) -> str:
    """``shape_text`` of a tuple, cached: a listing's 20,000 rows share a few shapes."""
    return "[" + ", ".join(map(str, shape)) + "]"


def human_bytes(size: int) -> str:
    """Decimal units, as rich prints them: 950 bytes, 1.2 kB, 3.4 MB."""
    if size < 1000:
        return plural(size, "byte")
    for unit in ("kB", "MB", "GB", "TB", "PB", "EB"):
        size /= 1000
        if size < 1000 or unit == "EB":
            return f"{size:,.1f} {unit}"
    return ""


def count_text(count: int, plain: bool) -> str:
    """A count for a table cell: ``128640`` for scripts (piped), ``128,640`` for people."""
    return str(count) if plain else f"{count:,}"


def number_text(value: float | None, digits: int = 6) -> str:
    """A float in ``digits`` significant digits (``-`` when there is none): the width is bounded, never cut."""
    return "-" if value is None else f"{value:.{digits}g}"


def range_text(start: Sequence[int], stop: Sequence[int]) -> str:
    return "[" + ", ".join(f"{a}:{b}" for a, b in zip(start, stop)) + "]"


def shard_text(shard: int | None) -> str:
    return "-" if shard is None else str(shard)


def write_notes(notes: Sequence[str], stream: TextIO | None = None) -> None:
    """``note: ...`` lines on stderr, one per note, never wrapped (a log line is greppable whole)."""
    stream = stream or sys.stderr
    for note in notes:
        stream.write(f"note: {note}\n")


def print_json(document: dict[str, Any]) -> None:
    """The ``--json`` output of every command: one indented document on stdout (it must carry ``schema``)."""
    import json  # here, not at the top: a plain listing's start-up would pay for it

    assert "schema" in document, "every --json document names its schema"
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def print_report(report: Any, as_json: bool, rich: Callable[[Any], None], plain: Callable[[Any], None]) -> None:
    """A report as ``--json`` (its ``to_dict()``), a rich view on a terminal, or plain lines when piped.

    A report naming a URL with credentials in it (``https://user:password@...``, signed query strings)
    is printed as JSON or plain lines with them removed.
    """
    import json

    from ..storage.sources import redact

    document = report.to_dict()
    text = json.dumps(document)
    if redact(text) != text:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            print_json(document) if as_json else plain(report)
        sys.stdout.write(redact(buffer.getvalue()))
    elif as_json:
        print_json(document)
    elif stdout_is_terminal():
        rich(report)
    else:
        plain(report)
