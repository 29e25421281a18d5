"""Encoders for the bundle index messages, the mirror of ``messages``' parsers.

Fields are emitted in field-number order and proto3 defaults are left out, as
protobuf's C++ serializer does when TensorFlow's ``BundleWriter`` serializes
them (``tensor_bundle.proto``, ``tensor_shape.proto``, ``tensor_slice.proto``,
``versions.proto``), so our index entries are byte-identical to TensorFlow's.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence

from .messages import FULL_EXTENT
from .protowire import FIXED32, VARINT, encode_field_bytes, encode_field_varint, encode_key, encode_varint

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


_SHARD, _OFFSET, _SIZE = (encode_key(number, VARINT) for number in (3, 4, 5))
_CRC32C = encode_key(6, FIXED32)
_UINT32 = struct.Struct("<I")


def encode_bundle_entry(dtype: int, shape: Sequence[int], shard_id: int = 0, offset: int = 0, size: int = 0,
                        crc32c: int | None = None, slices: Sequence[Sequence[tuple[int, int]]] = ()) -> bytes:
    """A BundleEntryProto. ``crc32c`` is the masked checksum; None leaves it out (a sliced tensor's entry).

    Written once per tensor, so the common fields are joined directly (a rename of 20,000 tensors
    encodes 20,000 entries); dtype and shape come from a cache, checkpoints repeat a few shapes.
    """
    out = _dtype_and_shape(dtype, tuple(shape))
    if shard_id:
        out += _SHARD + encode_varint(shard_id)
    if offset:
        out += _OFFSET + encode_varint(offset)
    if size:
        out += _SIZE + encode_varint(size)
    if crc32c:
        out += _CRC32C + _UINT32.pack(crc32c)
    if slices:
        out += b"".join(encode_field_bytes(7, encode_slice(extents)) for extents in slices)
    return out


@functools.lru_cache(maxsize=1024)
def _dtype_and_shape(dtype: int, shape: tuple[int, ...]) -> bytes:
    return (encode_field_varint(1, dtype) if dtype else b"") + encode_field_bytes(2, encode_shape(shape))
