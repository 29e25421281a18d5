"""Show ``ckpttools graph`` results: rich tables and trees on a terminal, tab-separated lines when piped, JSON.

Data goes to stdout; notes (how the file was found, what the selection left out, files written) go
to stderr so piped output stays pure data.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape as _escape
from rich.tree import Tree

from ..graphs.functions import FunctionInfo
from ..graphs.nodes import NodeRow, Selection
from ..graphs.summary import GraphSummary, Source, TensorSpec
from ..graphs.tree import Scope
from .tables import FIXED, PATH, TEXT, Column, Grid
from .text import plural

JSON_SCHEMA = "ckpttools.graph/1"
TOP_OPS = 20  # op types listed in the terminal summary (all of them when piped or in JSON)
TABLE_INPUTS = 4  # inputs shown per row in the terminal table (all of them when piped or in JSON)
TREE_OPS = 4  # op types named per scope in the tree
TERMINAL_ROWS = 200  # node rows drawn on a terminal without --limit (rich lays out ~1k rows/s); piped: all


def shape_text(shape: Sequence[int | None] | None) -> str:
    """``[?, 28, 28, 1]``; ``<unknown>`` when even the rank is unknown."""
    if shape is None:
        return "<unknown>"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def attrs_text(attrs: dict[str, Any]) -> str:
    """``dtype=float32 kernel=3x3 strides=2x2 padding=SAME``: the attributes as greppable ``key=value``."""
    parts = []
    for key, value in attrs.items():
        if key == "shape":
            value = shape_text(value).replace(" ", "")
        elif isinstance(value, list):
            value = "x".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return " ".join(parts)


def source_title(source: Source) -> str:
    """``model.meta (meta_graph, TensorFlow 2.21.0)``."""
    kind = source.format + (", text" if source.text else "")
    if source.tags:
        kind += f", tags {','.join(source.tags)}"
    if source.tensorflow_version:
        kind += f", TensorFlow {source.tensorflow_version}"
    elif source.producer is not None:
        kind += f", GraphDef version {source.producer}"
    return f"{source.path} ({kind})"


def selection_notes(selection: Selection, limit: int | None) -> list[str]:
    """What the user should know about what --scopes/--op/--limit left out."""
    notes = []
    for pattern in selection.unmatched_patterns:
        notes.append(f"pattern '{pattern}' matched no node")
    for op, close in selection.unknown_ops.items():
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        notes.append(f"no node has op '{op}'{hint}")
    shown = len(selection.shown)
    if limit is not None and shown < selection.matched:
        notes.append(f"showing the first {shown} of {selection.matched} nodes (--limit {limit})")
    elif selection.matched < selection.total:
        notes.append(f"{selection.matched} of {selection.total} nodes selected")
    return notes


class GraphOutput:
    """Where graph views go: rich on a terminal, tab-separated lines when piped."""

    def __init__(self, console: Console, errors: Console) -> None:
        self.console = console
        self.errors = errors
        self.plain = not console.is_terminal

    @classmethod
    def for_stdout(cls) -> GraphOutput:
        return cls(Console(soft_wrap=False), Console(stderr=True))

    def notes(self, notes: Sequence[str]) -> None:
        for note in notes:
            self.errors.print(f"[dim]note:[/dim] {_escape(note)}", highlight=False, soft_wrap=True)

    def _lines(self, rows: Sequence[Sequence[Any]]) -> None:
        sys.stdout.write("".join("\t".join(str(field) for field in row) + "\n" for row in rows))

    # --- nodes ---------------------------------------------------------------------------------------

    def nodes(self, rows: Sequence[NodeRow], title: str | None = None, limit: int | None = None) -> None:
        """One row per node: name, op, inputs, device, attributes.

        On a terminal, a big table without ``--limit`` shows its first ``TERMINAL_ROWS`` rows and says
        how to see the rest: laying out thousands of rows takes rich seconds, and nobody reads them
        scrolling past; piped output always has every row.
        """
        if self.plain:
            self._lines([_plain_node(row) for row in rows])
            return
        total = len(rows)
        if limit is None and total > TERMINAL_ROWS:
            rows = rows[:TERMINAL_ROWS]
            self.notes([f"showing the first {TERMINAL_ROWS} of {total:,} nodes on the terminal; "
                        "--limit N shows N, piped output (| less) shows all"])
        with_device = any(row.device for row in rows)  # most graphs have none: no empty column then
        # an op type is one word; attributes (key=value words) wrap first, then inputs, then names at '/'
        columns = [Column("name", PATH), Column("op", FIXED), Column("inputs", PATH, give=1)]
        columns += [Column("device", give=1)] * with_device + [Column("attributes", give=2)]
        grid = Grid(_escape(title or ""), columns)
        for row in rows:
            grid.add_row([row.name, row.op, _inputs_text(row.inputs)] + [row.device] * with_device
                         + [attrs_text(row.attrs)])
        self.console.print(grid.renderable(), highlight=False)

    def functions(self, functions: Sequence[FunctionInfo], limit: int | None) -> None:
        """Each library function with its signature and nodes."""
        if self.plain:
            self._lines([[f.name, *_plain_node(row)] for f in functions for row in f.nodes[:limit]])
            return
        if not functions:
            self.errors.print("note: the graph has no function library", highlight=False)
        for function in functions:
            signature = f"({', '.join(function.inputs)}) -> ({', '.join(function.outputs)})"
            self.console.print(f"[bold]{_escape(function.name)}[/bold] {_escape(signature)}  "
                               f"{_nodes_text(function.node_count)}", highlight=False, soft_wrap=True)
            if function.nodes:
                self.nodes(function.nodes[:limit], limit=limit)

    # --- summary -------------------------------------------------------------------------------------

    def summary(self, summary: GraphSummary) -> None:
        """Versions, size, op mix, variables, inputs, outputs, signatures, collections, saver, functions."""
        if self.plain:
            self._lines(_plain_summary(summary))
            return
        print_ = self.console.print
        print_(f"[bold]{_escape(source_title(summary.source))}[/bold]", highlight=False)
        for line in _headline(summary):
            print_(line, highlight=False, markup=False)
        ops = summary.ops[:TOP_OPS]
        more = len(summary.ops) - len(ops)
        print_(_table("ops" + (f" (top {TOP_OPS} of {len(summary.ops)})" if more else ""),
                      ("op", "count"), [(op, f"{count:,}") for op, count in ops], right=(1,)))
        print_(_table(f"variables ({len(summary.variables)})",
                      ("name", "op", "dtype", "shape", "parameters", "trainable", "role"),
                      [(v.name, v.op, v.dtype or "?", shape_text(v.shape), _count(v.parameters),
                        _yes_no(v.trainable), v.role) for v in summary.variables], right=(4,)))
        print_(_table("inputs (placeholders)", ("name", "dtype", "shape"),
                      [(p.name, p.dtype or "?", shape_text(p.shape)) for p in summary.placeholders]))
        print_(_table("likely outputs (nothing consumes them)", ("name", "op"), summary.outputs))
        if summary.signatures:
            rows = [(s.key, s.method_name, direction, t.key, t.name, t.dtype or "?", shape_text(t.shape))
                    for s in summary.signatures for direction, t in _signature_tensors(s)]
            print_(_table("signatures", ("signature", "method", "", "argument", "tensor", "dtype", "shape"), rows))
        if summary.collections:
            print_(_table("collections", ("name", "kind", "size"), summary.collections, right=(2,)))
        if summary.saver:
            print_(_table("saver", ("field", "value"), list(summary.saver.items())))
        if summary.functions:
            print_(_table(f"function library ({len(summary.functions)}; --functions lists their nodes)",
                          ("name", "nodes", "inputs", "outputs"),
                          [(f.name, f.node_count, ", ".join(f.inputs), ", ".join(f.outputs))
                           for f in summary.functions], right=(1,)))

    # --- tree ----------------------------------------------------------------------------------------

    def tree(self, source: Source, root: Scope) -> None:
        """Scopes with node counts and their commonest ops."""
        if self.plain:
            self._lines([(scope.path or "/", scope.nodes, _ops_text(scope, ":")) for scope in _walk(root)])
            return
        tree = Tree(f"[bold]{_escape(source.path)}[/bold]  {_nodes_text(root.nodes)}", guide_style="dim")
        _grow(tree, root)
        self.console.print(tree, highlight=False)


# --- helpers --------------------------------------------------------------------------------------------


def _plain_node(row: NodeRow) -> list[str]:
    return [row.name, row.op, ",".join(row.inputs), row.device, attrs_text(row.attrs)]


def _inputs_text(inputs: Sequence[str]) -> str:
    shown = ", ".join(inputs[:TABLE_INPUTS])
    return shown + (f", … +{len(inputs) - TABLE_INPUTS} more" if len(inputs) > TABLE_INPUTS else "")


def _nodes_text(count: int) -> str:
    return plural(count, "node")


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], right: Sequence[int] = ()) -> Any:
    """A summary table: the first column holds names (wrapping at '/'), right-aligned columns are counts."""
    grid = Grid(_escape(title), [Column(column, PATH if number == 0 else FIXED if number in right else TEXT,
                                        "right" if number in right else "left")
                                 for number, column in enumerate(columns)])
    for row in rows:
        grid.add_row([str(cell) for cell in row])
    if not rows:
        grid.add_row(["(none)"] + [""] * (len(columns) - 1), "dim")
    return grid.renderable()


def _headline(summary: GraphSummary) -> list[str]:
    source = summary.source
    lines = []
    if source.tensorflow_version:
        git = f" ({source.tensorflow_git_version})" if source.tensorflow_git_version else ""
        lines.append(f"written by TensorFlow {source.tensorflow_version}{git}")
    if source.producer is not None:
        lines.append(f"GraphDef version (producer) {source.producer}")
    trainable = "" if summary.trainable_parameters is None else f", {summary.trainable_parameters:,} trainable"
    lines.append(f"{plural(summary.node_count, 'node')}, {plural(len(summary.ops), 'op type')}, "
                 f"{plural(len(summary.variables), 'variable')}: {plural(summary.parameters, 'model parameter')} "
                 f"({summary.all_parameters:,} with optimizer and "
                 f"training state{trainable})")
    return lines


def _signature_tensors(signature: Any) -> list[tuple[str, TensorSpec]]:
    return [("in", t) for t in signature.inputs] + [("out", t) for t in signature.outputs]


def _plain_summary(summary: GraphSummary) -> list[list[Any]]:
    """``section<TAB>fields...`` lines: grep for a section, cut the fields."""
    source = summary.source
    lines: list[list[Any]] = [["graph", source.path, source.format, "text" if source.text else "binary"]]
    if source.tensorflow_version:
        lines.append(["tensorflow", source.tensorflow_version, source.tensorflow_git_version or "-"])
    if source.producer is not None:
        lines.append(["producer", source.producer])
    lines.append(["nodes", summary.node_count])
    trainable = "-" if summary.trainable_parameters is None else summary.trainable_parameters
    lines.append(["parameters", f"model={summary.parameters}", f"all={summary.all_parameters}",
                  f"trainable={trainable}"])  # named: three bare numbers would be a puzzle
    lines += [["op", op, count] for op, count in summary.ops]
    lines += [["variable", v.name, v.op, v.dtype or "?", shape_text(v.shape), _count(v.parameters).replace(",", ""),
               _yes_no(v.trainable), v.role] for v in summary.variables]
    lines += [["input", p.name, p.dtype or "?", shape_text(p.shape)] for p in summary.placeholders]
    lines += [["output", name, op] for name, op in summary.outputs]
    lines += [["signature", s.key, s.method_name, direction, t.key, t.name, t.dtype or "?", shape_text(t.shape)]
              for s in summary.signatures for direction, t in _signature_tensors(s)]
    lines += [["collection", name, kind, size] for name, kind, size in summary.collections]
    lines += [["saver", key, value] for key, value in (summary.saver or {}).items()]
    lines += [["function", f.name, f.node_count, ", ".join(f.inputs), ", ".join(f.outputs)] for f in summary.functions]
    return lines


def _ops_text(scope: Scope, sep: str) -> str:
    top = scope.ops.most_common(TREE_OPS)
    more = ", …" if len(scope.ops) > TREE_OPS else ""
    return ", ".join(f"{op}{sep}{count}" for op, count in top) + more


def _walk(scope: Scope) -> list[Scope]:
    out = [scope]
    for child in scope.children.values():
        out += _walk(child)
    return out


def _grow(branch: Tree, scope: Scope) -> None:
    for child in scope.children.values():
        ops = _escape(_ops_text(child, " "))
        label = f"[bold]{_escape(child.name)}[/bold]  {_nodes_text(child.nodes)}  [dim]{ops}[/dim]"
        _grow(branch.add(label), child)


# --- JSON ---------------------------------------------------------------------------------------------


def source_json(source: Source) -> dict[str, Any]:
    return {
        "path": source.path, "format": source.format, "text": source.text, "tags": list(source.tags),
        "tensorflow_version": source.tensorflow_version, "tensorflow_git_version": source.tensorflow_git_version,
        "producer": source.producer, "note": source.note,
    }  # fmt: skip


def node_json(row: NodeRow) -> dict[str, Any]:
    return {"name": row.name, "op": row.op, "inputs": list(row.inputs), "device": row.device, "attrs": row.attrs}


def selection_json(selection: Selection, scopes: Sequence[str], ops: Sequence[str], limit: int | None) -> dict:
    return {
        "scopes": list(scopes), "ops": list(ops), "limit": limit, "matched": selection.matched,
        "total": selection.total, "unmatched_patterns": selection.unmatched_patterns,
        "unknown_ops": selection.unknown_ops,
    }  # fmt: skip


def tensor_json(spec: TensorSpec) -> dict[str, Any]:
    return {"key": spec.key, "name": spec.name, "dtype": spec.dtype, "shape": spec.shape}


def function_json(function: FunctionInfo, with_nodes: bool, limit: int | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"name": function.name, "node_count": function.node_count,
                            "inputs": list(function.inputs), "outputs": list(function.outputs)}
    if with_nodes:
        item["nodes"] = [node_json(row) for row in function.nodes[:limit]]
    return item


def summary_json(summary: GraphSummary) -> dict[str, Any]:
    return {
        "node_count": summary.node_count,
        "ops": dict(summary.ops),
        "parameters": summary.parameters,
        "all_parameters": summary.all_parameters,
        "trainable_parameters": summary.trainable_parameters,
        "variables": [
            {"name": v.name, "op": v.op, "dtype": v.dtype, "shape": v.shape, "parameters": v.parameters,
             "trainable": v.trainable, "role": v.role}
            for v in summary.variables
        ],
        "placeholders": [tensor_json(p) for p in summary.placeholders],
        "outputs": [{"name": name, "op": op} for name, op in summary.outputs],
        "collections": [{"name": name, "kind": kind, "size": size} for name, kind, size in summary.collections],
        "saver": summary.saver,
        "signatures": [
            {"key": s.key, "method_name": s.method_name, "inputs": [tensor_json(t) for t in s.inputs],
             "outputs": [tensor_json(t) for t in s.outputs]}
            for s in summary.signatures
        ],
        "functions": [function_json(f, with_nodes=False) for f in summary.functions],
    }


def tree_json(scope: Scope) -> dict[str, Any]:
    return {
        "name": scope.name, "path": scope.path, "nodes": scope.nodes, "ops": dict(scope.ops.most_common()),
        "children": [tree_json(child) for child in scope.children.values()],
    }  # fmt: skip
