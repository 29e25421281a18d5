"""What a graph's Saver restores, read from the meta graph (no TensorFlow).

A ``MetaGraphDef``'s ``saver_def`` names the Saver's save tensor and restore op. Walking back from
them through the graph reaches its save and restore ops (``SaveV2``, ``RestoreV2``, ``SaveSlices``...):
their ``tensor_names`` constant lists the checkpoint keys, ``shape_and_slices`` the full shape of a
key saved in slices (a partitioned variable: ``"4 6 0,4:3,3"`` is columns 3-5 of a [4, 6] variable),
and an attribute their dtypes. A variable left out of the Saver's ``var_list`` is in none of them:
TensorFlow never looks it up.

The ``variables`` collection (serialized ``VariableDef`` messages) is what ``tf.compat.v1.train.Saver()``
saves by default; a partitioned variable's parts carry a ``save_slice_info_def`` naming the variable
the checkpoint stores and its full shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .nodes import dtype_name, input_node
from .protos import message_class

VARIABLES_COLLECTION = "variables"

# op -> (input holding tensor names, input holding shapes and slices or None, attribute holding dtypes)
_SAVER_OPS = {
    "SaveV2": (1, 2, "dtypes"), "RestoreV2": (1, 2, "dtypes"), "SaveSlices": (1, 2, "T"),
    "Save": (1, None, "T"), "Restore": (1, None, "dt"), "RestoreSlice": (1, 2, "dt"),
}  # fmt: skip
_ASSIGN_OPS = frozenset({"Assign", "AssignVariableOp"})


@dataclass(frozen=True)
class SliceInfo:
    """A partitioned variable's part: the variable the checkpoint stores and its full shape."""

    full_name: str
    full_shape: tuple[int, ...]


@dataclass(frozen=True)
class SavedKey:
    """A checkpoint key the Saver restores."""

    name: str
    full_shape: tuple[int, ...] | None  # known for a key restored in slices
    dtype: str | None
    slices: int = 0  # how many slices of it are restored (the parts of a partitioned variable)
    variables: tuple[str, ...] = ()  # the graph variables its restored value is assigned to


def collection_variables(meta: Any, collection: str = VARIABLES_COLLECTION) -> dict[str, SliceInfo | None] | None:
    """Variable node name -> its slice (None for a whole variable) for COLLECTION's ``VariableDef`` items;
    None when the meta graph has no such collection."""
    if meta is None or collection not in meta.collection_def:
        return None
    variable_def = message_class("VariableDef")
    out: dict[str, SliceInfo | None] = {}
    for item in meta.collection_def[collection].bytes_list.value:
        definition = variable_def.FromString(item)
        info = definition.save_slice_info_def if definition.HasField("save_slice_info_def") else None
        out[input_node(definition.variable_name)] = (
            SliceInfo(info.full_name, tuple(info.full_shape)) if info is not None and info.full_name else None)
    return out


def saver_keys(meta: Any, nodes: Sequence[Any]) -> list[SavedKey] | None:
    """The keys the meta graph's Saver saves and restores, by name; None when there is no ``saver_def``
    or its ops are not in the graph (a TF2 SavedModel saves through functions)."""
    if meta is None or not meta.HasField("saver_def"):
        return None
    saver = meta.saver_def
    by_name = {node.name: node for node in nodes}
    ops, assigned = _saver_ops(by_name, [saver.save_tensor_name, saver.restore_op_name])
    found: dict[str, SavedKey] = {}
    slices: dict[str, set[str]] = {}
    for op in ops:
        names_at, specs_at, dtype_attr = _SAVER_OPS[op.op]
        specs = _strings(by_name, op, specs_at) if specs_at is not None else []
        dtypes = _dtypes(op, dtype_attr)
        for i, name in enumerate(_strings(by_name, op, names_at)):
            spec = specs[i] if i < len(specs) else ""
            slices.setdefault(name, set()).update([spec] if spec else [])
            old = found.get(name) or SavedKey(name, None, None)
            variable = assigned.get(f"{op.name}:{i}")
            found[name] = SavedKey(name, old.full_shape or _full_shape(spec),
                                   old.dtype or (dtypes[i] if i < len(dtypes) else None), len(slices[name]),
                                   old.variables + ((variable,) if variable and variable not in old.variables else ()))
    return [found[name] for name in sorted(found)] or None


def _saver_ops(by_name: dict[str, Any], starts: list[str]) -> tuple[list[Any], dict[str, str]]:
    """The save and restore ops the start nodes depend on (the tensors they save are not followed), and the
    variable each restored tensor (``op:index``) is assigned to."""
    seen: set[str] = set()
    todo = [input_node(name) for name in starts if name]
    ops, assigned = [], {}
    while todo:
        name = todo.pop()
        node = by_name.get(name)
        if name in seen or node is None:
            continue
        seen.add(name)
        if node.op in _SAVER_OPS:
            ops.append(node)
            continue
        if node.op in _ASSIGN_OPS and len(node.input) >= 2:
            assigned[_through_identity(by_name, node.input[1])] = input_node(node.input[0])
        todo.extend(input_node(text) for text in node.input)
    return ops, assigned


def _through_identity(by_name: dict[str, Any], tensor: str) -> str:
    """The tensor (``op:index``) that TENSOR passes on unchanged through ``Identity`` ops."""
    seen = set()
    while True:
        op, _, index = tensor.partition(":")
        node = by_name.get(op)
        if node is None or node.op != "Identity" or not node.input or op in seen:
            return f"{op}:{index or 0}"
        seen.add(op)
        tensor = node.input[0]


def _strings(by_name: dict[str, Any], op: Any, index: int) -> list[str]:
    """The strings of the constant at input ``index`` of ``op``; one stored value stands for all."""
    const = by_name.get(input_node(op.input[index])) if index < len(op.input) else None
    if const is None or const.op != "Const":
        return []
    tensor = const.attr["value"].tensor
    values = [value.decode("utf-8", "replace") for value in tensor.string_val]
    size = 1
    for dim in tensor.tensor_shape.dim:
        size *= dim.size
    return values + values[-1:] * (size - len(values)) if values else []


def _dtypes(op: Any, attr: str) -> list[str]:
    if attr not in op.attr:
        return []
    value = op.attr[attr]
    return [dtype_name(t) for t in value.list.type] if value.WhichOneof("value") == "list" else [dtype_name(value.type)]


def _full_shape(spec: str) -> tuple[int, ...] | None:
    """``"4 6 0,4:3,3"`` -> (4, 6): the dimensions before the slice; None for a whole tensor (``""``)."""
    words = spec.split()
    try:
        return tuple(int(word) for word in words[:-1]) if len(words) > 1 else None
    except ValueError:
        return None
