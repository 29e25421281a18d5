"""The transfer plan: which target variable starts from which source tensor, and why not.

A plan is computed before anything runs, from names, shapes and dtypes only
(no TensorFlow, no values), so it can be printed, checked (``--strict``) and
scripted (``--json``). Every target variable of the new graph gets a status:

restored       its value comes from ``source`` (bitwise, or cast when allowed)
new            freshly initialised: not selected, or nothing in the source maps to it
skipped-shape  a source maps to it but the shapes differ (both shown)
skipped-dtype  a source maps to it but the dtypes differ

Selected source tensors that map to no target are listed as unmatched, with a
"did you mean" suggestion. Optimizer state is never copied unless asked.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import roles
from ..checkpoint import Checkpoint
from ..errors import NotFoundError, PatternError, TransferError
from ..info import METADATA, MODEL, TensorInfo
from ..patterns import Selector
from .rename import Renamer

RESTORED, NEW, SKIPPED_SHAPE, SKIPPED_DTYPE = "restored", "new", "skipped-shape", "skipped-dtype"
MISSING_POLICIES = ("warn", "error")  # a selected source variable with no target
SHAPE_POLICIES = ("skip", "error")  # target shape differs: start it fresh, or stop
DTYPE_POLICIES = ("skip", "cast", "error")  # target dtype differs: start fresh, cast the value, or stop


@dataclass(frozen=True)
class TargetVariable:
    """A global variable of the new graph, as the plan needs it."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool = True

    @property
    def role(self) -> str:
        return roles.classify(self.name)


@dataclass(frozen=True)
class PlanEntry:
    """What happens to one target variable."""

    target: TargetVariable
    status: str
    source: TensorInfo | None = None
    reason: str = ""
    cast: bool = False  # restored with a dtype cast (--on-dtype-mismatch cast)
    frozen: bool = False  # kept out of training (--freeze); see transfer.training
    lr_factor: float = 1.0  # times the run's learning rate (--lr-mult)


@dataclass(frozen=True)
class Unmatched:
    """A selected source tensor that no target variable takes."""

    source: TensorInfo
    mapped_name: str
    suggestion: str | None


@dataclass
class Plan:
    """The checked plan of a warm start."""

    source: str
    entries: list[PlanEntry] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)

    def with_status(self, status: str) -> list[PlanEntry]:
        return [entry for entry in self.entries if entry.status == status]

    @property
    def restored(self) -> list[PlanEntry]:
        return self.with_status(RESTORED)

    @property
    def new(self) -> list[PlanEntry]:
        return self.with_status(NEW)

    @property
    def skipped(self) -> list[PlanEntry]:
        return [entry for entry in self.entries if entry.status in (SKIPPED_SHAPE, SKIPPED_DTYPE)]

    def to_dict(self) -> dict[str, Any]:
        """The documented ``--json`` plan (schema ``ckpttools.plan/1``)."""
        return {
            "schema": "ckpttools.plan/1",
            "source": self.source,
            "variables": [_entry_json(entry) for entry in self.entries],
            "unmatched": [
                {"source": u.source.name, "mapped_name": u.mapped_name, "suggestion": u.suggestion}
                for u in self.unmatched
            ],
            "counts": {status: len(self.with_status(status)) for status in (RESTORED, NEW, SKIPPED_SHAPE,
                                                                             SKIPPED_DTYPE)},
        }


