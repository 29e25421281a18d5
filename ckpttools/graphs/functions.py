"""The graph's function library: what ``tf.function``, control flow v2 (While/If) and SavedModels put there.

Each ``FunctionDef`` (``tensorflow/core/framework/function.proto``) has a signature (an ``OpDef``: name,
input and output arguments) and its own ``node_def`` list, whose inputs read ``node:output_arg:index``
or a function argument by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..patterns import Selector
from .nodes import NodeRow, describe_nodes, dtype_name


@dataclass(frozen=True)
class FunctionInfo:
    """One library function: its signature, node count and (when asked for) its nodes."""

    name: str
    node_count: int
    inputs: tuple[str, ...]  # "name: dtype" (or "name: T" when the type is an attribute)
    outputs: tuple[str, ...]
    nodes: list[NodeRow] = field(default_factory=list)


def list_functions(graph_def: Any, scopes: Sequence[str] = (), ops: Sequence[str] = (),
                   with_nodes: bool = False) -> list[FunctionInfo]:
    """The library's functions in file order; ``scopes`` selects by function name, ``ops`` the nodes listed.

    Example:
        >>> [(f.name, f.node_count) for f in list_functions(load_graph("sample_checkpoints/tf1_cnn").graph_def)]
        [('cond_false_683', 0), ('cond_true_682', 2)]
    """
    selector = Selector(scopes)
    wanted = {op.lower() for op in ops}
    out = []
    for function in graph_def.library.function:
        signature = function.signature
        if not selector.matches(signature.name):
            continue
        rows: list[NodeRow] = []
        if with_nodes:
            chosen = [n for n in function.node_def if not wanted or n.op.lower() in wanted]
            rows = describe_nodes(chosen, function.node_def)  # a filter may be any node of the body
        out.append(FunctionInfo(
            name=signature.name,
            node_count=len(function.node_def),
            inputs=tuple(_arg_text(arg) for arg in signature.input_arg),
            outputs=tuple(_arg_text(arg) for arg in signature.output_arg),
            nodes=rows,
        ))  # fmt: skip
    return out


def _arg_text(arg: Any) -> str:
    kind = dtype_name(arg.type) if arg.type else (arg.type_attr or arg.type_list_attr or "?")
    return f"{arg.name}: {kind}"
