"""What ``doctor``'s TARGET needs restored: the variables of a graph, a checkpoint or a registered model.

A ``.meta``, GraphDef or SavedModel graph is read with ``ckpttools.graphs`` (no TensorFlow): what its
Saver restores (``graphs.saver``), else its ``variables`` collection, else every variable op; partitioned
graph variables (``emb/part_0``, ``emb/part_1``) fold into the one variable a checkpoint stores, as their
``save_slice_info`` says. A SavedModel with a ``variables/`` checkpoint, or any checkpoint, gives its
stored variables; like SOURCE, these may be URLs. A name that is no path but a registered model
(``cnn5``) is built by ``ckpttools.tfcore`` in a scratch graph: the only path here that imports
TensorFlow.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import CkptError, NotFoundError
from ..info import METADATA, MODEL
from ..roles import classify
from ..storage import sources

if TYPE_CHECKING:
    from ..graphs.load import LoadedGraph
    from ..graphs.saver import SavedKey, SliceInfo

GRAPH, CHECKPOINT, MODEL_NAME, ERROR_LOG = "graph", "checkpoint", "model", "error-log"
_PART = re.compile(r"^(.*)/part_(\d+)$")
_GRAPH_SUFFIXES = (".meta", ".pb", ".pbtxt")


@dataclass(frozen=True)
class Wanted:
    """A variable the target needs: name, shape and dtype when known, and its role."""

    name: str
    shape: tuple[int, ...] | None
    dtype: str | None = None
    role: str = MODEL
    parts: int = 0  # > 0: a partitioned graph variable folded from this many part_N variables


@dataclass
class Target:
    kind: str
    path: str
    variables: list[Wanted] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_target(target: str, classes: int = 10) -> Target:
    """Read TARGET's variables; NotFoundError when TARGET is neither a path nor a registered model."""
    found = _from_model(target, classes) if is_model_name(target) else _from_path(target)
    if not found.variables:
        raise NotFoundError(f"{target}: has no variables to restore ({found.kind}); nothing to match against")
    return found


def is_model_name(target: str) -> bool:
    """True when TARGET is no path or checkpoint prefix, so it names a registered model (TensorFlow needed)."""
    return not (os.path.exists(target) or "/" in target or os.sep in target or _is_checkpoint(target))


def _is_checkpoint(path: str) -> bool:
    from ..resolve import resolve

    try:
        resolve(path)
    except CkptError:
        return False
    return True


def _from_path(path: str) -> Target:
    is_dir = sources.isdir(path)
    is_saved_model = is_dir and sources.isfile(os.path.join(path, "variables", "variables.index"))
    if path.endswith(_GRAPH_SUFFIXES) or (is_dir and not is_saved_model and _has_graph_only(path)):
        return _from_graph(path)
    from ..checkpoint import open_checkpoint

    with open_checkpoint(path) as ckpt:
        wanted = [Wanted(info.name, tuple(info.shape), info.dtype, info.role) for info in ckpt
                  if info.role != METADATA]
        return Target(CHECKPOINT, ckpt.prefix, wanted, [ckpt.note] if ckpt.note else [])


def _has_graph_only(path: str) -> bool:
    return sources.isfile(os.path.join(path, "saved_model.pb"))


def _from_graph(path: str) -> Target:
    from ..graphs import load_graph, summarize
    from ..graphs.saver import collection_variables
    from ..graphs.summary import SAVED_VARIABLE

    graph = load_graph(path)
    summary = summarize(graph)
    wanted = [Wanted(v.name, tuple(v.shape) if v.shape is not None and None not in v.shape else None, v.dtype,
                     v.role) for v in summary.variables]
    if any(v.op == SAVED_VARIABLE for v in summary.variables):  # TF2: restored by its object graph
        return Target(GRAPH, path, wanted, ["what the graph restores: the variables of its object graph"])
    collection = collection_variables(graph.meta_graph)
    chosen, note = _restored(fold_partitions(wanted, collection or {}), graph, collection)
    return Target(GRAPH, path, chosen, [note])


