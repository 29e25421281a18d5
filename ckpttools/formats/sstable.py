"""Reader for the immutable sorted tables TensorFlow keeps checkpoint indexes in.

Both the V2 bundle index (``PREFIX.index``) and V1 checkpoints are LevelDB-style
tables (``tensorflow/core/lib/io/table.cc``, ``format.cc``, ``block.cc``)::

    [data block 1] ... [data block N] [metaindex block] [index block] [footer]

footer (48 bytes)
    metaindex BlockHandle, index BlockHandle (each two varint64s: offset,
    size), zero padding to 40 bytes, then the magic 0xdb4775248b80fb57 (LE).
block
    entries, then uint32 restart offsets, then uint32 restart count. Each entry
    is ``varint32 shared, varint32 non_shared, varint32 value_length``, the
    key suffix (the key shares ``shared`` leading bytes with the previous key)
    and the value.
block trailer (5 bytes, after each block)
    compression type (0 none, 1 snappy) and the masked crc32c of block+type.

The index block maps the last key of each data block to its BlockHandle.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Iterator

from ..errors import NotFoundError
from ..storage.sources import open_source
from . import snappy
from .crc import crc32c, unmask
from .protowire import WireError, read_varint

MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
TRAILER_SIZE = 5
NO_COMPRESSION, SNAPPY_COMPRESSION = 0, 1
MAX_BLOCK_SIZE = 1 << 30  # a block is a few KB; refuse absurd lengths
_CACHED_BLOCKS = 4  # decoded data blocks kept by Table.get (V1 blocks hold values, up to ~256 KiB each)


class TableError(ValueError):
    """The bytes are not a well-formed table."""


def file_has_table_magic(path: str) -> bool:
    """True when the file at ``path`` ends with the table magic number."""
    try:
        source = open_source(path)
    except (OSError, ValueError, NotFoundError):
        return False
    try:
        if source.size < FOOTER_SIZE:
            return False
        return struct.unpack("<Q", source.read_at(source.size - 8, 8))[0] == MAGIC
    except (OSError, ValueError, NotFoundError):
        return False
    finally:
        source.close()


class Table:
    """A table read block by block from a file (or from bytes already in memory).

    Only the footer and the index block are read at open; data blocks are read
    when iterated or looked up, so memory stays bounded by one block.
    """

    def __init__(self, source: str | bytes, verify: bool = True) -> None:
        self.verify = verify
        if isinstance(source, bytes):
            self._data: bytes | None = source
            self._file = None
            self.size = len(source)
        else:
            self._data = None
            self._file = open_source(source)
            self.size = self._file.size
        try:
            self._index = self._open_index()
        except Exception:
            self.close()
            raise
        self._index_keys = [key for key, _ in self._index]
        self._cache: dict[int, dict[bytes, bytes]] = {}

    def _read_at(self, offset: int, size: int) -> bytes:
        if self._data is not None:
            return self._data[offset : offset + size]
        return self._file.read_at(offset, size)

    def _open_index(self) -> list[tuple[bytes, tuple[int, int]]]:
        if self.size < FOOTER_SIZE:
            raise TableError(f"file is {self.size} bytes, shorter than a table footer")
        footer = self._read_at(self.size - FOOTER_SIZE, FOOTER_SIZE)
        if struct.unpack_from("<Q", footer, FOOTER_SIZE - 8)[0] != MAGIC:
            raise TableError("no table magic number at the end (not a checkpoint table, or truncated)")
        try:
            _, pos = _read_handle(footer, 0)  # metaindex: unused by TensorFlow
            index_handle, _ = _read_handle(footer, pos)
            return [(key, _read_handle(value, 0)[0]) for key, value in _block_entries(self._block(index_handle))]
        except WireError as exc:
            raise TableError(f"unreadable footer or index: {exc}") from None

    def _block(self, handle: tuple[int, int]) -> bytes:
        offset, size = handle
        if size > MAX_BLOCK_SIZE or offset + size + TRAILER_SIZE > self.size - FOOTER_SIZE:
            raise TableError(f"block at offset {offset} with size {size} lies outside the file")
        raw = self._read_at(offset, size + TRAILER_SIZE)
        return _decode_block(raw, offset, self.verify)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key, value)`` in key order."""
        for _, handle in self._index:
            yield from _block_entries(self._block(handle))

    def entries(self) -> list[tuple[bytes, bytes]]:
        """Every ``(key, value)`` in key order, as one list: for tables read whole (a V2 index, whose entries
        all become the reader's), decoding block by block without resuming a generator per entry."""
        out: list[tuple[bytes, bytes]] = []
        for _, handle in self._index:
            out += _block_entries(self._block(handle))
        return out

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None; reads (and caches) one data block."""
        position = bisect_left(self._index_keys, key)  # first block whose last key is >= key
        if position == len(self._index):
            return None
        return self._block_dict(position).get(key)

    def _block_dict(self, position: int) -> dict[bytes, bytes]:
        """A data block as a dict, kept for the next lookups (V1 readers look up keys block by block)."""
        cached = self._cache.pop(position, None)
        if cached is None:
            cached = dict(_block_entries(self._block(self._index[position][1])))
            if len(self._cache) >= _CACHED_BLOCKS:
                self._cache.pop(next(iter(self._cache)))
        self._cache[position] = cached  # most recently used last
        return cached

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_table(data: bytes, verify: bool = True) -> list[tuple[bytes, bytes]]:
    """Every ``(key, value)`` of the table held in ``data``, in key order."""
    return Table(data, verify).entries()


def _read_handle(buf: bytes, pos: int) -> tuple[tuple[int, int], int]:
    offset, pos = read_varint(buf, pos)
    size, pos = read_varint(buf, pos)
    return (offset, size), pos


def _decode_block(raw: bytes, offset: int, verify: bool) -> bytes:
    """Check the trailer of ``raw`` (block + 5 trailer bytes) and return the contents."""
    size = len(raw) - TRAILER_SIZE
    block = raw[:size]
    kind = raw[size]
    if verify:
        stored = struct.unpack_from("<I", raw, size + 1)[0]
        if unmask(stored) != crc32c(raw[: size + 1]):
            raise TableError(f"block checksum mismatch at offset {offset}")
    if kind == NO_COMPRESSION:
        return block
    if kind == SNAPPY_COMPRESSION:
        try:
            return snappy.decompress(block, MAX_BLOCK_SIZE)
        except snappy.SnappyError as exc:
            raise TableError(f"block at offset {offset}: {exc}") from None
    raise TableError(f"block at offset {offset} has unknown compression type {kind}")
def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    """The ``(key, value)`` pairs of one block, in order; a list, not a generator, as this inner loop runs once
    per entry of an index (once per tensor)."""
    if len(block) < 4:
        raise TableError("block shorter than its restart count")
    num_restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    entries_end = len(block) - 4 * (num_restarts + 1)
    if entries_end < 0:
        raise TableError("block restart count larger than the block")
    entries = []
    append = entries.append
    pos = 0
    key = b""
    try:
        while pos < entries_end:
            shared, non_shared, value_length = block[pos : pos + 3]  # one byte each, in an index block
            if shared < 0x80 and non_shared < 0x80 and value_length < 0x80:
                pos += 3
            else:
                shared, pos = read_varint(block, pos)
                non_shared, pos = read_varint(block, pos)
                value_length, pos = read_varint(block, pos)
            start = pos + non_shared
            pos = start + value_length
            if shared > len(key) or pos > entries_end:
                raise TableError(f"corrupt block entry at byte {start - non_shared}")
            key = key[:shared] + block[start - non_shared : start]
            append((key, block[start:pos]))
    except WireError as exc:
        raise TableError(f"corrupt block entry: {exc}") from None
    return entries
