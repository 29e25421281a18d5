"""``ckpttools graph``: show a TensorFlow graph (.meta, .pb, .pbtxt, SavedModel) without TensorFlow."""

from __future__ import annotations

from typing import Any

import click

from .storage_options import storage_option
from .text import plural, print_json


@click.command()
@click.argument("file")
@storage_option
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN",
              help="Only nodes whose name matches PATTERN (repeatable; the language of 'ls --scopes').")
@click.option("--op", "ops", multiple=True, metavar="OP",
              help="Only nodes of this op type, e.g. Conv2D (repeatable; case-insensitive).")
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help="Show at most N nodes in the node table (per function with --functions).")
@click.option("--summary", is_flag=True,
              help="Versions, op histogram, variables and parameters, inputs, likely outputs, collections, "
                   "saver, signatures.")
@click.option("--tree", is_flag=True, help="Nodes grouped by name scope, with counts.")
@click.option("--depth", type=click.IntRange(min=1), metavar="N",
              help="With --tree or --dot: collapse scopes deeper than N levels.")
@click.option("--functions", is_flag=True, help="List the function library (tf.function, While/If bodies) "
                                                "and its nodes.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema in the README).")
@click.option("--dot", "dot_path", metavar="OUT.dot", help="Write the selected nodes as Graphviz DOT.")
@click.option("--tensorboard", "logdir", metavar="DIR",
              help="Write an event file with the graph into the existing directory DIR, for "
                   "'tensorboard --logdir DIR'.")
@click.option("--force", "-f", is_flag=True, help="Overwrite output files that exist.")
def graph(file: str, scopes: tuple[str, ...], ops: tuple[str, ...], limit: int | None, summary: bool, tree: bool,
          depth: int | None, functions: bool, as_json: bool, dot_path: str | None, logdir: str | None,
          force: bool) -> None:
    """Show the nodes of a TensorFlow graph: name, op, inputs, device, attributes.

    FILE is a .meta (MetaGraphDef), a GraphDef (.pb, or .pbtxt text), a
    saved_model.pb or SavedModel directory, or a checkpoint prefix or
    directory whose .meta is used. TensorFlow is not imported. Output is a
    table on a terminal and tab-separated lines when piped.

    A Keras file (.keras, or an .h5 from model.save) shows its model's
    layers instead: class, output shape, parameters, inbound layers (with
    --scopes, --limit, --json; nothing in the config is executed).

    \b
    Examples:
      ckpttools graph runs/cnn/model.ckpt-20.meta --summary
      ckpttools graph frozen.pb --op Conv2D --op MaxPool
      ckpttools graph model.meta --scopes 'cnn/conv_block[1-2]' --limit 20
      ckpttools graph model.meta --tree --depth 2
      ckpttools graph model.meta --dot cnn.dot --depth 3 && dot -Tsvg cnn.dot -o cnn.svg
      ckpttools graph export/ --tensorboard tb && tensorboard --logdir tb
      ckpttools graph model.meta --summary --json | jq '.summary.parameters'
      ckpttools graph model.keras --json | jq '.layers[].name'
    \b
    Exit codes: 0 ok, 2 bad option or pattern, 3 file not found, 4 corrupt
    or unreadable graph, 5 --dot/--tensorboard output cannot be written,
    6 missing dependency, 130 Ctrl-C.
    """
    from ..graphs.keras import is_keras_file  # no protobuf: a Keras model is read from its JSON config

    if is_keras_file(file):
        _keras(file, scopes, limit, as_json, ops=ops, summary=summary, tree=tree, depth=depth, functions=functions,
               dot=dot_path, tensorboard=logdir)
        return
    if depth is not None and not (tree or dot_path):
        raise click.UsageError("--depth applies to --tree and --dot; add one of them")
    from .. import graphs  # protobuf is imported only by this command
    from . import graph_render as render

    loaded = graphs.load_graph(file)
    nodes = loaded.graph_def.node
    selection = graphs.select_nodes(nodes, scopes, ops, limit)
    source = graphs.source_info(loaded)
    notes = ([source.note] if source.note else []) + render.selection_notes(selection, limit)
    document: dict[str, Any] = {"schema": render.JSON_SCHEMA, "source": render.source_json(source),
                                "selection": render.selection_json(selection, scopes, ops, limit)}
    written = _write_outputs(graphs, loaded, selection, dot_path, logdir, depth, force, notes)
    if written:
        document["written"] = written
    out = render.GraphOutput.for_stdout()
    if not as_json:
        out.notes(notes)
    if summary:
        result = graphs.summarize(loaded, selection.picked if selection.restricted else None)
        document["summary"] = render.summary_json(result)
        if not as_json:
            out.summary(result)
    if tree:
        root = graphs.scope_tree(((n.name, n.op) for n in selection.picked), depth)
        document["tree"] = render.tree_json(root)
        if not as_json:
            out.tree(source, root)
    if functions:
        library = graphs.list_functions(loaded.graph_def, scopes, ops, with_nodes=True)
        document["functions"] = [render.function_json(f, with_nodes=True, limit=limit) for f in library]
        if not as_json:
            out.functions(library, limit)
    if not (summary or tree or functions or written):  # the default view: the node table
        rows = graphs.describe_nodes(selection.shown, nodes, loaded.graph_def.versions.producer)
        document["nodes"] = [render.node_json(row) for row in rows]
        if not as_json:
            out.nodes(rows, render.source_title(source), limit)
    if as_json:
        print_json(document)


def _write_outputs(graphs: Any, loaded: Any, selection: Any, dot_path: str | None, logdir: str | None,
                   depth: int | None, force: bool, notes: list[str]) -> list[dict[str, Any]]:
    """Write --dot (the selected nodes) and --tensorboard (the whole graph); say how to view each."""
    written = []
    if dot_path:
        dot = graphs.to_dot(graphs.describe_nodes(selection.picked, loaded.graph_def.node,
                                                  loaded.graph_def.versions.producer), depth)
        graphs.write_dot(dot, dot_path, force)
        written.append({"kind": "dot", "path": dot_path, "boxes": dot.boxes, "edges": dot.edges})
        notes.append(f"wrote {dot_path} ({plural(dot.boxes, 'box', 'boxes')}, {plural(dot.edges, 'edge')}); "
                     f"draw it with: dot -Tsvg {dot_path} -o {dot_path.removesuffix('.dot')}.svg")
    if logdir:
        path = graphs.write_event_file(loaded, logdir, force)
        written.append({"kind": "tensorboard", "path": path})
        notes.append(f"wrote {path}; view it with: tensorboard --logdir {logdir}")
    return written


def _keras(file: str, scopes: tuple[str, ...], limit: int | None, as_json: bool, **graph_only: Any) -> None:
    """The layer view of a Keras file; the options that only mean something for TensorFlow graphs are refused."""
    given = [name for name, value in graph_only.items() if value]
    if given:
        raise click.UsageError(f"--{given[0]} applies to TensorFlow graphs, not to a Keras file "
                               "(which shows its layers; --scopes, --limit and --json apply)")
    from .keras_graph import show_keras

    show_keras(file, scopes, limit, as_json)
