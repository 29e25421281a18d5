"""``transfer``: plan a warm start of a registered model from a checkpoint, then fine-tune it.

The plan is computed against the very graph ``train`` builds (same builder, a
scratch graph), so what is printed is what happens. Training then runs with
``TrainHooks``: values restored after initialisation, frozen variables kept out
of the optimizer, gradients scaled per ``--lr-mult``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..training import datasets
from ..training.cluster import ClusterRun
from ..training.runconfig import RunConfig
from ..transfer.plan import Plan
from ..transfer.training import apply_training_rules
from .distributed import serve
from .graph import build_train
from .loop import StepCallback, TrainHooks, TrainResult, resolve_config
from .models import get_model
from .session import graph_session
from .train import train
from .warm_start import WarmStart, target_variables, warm_start

TRANSFER_FILE = "transfer.json"


@dataclass(frozen=True)
class TransferOptions:
    """What to take from the source and how to treat it (the CLI flags of ``ckpttools transfer``)."""

    source: str
    scopes: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    mapping: tuple[str, ...] = ()
    with_optimizer_state: bool = False
    on_missing: str = "warn"
    on_shape_mismatch: str = "skip"
    on_dtype_mismatch: str = "skip"
    freeze: tuple[str, ...] | None = None  # None: train everything; (): freeze what was restored; patterns
    lr_mult: tuple[tuple[str, float], ...] = field(default=())  # (pattern, factor): scale those gradients

    @property
    def strict(self) -> bool:
        return (self.on_missing, self.on_shape_mismatch, self.on_dtype_mismatch) == ("error", "error", "error")


@dataclass(frozen=True)
class TransferResult:
    plan: Plan | None  # None for a parameter server (it holds variables, it plans nothing)
    train: TrainResult | None  # None for the tasks of a cluster other than the chief


def plan_transfer(config: RunConfig, options: TransferOptions) -> WarmStart:
    """Build the training graph of ``config`` in a scratch graph and plan the warm start against it."""
    data = datasets.prepare(config.data, config.classes, config.per_class, config.validation, config.seed)
    config = resolve_config(config, data)
    with graph_session(config.seed) as (graph, _):
        build_train(get_model(config.model), config, len(data.train))
        start = warm_start(options.source, scopes=options.scopes, exclude=options.exclude, mapping=options.mapping,
                           with_optimizer_state=options.with_optimizer_state, on_missing=options.on_missing,
                           on_shape_mismatch=options.on_shape_mismatch, on_dtype_mismatch=options.on_dtype_mismatch,
                           graph=graph, quiet=True)
    start.plan = apply_training_rules(start.plan, options.freeze, options.lr_mult)
    return start


def transfer(config: RunConfig, out: str | os.PathLike, options: TransferOptions, *, resume: bool = False,
             force: bool = False, init_only: bool = False, on_step: StepCallback | None = None,
             on_plan: Callable[[Plan], None] | None = None, cluster: ClusterRun | None = None) -> TransferResult:
    """Warm-start ``config``'s model from ``options.source`` and fine-tune it into ``out``.

    Example:
        >>> options = TransferOptions("runs/pretrain", scopes=("conv_block[1-3]",), freeze=())
        >>> result = transfer(RunConfig(model="cnn5", classes=(5, 6, 7, 8, 9), steps=300), "runs/ft", options)
        >>> len(result.plan.restored), result.train.test.accuracy
    """
    if cluster is not None and cluster.task.job == "ps":  # needs neither the data nor the source: serve at once
        serve(cluster.task)
        return TransferResult(None, None)
    start = plan_transfer(config, options)
    if on_plan:  # e.g. print it: after planning, before anything is written
        on_plan(start.plan)
    hooks = TrainHooks(warm_start=lambda session: _restore(start, session), **_training_hooks(start.plan))
    result = train(config, out, resume=resume, force=force, on_step=on_step, hooks=hooks, init_only=init_only,
                   cluster=cluster)
    if cluster is None or cluster.task.is_chief:
        _save_transfer(Path(out), options, start.plan)
    return TransferResult(start.plan, result)


def _restore(start: WarmStart, session: Any) -> None:
    """Restore by name in the training graph (the plan was made on a scratch copy of it)."""
    _, variables = target_variables(session.graph)
    WarmStart(start.source, start.plan, variables).restore(session)


def _training_hooks(plan: Plan) -> dict[str, Any]:
    """``trainable`` and ``lr_scale`` hooks that do what the plan says (its ``frozen`` and ``lr_factor``)."""
    frozen = {entry.target.name for entry in plan.entries if entry.frozen}
    factors = {entry.target.name: entry.lr_factor for entry in plan.entries if entry.lr_factor != 1.0}
    hooks: dict[str, Any] = {}
    if frozen:
        hooks["trainable"] = lambda variables: [v for v in variables if v.op.name not in frozen]
    if factors:
        hooks["lr_scale"] = lambda variable: factors.get(variable.op.name, 1.0)
    return hooks


def parse_lr_mult(texts: Sequence[str]) -> tuple[tuple[str, float], ...]:
    """``PATTERN=FACTOR`` strings -> pairs; the first matching pattern wins."""
    rules = []
    for text in texts:
        pattern, _, factor = text.rpartition("=")
        try:
            value = float(factor)
        except ValueError:
            value = -1.0
        if not pattern or value < 0:
            raise ConfigError(f"--lr-mult '{text}': expected PATTERN=FACTOR with FACTOR >= 0, e.g. 'conv_block*=0.1'")
        rules.append((pattern, value))
    return tuple(rules)


def _save_transfer(out: Path, options: TransferOptions, plan: Plan) -> None:
    """Record where the weights came from beside run.json, so a run says how it started."""
    document = {"options": asdict(options), "plan": plan.to_dict()}
    (out / TRANSFER_FILE).write_text(json.dumps(document, indent=2) + "\n")


def load_transfer_options(run_dir: str | os.PathLike) -> TransferOptions | None:
    """The options a transfer run was started with (for ``--resume``), or None."""
    path = Path(run_dir) / TRANSFER_FILE
    if not path.is_file():
        return None
    options = json.loads(path.read_text())["options"]
    for key in ("scopes", "exclude", "mapping"):
        options[key] = tuple(options[key])
    options["freeze"] = None if options["freeze"] is None else tuple(options["freeze"])
    options["lr_mult"] = tuple((pattern, float(factor)) for pattern, factor in options["lr_mult"])
    return TransferOptions(**options)


__all__ = ["TransferOptions", "TransferResult", "load_transfer_options", "parse_lr_mult", "plan_transfer",
           "transfer"]
