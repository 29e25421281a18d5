"""Many byte ranges of one file read as few streams, and cut back into their ranges.

A checkpoint stores its tensors one after another, so reading a run of them range by range costs a
request each when the file is remote (a round trip per tensor: seconds for a few hundred tensors on a
bucket). Ranges in order and close together form a span, read as one stream (``iter_chunks``: one
pipeline of parallel ranged requests remotely, plain reads locally), which ``cut`` splits into the
pieces of each range as the bytes pass. ``crcscan`` checks spans this way, the bundle reader streams
runs of tensors this way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .byte_source import ByteSource

GAP = 1 << 20  # ranges this close are read as one stream (the gap's bytes are read and skipped)


class ByteRange(NamedTuple):
    """``size`` bytes at ``offset`` of ``path`` whose crc32c must be ``crc`` (unmasked).

    A named tuple: ``rewrite`` makes one per tensor it copies, and a tuple is made three times faster
    than a frozen dataclass.
    """

    path: str
    offset: int
    size: int
    crc: int
    label: str  # what the caller calls it (a variable key)


class Extent(NamedTuple):
    offset: int
    size: int


def spans(ranges: Iterable[ByteRange]) -> list[list[ByteRange]]:
    """Runs of ranges to read as one stream: in order, in one file, not overlapping, at most ``GAP`` apart."""
    found: list[list[ByteRange]] = []
    end = -1
    for r in ranges:
        if found and found[-1][-1].path == r.path and end <= r.offset <= end + GAP:
            found[-1].append(r)
        else:
            found.append([r])
        end = r.offset + r.size
    return found


def cut(chunks: Iterable[bytes | memoryview], start: int, extents: Sequence[Extent | ByteRange]
        ) -> Iterator[tuple[int, bytes | memoryview]]:
    """``(index, piece)``: the bytes of a stream that begins at file offset ``start``, cut into the pieces
    of each extent (``offset``, ``size``; in order, not overlapping, none before ``start``), the bytes
    between extents skipped.

    Every extent gets at least one piece, an empty one when it is empty or when the stream ended before
    it, so a caller that groups the pieces by index sees every extent and can tell a short one by its
    length. A chunk wholly inside one extent is passed on as it is (not as a view): crc32c takes bytes.
    """
    index, pos = 0, start
    for chunk in chunks:
        view, used = memoryview(chunk), 0
        while index < len(extents):
            offset, size = extents[index].offset, extents[index].size
            if pos < offset:  # between extents: skip
                skip = min(offset - pos, len(view) - used)
                pos, used = pos + skip, used + skip
                if pos < offset:
                    break
            take = min(offset + size - pos, len(view) - used)
            if take == len(view):
                yield index, chunk
            elif take > 0 or size == 0:
                yield index, view[used:used + take]
            pos, used = pos + max(take, 0), used + max(take, 0)
            if pos < offset + size:
                break  # this chunk is used up
            index += 1
    for rest in range(index, len(extents)):  # the stream ended first (or only empty extents were left)
        yield rest, b""


def read_span(source: ByteSource, extents: Sequence[Extent | ByteRange], chunk_size: int
              ) -> Iterator[tuple[int, Iterator[bytes | memoryview]]]:
    """``(index, pieces)`` for each extent of a span (in order, in one file), its bytes read from ``source`` as
    one stream and cut as they pass (``cut``); nothing is asked for past the file's end, so an extent there
    gets no bytes. Take each extent's pieces before the next."""
    start, end = extents[0].offset, extents[-1].offset + extents[-1].size
    chunks = source.iter_chunks(start, max(0, min(end, source.size) - start), chunk_size)
    for index, group in groupby(cut(chunks, start, extents), key=itemgetter(0)):
        yield index, (piece for _, piece in group)


__all__ = ["GAP", "ByteRange", "Extent", "cut", "read_span", "spans"]
