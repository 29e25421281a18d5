"""Raw snappy decompression, for SSTable blocks written with compression on.

TensorFlow 1.1 wrote checkpoint index blocks snappy-compressed before turning
compression off again in 1.2 (``tensor_bundle.cc``, ``TableBuilderOptions``).
Index blocks are small, so a pure-Python decoder is fast enough and spares a
native dependency. Format: https://github.com/google/snappy/blob/main/format_description.txt
"""

from __future__ import annotations

from .protowire import WireError, read_varint


class SnappyError(ValueError):
    """The bytes are not a valid raw snappy stream."""


def decompress(data: bytes, max_size: int) -> bytes:
    """Decompress a raw snappy block, refusing outputs larger than ``max_size``."""
    try:
        size, pos = read_varint(data, 0)
    except WireError as exc:
        raise SnappyError(f"bad snappy length: {exc}") from None
    if size > max_size or size > _MAX_RATIO * len(data):
        raise SnappyError(f"snappy block of {len(data)} bytes claims {size} bytes decompressed")
    try:
        out = _decode(data, pos, size)
    except IndexError:
        raise SnappyError("snappy stream ends inside an element") from None
    if len(out) != size:
        raise SnappyError(f"decompressed {len(out)} bytes, expected {size}")
    return bytes(out)


# Each element of a snappy stream expands to at most 64 bytes from 3 (a 2-byte-offset copy).
_MAX_RATIO = 22


def _decode(data: bytes, pos: int, size: int) -> bytearray:
    out = bytearray()
    end = len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:  # literal
            length = tag >> 2
            if length >= 60:
                nbytes = length - 59
                if pos + nbytes > end:
                    raise IndexError(pos)
                length = int.from_bytes(data[pos : pos + nbytes], "little")
                pos += nbytes
            length += 1
            if pos + length > end:
                raise SnappyError("literal runs past the end")
            out += data[pos : pos + length]
            pos += length
            continue
        if kind == 1:
            length = ((tag >> 2) & 7) + 4
            offset = ((tag >> 5) << 8) | data[pos]
            pos += 1
        else:
            nbytes = 2 if kind == 2 else 4
            if pos + nbytes > end:
                raise IndexError(pos)
            length = (tag >> 2) + 1
            offset = int.from_bytes(data[pos : pos + nbytes], "little")
            pos += nbytes
        if offset == 0 or offset > len(out):
            raise SnappyError("copy offset outside the output")
        start = len(out) - offset
        if offset >= length:
            out += out[start : start + length]
        else:  # overlapping copy repeats the last `offset` bytes
            out += (out[start:] * (length // offset + 1))[:length]
        if len(out) > size:
            raise SnappyError("output longer than declared")
    return out
