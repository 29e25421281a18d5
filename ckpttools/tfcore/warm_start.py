"""Warm-start any tf.compat.v1 graph from a checkpoint (or .npz / safetensors), following a checked plan.

Values come from ckpttools' own reader, one tensor at a time, and are fed into
each variable's initializer, so it works on finalized graphs and puts no weights
into the graph (the ``.meta`` stays small). Unlike TensorFlow's
``init_from_checkpoint``, every matched global variable is restored, trainable
or not (batch-norm moving averages included), and the plan says what happened.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..checkpoint import open_checkpoint
from ..patterns import Selector
from ..transfer.plan import Plan, TargetVariable, make_plan
from .session import tf


@dataclass
class WarmStart:
    """A plan bound to a graph: ``restore(session)`` carries it out after variables are initialised.

    Example:
        >>> start = warm_start("runs/pretrain", scopes=["conv_block[1-3]"])
        >>> session.run(tf.compat.v1.global_variables_initializer())
        >>> start.restore(session)
    """

    source: str
    plan: Plan
    variables: dict[str, Any]  # target name -> tf variable

    def restore(self, session: Any) -> list[str]:
        """Assign every ``restored`` entry its source value; returns the target names restored."""
        done = []
        with open_checkpoint(self.source) as ckpt:
            for entry in self.plan.restored:
                variable = self.variables[entry.target.name]
                value = ckpt.get(entry.source.name)
                if entry.cast:
                    value = value.astype(variable.dtype.base_dtype.as_numpy_dtype)
                session.run(variable.initializer, {variable.initializer.inputs[1]: value})
                done.append(entry.target.name)
        return done


def target_variables(graph: Any | None = None) -> tuple[list[TargetVariable], dict[str, Any]]:
    """The graph's global variables as plan targets, and by name."""
    graph = graph or tf.compat.v1.get_default_graph()
    trainable = {id(v) for v in graph.get_collection(tf.compat.v1.GraphKeys.TRAINABLE_VARIABLES)}
    by_name, targets = {}, []
    for variable in graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES):
        name = variable.op.name
        by_name[name] = variable
        targets.append(TargetVariable(name, tuple(variable.shape.as_list()), variable.dtype.base_dtype.name,
                                      id(variable) in trainable))
    return targets, by_name


def warm_start(
    source: str,
    scopes: Sequence[str] = (),
    exclude: Sequence[str] = (),
    mapping: Sequence[str] = (),
    with_optimizer_state: bool = False,
    on_missing: str = "warn",
    on_shape_mismatch: str = "skip",
    on_dtype_mismatch: str = "skip",
    graph: Any | None = None,
    quiet: bool = False,
) -> WarmStart:
    """Plan a warm start of ``graph`` (default: the current graph) from ``source``.

    Args:
        source: anything ``open_checkpoint`` opens: prefix, run directory, SavedModel, .npz, .safetensors.
        scopes: source variables to take (the shared pattern language); all model variables if empty.
        exclude: patterns of source variables to leave out.
        mapping: ``OLD=NEW`` / ``re:REGEX=REPLACEMENT`` rules from source names to graph names.
        with_optimizer_state: also copy optimizer slots (never by default).
        on_missing, on_shape_mismatch, on_dtype_mismatch: policies, see ``ckpttools.transfer.plan``.
        quiet: no warning when the plan restores nothing (callers that show the plan themselves).

    Returns:
        A ``WarmStart``: inspect ``.plan`` (restored / new / skipped), then call ``.restore(session)``
        after initialising the variables.
    """
    targets, variables = target_variables(graph)
    with open_checkpoint(source) as ckpt:
        plan = make_plan(ckpt, targets, scopes, exclude, mapping, with_optimizer_state,
                         on_missing, on_shape_mismatch, on_dtype_mismatch)
    if not plan.restored and not quiet:
        warnings.warn(nothing_restored(plan), RestoredNothingWarning, stacklevel=2)
    return WarmStart(source, plan, variables)


class RestoredNothingWarning(UserWarning):
    """``warm_start`` found nothing to restore: almost always names that differ (a missing ``mapping``)."""


def nothing_restored(plan: Plan) -> str:
    """Why a plan restores nothing, naming the closest graph variables for the sources that found none."""
    text = f"warm_start from {plan.source} restores nothing"
    pairs = [(u.source.name, u.suggestion) for u in plan.unmatched if u.suggestion]
    if pairs:
        shown = ", ".join(f"'{source}' ~ '{target}'" for source, target in pairs[:3])
        return (f"{text}: no selected source variable has the name of a graph variable; closest: {shown}"
                f"{' ...' if len(pairs) > 3 else ''} (rename with mapping=['OLD=NEW'])")
    if plan.skipped:
        entry = plan.skipped[0]
        return f"{text}: {len(plan.skipped)} matches skipped, e.g. '{entry.target.name}' ({entry.reason})"
    names = [u.source.name for u in plan.unmatched[:3]]
    return f"{text}: no graph variable is close to the selected sources ({', '.join(names)}...)"


def frozen_filter(start: WarmStart, freeze: Sequence[str] | None):  # -> Callable[[list], list]
    """The ``TrainHooks.trainable`` filter: drop restored variables (``freeze == []``) or those matching patterns."""
    if freeze is None:
        return None
    if freeze:
        selector = Selector(freeze)
        return lambda variables: [v for v in variables if not selector.matches(v.op.name)]
    restored = {entry.target.name for entry in start.plan.restored}
    return lambda variables: [v for v in variables if v.op.name not in restored]