def _restored(folded: list[Wanted], graph: LoadedGraph, collection: dict[str, SliceInfo | None] | None,
             ) -> tuple[list[Wanted], str]:
    """What TensorFlow looks up in a checkpoint for this graph, and a note saying how that was found: the keys
    its Saver restores (``saver_def``), else the ``variables`` collection (what ``Saver()`` saves), else
    every variable op."""
    from ..graphs.saver import VARIABLES_COLLECTION, saver_keys

    keys = saver_keys(graph.meta_graph, graph.graph_def.node)
    if keys is not None:
        by_name = {item.name: item for item in folded}
        chosen = [_keyed(key, by_name) for key in keys]
        how = f"the {len(keys)} keys its saver restores ({graph.meta_graph.saver_def.restore_op_name})"
    elif collection is not None:
        names = {info.full_name if info else name for name, info in collection.items()}
        chosen = [item for item in folded if item.name in names]
        how = f"the {len(chosen)} variables of its '{VARIABLES_COLLECTION}' collection (no saver in the graph)"
    else:
        return folded, f"what the graph restores: all its {len(folded)} variables (no saver or variables collection)"
    taken = {item.name for item in chosen} | {name for key in keys or () for name in key.variables}
    left = [item.name for item in folded if item.name not in taken]
    if left:
        shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
        how += f"; not looked for, as it does not restore them: {shown}"
    return chosen, "what the graph restores: " + how


def _keyed(key: SavedKey, by_name: dict[str, Wanted]) -> Wanted:
    """The target variable for a key: the graph variable of that name, or the one the key's value is assigned
    to (a Saver given other names), shaped as the key's slices say; else the key alone."""
    variable = by_name.get(key.name) or (by_name.get(key.variables[0]) if len(key.variables) == 1 else None)
    if variable is None:
        return Wanted(key.name, key.full_shape, key.dtype, classify(key.name), parts=key.slices)
    return replace(variable, name=key.name, shape=key.full_shape or variable.shape)


def fold_partitions(wanted: list[Wanted], slices: Mapping[str, SliceInfo | None] | None = None) -> list[Wanted]:
    """A partitioned variable's parts (``x/part_0``, ``x/part_1``...) become the one variable a checkpoint stores.

    ``slices`` (the ``variables`` collection's ``save_slice_info``) names and shapes it; a part it does not
    know is folded by name, joined on the one axis where the parts' shapes differ (axis 0, the partitioners'
    default, when they are equal: a guess only a graph without that collection needs).
    """
    slices = slices or {}
    groups: dict[str, list[Wanted]] = {}
    full_shapes: dict[str, tuple[int, ...]] = {}
    out = []
    for item in sorted(wanted, key=_part_order):
        info = slices.get(item.name)
        match = _PART.match(item.name) if item.name not in slices else None
        if info is not None:
            groups.setdefault(info.full_name, []).append(item)
            full_shapes[info.full_name] = info.full_shape
        elif match:
            groups.setdefault(match.group(1), []).append(item)
        else:
            out.append(item)
    for base, parts in groups.items():
        shape = full_shapes.get(base) or _joined([item.shape for item in parts])
        out.append(Wanted(base, shape, parts[0].dtype, parts[0].role, parts=len(parts)))
    return sorted(out, key=lambda item: item.name)


def _part_order(item: Wanted) -> tuple[str, int]:
    match = _PART.match(item.name)
    return (match.group(1), int(match.group(2))) if match else (item.name, -1)


def _joined(shapes: list[tuple[int, ...] | None]) -> tuple[int, ...] | None:
    """The shape of parts concatenated on the one axis where they differ (axis 0 when none does)."""
    if any(not shape for shape in shapes) or len({len(shape) for shape in shapes}) != 1:
        return None
    differ = [axis for axis in range(len(shapes[0])) if len({shape[axis] for shape in shapes}) > 1]
    if len(differ) > 1:
        return None
    axis = differ[0] if differ else 0
    return tuple(sum(shape[axis] for shape in shapes) if i == axis else size for i, size in enumerate(shapes[0]))


def _from_model(name: str, classes: int) -> Target:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        from ..tfcore.model_vars import registered_model_variables
    except ImportError:
        raise NotFoundError(f"{name}: no such file, and registered models need TensorFlow "
                            "(pip install 'ckpttools[tf]')") from None
    try:
        variables = registered_model_variables(name, classes)
    except CkptError as exc:
        raise NotFoundError(f"{name}: no such file or directory, and not a registered model ({exc})") from None
    wanted = [Wanted(v.name, tuple(v.shape), v.dtype, classify(v.name)) for v in variables]
    return Target(MODEL_NAME, name, wanted, [f"registered model '{name}' built for {classes} classes"])
