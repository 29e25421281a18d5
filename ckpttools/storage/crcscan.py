"""Check the crc32c of many byte ranges in files, in parallel threads, streaming.

Ranges are sorted by file and offset and cut into about ``workers`` groups of similar byte counts
(a big shard is split between threads, small shards share one). Each thread streams its group through
its own byte source (``storage.sources``: a local file, or a URL fetched in parallel ranged requests)
in chunks of ``chunk_size``, nearby ranges as one stream (``spans``), checking each crc32c as the bytes arrive, so
memory stays near ``workers * chunk_size`` whatever the checkpoint size. Reads and crc32c both release
the GIL, so threads overlap I/O and hashing. ``verified`` runs such a check beside a copy made inside
the kernel (``filecopy``), which moves the bytes without showing them to us.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from ..errors import ChecksumError, MissingDataError
from ..formats.crc import crc32c
from . import sources
from .spans import ByteRange, read_span, spans

CHUNK_SIZE = 4 << 20


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


def _check_group(group: list[ByteRange], chunk_size: int, advance: Callable[[int], None], options: dict) -> list:
    failures: list[tuple[ByteRange, str]] = []
    with sources.open_source(group[0].path, options) as f:
        for span in spans(group):
            failures += _check_span(f, span, chunk_size, advance)
    return failures


def _check_span(f: sources.ByteSource, span: list[ByteRange], chunk_size: int, advance: Callable[[int], None]
                ) -> list[tuple[ByteRange, str]]:
    """Stream a span's bytes once (one request stream remotely), feeding each range's crc32c as they pass."""
    failures = []
    for index, pieces in read_span(f, span, chunk_size):
        r, crc, got = span[index], 0, 0
        for piece in pieces:
            crc = crc32c(piece, crc)
            got += len(piece)
            advance(len(piece))
        if got < r.size:
            failures.append((r, f"file ends {r.size - got:,} bytes before the end of its data"))
        elif crc != r.crc:
            failures.append((r, "checksum mismatch"))
    return failures
