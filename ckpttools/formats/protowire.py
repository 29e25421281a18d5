"""A minimal protobuf wire-format decoder.

The checkpoint messages we need (``BundleEntryProto``, ``SavedTensorSlices``,
``TrackableObjectGraph`` ...) are few and small. ``tensorboard`` does not ship
their compiled protos, and TensorFlow's would import TensorFlow, so we decode
the wire format directly: a message is a sequence of ``(tag << 3 | wire_type)``
varint keys, each followed by a varint, a fixed 32/64-bit value or a
length-delimited byte string (https://protobuf.dev/programming-guides/encoding/).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return ``(value, next_pos)``. Values above 64 bits are refused."""
    result = 0
    shift = 0
    end = len(buf)
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift == 63 and byte > 1:  # the 10th byte holds only the 64th bit
                raise WireError("varint larger than 64 bits")
            return result, pos
        shift += 7
        if shift > 63:
            raise WireError("varint longer than 10 bytes")


def as_int64(value: int) -> int:
    """Reinterpret a decoded varint as a signed 64-bit integer."""
    value &= 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)`` for each field of a message.

    Varints come back as unsigned ints, fixed32/64 as unsigned ints, and
    length-delimited fields as ``bytes`` (sub-messages, strings, packed arrays).
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, pos = read_varint(buf, pos)
        elif wire_type == LENGTH:
            size, pos = read_varint(buf, pos)
            if pos + size > end:
                raise WireError("length-delimited field runs past the end")
            value = buf[pos : pos + size]
            pos += size
        elif wire_type == FIXED32:
            if pos + 4 > end:
                raise WireError("truncated fixed32")
            value = struct.unpack_from("<I", buf, pos)[0]
            pos += 4
        elif wire_type == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated fixed64")
            value = struct.unpack_from("<Q", buf, pos)[0]
            pos += 8
        else:
            raise WireError(f"unsupported wire type {wire_type}")
        if number == 0:
            raise WireError("field number 0")
        yield number, wire_type, value


def typed_fields(buf: bytes, types: dict[int, int]) -> Iterator[tuple[int, int | bytes]]:
    """Yield ``(field_number, value)`` for the fields listed in ``types`` (number -> wire type).

    Other field numbers are skipped, as protobuf does; a listed field with another wire type
    raises WireError, so callers always get an ``int`` or ``bytes`` as declared.
    """
    for number, wire_type, value in fields(buf):
        expected = types.get(number)
        if expected is None:
            continue
        if wire_type != expected:
            raise WireError(f"field {number} has wire type {wire_type}, expected {expected}")
        yield number, value


def packed_varints(value: int | bytes) -> list[int]:
    """Decode a repeated varint field that may be packed (bytes) or not (int)."""
    if isinstance(value, int):
        return [value]
    out = []
    pos = 0
    while pos < len(value):
        item, pos = read_varint(value, pos)
        out.append(item)
    return out
