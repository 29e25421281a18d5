"""Readable names for TF2 object-based checkpoints.

A ``tf.train.Checkpoint`` stores each variable under the path by which the
saver first reached it (``model/layer_with_weights-0/kernel/.ATTRIBUTES/
VARIABLE_VALUE``) and keeps the whole object graph, serialized as a
``TrackableObjectGraph`` (``trackable_object_graph.proto``) in the string
tensor ``_CHECKPOINTABLE_OBJECT_GRAPH``. Each node lists its children by local
name, its saved attributes (``checkpoint_key``) and, for TF2 optimizers, its
slot variables.

Keras 3 makes the first path often the optimizer's list
(``optimizer/_trainable_variables/0``) while the layer path
(``model/_functional/_operations/1/_kernel``) exists only in the graph. We
name each variable by the first path that avoids optimizers, falling back to
optimizer paths that avoid the flat ``_variables`` list, then to any path.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from ..info import METADATA, MODEL, OPTIMIZER, TensorInfo
from .messages import ObjectNode

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
# Keras layers of TF 2.0-2.2 saved their config beside their weights (``layer-0/.ATTRIBUTES/OBJECT_CONFIG_JSON``)
OBJECT_CONFIG_ATTRIBUTE = "/.ATTRIBUTES/OBJECT_CONFIG_JSON"
_ATTRIBUTES = "/.ATTRIBUTES/"
_VALUE = "VARIABLE_VALUE"
_OPTIMIZER_MARKERS = {"_iterations", "iter", "iterations"}
_FLAT_LISTS = {"_variables", "_trainable_variables"}


def rename(infos: list[TensorInfo], nodes: list[ObjectNode], clashes: set[str] | None = None) -> list[TensorInfo]:
    """Give each tensor its readable name and optimizer-slot link.

    Roles are set only where the graph knows them (METADATA, OPTIMIZER); other
    tensors stay MODEL for name-based classification to refine.
    """
    nodes = _in_range(nodes)
    optimizers = optimizer_nodes(nodes)
    routes = _best_routes(nodes, optimizers)
    paths = {node: route.path for node, route in routes.items()}
    node_of_key = {key: (i, attr) for i, node in enumerate(nodes) for attr, _, key in node.attributes}
    full_names = {key: full for node in nodes for _, full, key in node.attributes}
    slots = _slot_links(nodes, optimizers, paths)
    out = []
    for info in infos:
        if info.key == OBJECT_GRAPH_KEY:
            out.append(info._replace(role=METADATA))
            continue
        node_id, attr = node_of_key.get(info.key, (None, None))
        name = _display_name(info.key, node_id, attr, paths)
        via_optimizer = node_id in routes and bool(routes[node_id].ancestors & optimizers)
        role = OPTIMIZER if via_optimizer or "/.OPTIMIZER_SLOT/" in info.key else MODEL
        if info.key.endswith(OBJECT_CONFIG_ATTRIBUTE):  # a layer's config as JSON text, not a weight
            role = METADATA
        slot_of, slot_name = slots.get(node_id, (None, None)) if node_id is not None else (None, None)
        out.append(info._replace(name=name, role=role, slot_of=slot_of, slot_name=slot_name,
                           original_name=full_names.get(info.key) or None))
    return _distinct_names(out, clashes if clashes is not None else set())


def _distinct_names(infos: list[TensorInfo], clashes: set[str]) -> list[TensorInfo]:
    """Give tensors whose display names collide their (unique) keys instead (the names go into ``clashes``).

    A damaged object graph can route two checkpoint keys to one object; reading by that name
    would then return the other tensor's value.
    """
    for _ in range(len(infos) + 1):  # each round gives at least one more tensor its key; keys are unique
        seen: dict[str, int] = {}
        for info in infos:
            seen[info.name] = seen.get(info.name, 0) + 1
        clashing = {name for name, count in seen.items() if count > 1}
        if not clashing:
            break
        clashes |= clashing
        infos = [info._replace(name=info.key) if info.name in clashing else info for info in infos]
    return infos


def _in_range(nodes: list[ObjectNode]) -> list[ObjectNode]:
    """Drop references to nodes that do not exist (a corrupt graph), so every id indexes ``nodes``."""
    n = len(nodes)
    if all(c < n for node in nodes for c, _ in node.children) and \
            all(o < n and s < n for node in nodes for o, _, s in node.slots):
        return nodes
    return [replace(node, children=[(c, name) for c, name in node.children if c < n],
                    slots=[(o, name, s) for o, name, s in node.slots if o < n and s < n]) for node in nodes]


def object_paths(nodes: list[ObjectNode]) -> dict[int, tuple[str, bool]]:
    """For each node reachable from the root: its readable path (as ``rename`` names its tensors)
    and whether it belongs to an optimizer."""
    optimizers = optimizer_nodes(nodes)
    routes = _best_routes(nodes, optimizers)
    return {node: (route.path, bool(route.ancestors & optimizers)) for node, route in routes.items()}


def _display_name(key: str, node_id: int | None, attr: str | None, display: dict[int, str]) -> str:
    """The object path, plus the attribute unless it is the usual VARIABLE_VALUE.

    A lookup table saves two tensors for one attribute (``table-keys``, ``table-values``),
    which the graph does not list: the key's own attribute name keeps them apart.
    """
    base, _, stored_attr = key.partition(_ATTRIBUTES)
    attr = stored_attr or attr
    if node_id is None or node_id not in display or "/.OPTIMIZER_SLOT/" in key:
        path = base
    else:
        path = display[node_id]
    if attr in (None, "", _VALUE):
        return path
    return f"{path}/{attr}" if path else attr  # the root object's own attribute


def optimizer_nodes(nodes: list[ObjectNode]) -> set[int]:
    """The optimizer objects of the graph: nodes with slot variables or an iteration counter, or named optimizer."""
    found = set()
    for i, node in enumerate(nodes):
        names = {name for _, name in node.children}
        if node.slots or names & _OPTIMIZER_MARKERS:
            found.add(i)
        for child, name in node.children:
            if name == "optimizer":
                found.add(child)
    return found


def escape(local_name: str) -> str:
    """Escape a local name as TensorFlow does in checkpoint keys: ``.`` -> ``..``, ``/`` -> ``.S``."""
    return local_name.replace(".", "..").replace("/", ".S")


class _Route(NamedTuple):
    path: str  # escaped local names joined by "/"
    ancestors: frozenset[int]  # nodes passed on the way (root included, the node itself not)


def _bfs(nodes: list[ObjectNode], blocked: Callable[[int, int, str], bool]) -> dict[int, _Route]:
    """First route (BFS order) from the root to every node reachable without blocked edges."""
    routes = {0: _Route("", frozenset())}
    queue = deque([0])
    while queue:
        parent = queue.popleft()
        above = routes[parent]
        for child, name in nodes[parent].children:
            if child in routes or child >= len(nodes) or blocked(parent, child, name):
                continue
            path = f"{above.path}/{escape(name)}" if above.path else escape(name)
            routes[child] = _Route(path, above.ancestors | {parent})
            queue.append(child)
    return routes


def _best_routes(nodes: list[ObjectNode], optimizers: set[int]) -> dict[int, _Route]:
    if not nodes:
        return {}
    model_routes = _bfs(nodes, lambda parent, child, name: child in optimizers)
    slot_routes = _bfs(nodes, lambda parent, child, name: parent in optimizers and name in _FLAT_LISTS)
    any_routes = _bfs(nodes, lambda parent, child, name: False)
    return {**any_routes, **slot_routes, **model_routes}


def _slot_links(nodes: list[ObjectNode], optimizers: set[int], display: dict[int, str]) -> dict[int, tuple[str, str]]:
    """Map slot-variable node -> (display name of its variable, slot name)."""
    links: dict[int, tuple[str, str]] = {}
    for opt in optimizers:
        for original, slot_name, slot in nodes[opt].slots:  # TF2 optimizers (OptimizerV2)
            if original in display:
                links[slot] = (display[original], slot_name)
        _keras3_slot_lists(nodes, opt, display, links)
    return links


def _keras3_slot_lists(nodes: list[ObjectNode], opt: int, display: dict[int, str], links: dict) -> None:
    """Keras 3 keeps slots in lists (``_momentums``) parallel to ``_trainable_variables``."""
    children = dict((name, child) for child, name in nodes[opt].children)
    trainable = children.get("_trainable_variables")
    if trainable is None:
        return
    variables = [child for child, _ in nodes[trainable].children]
    for name, list_node in children.items():
        if name in _FLAT_LISTS or not name.startswith("_"):
            continue
        items = nodes[list_node].children
        if len(items) != len(variables) or not all(n.isascii() and n.isdigit() for _, n in items):
            continue
        slot_name = _singular(name.lstrip("_"))
        for (slot, index), variable in zip(((c, int(n)) for c, n in items), variables):
            target = variables[index] if index < len(variables) else variable
            if target in display:
                links[slot] = (display[target], slot_name)


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") else name
