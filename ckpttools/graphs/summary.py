"""What a graph is at a glance: size, op mix, versions, variables, inputs, likely outputs, collections,
saver and signatures.

The TensorFlow version is ``MetaInfoDef.tensorflow_version``/``tensorflow_git_version`` (meta graphs and
SavedModels only; a bare GraphDef records just ``versions.producer``, the GraphDef version). Trainability
comes from the ``trainable_variables`` collection, whose items are serialized ``VariableDef`` messages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..info import DUPLICATE, MODEL, OPTIMIZER
from ..roles import classify
from .functions import FunctionInfo, list_functions
from .load import LoadedGraph
from .nodes import PLACEHOLDER_OPS, VARIABLE_OPS, dtype_name, input_node, placeholder_shape, shape_list
from .outputs import is_machinery, likely_outputs
from .protos import message_class
from .saved_objects import SavedVariable, checkpoint_roles, saved_variables
from .saver import collection_variables
from .scan import NodeScan

TRAINABLE_COLLECTION = "trainable_variables"
SAVED_VARIABLE = "SavedVariable"  # the op shown for a TF2 SavedModel's object-graph variable


@dataclass(frozen=True)
class Source:
    """Where the graph came from and which TensorFlow wrote it."""

    path: str
    format: str  # graph_def | meta_graph | saved_model
    text: bool
    tags: tuple[str, ...]
    tensorflow_version: str | None
    tensorflow_git_version: str | None
    producer: int | None  # GraphDef version (versions.producer)
    note: str | None


@dataclass(frozen=True)
class Variable:
    """A variable op with its declared dtype and shape (or, in TF2 SavedModels, an object-graph variable)."""

    name: str
    op: str
    dtype: str | None
    shape: list[int | None] | None
    parameters: int | None  # None when a dimension is unknown
    trainable: bool | None  # None when the file has no trainable_variables collection
    role: str  # model | optimizer | training (the rules ``ckpttools ls`` uses)


@dataclass(frozen=True)
class TensorSpec:
    """A placeholder or signature tensor: ``key`` is the signature's argument name (else the node name)."""

    key: str
    name: str
    dtype: str | None
    shape: list[int | None] | None


@dataclass(frozen=True)
class Signature:
    """One SavedModel signature def."""

    key: str
    method_name: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


@dataclass
class GraphSummary:
    """Everything ``ckpttools graph --summary`` shows."""

    source: Source
    node_count: int
    ops: list[tuple[str, int]]  # op type -> count, most common first
    variables: list[Variable]
    parameters: int  # model variables with fully known shapes (no optimizer slots or training state)
    all_parameters: int
    trainable_parameters: int | None
    placeholders: list[TensorSpec]
    outputs: list[tuple[str, str]]  # (name, op) of the likely outputs
    collections: list[tuple[str, str, int]]  # (name, kind, size)
    saver: dict[str, Any] | None
    signatures: list[Signature]
    functions: list[FunctionInfo] = field(default_factory=list)


def source_info(graph: LoadedGraph) -> Source:
    """Versions and provenance of a loaded graph."""
    meta = graph.meta_graph.meta_info_def if graph.meta_graph is not None else None
    versions = graph.graph_def.versions
    return Source(
        path=graph.path, format=graph.format, text=graph.text, tags=graph.tags,
        tensorflow_version=(meta.tensorflow_version or None) if meta else None,
        tensorflow_git_version=(meta.tensorflow_git_version or None) if meta else None,
        producer=versions.producer if graph.graph_def.HasField("versions") else None,
        note=graph.note,
    )  # fmt: skip


def summarize(graph: LoadedGraph, nodes: Sequence[Any] | None = None) -> GraphSummary:
    """Summarise ``graph``; ``nodes`` (default: all) restricts the node-level parts to a selection.

    Example:
        >>> s = summarize(load_graph("sample_checkpoints/tf1_cnn"))
        >>> s.source.tensorflow_version, s.parameters, [p.name for p in s.placeholders]
        ('2.21.0', 2794, ['images', 'labels'])
    """
    scan = NodeScan.of(graph.graph_def.node)
    chosen = range(len(scan.names)) if nodes is None else _indices(scan, nodes)
    meta = graph.meta_graph
    saver_nodes = _saver_nodes(meta)
    objects = saved_variables(meta) if nodes is None else []
    if objects:  # a TF2 SavedModel: each variable once, by the path `ls` shows, with the role it gives
        roles = checkpoint_roles(graph.path)
        variables = [_saved_variable(v, roles) for v in objects]
        has_trainable = True
    else:
        variables = _variables(scan, chosen, _trainable_names(meta))
        has_trainable = meta is not None and TRAINABLE_COLLECTION in meta.collection_def
    known = [v for v in variables if v.parameters is not None]
    return GraphSummary(
        source=source_info(graph),
        node_count=len(chosen),
        ops=Counter(scan.ops[i] for i in chosen).most_common(),
        variables=variables,
        parameters=sum(v.parameters for v in known if v.role == MODEL),
        all_parameters=sum(v.parameters for v in known),
        trainable_parameters=(sum(v.parameters for v in known if v.trainable and v.role != DUPLICATE)
                              if has_trainable else None),
        placeholders=_placeholders(scan, chosen, saver_nodes, graph.graph_def.versions.producer),
        outputs=likely_outputs(scan, chosen, saver_nodes),
        collections=_collections(meta),
        saver=_saver(meta),
        signatures=_signatures(meta),
        functions=list_functions(graph.graph_def),
    )


