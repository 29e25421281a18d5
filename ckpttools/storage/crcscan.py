"""Check the crc32c of many byte ranges in files, in parallel threads, streaming.

Ranges are sorted by file and offset and cut into about ``workers`` groups of similar byte counts
(a big shard is split between threads, small shards share one). Each thread reads its group
sequentially through its own file handle in chunks of ``chunk_size``, so memory stays near
``workers * chunk_size`` whatever the checkpoint size. File reads and crc32c both release the GIL,
so threads overlap I/O and hashing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..formats.crc import crc32c

CHUNK_SIZE = 4 << 20
_BUFFER = 1 << 20  # small ranges are served from one buffered read


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


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def check_ranges(ranges: Sequence[ByteRange], workers: int | None = None, chunk_size: int = CHUNK_SIZE,
                 advance: Callable[[int], None] | None = None) -> list[tuple[ByteRange, str]]:
    """Return ``(range, reason)`` for every range whose bytes are short or do not match their crc32c."""
    workers = workers or default_workers()
    groups = _groups(sorted(ranges, key=lambda r: (r.path, r.offset)), workers)
    step = advance or (lambda nbytes: None)
    if len(groups) <= 1:
        return [failure for group in groups for failure in _check_group(group, chunk_size, step)]
    from concurrent.futures import ThreadPoolExecutor  # (imports logging: only when there are threads to run)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda group: _check_group(group, chunk_size, step), groups))
    return [failure for result in results for failure in result]


def _groups(ranges: list[ByteRange], workers: int) -> list[list[ByteRange]]:
    """Consecutive runs of about equal byte counts; a group never mixes files."""
    total = sum(r.size for r in ranges)
    target = max(1, -(-total // workers))
    groups: list[list[ByteRange]] = []
    current: list[ByteRange] = []
    filled = 0
    for r in ranges:
        if current and (current[-1].path != r.path or filled >= target):
            groups.append(current)
            current, filled = [], 0
        current.append(r)
        filled += r.size
    if current:
        groups.append(current)
    return groups


def _check_group(group: list[ByteRange], chunk_size: int, advance: Callable[[int], None]) -> list:
    failures = []
    with open(group[0].path, "rb", buffering=_BUFFER) as f:
        for r in group:
            f.seek(r.offset)
            crc, left = 0, r.size
            while left:
                chunk = f.read(min(chunk_size, left))
                if not chunk:
                    break
                crc = crc32c(chunk, crc)
                left -= len(chunk)
                advance(len(chunk))
            if left:
                failures.append((r, f"file ends {left:,} bytes before the end of its data"))
            elif crc != r.crc:
                failures.append((r, "checksum mismatch"))
    return failures
