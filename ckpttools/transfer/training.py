"""How each variable of a transfer plan will train: frozen, or at a learning-rate factor (TF-free).

``--freeze`` with no pattern freezes what was restored; ``--freeze PATTERN`` freezes the trainable
variables it matches; ``--lr-mult PATTERN=F`` scales the rate of those it matches (the first rule that
matches wins), frozen ones excepted. A pattern that matches no trainable variable is an error naming the
flag, as ``--scopes`` matching nothing is: a typo must not silently train everything. The plan carries
the result, so the table, ``--dry-run --json`` and the training hooks all read the same answer.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence

from ..errors import ConfigError
from ..patterns import Selector
from .plan import RESTORED, Plan, PlanEntry


def apply_training_rules(plan: Plan, freeze: Sequence[str] | None = None,
                         lr_mult: Sequence[tuple[str, float]] = ()) -> Plan:
    """The plan with each entry's ``frozen`` and ``lr_factor`` set; ConfigError for a pattern matching nothing."""
    trainable = [entry.target.name for entry in plan.entries if entry.target.trainable]
    _check_patterns("--freeze", list(freeze or ()), trainable)
    _check_patterns("--lr-mult", [pattern for pattern, _ in lr_mult], trainable)
    freezer = Selector(freeze) if freeze else None
    rules = [(Selector([pattern]), factor) for pattern, factor in lr_mult]
    entries = []
    for entry in plan.entries:
        frozen = entry.target.trainable and _frozen(entry, freeze, freezer)
        factor = 1.0
        if entry.target.trainable and not frozen:
            factor = next((f for selector, f in rules if selector.matches(entry.target.name)), 1.0)
        entries.append(dataclasses.replace(entry, frozen=frozen, lr_factor=factor))
    return dataclasses.replace(plan, entries=entries)


def _frozen(entry: PlanEntry, freeze: Sequence[str] | None, freezer: Selector | None) -> bool:
    if freeze is None:
        return False
    if freezer is None:  # --freeze alone: what was restored
        return entry.status == RESTORED
    return freezer.matches(entry.target.name)


def _check_patterns(flag: str, patterns: list[str], names: list[str]) -> None:
    for pattern in Selector(patterns).unmatched(names):
        close = difflib.get_close_matches(pattern, _components(names), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"{flag} '{pattern}' matches no trainable variable of the model{hint} "
                          f"(`ckpttools transfer ... --dry-run` lists them)")


def _components(names: list[str]) -> list[str]:
    """Scope components and whole names: a pattern is usually one component (conv_block1) or a path."""
    found = dict.fromkeys(names)
    for name in names:
        found.update(dict.fromkeys(name.split("/")))
    return list(found)
