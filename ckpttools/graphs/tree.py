"""Nodes grouped by name scope: ``cnn/conv_block1/Conv2D`` lives in scope ``cnn/conv_block1``.

Counts include every node below a scope, so a collapsed scope (``--depth``) still says how much it holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class Scope:
    """One name scope: how many nodes it holds (at any depth below), of which ops, and its sub-scopes."""

    name: str  # last component ("" for the root)
    path: str  # full scope path ("" for the root)
    nodes: int = 0
    ops: Counter = field(default_factory=Counter)
    children: dict[str, Scope] = field(default_factory=dict)

    @property
    def direct(self) -> int:
        """Nodes in this scope itself, not in a sub-scope."""
        return self.nodes - sum(child.nodes for child in self.children.values())


def scope_tree(nodes: Iterable[tuple[str, str]], depth: int | None = None) -> Scope:
    """Group ``(name, op)`` pairs by scope; scopes deeper than ``depth`` are folded into their ancestor.

    As in TensorBoard, a node named like a scope belongs to it: ``dense/kernel`` (the variable) sits in
    the scope ``dense/kernel`` with its ``read`` and ``Assign``.

    Example:
        >>> root = scope_tree([("cnn/conv/Conv2D", "Conv2D"), ("cnn/conv/Relu", "Relu"), ("loss", "Mean")])
        >>> root.nodes, root.children["cnn"].children["conv"].ops["Relu"]
        (3, 1)
    """
    pairs = list(nodes)
    scopes = {prefix for name, _ in pairs for prefix in _prefixes(name)}
    root = Scope("", "")
    for name, op in pairs:
        parts = name.split("/")
        if name not in scopes:
            parts.pop()
        _count(root, parts if depth is None else parts[:depth], op)
    return root


def _count(root: Scope, parts: list[str], op: str) -> None:
    """Add one node of ``op`` to the root and to each scope on the path ``parts``."""
    scope = root
    scope.nodes += 1
    scope.ops[op] += 1
    for level, part in enumerate(parts):
        child = scope.children.get(part)
        if child is None:
            child = scope.children[part] = Scope(part, "/".join(parts[: level + 1]))
        child.nodes += 1
        child.ops[op] += 1
        scope = child


def _prefixes(name: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``: every scope the name is inside."""
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
