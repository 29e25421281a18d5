"""``verify`` for a SavedModel: does ``variables/`` hold what ``saved_model.pb`` expects?

TF2 SavedModels list their variables in the object graph (``SavedVariable``: dtype, shape); node ``i`` of
that graph is node ``i`` of the checkpoint's own object graph, whose ``VARIABLE_VALUE`` attribute names
the checkpoint key. TF1 SavedModels (``SavedModelBuilder``) restore graph variables by op name. Either
way each expected variable must be in the index with the same shape and dtype. The graph is read with
``ckpttools.graphs`` (protobuf, never TensorFlow).
"""

from __future__ import annotations

import os
from typing import Any

from ..checkpoint import open_checkpoint
from ..errors import CkptError
from ..formats import messages, objgraph
from ..formats.protowire import WireError
from . import problems as P
from .problems import CheckpointReport, Problem

_VALUE = "VARIABLE_VALUE"


def check_saved_model(report: CheckpointReport, directory: str, prefix: str) -> None:
    """Add a problem for every variable the SavedModel graph expects that ``variables/`` lacks or stores differently."""
    from ..graphs import load_graph
    from ..graphs.nodes import dtype_name, shape_list

    try:
        graph = load_graph(directory)
        ckpt = open_checkpoint(prefix)
    except CkptError as exc:
        report.add(Problem(directory, f"saved_model.pb unreadable ({str(exc).split(': ', 1)[-1]})",
                           "export the SavedModel again", P.SAVED_MODEL))
        return
    with ckpt:
        stored = {info.key: info for info in ckpt}
        expected = _tf2_expected(graph.meta_graph, ckpt) if _has_objects(graph.meta_graph) else _tf1_expected(graph)
        pb = os.path.join(directory, "saved_model.pb")
        for key, name, shape, dtype in expected:
            info = stored.get(key) if key else None
            if info is None:
                report.add(Problem(pb, "expects this variable, which variables/ does not hold",
                                   "export the SavedModel again (variables/ is from another model)", P.SAVED_MODEL,
                                   name))
                continue
            want_shape = shape_list(shape) if shape is not None else None
            want_dtype = dtype_name(dtype).removesuffix("_ref") if dtype is not None else None
            if want_shape is not None and None not in want_shape and tuple(want_shape) != tuple(info.shape):
                report.add(Problem(pb, f"expects shape {want_shape}, variables/ stores {list(info.shape)}",
                                   "variables/ is from another model: export the SavedModel again", P.SAVED_MODEL,
                                   name))
            elif want_dtype and want_dtype != "invalid" and want_dtype != info.dtype:
                report.add(Problem(pb, f"expects dtype {want_dtype}, variables/ stores {info.dtype}",
                                   "variables/ is from another model: export the SavedModel again", P.SAVED_MODEL,
                                   name))


def _has_objects(meta: Any) -> bool:
    return meta is not None and meta.HasField("object_graph_def") and len(meta.object_graph_def.nodes) > 0


def _tf2_expected(meta: Any, ckpt: Any) -> list[tuple[str | None, str, Any, Any]]:
    """(checkpoint key, shown name, shape proto, dtype enum) of every SavedVariable, by shared node id."""
    try:
        raw = ckpt.get(objgraph.OBJECT_GRAPH_KEY)
        nodes = messages.parse_object_graph(bytes(raw.reshape(-1)[0]))
    except (CkptError, WireError, IndexError):
        nodes = []
    out = []
    for number, node in enumerate(meta.object_graph_def.nodes):
        if node.WhichOneof("kind") != "variable":
            continue
        keys = [key for name, _, key in nodes[number].attributes if name == _VALUE] if number < len(nodes) else []
        label = node.variable.name or f"object {number}"
        out.append((keys[0] if keys else None, label, node.variable.shape, node.variable.dtype))
    return out


def _tf1_expected(graph: Any) -> list[tuple[str | None, str, Any, Any]]:
    from ..graphs.nodes import VARIABLE_OPS

    out = []
    for node in graph.graph_def.node:
        if node.op in VARIABLE_OPS:
            shape = node.attr["shape"].shape if "shape" in node.attr else None
            dtype = node.attr["dtype"].type if "dtype" in node.attr else None
            out.append((node.name, node.name, shape, dtype))
    return out
