"""Graph nodes as rows (name, op, inputs, device, the attributes people look for) and their selection.

Attributes come from the NodeDef's ``attr`` map (``tensorflow/core/framework/attr_value.proto``):
``dtype``/``T`` as TensorFlow dtype names, ``shape`` (a Const's value shape), and for convolutions and
pools the kernel size, strides, dilations (spatial dimensions only, read through ``data_format``),
``padding`` and ``data_format``. A convolution's kernel size is not an attribute: it is the shape of its
filter input, found by following reads (``Identity``, ``ReadVariableOp`` ...) back to the variable or
constant that holds it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..formats.dtypes import from_enum
from ..patterns import Selector

VARIABLE_OPS = frozenset({"VariableV2", "VarHandleOp", "Variable", "VariableV1", "AutoReloadVariable"})
PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
# Ops whose input 1 is the filter, laid out [spatial..., in_channels, out_channels (or multiplier)].
_FILTER_OPS = frozenset({
    "Conv2D", "Conv3D", "Conv", "DepthwiseConv2dNative", "Conv2DBackpropInput", "Conv3DBackpropInputV2",
    "_FusedConv2D", "_FusedDepthwiseConv2dNative", "QuantizedConv2D",
})  # fmt: skip
_POOL_OPS = frozenset({
    "MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D", "MaxPoolWithArgmax", "MaxPoolGrad", "AvgPoolGrad",
})  # fmt: skip
_READ_OPS = frozenset({"Identity", "ReadVariableOp", "Enter", "Cast", "StopGradient", "Snapshot", "Switch"})
_MAX_READ_HOPS = 8
_REF_OFFSET = 100  # DT_FLOAT_REF = DT_FLOAT + 100 (types.proto)


@dataclass(frozen=True)
class NodeRow:
    """One node: what the default ``ckpttools graph`` table shows."""

    name: str
    op: str
    inputs: tuple[str, ...]  # as stored: "x", "x:1" (second output), "^x" (control dependency)
    device: str
    attrs: dict[str, Any]  # JSON-ready: dtype, shape, kernel, strides, dilations, padding, data_format


@dataclass
class Selection:
    """The nodes ``--scopes``/``--op`` picked (NodeDefs, in graph order), ``--limit``, and notes on the choice."""

    picked: list[Any]
    total: int  # nodes in the graph
    limit: int | None = None
    restricted: bool = False  # scopes or ops were given
    unmatched_patterns: list[str] = field(default_factory=list)
    unknown_ops: dict[str, list[str]] = field(default_factory=dict)  # --op no node has -> close op names

    @property
    def matched(self) -> int:
        return len(self.picked)

    @property
    def shown(self) -> list[Any]:
        """The picked nodes within ``limit``."""
        return self.picked if self.limit is None else self.picked[: self.limit]


def dtype_name(enum: int) -> str:
    """TensorFlow's name for a DataType value; reference types (old graphs) get a ``_ref`` suffix."""
    if enum > _REF_OFFSET:
        return from_enum(enum - _REF_OFFSET).name + "_ref"
    return from_enum(enum).name


def shape_list(shape: Any) -> list[int | None] | None:
    """A TensorShapeProto as a list, ``None`` for unknown dimensions; ``None`` when even the rank is unknown."""
    if shape.unknown_rank:
        return None
    return [dim.size if dim.size >= 0 else None for dim in shape.dim]


_CURRENT = 1 << 30  # a GraphDef version newer than any legacy rule
LEGACY_PLACEHOLDER_VERSION = 21  # GraphDef versions up to this one wrote an unknown Placeholder shape as `shape {}`


def placeholder_shape(node: Any, producer: int | None) -> list[int | None] | None:
    """A Placeholder's shape as TensorFlow's import reports it; None when the rank is unknown.

    A missing ``shape`` attribute means unknown (its default); in graphs of GraphDef version
    <= 21 (TF 0.x/1.0, ``producer`` 0 when the graph records none) an empty ``shape {}`` means
    unknown too, not scalar. ``_output_shapes``, which old graphs often carry, refines what is unknown.
    """
    attr = node.attr
    declared = None
    if "shape" in attr and attr["shape"].WhichOneof("value") == "shape":
        declared = shape_list(attr["shape"].shape)
        legacy = (producer or 0) <= LEGACY_PLACEHOLDER_VERSION and node.op in ("Placeholder", "PlaceholderV2")
        if legacy and declared == []:
            declared = None
    recorded = attr["_output_shapes"].list.shape if "_output_shapes" in attr else ()
    return _merge_shapes(declared, shape_list(recorded[0]) if recorded else None)


def _merge_shapes(a: list[int | None] | None, b: list[int | None] | None) -> list[int | None] | None:
    """The more specific of two compatible shapes, dimension by dimension (``a`` wins a conflict)."""
    if a is None or b is None:
        return b if a is None else a
    if len(a) != len(b):
        return a
    return [x if x is not None else y for x, y in zip(a, b)]


def input_node(name: str) -> str:
    """The node an input string refers to: ``^x`` -> ``x``, ``x:1`` -> ``x``, ``f:output:0`` -> ``f``."""
    return name.lstrip("^").split(":", 1)[0]


