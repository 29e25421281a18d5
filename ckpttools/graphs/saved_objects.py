"""A TF2 SavedModel's variables as its object graph (``SavedObjectGraph``) lists them.

Each variable appears there once, under the object path by which ``ckpttools ls`` names it in the
SavedModel's checkpoint (``keras_api/metrics/0/count``, ``optimizer/learning_rate``). The graph's
``VarHandleOp`` nodes are a poor census: they carry bare names (``count``, ``learning_rate``) and
Keras 3 exports create two handles per variable. Counting from here makes ``graph --summary`` and
``ls`` agree; roles come from ``ls``'s reading of the SavedModel's variables where they can be read
(it also knows which variables are second copies).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import CkptError
from ..formats.messages import ObjectNode
from ..formats.objgraph import object_paths
from .nodes import dtype_name, shape_list


@dataclass(frozen=True)
class SavedVariable:
    """One variable of the object graph: its path, declared dtype and shape, and who owns it."""

    path: str
    dtype: str | None
    shape: list[int | None] | None
    trainable: bool
    optimizer: bool  # reached only through an optimizer (slots, iterations, learning rate)


def saved_variables(meta: Any) -> list[SavedVariable]:
    """The variables of a MetaGraphDef's object graph, in node order; empty when it has none (TF1)."""
    if meta is None or not meta.HasField("object_graph_def"):
        return []
    graph = meta.object_graph_def
    nodes = [
        ObjectNode(
            children=[(child.node_id, child.local_name) for child in node.children],
            slots=[(s.original_variable_node_id, s.slot_name, s.slot_variable_node_id) for s in node.slot_variables],
        )
        for node in graph.nodes
    ]
    paths = object_paths(nodes)
    paths.update(_slot_paths(nodes, paths))
    out = []
    for i, node in enumerate(graph.nodes):
        if node.WhichOneof("kind") != "variable":
            continue
        variable = node.variable
        path, optimizer = paths.get(i, (variable.name, False))
        out.append(SavedVariable(path, dtype_name(variable.dtype) if variable.dtype else None,
                                 shape_list(variable.shape), variable.trainable, optimizer))
    return out


def _slot_paths(nodes: list[ObjectNode], paths: dict[int, tuple[str, bool]]) -> dict[int, tuple[str, bool]]:
    """Slot variables (TF2 Keras 2's legacy optimizers) named as their checkpoint keys name them:
    ``<variable>/.OPTIMIZER_SLOT/<optimizer>/<slot>``; the object graph reaches them only through the
    optimizer's slot list, so they have no path of their own."""
    out = {}
    for owner, node in enumerate(nodes):
        for original, slot_name, slot in node.slots:
            if original in paths and owner in paths:
                out[slot] = (f"{paths[original][0]}/.OPTIMIZER_SLOT/{paths[owner][0]}/{slot_name}", True)
    return out


def checkpoint_roles(saved_model_path: str) -> dict[str, str]:
    """{name: role} as ``ls`` lists the SavedModel's variables; empty when they cannot be read."""
    from ..checkpoint import open_checkpoint  # the index only: no values are read

    directory = saved_model_path if os.path.isdir(saved_model_path) else os.path.dirname(saved_model_path)
    try:
        with open_checkpoint(directory or ".") as ckpt:
            return {info.name: info.role for info in ckpt}
    except CkptError:
        return {}
