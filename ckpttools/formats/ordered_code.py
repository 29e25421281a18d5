"""The key under which a tensor *slice* is stored (``EncodeTensorNameSlice``).

From ``tensorflow/core/util/saved_tensor_slice_util.cc`` and
``tensorflow/core/lib/strings/ordered_code.cc``: the key is
``num(0) + string(name) + num(rank) + (signed(start) + signed(length))*rank``
where a full extent is start 0, length -1. ``num`` is a length byte followed by
big-endian bytes; ``string`` escapes 0x00 as 00 ff and 0xff as ff 00 and ends
with 00 01; ``signed`` is OrderedCode's order-preserving signed varint.
"""

from __future__ import annotations

from collections.abc import Sequence

# kLengthToHeaderBits: header bits that encode the length of a signed number.
_HEADER_BITS = [
    (0, 0), (0x80, 0), (0xC0, 0), (0xE0, 0), (0xF0, 0), (0xF8, 0),
    (0xFC, 0), (0xFE, 0), (0xFF, 0), (0xFF, 0x80), (0xFF, 0xC0),
]
# kBitsToLength[bits]: encoded length of a number with that many significant bits.
_BITS_TO_LENGTH = [1] * 7 + [2] * 7 + [3] * 7 + [4] * 7 + [5] * 7 + [6] * 7 + [7] * 7 + [8] * 7 + [9] * 7 + [10]


_ESCAPES = {0x00: b"\x00\xff", 0xFF: b"\xff\x00"}


def _num_increasing(value: int) -> bytes:
    body = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return bytes([len(body)]) + body


def _string(value: bytes) -> bytes:
    escaped = bytearray()
    for byte in value:
        escaped += _ESCAPES.get(byte, bytes([byte]))
    return bytes(escaped) + b"\x00\x01"


def _signed_increasing(value: int) -> bytes:
    magnitude = ~value if value < 0 else value
    if magnitude < 64:
        return bytes([(0x80 ^ value) & 0xFF])
    length = _BITS_TO_LENGTH[magnitude.bit_length()]
    buf = bytearray(value.to_bytes(10, "big", signed=True))
    begin = 10 - length
    buf[begin] ^= _HEADER_BITS[length][0]
    buf[begin + 1] ^= _HEADER_BITS[length][1]
    return bytes(buf[begin:])


def slice_key(name: str, extents: Sequence[tuple[int, int]]) -> bytes:
    """Return the table key of slice ``extents`` (``(start, length)``, -1 = full) of ``name``."""
    parts = [_num_increasing(0), _string(name.encode()), _num_increasing(len(extents))]
    for start, length in extents:
        parts.append(_signed_increasing(start))
        parts.append(_signed_increasing(length))
    return b"".join(parts)
