"""Check the crc32c of many byte ranges in files, in parallel threads, streaming.

Ranges are sorted by file and offset and cut into about ``workers`` groups of similar byte counts
(a big shard is split between threads, small shards share one). Each thread streams its group through
its own byte source (``storage.sources``: a local file, or a URL fetched in parallel ranged requests)
in chunks of ``chunk_size``, nearby ranges as one stream, checking each crc32c as the bytes arrive, so
memory stays near ``workers * chunk_size`` whatever the checkpoint size. Reads and crc32c both release
the GIL, so threads overlap I/O and hashing. ``verified`` runs such a check beside a copy made inside
the kernel (``filecopy``), which moves the bytes without showing them to us.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from ..errors import ChecksumError, MissingDataError
from ..formats.crc import crc32c
from . import sources

CHUNK_SIZE = 4 << 20
_GAP = 1 << 20  # ranges this close are read as one stream (the gap's bytes are read and skipped)


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
    options = sources.current_options()  # the storage options reach the worker threads explicitly
    if len(groups) <= 1:
        return [failure for group in groups for failure in _check_group(group, chunk_size, step, options)]
    from concurrent.futures import ThreadPoolExecutor  # (imports logging: only when there are threads to run)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda group: _check_group(group, chunk_size, step, options), groups))
    return [failure for result in results for failure in result]


@contextmanager
def verified(ranges: list[ByteRange]) -> Iterator[None]:
    """Check the crc32c of the source ``ranges`` on other threads while the body copies them.

    The kernel copies those bytes without showing them to us, so the source's checksums are read
    apart (page-cache reads: the copy brings the pages in, or this does for the copy). A mismatch
    or a short file raises on leaving the block, before the output can be put in place; an
    exception in the body stops the check.
    """
    if not ranges:
        yield
        return
    stop = threading.Event()
    result: list = []
    workers = max(1, default_workers() - 1)  # a core is left to the copy (on two cores: one checking thread)

    def check() -> None:
        try:
            result.append(check_ranges(ranges, workers, advance=lambda nbytes: _stop_if(stop)))
        except BaseException as exc:  # handed to the caller below
            result.append(exc)

    thread = threading.Thread(target=check, name="ckpttools-verify", daemon=True)
    thread.start()
    try:
        yield
    except BaseException:
        stop.set()
        raise
    finally:
        thread.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    if outcome:
        stored, reason = outcome[0]
        if reason == "checksum mismatch":
            raise ChecksumError(f"{stored.path}: checksum mismatch in '{stored.label}' (the data file is corrupt)")
        raise MissingDataError(f"{stored.path}: file too short for '{stored.label}' ({reason})")


class _Stopped(Exception):
    pass


def _stop_if(stop: threading.Event) -> None:
    if stop.is_set():
        raise _Stopped


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


def _spans(group: list[ByteRange]) -> list[list[ByteRange]]:
    """Runs of ranges read as one stream: in order, not overlapping, separated by at most ``_GAP`` bytes."""
    spans: list[list[ByteRange]] = []
    end = -1
    for r in group:
        if spans and end <= r.offset <= end + _GAP:
            spans[-1].append(r)
        else:
            spans.append([r])
        end = r.offset + r.size
    return spans


def _check_group(group: list[ByteRange], chunk_size: int, advance: Callable[[int], None], options: dict) -> list:
    failures: list[tuple[ByteRange, str]] = []
    with sources.open_source(group[0].path, options) as f:
        for span in _spans(group):
            failures += _SpanCheck(span, advance).run(f, chunk_size)
    return failures


class _SpanCheck:
    """Stream a span's bytes once (one request stream remotely), feeding each range's crc32c as they pass."""

    def __init__(self, span: list[ByteRange], advance: Callable[[int], None]) -> None:
        self._pending = iter(span)
        self._current: ByteRange | None = next(self._pending)
        self._start, self._end = span[0].offset, span[-1].offset + span[-1].size
        self._pos, self._crc = self._start, 0
        self._advance = advance
        self.failures: list[tuple[ByteRange, str]] = []

    def run(self, f: sources.ByteSource, chunk_size: int) -> list[tuple[ByteRange, str]]:
        for chunk in f.iter_chunks(self._start, self._end - self._start, chunk_size):
            self._feed(chunk)
        self._feed(b"")  # empty ranges right at the end
        while self._current is not None:  # the file ended first
            r = self._current
            left = r.offset + r.size - max(self._pos, r.offset)
            self.failures.append((r, f"file ends {left:,} bytes before the end of its data"))
            self._current = next(self._pending, None)
        return self.failures

    def _feed(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        used = 0
        while self._current is not None:
            r = self._current
            if self._pos < r.offset:  # a gap between ranges: skip it
                skip = min(r.offset - self._pos, len(view) - used)
                self._pos, used = self._pos + skip, used + skip
                if self._pos < r.offset:
                    return
            take = min(r.offset + r.size - self._pos, len(view) - used)
            if take > 0:  # a whole chunk goes as it is: crc32c copies a view into bytes first
                self._crc = crc32c(chunk if take == len(view) else view[used:used + take], self._crc)
                self._pos, used = self._pos + take, used + take
                self._advance(take)
            if self._pos < r.offset + r.size:
                return  # this chunk is used up
            if self._crc != r.crc:
                self.failures.append((r, "checksum mismatch"))
            self._current, self._crc = next(self._pending, None), 0
