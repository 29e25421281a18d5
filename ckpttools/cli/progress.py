"""A byte-counting progress bar on stderr, shown only for long work on a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

MIN_BYTES = 64 * 1024 * 1024  # below this the work is too quick for a bar to help


@contextmanager
def byte_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(nbytes)``; draws a bar when stderr is a terminal and ``total`` is large."""
    if total < MIN_BYTES or not sys.stderr.isatty():
        yield lambda nbytes: None
        return
    from rich.markup import escape
    from rich.progress import (  # only when a bar is drawn
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, transient=True, redirect_stdout=False) as progress:
        task = progress.add_task(escape(description), total=total)  # a path is text, not markup
        yield lambda nbytes: progress.advance(task, nbytes)