def describe_nodes(nodes: Sequence[Any], graph_nodes: Sequence[Any] | None = None,
                   producer: int | None = None) -> list[NodeRow]:
    """Rows for NodeDefs; a convolution's filter is looked up among ``graph_nodes`` (default: ``nodes``).

    ``producer`` is the GraphDef version (``versions.producer``); old graphs store Placeholder shapes
    differently (see ``placeholder_shape``). None means a current graph.

    Example:
        >>> rows = describe_nodes(load_graph("sample_checkpoints/tf1_cnn").graph_def.node)
        >>> [row.attrs["kernel"] for row in rows if row.op == "Conv2D"][:2]
        [[3, 3], [3, 3]]
    """
    index: Mapping[str, Any] = {}
    if any(node.op in _FILTER_OPS for node in nodes):  # only convolutions need the lookup
        index = {node.name: node for node in (nodes if graph_nodes is None else graph_nodes)}
    return [NodeRow(n.name, n.op, tuple(n.input), n.device, node_attrs(n, index, producer)) for n in nodes]


def node_attrs(node: Any, index: Mapping[str, Any], producer: int | None = None) -> dict[str, Any]:
    """The attributes people look for, JSON-ready; attributes the node lacks are left out."""
    attr = node.attr
    out: dict[str, Any] = {}
    for key in ("dtype", "T"):
        if key in attr and attr[key].WhichOneof("value") == "type":
            out["dtype"] = dtype_name(attr[key].type)
            break
    if node.op in PLACEHOLDER_OPS:
        out["shape"] = placeholder_shape(node, _CURRENT if producer is None else producer)
    elif "shape" in attr and attr["shape"].WhichOneof("value") == "shape":
        out["shape"] = shape_list(attr["shape"].shape)
    elif node.op == "Const" and "value" in attr:
        out["shape"] = shape_list(attr["value"].tensor.tensor_shape)
    data_format = _string_attr(attr, "data_format")
    if node.op in _FILTER_OPS and len(node.input) > 1:
        filter_shape = _resolved_shape(node.input[1], index)
        if filter_shape and len(filter_shape) > 2 and None not in filter_shape:
            out["kernel"] = filter_shape[:-2]
    elif node.op in _POOL_OPS and "ksize" in attr:
        out["kernel"] = _spatial(list(attr["ksize"].list.i), data_format)
    for key in ("strides", "dilations"):
        if key in attr and attr[key].list.i:
            values = _spatial(list(attr[key].list.i), data_format)
            if key == "strides" or any(v != 1 for v in values):
                out[key] = values
    padding = _string_attr(attr, "padding")
    if padding:
        out["padding"] = padding
    if data_format:
        out["data_format"] = data_format
    return out


def pick_nodes(nodes: Sequence[Any], scopes: Sequence[str] = (), ops: Sequence[str] = ()) -> list[Any]:
    """The NodeDefs whose name matches a scope pattern (the ``ls`` language) and whose op is one of ``ops``.

    Op types match case-insensitively; no patterns (or no ops) means no restriction.
    """
    if not scopes and not ops:
        return list(nodes)
    selector = Selector(scopes)
    wanted = {op.lower() for op in ops}
    return [n for n in nodes if (not wanted or n.op.lower() in wanted) and selector.matches(n.name)]


def select_nodes(nodes: Sequence[Any], scopes: Sequence[str] = (), ops: Sequence[str] = (),
                 limit: int | None = None) -> Selection:
    """The nodes ``pick_nodes`` picks, with ``limit`` and the notes a user needs about the choice.

    Example:
        >>> selection = select_nodes(graph.graph_def.node, scopes=["conv_block1"], ops=["Conv2D"])
        >>> [node.name for node in selection.shown]
        ['cnn/conv_block1/Conv2D']
    """
    return Selection(
        picked=pick_nodes(nodes, scopes, ops),
        total=len(nodes),
        limit=limit,
        restricted=bool(scopes or ops),
        unmatched_patterns=Selector(scopes).unmatched(n.name for n in nodes) if scopes else [],
        unknown_ops=_unknown_ops(ops, {n.op for n in nodes}) if ops else {},
    )


def _unknown_ops(ops: Sequence[str], present: set[str]) -> dict[str, list[str]]:
    """For each requested op no node has, the op types in the graph that look like it."""
    lowered = {op.lower() for op in present}
    return {
        op: difflib.get_close_matches(op, sorted(present), n=3, cutoff=0.6)
        for op in dict.fromkeys(ops)
        if op.lower() not in lowered
    }


def _resolved_shape(name: str, index: Mapping[str, Any]) -> list[int | None] | None:
    """The static shape of the tensor ``name``: follow reads back to a variable, placeholder or constant."""
    for _ in range(_MAX_READ_HOPS):
        node = index.get(input_node(name))
        if node is None:
            return None
        attr = node.attr
        shapes = attr["_output_shapes"].list.shape if "_output_shapes" in attr else ()
        output = _output_index(name)
        if output < len(shapes):
            return shape_list(shapes[output])
        if "shape" in attr and attr["shape"].WhichOneof("value") == "shape":
            return shape_list(attr["shape"].shape)
        if node.op == "Const" and "value" in attr:
            return shape_list(attr["value"].tensor.tensor_shape)
        if node.op not in _READ_OPS or not node.input:
            return None
        name = node.input[0]
    return None


def _string_attr(attr: Any, key: str) -> str:
    """A string attribute's value, or "" when the node has none (or it is not a string)."""
    if key in attr and attr[key].WhichOneof("value") == "s":
        return attr[key].s.decode("utf-8", "replace")
    return ""


def _output_index(name: str) -> int:
    """Which output of its node an input string names (``x:2`` -> 2); function-body names count as 0."""
    _, _, rest = name.partition(":")
    return int(rest) if rest.isdigit() else 0


def _spatial(values: list[int], data_format: str) -> list[int]:
    """Keep the spatial entries of a per-dimension list (drop batch N and channels C)."""
    layout = data_format or {4: "NHWC", 5: "NDHWC", 3: "NWC"}.get(len(values), "")
    if len(layout) != len(values):
        return values
    return [value for value, axis in zip(values, layout) if axis not in "NC"]
