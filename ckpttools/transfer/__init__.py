"""Warm-starting new models from checkpoints: the plan (here, no TensorFlow) and its execution (tfcore)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .rename import Renamer

if TYPE_CHECKING:
    from .plan import Plan, PlanEntry, TargetVariable, make_plan

_FROM_PLAN = ("Plan", "PlanEntry", "TargetVariable", "make_plan")


def __getattr__(name: str) -> Any:
    """The plan's names load on first use: ``rewrite`` needs only ``rename`` (PEP 562)."""
    if name in _FROM_PLAN:
        from . import plan

        return getattr(plan, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Plan", "PlanEntry", "Renamer", "TargetVariable", "make_plan"]
