"""A minimal protobuf wire-format decoder and encoder.

The checkpoint messages we need (``BundleEntryProto``, ``SavedTensorSlices``,
``TrackableObjectGraph`` ...) are few and small. ``tensorboard`` does not ship
their compiled protos, and TensorFlow's would import TensorFlow, so we decode
the wire format directly: a message is a sequence of ``(tag << 3 | wire_type)``
varint keys, each followed by a varint, a fixed 32/64-bit value or a
length-delimited byte string (https://protobuf.dev/programming-guides/encoding/).

The ``encode_*`` functions mirror the decoder for the writers. They emit fields
the way protobuf's C++ serializer does (callers add fields in field-number
order and omit proto3 defaults), so what we write is byte-identical to what
TensorFlow writes for the same message.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

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


# --- encoding -----------------------------------------------------------------


_ONE_BYTE = tuple(bytes((n,)) for n in range(0x80))  # most varints in an index: no allocation for them


def encode_varint(value: int) -> bytes:
    """The varint bytes of ``value``; negative numbers as their 64-bit two's complement (10 bytes)."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    if value < 0:
        value &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_key(number: int, wire_type: int) -> bytes:
    """The key that starts field ``number`` of ``wire_type``."""
    if number < 1:
        raise ValueError(f"field number {number} is not positive")
    return encode_varint(number << 3 | wire_type)


def encode_field_varint(number: int, value: int) -> bytes:
    """A varint field (int32/int64/uint64/bool/enum); int32/int64 negatives take 10 bytes, as in protobuf."""
    return encode_key(number, VARINT) + encode_varint(value)


def encode_field_bytes(number: int, value: bytes | bytearray | memoryview | str) -> bytes:
    """A length-delimited field: bytes, a str (UTF-8), a serialized sub-message or a packed array."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return encode_key(number, LENGTH) + encode_varint(len(value)) + bytes(value)


def encode_field_fixed32(number: int, value: int) -> bytes:
    """A fixed32 field (little-endian uint32)."""
    return encode_key(number, FIXED32) + struct.pack("<I", value & 0xFFFFFFFF)


def encode_field_fixed64(number: int, value: int) -> bytes:
    """A fixed64 field (little-endian uint64)."""
    return encode_key(number, FIXED64) + struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)


def encode_packed_varints(number: int, values: Iterable[int]) -> bytes:
    """A packed repeated varint field; nothing at all when ``values`` is empty (as protobuf writes it)."""
    body = b"".join(encode_varint(v) for v in values)
    return encode_field_bytes(number, body) if body else b""
