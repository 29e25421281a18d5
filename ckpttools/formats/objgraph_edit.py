"""Edit a TF2 checkpoint's object graph (``TrackableObjectGraph``) when tensors leave the checkpoint.

A rewrite that drops tensors (``--strip-optimizer``, ``--scopes``) must drop them from the object
graph too, or TensorFlow's restore would look for keys that are gone. ``prune`` cuts the edges into
the given nodes (the optimizer), keeps the nodes still reachable from the root, renumbers them in
their original order, drops attributes whose ``checkpoint_key`` is no longer written and slot
references to removed nodes. Every other field (``registered_saver``, ``has_checkpoint_values``,
``optional_restore``...) is re-encoded unchanged, field by field, so nothing we do not parse is lost.

Field numbers, from ``tensorflow/core/protobuf/trackable_object_graph.proto``: graph ``nodes = 1``;
node ``children = 1`` (``ObjectReference``: ``node_id = 1``, ``local_name = 2``), ``attributes = 2``
(``SerializedTensor``: ``checkpoint_key = 3``), ``slot_variables = 3`` (``original_variable_node_id
= 1``, ``slot_variable_node_id = 3``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection

from .protowire import (
    FIXED32,
    FIXED64,
    LENGTH,
    VARINT,
    encode_field_bytes,
    encode_field_fixed32,
    encode_field_fixed64,
    encode_field_varint,
    fields,
)

Field = tuple[int, int, "int | bytes"]


def encode_field(number: int, wire_type: int, value: int | bytes) -> bytes:
    """One decoded field (as ``protowire.fields`` yields it) back to its bytes."""
    if wire_type == VARINT:
        return encode_field_varint(number, value)  # type: ignore[arg-type]
    if wire_type == LENGTH:
        return encode_field_bytes(number, value)  # type: ignore[arg-type]
    if wire_type == FIXED32:
        return encode_field_fixed32(number, value)  # type: ignore[arg-type]
    if wire_type == FIXED64:
        return encode_field_fixed64(number, value)  # type: ignore[arg-type]
    raise ValueError(f"unsupported wire type {wire_type}")


def _int_field(buf: bytes, number: int) -> int:
    for found, _, value in fields(buf):
        if found == number:
            return value  # type: ignore[return-value]
    return 0  # proto3: an absent field is its default


def _str_field(buf: bytes, number: int) -> str:
    for found, _, value in fields(buf):
        if found == number:
            return bytes(value).decode("utf-8", "replace")  # type: ignore[arg-type]
    return ""


def _renumber(buf: bytes, numbers: Collection[int], new_ids: dict[int, int]) -> bytes:
    """A reference message with its node-id fields (``numbers``) mapped through ``new_ids``."""
    out = []
    for number, wire_type, value in fields(buf):
        if number in numbers:
            value = new_ids[value]  # type: ignore[index]
            if value == 0:
                continue  # proto3 omits the default
        out.append(encode_field(number, wire_type, value))
    return b"".join(out)


def prune(graph: bytes, keep_key: Callable[[str], bool], cut: Collection[int] = ()) -> tuple[bytes, set[str]]:
    """The graph without the nodes in ``cut`` (and what only they reach) and without dropped keys.

    Returns the serialized graph and the checkpoint keys its remaining nodes still refer to.
    """
    nodes = [bytes(value) for number, _, value in fields(graph) if number == 1]  # type: ignore[arg-type]
    children = [[_int_field(value, 1) for number, _, value in fields(node) if number == 1] for node in nodes]
    reachable = {0}
    queue = deque([0])
    while queue:
        for child in children[queue.popleft()]:
            if child < len(nodes) and child not in reachable and child not in cut:
                reachable.add(child)
                queue.append(child)
    new_ids = {old: new for new, old in enumerate(sorted(reachable))}
    referenced: set[str] = set()
    out = []
    for old in sorted(reachable):
        parts = []
        for number, wire_type, value in fields(nodes[old]):
            if number == 1:
                if _int_field(value, 1) not in new_ids:  # type: ignore[arg-type]
                    continue
                value = _renumber(value, (1,), new_ids)  # type: ignore[arg-type]
            elif number == 2:
                key = _str_field(value, 3)  # type: ignore[arg-type]
                if not keep_key(key):
                    continue
                referenced.add(key)
            elif number == 3:
                if _int_field(value, 1) not in new_ids or _int_field(value, 3) not in new_ids:  # type: ignore[arg-type]
                    continue
                value = _renumber(value, (1, 3), new_ids)  # type: ignore[arg-type]
            parts.append(encode_field(number, wire_type, value))
        out.append(encode_field_bytes(1, b"".join(parts)))
    return b"".join(out), referenced


__all__ = ["encode_field", "prune"]
