"""The protobuf encoders give the bytes protobuf's own serializer gives (tensorboard's compiled protos)."""

from __future__ import annotations

import pytest
from tensorboard.compat.proto import tensor_shape_pb2, trackable_object_graph_pb2, versions_pb2

from ckpttools.formats.protowire import (
    as_int64,
    encode_field_bytes,
    encode_field_fixed32,
    encode_field_fixed64,
    encode_field_varint,
    encode_packed_varints,
    encode_varint,
    fields,
    packed_varints,
    read_varint,
)


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31 - 1, 2**32, 2**63 - 1, -1, -2**63, -300])
def test_varint_round_trip(value):
    raw = encode_varint(value)
    decoded, end = read_varint(raw, 0)
    assert end == len(raw)
    assert as_int64(decoded) == value


def test_shape_and_version_match_protobuf():
    shape = tensor_shape_pb2.TensorShapeProto()
    for size in (3, 0, 2**40, -1):
        shape.dim.add(size=size)
    ours = b"".join(encode_field_bytes(2, encode_field_varint(1, s) if s else b"") for s in (3, 0, 2**40, -1))
    assert ours == shape.SerializeToString()
    version = versions_pb2.VersionDef(producer=1, min_consumer=0, bad_consumers=[3, 300])
    ours = encode_field_varint(1, 1) + encode_packed_varints(3, [3, 300])
    assert ours == version.SerializeToString()
    assert packed_varints(dict((n, v) for n, _, v in fields(ours))[3]) == [3, 300]


def test_strings_and_nested_messages_match_protobuf():
    graph = trackable_object_graph_pb2.TrackableObjectGraph()
    node = graph.nodes.add()
    node.children.add(node_id=1, local_name="model")
    node.attributes.add(name="VARIABLE_VALUE", full_name="dense/kernel", checkpoint_key="model/.ATTRIBUTES/é")
    graph.nodes.add()
    child = encode_field_varint(1, 1) + encode_field_bytes(2, "model")
    attribute = (encode_field_bytes(1, "VARIABLE_VALUE") + encode_field_bytes(2, "dense/kernel")
                 + encode_field_bytes(3, "model/.ATTRIBUTES/é"))
    ours = encode_field_bytes(1, encode_field_bytes(1, child) + encode_field_bytes(2, attribute))
    ours += encode_field_bytes(1, b"")
    assert ours == graph.SerializeToString()


def test_fixed_fields_decode():
    raw = encode_field_fixed32(6, 0xA282EAD8) + encode_field_fixed64(7, 2**64 - 1)
    assert list(fields(raw)) == [(6, 5, 0xA282EAD8), (7, 1, 2**64 - 1)]
    assert encode_packed_varints(3, []) == b""
    with pytest.raises(ValueError):
        encode_field_varint(0, 1)