def _indices(scan: NodeScan, nodes: Sequence[Any]) -> list[int]:
    """Positions of the selected nodes in the graph."""
    wanted = {node.name for node in nodes}
    return [i for i, name in enumerate(scan.names) if name in wanted]


def _trainable_names(meta: Any) -> set[str]:
    return set(collection_variables(meta, TRAINABLE_COLLECTION) or ())


def _saved_variable(variable: SavedVariable, roles: dict[str, str]) -> Variable:
    role = roles.get(variable.path) or (OPTIMIZER if variable.optimizer else classify(variable.path))
    return Variable(variable.path, SAVED_VARIABLE, variable.dtype, variable.shape, _count(variable.shape),
                    variable.trainable, role)


def _count(shape: list[int | None] | None) -> int | None:
    """Elements of a fully known shape; None when a dimension (or the rank) is unknown."""
    if shape is None or None in shape:
        return None
    return math.prod(shape)


def _variables(scan: NodeScan, chosen: Sequence[int], trainable: set[str]) -> list[Variable]:
    out = []
    for i in chosen:
        if scan.ops[i] not in VARIABLE_OPS:
            continue
        node = scan.nodes[i]
        attr = node.attr
        shape = shape_list(attr["shape"].shape) if "shape" in attr else None
        parameters = _count(shape)
        dtype = dtype_name(attr["dtype"].type) if "dtype" in attr else None
        out.append(Variable(node.name, node.op, dtype, shape, parameters,
                            (node.name in trainable) if trainable else None, classify(node.name)))
    return out


def _placeholders(scan: NodeScan, chosen: Sequence[int], saver_nodes: set[str], producer: int) -> list[TensorSpec]:
    """The graph's inputs: placeholders, except the saver's file name; shapes as TensorFlow imports them."""
    out = []
    for i in chosen:
        if scan.ops[i] in PLACEHOLDER_OPS and not is_machinery(scan.names[i], saver_nodes):
            attr = scan.nodes[i].attr
            dtype = dtype_name(attr["dtype"].type) if "dtype" in attr else None
            out.append(TensorSpec(scan.names[i], scan.names[i], dtype, placeholder_shape(scan.nodes[i], producer)))
    return out


def _saver_nodes(meta: Any) -> set[str]:
    """The nodes a SaverDef names (TF2 SavedModels save and restore through functions outside save/)."""
    if meta is None or not meta.HasField("saver_def"):
        return set()
    saver = meta.saver_def
    names = (saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name)
    return {input_node(name) for name in names if name}


def _collections(meta: Any) -> list[tuple[str, str, int]]:
    if meta is None:
        return []
    out = []
    for name in sorted(meta.collection_def):
        collection = meta.collection_def[name]
        kind = collection.WhichOneof("kind")
        size = len(getattr(collection, kind).value) if kind else 0
        out.append((name, kind or "empty", size))
    return out


def _saver(meta: Any) -> dict[str, Any] | None:
    if meta is None or not meta.HasField("saver_def"):
        return None
    saver = meta.saver_def
    return {
        "filename_tensor_name": saver.filename_tensor_name,
        "save_tensor_name": saver.save_tensor_name,
        "restore_op_name": saver.restore_op_name,
        "max_to_keep": saver.max_to_keep,
        "sharded": saver.sharded,
        "keep_checkpoint_every_n_hours": saver.keep_checkpoint_every_n_hours,
        "version": message_class("SaverDef").CheckpointFormatVersion.Name(saver.version),
    }


def _signatures(meta: Any) -> list[Signature]:
    if meta is None:
        return []
    out = []
    for key in sorted(meta.signature_def):
        signature = meta.signature_def[key]
        out.append(Signature(key, signature.method_name, _tensor_specs(signature.inputs),
                             _tensor_specs(signature.outputs)))
    return out


def _tensor_specs(tensors: Any) -> list[TensorSpec]:
    """Signature tensors sorted by argument name; sparse and composite tensors show their encoding."""
    out = []
    for key in sorted(tensors):
        info = tensors[key]
        encoding = info.WhichOneof("encoding")
        name = info.name if encoding == "name" else f"<{encoding}>"
        shape = shape_list(info.tensor_shape) if info.HasField("tensor_shape") else None
        out.append(TensorSpec(key, name, dtype_name(info.dtype) if info.dtype else None, shape))
    return out
