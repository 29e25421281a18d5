"""Encoders for the bundle index messages, the mirror of ``messages``' parsers.

Fields are emitted in field-number order and proto3 defaults are left out, as
protobuf's C++ serializer does when TensorFlow's ``BundleWriter`` serializes
them (``tensor_bundle.proto``, ``tensor_shape.proto``, ``tensor_slice.proto``,
``versions.proto``), so our index entries are byte-identical to TensorFlow's.
"""

from __future__ import annotations

from collections.abc import Sequence

from .messages import FULL_EXTENT
from .protowire import encode_field_bytes, encode_field_fixed32, encode_field_varint

TENSOR_BUNDLE_VERSION = 1  # kTensorBundleVersion; kTensorBundleMinConsumer is 0 (omitted)


def encode_shape(shape: Sequence[int]) -> bytes:
    """A TensorShapeProto: one ``dim {size}`` per dimension (a size-0 dim is an empty Dim message)."""
    return b"".join(encode_field_bytes(2, encode_field_varint(1, size) if size else b"") for size in shape)


def encode_slice(extents: Sequence[tuple[int, int]]) -> bytes:
    """A TensorSliceProto; a full extent (start 0, length -1) is an empty Extent, as ``TensorSlice::AsProto``."""
    out = []
    for start, length in extents:
        if start == 0 and length == FULL_EXTENT:
            body = b""
        else:  # length sits in a oneof: written even when 0
            body = (encode_field_varint(1, start) if start else b"") + encode_field_varint(2, length)
        out.append(encode_field_bytes(1, body))
    return b"".join(out)


def encode_bundle_header(num_shards: int) -> bytes:
    """The BundleHeaderProto under key "": shard count, little-endian (the default), version {producer: 1}."""
    return encode_field_varint(1, num_shards) + encode_field_bytes(3, encode_field_varint(1, TENSOR_BUNDLE_VERSION))


def encode_bundle_entry(dtype: int, shape: Sequence[int], shard_id: int = 0, offset: int = 0, size: int = 0,
                        crc32c: int | None = None, slices: Sequence[Sequence[tuple[int, int]]] = ()) -> bytes:
    """A BundleEntryProto. ``crc32c`` is the masked checksum; None leaves it out (a sliced tensor's entry)."""
    parts = [encode_field_varint(1, dtype) if dtype else b"", encode_field_bytes(2, encode_shape(shape))]
    if shard_id:
        parts.append(encode_field_varint(3, shard_id))
    if offset:
        parts.append(encode_field_varint(4, offset))
    if size:
        parts.append(encode_field_varint(5, size))
    if crc32c:
        parts.append(encode_field_fixed32(6, crc32c))
    parts.extend(encode_field_bytes(7, encode_slice(extents)) for extents in slices)
    return b"".join(parts)
