"""The checkpoint protobuf messages we read, decoded from the wire format.

Field numbers are from TensorFlow's ``tensor_bundle.proto``,
``tensor_shape.proto``, ``tensor_slice.proto``, ``saved_tensor_slice.proto``,
``tensor.proto`` and ``trackable_object_graph.proto``. Unknown fields are
skipped, as protobuf itself does, so newer writers stay readable.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

from .protowire import (
    FIXED32,
    LENGTH,
    VARINT,
    WireError,
    as_int64,
    fields,
    packed_varints,
    typed_fields,
)

FULL_EXTENT = -1  # TensorSlice::kFullExtent
MAX_ELEMENTS = 2**63 // 16  # numpy's limit on an array's bytes, over the largest element (complex128)


@dataclass
class BundleHeader:
    num_shards: int = 0
    big_endian: bool = False
    producer: int = 0


class BundleEntry(NamedTuple):
    """A tensor's (or one slice's) index entry: what it holds and where its bytes lie.

    A named tuple: an index holds one per tensor, and a tuple is built in C, not through a Python ``__init__``.
    """

    dtype: int = 0
    shape: tuple[int, ...] = ()
    shard_id: int = 0
    offset: int = 0
    size: int = 0
    crc32c: int = 0
    slices: tuple[list[tuple[int, int]], ...] = ()


def parse_bundle_header(buf: bytes) -> BundleHeader:
    header = BundleHeader()
    for number, value in typed_fields(buf, {1: VARINT, 2: VARINT, 3: LENGTH}):
        if number == 1:
            header.num_shards = as_int64(value)
        elif number == 2:
            header.big_endian = value == 1
        elif number == 3:
            for _, sub_value in typed_fields(value, {1: VARINT}):
                header.producer = as_int64(sub_value)
    return header


def parse_bundle_entry(buf: bytes) -> BundleEntry:
    """Decode one index entry (a serialized BundleEntryProto)."""
    return parse_bundle_entries([buf])[0]


def parse_bundle_entries(bufs: Iterable[bytes]) -> list[BundleEntry]:
    """Decode index entries. This loop runs once per tensor, so the layout TensorFlow writes is read inline:
    dtype and shape, then shard_id, offset and size unless zero, then crc32c, each once, in field order. Any
    other entry (slices, a newer writer's fields, other orders, wire types or lengths) goes to the general
    decoder, which checks everything."""
    entries: list[BundleEntry] = []
    append = entries.append
    for buf in bufs:
        crc_at = len(buf) - 5  # where the last field, the crc (key 0x35, fixed32), starts
        # dtype (key 0x08) and the shape's length (key 0x12) in one byte each, the shape before the crc
        if (crc_at < 4 or buf[0] != 0x08 or buf[2] != 0x12 or buf[1] > 0x7F or buf[3] > 0x7F
                or buf[crc_at] != 0x35 or 4 + buf[3] > crc_at):
            append(_parse_bundle_entry_fields(buf))
            continue
        pos = 4 + buf[3]
        shape = parse_shape(buf[4:pos])
        varints = [0, 0, 0, 0, 0, 0]  # by field number: shard_id 3, offset 4, size 5
        for key in _SHARD_OFFSET_SIZE_KEYS:
            if pos < crc_at and buf[pos] == key:
                value = shift = 0
                pos += 1
                while True:  # the varint, inline (a call per tensor costs more): 7 bits a byte, low first
                    byte = buf[pos]
                    pos += 1
                    value |= (byte & 0x7F) << shift
                    if byte < 0x80 or pos >= crc_at or shift == 56:
                        break
                    shift += 7
                if byte > 0x7F:  # runs into the crc, or past 9 bytes (>= 2**63: negative): the general path's
                    pos = crc_at + 1
                varints[key >> 3] = value
        if pos != crc_at:
            append(_parse_bundle_entry_fields(buf))
            continue
        append(_new_tuple(BundleEntry, (buf[1], shape, varints[3], varints[4], varints[5],
                                        _unpack_uint32(buf, crc_at + 1)[0], ())))
    return entries


_ENTRY_TYPES = {1: VARINT, 2: LENGTH, 3: VARINT, 4: VARINT, 5: VARINT, 6: FIXED32, 7: LENGTH}
_SHARD_OFFSET_SIZE_KEYS = tuple(number << 3 | VARINT for number in (3, 4, 5))  # field number << 3 | wire type
_unpack_uint32 = struct.Struct("<I").unpack_from
_new_tuple = tuple.__new__  # BundleEntry(...) without the Python-level __new__ a NamedTuple adds


def _parse_bundle_entry_fields(buf: bytes) -> BundleEntry:
    fields = {}
    slices = []
    for number, value in typed_fields(buf, _ENTRY_TYPES):
        if number == 2:
            value = parse_shape(value)
        elif number in (3, 4, 5):
            value = as_int64(value)
        elif number == 7:
            slices.append(parse_slice(value))
        fields[number] = value
    return BundleEntry(fields.get(1, 0), fields.get(2, ()), fields.get(3, 0), fields.get(4, 0), fields.get(5, 0),
                       fields.get(6, 0), tuple(slices))


@lru_cache(maxsize=4096)
def parse_shape(buf: bytes) -> tuple[int, ...]:
    """Decode a TensorShapeProto into a tuple of dimension sizes (cached: most shapes repeat)."""
    dims = []
    for _, value in typed_fields(buf, {2: LENGTH}):
        size = 0
        for _, sub_value in typed_fields(value, {1: VARINT}):
            size = as_int64(sub_value)
        if size < 0:
            raise WireError(f"dimension {len(dims)} is {size}: a stored tensor has no unknown dimensions")
        dims.append(size)
    if math.prod(d for d in dims if d) > MAX_ELEMENTS:  # also for zero-element shapes: numpy refuses them
        raise WireError(f"shape {list(dims)} is larger than any array can be")
    return tuple(dims)


def parse_slice(buf: bytes) -> list[tuple[int, int]]:
    """Decode a TensorSliceProto into ``(start, length)`` per dim; -1 = full."""
    extents = []
    for _, value in typed_fields(buf, {1: LENGTH}):
        start, length = 0, FULL_EXTENT
        for sub, sub_value in typed_fields(value, {1: VARINT, 2: VARINT}):
            if sub == 1:
                start = as_int64(sub_value)
            else:
                length = as_int64(sub_value)
        extents.append((start, length))
    return extents


# --- V1 checkpoints (SavedTensorSlices) --------------------------------------


@dataclass
class SliceMeta:
    """One tensor of a V1 checkpoint's metadata entry."""

    name: str
    shape: tuple[int, ...]
    dtype: int
    slices: list[list[tuple[int, int]]]


@dataclass
class SavedSlice:
    """One stored slice of a V1 checkpoint, its values still encoded."""

    name: str
    extents: list[tuple[int, int]]
    tensor: bytes  # a serialized TensorProto


def parse_saved_tensor_slices(buf: bytes) -> tuple[list[SliceMeta] | None, SavedSlice | None]:
    """Decode a SavedTensorSlices value: the metadata (key "") or one slice."""
    meta, data = None, None
    for number, value in typed_fields(buf, {1: LENGTH, 2: LENGTH}):
        if number == 1:
            meta = [_parse_slice_meta(sub_value) for _, sub_value in typed_fields(value, {1: LENGTH})]
        else:
            data = _parse_saved_slice(value)
    return meta, data


def _parse_slice_meta(buf: bytes) -> SliceMeta:
    meta = SliceMeta("", (), 0, [])
    for number, value in typed_fields(buf, {1: LENGTH, 2: LENGTH, 3: VARINT, 4: LENGTH}):
        if number == 1:
            meta.name = value.decode("utf-8", "replace")
        elif number == 2:
            meta.shape = parse_shape(value)
        elif number == 3:
            meta.dtype = value
        elif number == 4:
            meta.slices.append(parse_slice(value))
    return meta


def _parse_saved_slice(buf: bytes) -> SavedSlice:
    saved = SavedSlice("", [], b"")
    for number, value in typed_fields(buf, {1: LENGTH, 2: LENGTH, 3: LENGTH}):
        if number == 1:
            saved.name = value.decode("utf-8", "replace")
        elif number == 2:
            saved.extents = parse_slice(value)
        elif number == 3:
            saved.tensor = value
    return saved


@dataclass
class TensorValues:
    """The value fields of a TensorProto, still raw: V1 stores values there."""

    content: bytes = b""
    by_field: dict[int, list] = field(default_factory=dict)


def parse_tensor_values(buf: bytes) -> TensorValues:
    """Collect a TensorProto's ``tensor_content`` and typed ``*_val`` fields."""
    values = TensorValues()
    for number, wire_type, value in fields(buf):
        if number == 4:
            if wire_type != LENGTH:
                raise WireError(f"tensor_content has wire type {wire_type}")
            values.content = value
        elif number >= 5 and number != 14:
            values.by_field.setdefault(number, []).append((wire_type, value))
    return values


# --- TF2 object graph (TrackableObjectGraph) ---------------------------------


@dataclass
class ObjectNode:
    """One object of a TF2 checkpoint's object graph."""

    children: list[tuple[int, str]] = field(default_factory=list)  # (node_id, local_name)
    attributes: list[tuple[str, str, str]] = field(default_factory=list)  # (name, full_name, key)
    slots: list[tuple[int, str, int]] = field(default_factory=list)  # (original_id, slot_name, slot_id)


def parse_object_graph(buf: bytes) -> list[ObjectNode]:
    """Decode a serialized TrackableObjectGraph into its list of nodes."""
    return [_parse_object_node(value) for _, value in typed_fields(buf, {1: LENGTH})]


def _parse_object_node(buf: bytes) -> ObjectNode:
    node = ObjectNode()
    for number, value in typed_fields(buf, {1: LENGTH, 2: LENGTH, 3: LENGTH}):
        if number == 1:
            node.children.append(_parse_reference(value))
        elif number == 2:
            node.attributes.append(_parse_serialized_tensor(value))
        elif number == 3:
            node.slots.append(_parse_slot_reference(value))
    return node


def _parse_reference(buf: bytes) -> tuple[int, str]:
    node_id, name = 0, ""
    for number, value in typed_fields(buf, {1: VARINT, 2: LENGTH}):
        if number == 1:
            node_id = value
        elif number == 2:
            name = value.decode("utf-8", "replace")
    return node_id, name


def _parse_serialized_tensor(buf: bytes) -> tuple[str, str, str]:
    out = ["", "", ""]
    for number, value in typed_fields(buf, {1: LENGTH, 2: LENGTH, 3: LENGTH}):
        out[number - 1] = value.decode("utf-8", "replace")
    return out[0], out[1], out[2]


def _parse_slot_reference(buf: bytes) -> tuple[int, str, int]:
    original, name, slot = 0, "", 0
    for number, value in typed_fields(buf, {1: VARINT, 2: LENGTH, 3: VARINT}):
        if number == 1:
            original = value
        elif number == 2:
            name = value.decode("utf-8", "replace")
        elif number == 3:
            slot = value
    return original, name, slot


__all__ = [
    "BundleEntry", "BundleHeader", "ObjectNode", "SavedSlice", "SliceMeta", "TensorValues",
    "packed_varints", "parse_bundle_entries", "parse_bundle_entry", "parse_bundle_header", "parse_object_graph",
    "parse_saved_tensor_slices", "parse_shape", "parse_slice", "parse_tensor_values",
]
