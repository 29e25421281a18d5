"""Warm-starting new models from checkpoints: the plan (here, no TensorFlow) and its execution (tfcore)."""

from .plan import Plan, PlanEntry, TargetVariable, make_plan
from .rename import Renamer

__all__ = ["Plan", "PlanEntry", "Renamer", "TargetVariable", "make_plan"]
