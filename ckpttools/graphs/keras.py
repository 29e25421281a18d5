"""The architecture of a Keras model from its config (``.keras`` zip, or a legacy ``.h5`` saved with ``model.save``).

Layers come in config order with their class, output shape (where the config records it: a functional
model's tensors carry their shapes, a Sequential's next layer its input shape; else computed for Dense),
parameters (counted from the stored weights, so exactly what the file holds) and inbound layers.
Nothing is imported or evaluated: a custom class is a name, a Lambda's function stays an opaque string.
Imports neither protobuf nor TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import CkptError, NotACheckpointError
from ..formats.keras_config import LayerSpec, ModelSpec
from ..formats.keras_h5 import KerasH5Reader
from ..formats.keras_zip import KerasZipReader
from ..info import MODEL
from ..patterns import select
from ..resolve import resolve

KERAS_FORMATS = ("keras", "keras_h5")


@dataclass
class LayerRow:
    """One layer as shown: nested models' layers follow their model, one ``depth`` deeper."""

    name: str
    class_name: str
    output_shape: list | None
    parameters: int
    inbound: list[str]
    depth: int = 0
    note: str | None = None


@dataclass
class KerasArchitecture:
    """A Keras model's layers, and where they came from."""

    path: str
    format: str  # "keras" (a .keras zip) or "keras_h5"
    model_name: str
    model_class: str
    layers: list[LayerRow]
    parameters: int  # all stored model weights
    keras_version: str | None = None
    unmatched_patterns: list[str] = field(default_factory=list)
    total_layers: int = 0


def is_keras_file(path: str) -> bool:
    """Whether ``path`` is a Keras file (by name or HDF5 signature) rather than a TensorFlow graph."""
    try:
        return resolve(path).format in KERAS_FORMATS
    except CkptError:
        return False


def load_architecture(path: str, scopes: Sequence[str] = ()) -> KerasArchitecture:
    """Read the model config and weights of a Keras file; keep the layers ``scopes`` select (all without)."""
    resolved = resolve(path)
    reader = KerasZipReader(resolved.prefix) if resolved.format == "keras" else KerasH5Reader(path, resolved.prefix)
    try:
        model: ModelSpec | None = reader.model
        if model is None:
            raise NotACheckpointError(f"{path}: holds weights only, no model config (graph needs a .keras file "
                                      "or an .h5 written by model.save)")
        weights = [info for info in reader.tensors if info.role == MODEL]
        metadata = getattr(reader, "metadata", None)
    finally:
        reader.close()
    scope = f"{model.name}/" if model.class_name == "Sequential" else ""
    params: dict[str, int] = {}
    for info in weights:  # count each weight for every scope above it: layers, nested layers
        parts = info.name.removeprefix(scope).split("/")[:-1]
        for end in range(1, len(parts) + 1):
            params["/".join(parts[:end])] = params.get("/".join(parts[:end]), 0) + info.size
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    rows = _rows(model, params)
    total = len(rows)
    unmatched: list[str] = []
    if scopes:
        names = [row.name for row in rows]
        chosen = set(select(names, scopes))
        unmatched = [pattern for pattern in scopes if not select(names, [pattern])]
        rows = [row for row in rows if row.name in chosen]
    return KerasArchitecture(path, resolved.format, model.name, model.class_name, rows,
                             sum(info.size for info in weights), version, unmatched, total)


def _rows(model: ModelSpec, params: dict[str, int], prefix: str = "", depth: int = 0) -> list[LayerRow]:
    rows = []
    shapes: dict[str, list | None] = {}
    for layer in model.layers:
        given = layer.input_shape or (shapes.get(layer.inbound[0]) if len(layer.inbound) == 1 else None)
        shape = shapes[layer.name] = layer.output_shape or _computed_shape(layer, given)
        row = LayerRow(layer.name, layer.class_name, shape, params.get(prefix + layer.name, 0),
                       list(layer.inbound), depth, _note(layer))
        rows.append(row)
        if layer.model is not None:
            inner = _rows(layer.model, params, f"{prefix}{layer.name}/", depth + 1)
            if row.output_shape is None and inner:  # a nested model outputs what its last layer does
                row.output_shape = shapes[layer.name] = inner[-1].output_shape
            rows += inner
    return rows


_SAME_SHAPE = {"Dropout", "BatchNormalization", "LayerNormalization", "Activation", "ReLU", "LeakyReLU", "PReLU",
               "ELU", "Softmax", "GaussianNoise", "GaussianDropout", "SpatialDropout1D", "SpatialDropout2D",
               "UnitNormalization", "GroupNormalization", "Rescaling", "Normalization"}


def _computed_shape(layer: LayerSpec, given: list | None) -> list | None:
    """The output shape of simple layers from their input's, when the config does not record it."""
    if not isinstance(given, list) or not given:
        return None
    if layer.class_name in _SAME_SHAPE:
        return list(given)
    if layer.class_name == "Dense" and isinstance(layer.config.get("units"), int):
        return [*given[:-1], layer.config["units"]]
    if layer.class_name == "Flatten" and all(isinstance(d, int) for d in given[1:]):
        size = 1
        for d in given[1:]:
            size *= d
        return [given[0], size]
    return None


def _note(layer: LayerSpec) -> str | None:
    if layer.class_name == "Lambda":
        return "Lambda: its function is stored as code and never evaluated"
    if layer.registered_name and ">" in layer.registered_name:
        return f"custom class {layer.registered_name} (not imported; its weights are listed by number)"
    if layer.module is not None and not str(layer.module).startswith("keras"):
        return f"custom class from module {layer.module} (not imported)"
    return None
