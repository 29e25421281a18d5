"""Graphviz DOT text for a graph: one node per op, name scopes as clusters, control edges dashed.

With ``depth``, everything inside a scope ``depth`` levels down is drawn as one box for that scope
(labelled with its node count), so a 10,000-node graph becomes a drawable picture of its blocks.
Edges to nodes outside the selection are left out; parallel edges between boxes are drawn once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..storage.atomic import atomic_path
from .nodes import NodeRow, input_node


@dataclass
class DotGraph:
    """The DOT text and what it holds."""

    text: str
    boxes: int  # drawn nodes (ops and collapsed scopes)
    edges: int
    collapsed: dict[str, int] = field(default_factory=dict)  # collapsed scope -> nodes inside


def to_dot(rows: Sequence[NodeRow], depth: int | None = None, title: str = "graph") -> DotGraph:
    """Draw ``rows`` (from ``describe_nodes``) as DOT; ``depth`` collapses deep scopes.

    Example:
        >>> dot = to_dot(describe_nodes(graph.graph_def.node), depth=2)
        >>> Path("cnn.dot").write_text(dot.text)   # then: dot -Tsvg cnn.dot -o cnn.svg
    """
    box_of, collapsed = _boxes(rows, depth)
    op_of = {row.name: row.op for row in rows}
    edges: dict[tuple[str, str], bool] = {}  # (source, target) -> control only
    for row in rows:
        target = box_of[row.name]
        for name in row.inputs:
            source = box_of.get(input_node(name))
            if source is None or source == target:
                continue
            control = name.startswith("^")
            edges[(source, target)] = edges.get((source, target), True) and control
    lines = [f"digraph {_quote(title)} {{", "  graph [rankdir=TB, compound=true];",
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica", fontsize=10];']
    boxes = list(dict.fromkeys(box_of.values()))
    lines += _clusters(boxes, lambda box: _node_line(box, op_of.get(box), collapsed.get(box)))
    for (source, target), control in edges.items():
        lines.append(f"  {_quote(source)} -> {_quote(target)}{' [style=dashed]' if control else ''};")
    lines.append("}")
    return DotGraph("\n".join(lines) + "\n", len(boxes), len(edges), collapsed)


def write_dot(dot: DotGraph, path: str, force: bool = False) -> str:
    """Write the DOT text to ``path`` atomically; an existing file is replaced only with ``force``."""
    with atomic_path(path, force) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(dot.text)
    return path


def _boxes(rows: Sequence[NodeRow], depth: int | None) -> tuple[dict[str, str], dict[str, int]]:
    """Node name -> the box it is drawn in (itself, or its scope at ``depth``), and each scope box's size.

    A node named like a collapsed scope (the variable ``dense/kernel`` beside ``dense/kernel/read``)
    joins that scope's box.
    """
    box_of: dict[str, str] = {}
    collapsed: dict[str, int] = {}
    if depth is None:
        return {row.name: row.name for row in rows}, collapsed
    for row in rows:
        parts = row.name.split("/")
        if len(parts) > depth:
            box = "/".join(parts[:depth])
            box_of[row.name] = box
            collapsed[box] = collapsed.get(box, 0) + 1
    for row in rows:
        if row.name not in box_of:
            box_of[row.name] = row.name
            if row.name in collapsed:
                collapsed[row.name] += 1
    return box_of, collapsed


def _clusters(boxes: Iterable[str], node_line) -> list[str]:
    """Nest boxes in ``subgraph cluster_*`` blocks, one per scope, in first-seen order."""
    tree: dict = {}
    for box in boxes:
        level = tree
        for part in box.split("/")[:-1]:
            level = level.setdefault(part + "/", {})
        level.setdefault(None, []).append(box)
    lines: list[str] = []
    _emit(tree, "", 1, lines, node_line)
    return lines


def _emit(level: dict, prefix: str, indent: int, lines: list[str], node_line) -> None:
    pad = "  " * indent
    for key, value in level.items():
        if key is None:
            lines += [pad + node_line(box) for box in value]
            continue
        path = prefix + key
        lines.append(f"{pad}subgraph {_quote('cluster_' + path.rstrip('/'))} {{")
        lines.append(f'{pad}  label={_quote(key.rstrip("/"))}; style="rounded"; color="#999999";')
        _emit(value, path, indent + 1, lines, node_line)
        lines.append(pad + "}")


def _node_line(box: str, op: str | None, inside: int | None) -> str:
    short = _escape(box.rsplit("/", 1)[-1])
    if inside is not None:
        return f'{_quote(box)} [label="{short}/ ({inside} nodes)", shape=box3d, fillcolor="#dde8f8"];'
    return f'{_quote(box)} [label="{short}\\n{_escape(op or "")}"];'


def _quote(text: str) -> str:
    """A DOT double-quoted ID."""
    return '"' + _escape(text) + '"'


def _escape(text: str) -> str:
    """Escape backslashes and double quotes for a DOT quoted string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')
