"""The read-ahead used by extract: order, bounded memory, errors and early exits."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ckpttools.errors import ChecksumError
from ckpttools.storage.prefetch import prefetch


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ckpttools-prefetch"]


def test_yields_every_item_in_order() -> None:
    chunks = [bytes([i]) * 1000 for i in range(50)]
    assert list(prefetch(iter(chunks))) == chunks
    assert list(prefetch(iter([]))) == []
    assert not _reader_threads()


def test_a_reader_error_arrives_after_the_chunks_before_it() -> None:
    def chunks() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise ChecksumError("x.data-00000-of-00001: checksum mismatch in 'w'")

    got = []
    with pytest.raises(ChecksumError, match="checksum mismatch in 'w'"):
        for chunk in prefetch(chunks()):
            got.append(chunk)
    assert got == [b"a", b"b"]
    assert not _reader_threads()


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_reads_at_most_depth_ahead_and_stops_when_abandoned(depth: int) -> None:
    produced = []

    def chunks() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    stream = prefetch(chunks(), depth=depth)
    assert next(stream) == 0
    assert next(stream) == 1
    stream.close()  # the consumer gives up, as on a write error or Ctrl-C
    assert not _reader_threads()
    # consumed 2, up to `depth` waiting in the queue, one more in the reader's hand when it saw the stop
    assert len(produced) <= 2 + depth + 1
