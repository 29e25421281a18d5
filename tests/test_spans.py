"""Cutting one stream back into the byte ranges it covers (storage/spans.py), against plain slicing."""

from __future__ import annotations

import random

import pytest

from ckpttools.storage.spans import ByteRange, Extent, cut, spans


def _case(rng: random.Random) -> tuple[bytes, int, list[Extent], int]:
    """Random data, a stream start, extents from there (gaps and empty extents included) and where the
    stream ends (sometimes short of the last extent)."""
    data = rng.randbytes(rng.randrange(0, 300))
    start = rng.randrange(0, 5)
    pos, extents = start, []
    while pos < len(data) + 20 and len(extents) < 12:
        pos += rng.choice([0, 0, rng.randrange(0, 10)])
        size = rng.choice([0, rng.randrange(0, 40)])
        extents.append(Extent(pos, size))
        pos += size
    end = max(start, rng.randrange(0, len(data) + 1)) if rng.random() < 0.3 else max(start, len(data))
    return data, start, extents, end


@pytest.mark.parametrize("seed", range(4))
def test_cut_gives_each_extent_its_bytes_in_order(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(1000):
        data, start, extents, end = _case(rng)
        stream, chunks, i = data[start:end], [], 0
        while i < len(stream):
            size = rng.randrange(1, 50)
            chunks.append(stream[i:i + size] if rng.random() < 0.5 else memoryview(stream)[i:i + size])
            i += size
        got: dict[int, bytes] = {}
        order = []
        for index, piece in cut(chunks, start, extents):
            got[index] = got.get(index, b"") + bytes(piece)
            order.append(index)
        assert order == sorted(order) and sorted(set(order)) == list(range(len(extents)))  # every extent, in turn
        for index, (offset, size) in enumerate(extents):
            assert got[index] == data[offset:min(offset + size, end)], (extents, end, index)


def test_whole_chunks_are_passed_on_as_they_are() -> None:
    chunk = b"x" * 10
    pieces = list(cut([chunk], 0, [Extent(0, 10)]))
    assert pieces == [(0, chunk)] and pieces[0][1] is chunk  # (crc32c takes bytes, not views)


def test_spans_join_ranges_in_order_and_close_together_in_one_file() -> None:
    def r(path: str, offset: int, size: int) -> ByteRange:
        return ByteRange(path, offset, size, 0, f"{path}@{offset}")

    near, far = r("a", 0, 10), r("a", 10 + (1 << 20), 5)
    assert spans([near, r("a", 10, 5), far, r("a", (1 << 21) + 100, 1), r("b", 0, 1), r("a", 0, 1)]) == [
        [near, r("a", 10, 5), far], [r("a", (1 << 21) + 100, 1)], [r("b", 0, 1)], [r("a", 0, 1)]]
