"""What `ckpttools ls` shows, as data: selection, hidden state, totals, scope tree.

Rendering (tables, trees, JSON) lives in ``cli.render``; this module decides
*what* is listed so scripts get exactly what the CLI prints.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

from ..checkpoint import Checkpoint
from ..info import MODEL, TensorInfo
from ..patterns import Selector

SORT_KEYS = ("name", "size")


class Totals(NamedTuple):
    """Counts over a set of variables; parameters count model variables only."""

    variables: int
    parameters: int
    nbytes: int

    @classmethod
    def of(cls, infos: Sequence[TensorInfo]) -> Totals:
        models = [info.shape for info in infos if info.role == MODEL]
        return cls(variables=len(infos), parameters=sum(map(math.prod, models)),
                   nbytes=sum(map(attrgetter("nbytes"), infos)))


class Listing(NamedTuple):
    """The variables selected for display and what was left out."""

    shown: list[TensorInfo]
    hidden: list[TensorInfo]  # selected, but optimizer/training state hidden without --all
    totals: Totals
    unmatched_patterns: list[str]

    @property
    def hidden_roles(self) -> dict[str, int]:
        return dict(Counter(info.role for info in self.hidden))


def list_variables(
    ckpt: Checkpoint, scopes: Sequence[str] = (), show_all: bool = False, sort: str = "name"
) -> Listing:
    """Select variables by scope pattern, hide non-model state unless ``show_all``.

    Example:
        >>> listing = list_variables(ckpt, scopes=["conv_block[1-3]"])
        >>> listing.totals.parameters
        1256
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {SORT_KEYS}, got {sort!r}")
    selector = Selector(scopes)
    selected = [info for info in ckpt if selector.matches(info.name)] if scopes else ckpt.variables
    shown = selected if show_all else [info for info in selected if info.role == MODEL]
    hidden = [] if show_all else [info for info in selected if info.role != MODEL]
    if sort == "size":
        shown = sorted(shown, key=lambda info: (-info.nbytes, info.name))
    return Listing(shown, hidden, Totals.of(shown), selector.unmatched(map(attrgetter("name"), ckpt)))


@dataclass
class ScopeNode:
    """One scope of the name hierarchy with totals over everything below it."""

    name: str
    variables: int = 0
    parameters: int = 0
    nbytes: int = 0
    children: dict[str, ScopeNode] = field(default_factory=dict)
    tensor: TensorInfo | None = None  # set on leaves


def scope_tree(infos: Sequence[TensorInfo]) -> ScopeNode:
    """Group variables by their ``/``-separated scopes, summing per scope."""
    root = ScopeNode("")
    for info in infos:
        node = root
        parts = info.name.split("/")
        for depth, part in enumerate(parts):
            _add(node, info)
            node = node.children.setdefault(part, ScopeNode(part))
            if depth == len(parts) - 1:
                node.tensor = info
        _add(node, info)
    return root


def _add(node: ScopeNode, info: TensorInfo) -> None:
    node.variables += 1
    node.parameters += info.size if info.role == MODEL else 0
    node.nbytes += info.nbytes
