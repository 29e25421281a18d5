"""Writer for the sorted tables TensorFlow keeps checkpoint indexes in (the mirror of ``sstable``).

Follows ``tensorflow/core/lib/io/table_builder.cc``, ``block_builder.cc`` and
``format.cc`` with the options ``BundleWriter::Finish`` uses
(``table_options.h`` defaults, compression off):

* data blocks of about ``block_size`` = 262144 bytes: a block is flushed once
  entries + restart array + count reach it. Keys are prefix-compressed
  (``varint32 shared, non_shared, value_length``, key suffix, value) with a
  restart point (a full key, offset listed at the block's end) every 16 keys;
* after each block a 5-byte trailer: type 0 (uncompressed) and the masked
  crc32c of block + type byte;
* an empty metaindex block, then the index block (restart interval 1) mapping,
  per data block, a short separator key (``FindShortestSeparator`` against the
  next block's first key; ``FindShortSuccessor`` for the last block) to the
  block's handle (``varint64 offset, size``);
* the 48-byte footer: metaindex and index handles, zero padding to 40 bytes,
  magic 0xdb4775248b80fb57.

Byte for byte this is what TensorFlow writes for the same keys and values.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from .crc import crc32c, mask
from .protowire import encode_varint
from .sstable import FOOTER_SIZE, MAGIC, NO_COMPRESSION

BLOCK_SIZE = 262144  # table::Options::block_size
RESTART_INTERVAL = 16  # table::Options::block_restart_interval


class BlockBuilder:
    """One block: prefix-compressed entries with restart points (``block_builder.cc``)."""

    def __init__(self, restart_interval: int = RESTART_INTERVAL) -> None:
        self.restart_interval = restart_interval
        self.buffer = bytearray()
        self.restarts = [0]
        self.counter = 0
        self.last_key = b""

    def empty(self) -> bool:
        return not self.buffer

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.counter < self.restart_interval:
            limit = min(len(self.last_key), len(key))
            while shared < limit and self.last_key[shared] == key[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buffer))
            self.counter = 0
        self.buffer += encode_varint(shared) + encode_varint(len(key) - shared) + encode_varint(len(value))
        self.buffer += key[shared:]
        self.buffer += value
        self.last_key = key
        self.counter += 1

    def size_estimate(self) -> int:
        return len(self.buffer) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buffer) + struct.pack(f"<{len(self.restarts) + 1}I", *self.restarts, len(self.restarts))


def shortest_separator(start: bytes, limit: bytes) -> bytes:
    """A short key >= ``start`` and < ``limit`` (``FindShortestSeparator``, bytewise order)."""
    n = min(len(start), len(limit))
    i = 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes((start[i] + 1,))
    return start


def short_successor(key: bytes) -> bytes:
    """A short key >= ``key`` (``FindShortSuccessor``): the first non-0xff byte incremented."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes((byte + 1,))
    return key


class TableWriter:
    """Writes ``(key, value)`` pairs, added in strictly increasing key order, as a table to ``f``."""

    def __init__(self, f: BinaryIO, block_size: int = BLOCK_SIZE) -> None:
        self.f = f
        self.block_size = block_size
        self.offset = 0
        self.data = BlockBuilder()
        self.index = BlockBuilder(restart_interval=1)
        self.last_key: bytes | None = None
        self.pending: tuple[int, int] | None = None  # handle of the last flushed block, not yet indexed

    def add(self, key: bytes, value: bytes) -> None:
        if self.last_key is not None and key <= self.last_key:
            raise ValueError(f"table keys must be added in increasing order: {key!r} after {self.last_key!r}")
        if self.pending is not None:
            self._index(shortest_separator(self.last_key, key))
        self.last_key = key
        self.data.add(key, value)
        if self.data.size_estimate() >= self.block_size:
            self._flush()

    def _flush(self) -> None:
        if self.data.empty():
            return
        self.pending = self._write_block(self.data)
        self.data = BlockBuilder()

    def _index(self, key: bytes) -> None:
        offset, size = self.pending
        self.index.add(key, encode_varint(offset) + encode_varint(size))
        self.pending = None

    def _write_block(self, block: BlockBuilder) -> tuple[int, int]:
        contents = block.finish()
        trailer = bytes((NO_COMPRESSION,))
        trailer += struct.pack("<I", mask(crc32c(trailer, crc32c(contents))))
        self.f.write(contents)
        self.f.write(trailer)
        handle = (self.offset, len(contents))
        self.offset += len(contents) + len(trailer)
        return handle

    def finish(self) -> int:
        """Write the last data block, the metaindex and index blocks and the footer; return the file size."""
        self._flush()
        metaindex = self._write_block(BlockBuilder())
        if self.pending is not None:
            self._index(short_successor(self.last_key))
        index = self._write_block(self.index)
        handles = b"".join(encode_varint(n) for n in (*metaindex, *index))
        footer = handles.ljust(FOOTER_SIZE - 8, b"\0") + struct.pack("<Q", MAGIC)
        self.f.write(footer)
        self.offset += len(footer)
        return self.offset
