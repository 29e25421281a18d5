"""A Keras model config (``config.json`` of a ``.keras`` zip, ``model_config`` of a legacy ``.h5``), read as data.

Only JSON is parsed: class names are strings, a ``Lambda``'s function (base64 bytecode or source)
and a custom layer's module are never imported, decoded or evaluated. Both serialisations are
understood: Keras 3 (``inbound_nodes`` holding ``__keras_tensor__`` args with ``keras_history`` and
``shape``; ``build_config.input_shape``) and Keras 2 (``inbound_nodes`` as ``[[name, node, tensor, kwargs]]``;
``batch_input_shape``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import CorruptFileError
from .keras_names import configured_names, snake_case

MODEL_CLASSES = ("Functional", "Model", "Sequential")
MAX_CONFIG_BYTES = 64 * 1024 * 1024  # a config is metadata: anything bigger is not one


@dataclass
class LayerSpec:
    """One layer of a model config, and the model it is (when it is a nested model)."""

    name: str
    class_name: str
    config: dict[str, Any]
    module: str | None = None
    inbound: list[str] = field(default_factory=list)
    input_shape: list | None = None  # from build_config or batch_(input_)shape
    output_shape: list | None = None  # where the config shows it
    model: ModelSpec | None = None
    inbound_nodes: Any = None  # as serialised, for the tensor shapes it records
    registered_name: str | None = None  # Keras 3: "package>Class" for a class registered by user code


@dataclass
class ModelSpec:
    """A model config: its name, class and layers in order, and the optimizer it was compiled with."""

    name: str
    class_name: str
    layers: list[LayerSpec]
    optimizer: str | None = None
    optimizer_name: str | None = None

    def layer(self, name: str) -> LayerSpec | None:
        return next((layer for layer in self.layers if layer.name == name), None)


RNN_CELLS = {"LSTM": "LSTMCell", "GRU": "GRUCell", "SimpleRNN": "SimpleRNNCell"}  # Keras names each cell in snake_case
# Keras 3's convolutional LSTMs keep a ``conv_lstm_cell``; tf_keras names their weights without the cell
CONV_RNN_CELLS = {"ConvLSTM1D": "ConvLSTMCell", "ConvLSTM2D": "ConvLSTMCell", "ConvLSTM3D": "ConvLSTMCell"}


def sublayers(layer: LayerSpec, keras2: bool = False) -> dict[str, LayerSpec]:
    """The layers a built-in RNN, Bidirectional or TimeDistributed saves below itself, keyed by attribute, in order.

    Files that do not record objects' names (Keras 2, older Keras 3) need them to name weights: an
    RNN's ``cell`` is ``lstm_cell``... under the RNN's config, whose flags (``use_bias``) its weights follow;
    Bidirectional's copies are ``forward_<layer>`` and ``backward_<layer>`` (Keras 3 keeps a given backward
    layer's name and strips a ``forward_``/``backward_`` the config already holds), tf_keras also keeps
    the unbuilt original as ``layer``; TimeDistributed's ``layer`` is its configured layer. A layer named
    ``""`` adds nothing to its weights' names: tf_keras builds a convolutional LSTM's cell and
    TimeDistributed's layer in the outer layer's scope (``conv_lstm1d/kernel``, ``time_distributed/kernel``).
    """
    config = layer.config
    cell = RNN_CELLS.get(layer.class_name) or CONV_RNN_CELLS.get(layer.class_name)
    if cell:
        unscoped = keras2 and layer.class_name in CONV_RNN_CELLS
        return {"cell": LayerSpec("" if unscoped else snake_case(cell), cell, config)}
    if layer.class_name == "RNN" and isinstance(config.get("cell"), dict):
        return {"cell": _layer(config["cell"], layer.name)}
    if layer.class_name == "TimeDistributed" and isinstance(config.get("layer"), dict):
        inner = _layer(config["layer"], layer.name)
        return {"layer": replace(inner, name="") if keras2 else inner}
    if layer.class_name != "Bidirectional" or not isinstance(config.get("layer"), dict):
        return {}
    inner = _layer(config["layer"], layer.name)
    given = config.get("backward_layer")
    backward = _layer(given, layer.name) if isinstance(given, dict) else inner
    if keras2:
        forward_name, backward_name = f"forward_{inner.name}", f"backward_{backward.name}"
    else:
        forward_name = f"forward_{inner.name.removeprefix('forward_')}"
        backward_name = backward.name if backward is not inner else f"backward_{inner.name.removeprefix('backward_')}"
    return {"forward_layer": replace(inner, name=forward_name), "backward_layer": replace(backward, name=backward_name),
            "layer": inner}


def parse_json(raw: bytes | str, label: str) -> Any:
    """JSON text to Python data, or a CorruptFileError naming the file."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{label}: not valid JSON ({exc})") from None


def parse_model(document: Any, label: str, compile_config: Any = None) -> ModelSpec | None:
    """The ModelSpec of a serialised model, or None when the document is not a model config."""
    if not isinstance(document, dict) or document.get("class_name") not in MODEL_CLASSES and not _has_layers(document):
        return None
    config = _model_config(document)
    layers = [_layer(entry, label) for entry in config.get("layers") or [] if isinstance(entry, dict)]
    spec = ModelSpec(str(config.get("name", document.get("class_name", "model"))), str(document.get("class_name")),
                     layers)
    if document.get("class_name") == "Sequential":
        for before, after in zip(layers, layers[1:]):
            after.inbound = after.inbound or [before.name]
            before.output_shape = before.output_shape or after.input_shape
    else:
        _output_shapes_from_inbound(layers)
    spec.optimizer, spec.optimizer_name = _optimizer(
        compile_config if compile_config is not None else document.get("compile_config"))
    return spec


