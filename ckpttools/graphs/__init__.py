"""Inspect TensorFlow graphs (.meta, GraphDef .pb/.pbtxt, SavedModel) with protobuf and TensorFlow's
message descriptors shipped in the package (``protos``), never TensorFlow: load, describe nodes, summarise,
group by scope, draw as DOT, write for TensorBoard.

Names are imported on first use (PEP 562), so ``ckpttools graph --summary`` does not pay for the DOT
and event-file writers.

Example:
    >>> from ckpttools.graphs import load_graph, summarize
    >>> summary = summarize(load_graph("sample_checkpoints/tf1_cnn/model.ckpt-20.meta"))
    >>> summary.node_count, summary.parameters
    (950, 2794)
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "DotGraph": "dot", "to_dot": "dot", "write_dot": "dot",
    "write_event_file": "events",
    "FunctionInfo": "functions", "list_functions": "functions",
    "GRAPH_DEF": "load", "META_GRAPH": "load", "SAVED_MODEL": "load", "LoadedGraph": "load", "load_graph": "load",
    "NodeRow": "nodes", "Selection": "nodes", "describe_nodes": "nodes", "pick_nodes": "nodes",
    "select_nodes": "nodes",
    "GraphSummary": "summary", "Source": "summary", "source_info": "summary", "summarize": "summary",
    "Scope": "tree", "scope_tree": "tree",
}  # fmt: skip

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
