"""Which nodes are a graph's outputs: those nothing consumes, minus what is not the model.

Left out: checkpointing (``save/``, ``save_1/`` and the nodes the SaverDef names), initialisation
(``init``, ``init_all_tables``), gradients and optimizer updates (``gradients/``, ``training/``,
``Apply*`` ops), summaries, assignments, ``NoOp``/``Const``, dangling ``Shape`` helpers, unused
variable reads (``global_step/read``), and the unused outputs of a loop (its counter) when another
of its outputs is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .nodes import PLACEHOLDER_OPS, VARIABLE_OPS
from .scan import NodeScan

MACHINERY_SCOPE = re.compile(
    r"^(?:save|gradients|training|init|init_all_tables|report_uninitialized_variables|summaries)(?:_\d+)?(?:/|$)"
)
_NOT_OUTPUT_OPS = frozenset({
    "Shape", "ShapeN", "Size", "Rank",  # left dangling by gradient and loss helpers
    "NoOp", "Const", "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp",
    "AssignSubVariableOp", "SaveV2", "RestoreV2", "Save", "SaveSlices", "Restore", "RestoreSlice",
    "MergeV2Checkpoints", "VarIsInitializedOp", "IsVariableInitialized", "MergeSummary",
}) | VARIABLE_OPS | PLACEHOLDER_OPS  # fmt: skip
_UPDATE_OP = re.compile(r"^(?:Resource)?(?:Sparse)?Apply|Summary(?:V2)?$")
_READ_OPS = frozenset({"Identity", "ReadVariableOp"})
_LOOP_OPS = frozenset({"While", "StatelessWhile"})


def is_machinery(name: str, saver_nodes: set[str]) -> bool:
    """Checkpointing, initialisation, gradients, summaries: graph parts that are not the model."""
    return bool(MACHINERY_SCOPE.match(name)) or name in saver_nodes


def likely_outputs(scan: NodeScan, chosen: Sequence[int], saver_nodes: set[str]) -> list[tuple[str, str]]:
    """``(name, op)`` of the chosen nodes (indices into ``scan``) that look like the graph's outputs."""
    names, ops = scan.names, scan.ops
    candidates = [
        i for i in chosen
        if names[i] not in scan.consumed and ops[i] not in _NOT_OUTPUT_OPS and not _UPDATE_OP.search(ops[i])
        and not is_machinery(names[i], saver_nodes)
    ]  # fmt: skip
    sources = {i: scan.first_input(i) for i in candidates if ops[i] in _READ_OPS}
    looping = any(ops[i] == "Exit" or scan.op_of.get(sources.get(i)) in _LOOP_OPS for i in candidates)
    used_loops = _used_loops(scan) if looping else set()
    out = []
    for i in candidates:
        source_op = scan.op_of.get(sources.get(i))
        if source_op in VARIABLE_OPS:
            continue  # an unused variable read (global_step/read)
        if _loop_of(names[i], ops[i], sources.get(i), source_op) in used_loops:
            continue
        out.append((names[i], ops[i]))
    return out


def _used_loops(scan: NodeScan) -> set[str]:
    """Loops with at least one consumed output."""
    used = set()
    for i, (name, op) in enumerate(zip(scan.names, scan.ops)):
        if name in scan.consumed and op in ("Exit", "Identity"):
            source = scan.first_input(i)
            key = _loop_of(name, op, source, scan.op_of.get(source))
            if key is not None:
                used.add(key)
    return used


def _loop_of(name: str, op: str, source: str | None, source_op: str | None) -> str | None:
    """The loop whose output this node is: a v1 ``Exit``'s scope, or the ``While`` op an Identity reads."""
    if op == "Exit":
        return name.rsplit("/", 1)[0]
    if op == "Identity" and source_op in _LOOP_OPS:
        return source
    return None