def _model_config(document: dict) -> dict:
    """The model's config; Keras up to 2.1 wrote a Sequential's as the bare list of its layers."""
    config = document.get("config")
    if isinstance(config, list):
        return {"layers": config}
    return config if isinstance(config, dict) else {}


def _has_layers(document: dict) -> bool:
    return isinstance(_model_config(document).get("layers"), list)


def _layer(entry: dict, label: str) -> LayerSpec:
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    name = str(entry.get("name") or config.get("name") or "?")
    build = entry.get("build_config")
    shape = build.get("input_shape") if isinstance(build, dict) else None
    batch_shape = config.get("batch_shape") or config.get("batch_input_shape")
    layer = LayerSpec(name, str(entry.get("class_name", "?")), config, entry.get("module"),
                      _inbound_names(entry.get("inbound_nodes")), shape or batch_shape,
                      inbound_nodes=entry.get("inbound_nodes"), registered_name=entry.get("registered_name"))
    if entry.get("class_name") == "InputLayer" and batch_shape:
        layer.output_shape = batch_shape
    if _has_layers(entry):
        layer.model = parse_model(entry, label)
    return layer


def _inbound_refs(value: Any) -> Iterator[tuple[str, Any]]:
    """``(layer name, tensor shape or None)`` for each tensor an ``inbound_nodes`` value refers to.

    Keras 3 serialises a tensor as ``{"class_name": "__keras_tensor__", "config": {"shape", "keras_history":
    [layer, node, tensor]}}``; Keras 2 as a list ``[layer, node, tensor, kwargs]``.
    """
    if isinstance(value, dict):
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        history = config.get("keras_history")
        if value.get("class_name") == "__keras_tensor__" and isinstance(history, list) and history \
                and isinstance(history[0], str):
            yield history[0], config.get("shape")
            return
        for item in value.values():
            yield from _inbound_refs(item)
    elif isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
            yield value[0], None
            return
        for item in value:
            yield from _inbound_refs(item)


def _inbound_names(nodes: Any) -> list[str]:
    """Layer names feeding a layer, in order, without repeats."""
    return list(dict.fromkeys(name for name, _ in _inbound_refs(nodes or [])))


def _output_shapes_from_inbound(layers: list[LayerSpec]) -> None:
    """A Keras 3 functional config records each input tensor's shape where it is consumed."""
    by_name = {layer.name: layer for layer in layers}
    for layer in layers:
        for name, shape in _inbound_refs(layer.inbound_nodes or []):
            source = by_name.get(name)
            if source is not None and source.output_shape is None and shape is not None:
                source.output_shape = shape


def _optimizer(compile_config: Any) -> tuple[str | None, str | None]:
    """The compiled optimizer's class and, when the config gives it, its name (Keras 3's variable prefix)."""
    if not isinstance(compile_config, dict):
        return None, None
    optimizer = compile_config.get("optimizer") or compile_config.get("optimizer_config")
    if isinstance(optimizer, dict):
        config = optimizer.get("config") if isinstance(optimizer.get("config"), dict) else {}
        name = config.get("name")
        return str(optimizer.get("class_name") or "") or None, name if isinstance(name, str) and name else None
    return (optimizer, None) if isinstance(optimizer, str) else (None, None)


# class -> (config key, kernel axis) pairs whose sizes the stored kernel must show
_KERNEL_SIZES = {
    "Dense": (("units", -1),), "Conv1D": (("filters", -1),), "Conv2D": (("filters", -1),),
    "Conv3D": (("filters", -1),), "Embedding": (("input_dim", 0), ("output_dim", 1)),
}  # fmt: skip


def check_weights(model: ModelSpec, tensors: list, label: str, keras2: bool = False) -> None:
    """Refuse a config that does not describe the stored weights (what ``load_model`` would fail on).

    Checked: every layer of a built-in class that has weights has them stored, with the count its
    flags give, and the sizes its config names (``units``, ``filters``, ``input_dim``...); every stored
    layer is in the config.
    """
    scope = f"{model.name}/" if model.class_name == "Sequential" else ""  # see KerasH5Reader._root_scope
    stored: dict[str, dict[str, Any]] = {}
    for info in tensors:
        name = info.name.removeprefix(scope)
        if info.role == "model" and "/" in name:
            top, rest = name.split("/", 1)
            stored.setdefault(top, {})[rest] = info
    names = {layer.name for layer in model.layers}
    extra = sorted(set(stored) - names - {model.name})
    if extra:
        raise CorruptFileError(f"{label}: config does not match the weights: layer '{extra[0]}' has weights "
                               f"but is not in the config")
    for layer in model.layers:
        found = stored.get(layer.name, {})
        builtin = layer.module is None or str(layer.module).startswith("keras")
        wanted = configured_names(snake_case(layer.class_name), layer.config, keras2) if builtin else None
        if wanted is None:
            continue
        if sorted(found) != sorted(wanted):
            raise CorruptFileError(f"{label}: config does not match the weights: layer '{layer.name}' "
                                   f"({layer.class_name}) should have {', '.join(wanted) or 'no weights'}, "
                                   f"the file has {', '.join(sorted(found)) or 'none'}")
        kernel = found.get("embeddings") or found.get("kernel")
        for key, axis in _KERNEL_SIZES.get(layer.class_name, ()):
            size = layer.config.get(key)
            if kernel is not None and isinstance(size, int) and kernel.shape and kernel.shape[axis] != size:
                raise CorruptFileError(f"{label}: config does not match the weights: layer '{layer.name}' has "
                                       f"{key}={size} but its {kernel.name.rsplit('/', 1)[-1]} has shape "
                                       f"{list(kernel.shape)}")

