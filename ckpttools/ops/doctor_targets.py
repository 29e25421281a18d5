"""What ``doctor``'s TARGET needs restored: the variables of a graph, a checkpoint or a registered model.

A ``.meta``, GraphDef or SavedModel graph is read with ``ckpttools.graphs`` (no TensorFlow): its variable
ops are what a Saver looks up. A SavedModel with a ``variables/`` checkpoint, or any checkpoint, gives
its stored variables; like SOURCE, these may be URLs. A name that is no path but a registered model
(``cnn5``) is built by ``ckpttools.tfcore`` in a scratch graph: the only path here that imports
TensorFlow. Partitioned graph variables (``emb/part_0``, ``emb/part_1``) are folded into the one
variable a checkpoint stores.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..errors import CkptError, NotFoundError
from ..info import METADATA, MODEL
from ..roles import classify
from ..storage import sources

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

    summary = summarize(load_graph(path))
    wanted = [Wanted(v.name, tuple(v.shape) if v.shape is not None and None not in v.shape else None, v.dtype,
                     v.role) for v in summary.variables]
    return Target(GRAPH, path, fold_partitions(wanted))


def fold_partitions(wanted: list[Wanted]) -> list[Wanted]:
    """``x/part_0``, ``x/part_1``... (a partitioned variable in a graph) become one ``x``, concatenated on axis 0."""
    groups: dict[str, list[tuple[int, Wanted]]] = {}
    for item in wanted:
        match = _PART.match(item.name)
        if match:
            groups.setdefault(match.group(1), []).append((int(match.group(2)), item))
    out = [item for item in wanted if not (_PART.match(item.name) and _PART.match(item.name).group(1) in groups)]
    for base, parts in groups.items():
        parts.sort(key=lambda pair: pair[0])
        shapes = [item.shape for _, item in parts]
        shape = None
        if all(s is not None and len(s) >= 1 for s in shapes) and len({s[1:] for s in shapes}) == 1:
            shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        first = parts[0][1]
        out.append(Wanted(base, shape, first.dtype, first.role, parts=len(parts)))
    return sorted(out, key=lambda item: item.name)


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