def make_plan(
    ckpt: Checkpoint,
    targets: Sequence[TargetVariable],
    scopes: Sequence[str] = (),
    exclude: Sequence[str] = (),
    mapping: Sequence[str] = (),
    with_optimizer_state: bool = False,
    on_missing: str = "warn",
    on_shape_mismatch: str = "skip",
    on_dtype_mismatch: str = "skip",
) -> Plan:
    """Match the selected source tensors to the target variables by (mapped) name.

    Example:
        >>> plan = make_plan(ckpt, targets, scopes=["conv_block[1-3]"], mapping=["Net/=cnn/"])
        >>> [e.target.name for e in plan.restored][:1]
        ['cnn/conv_block1/conv/bias']
    """
    _check_policy("on_missing", on_missing, MISSING_POLICIES)
    _check_policy("on_shape_mismatch", on_shape_mismatch, SHAPE_POLICIES)
    _check_policy("on_dtype_mismatch", on_dtype_mismatch, DTYPE_POLICIES)
    selected = _select(ckpt, scopes, exclude, with_optimizer_state)
    renamer = Renamer(mapping)
    by_target: dict[str, TensorInfo] = {}
    for info in selected:
        mapped = renamer(info.name)
        if mapped in by_target:
            raise PatternError(
                f"--map sends both '{by_target[mapped].name}' and '{info.name}' to '{mapped}'; "
                "each target can take one source (add --exclude or a more specific --map)"
            )
        by_target[mapped] = info
    target_names = {target.name for target in targets}
    plan = Plan(ckpt.prefix)
    for target in targets:
        source = by_target.get(target.name)
        plan.entries.append(_entry(target, source, on_shape_mismatch, on_dtype_mismatch))
    free_targets = [t.name for t in targets if by_target.get(t.name) is None]
    for mapped, info in by_target.items():
        if mapped not in target_names:
            close = difflib.get_close_matches(mapped, free_targets, n=1, cutoff=0.6)
            plan.unmatched.append(Unmatched(info, mapped, close[0] if close else None))
    if plan.unmatched and on_missing == "error":
        first = plan.unmatched[0]
        hint = f"; did you mean '{first.suggestion}'?" if first.suggestion else ""
        raise TransferError(
            f"{len(plan.unmatched)} selected source variables have no target, e.g. '{first.mapped_name}'{hint}"
        )
    return plan


def _select(ckpt: Checkpoint, scopes: Sequence[str], exclude: Sequence[str], with_optimizer_state: bool):
    chosen, dropped = Selector(scopes), Selector(exclude) if exclude else None
    selected = [
        info for info in ckpt
        if chosen.matches(info.name)
        and not (dropped and dropped.matches(info.name))
        and info.role != METADATA
        and (info.role == MODEL or with_optimizer_state)
    ]  # fmt: skip
    if not selected:
        what = f" matching {', '.join(scopes)}" if scopes else ""
        raise NotFoundError(f"{ckpt.prefix}: no variables{what} to transfer")
    return selected


def _entry(target: TargetVariable, source: TensorInfo | None, on_shape: str, on_dtype: str) -> PlanEntry:
    if source is None:
        return PlanEntry(target, NEW)
    if tuple(source.shape) != tuple(target.shape):
        reason = f"source {list(source.shape)} vs target {list(target.shape)}"
        if on_shape == "error":
            raise TransferError(f"'{target.name}': shape mismatch, {reason} (from '{source.name}')")
        return PlanEntry(target, SKIPPED_SHAPE, source, reason)
    if source.dtype != target.dtype:
        reason = f"source {source.dtype} vs target {target.dtype}"
        if on_dtype == "error":
            raise TransferError(f"'{target.name}': dtype mismatch, {reason} (from '{source.name}')")
        if on_dtype == "cast":
            return PlanEntry(target, RESTORED, source, f"cast {reason}", cast=True)
        return PlanEntry(target, SKIPPED_DTYPE, source, reason)
    return PlanEntry(target, RESTORED, source)


def _check_policy(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def _entry_json(entry: PlanEntry) -> dict[str, Any]:
    return {
        "target": entry.target.name,
        "status": entry.status,
        "source": entry.source.name if entry.source else None,
        "target_shape": list(entry.target.shape),
        "source_shape": list(entry.source.shape) if entry.source else None,
        "target_dtype": entry.target.dtype,
        "source_dtype": entry.source.dtype if entry.source else None,
        "trainable": entry.target.trainable,
        "frozen": entry.frozen,
        "lr_factor": entry.lr_factor,
        "role": entry.target.role,
        "reason": entry.reason,
    }
