"""Reader for Keras HDF5 weights: Keras 3 ``.weights.h5`` and legacy Keras 2 ``.h5`` (read with h5py).

Keras 3 (``saving_lib.H5IOStore``): each saveable object with variables has a group ``<path>/vars``
whose attribute ``name`` is the object's name and whose datasets ``0``, ``1``... are its variables;
layers sit under ``layers/<snake_case class>[_N]``, the optimizer under ``optimizer/vars``. bfloat16
is stored as 2-byte opaque data with a ``dtype="bfloat16"`` attribute. Names follow ``keras_names``.

Legacy (``legacy_h5_format.save_weights_to_hdf5_group``): ``model.save`` puts the weights under
``model_weights/`` (with ``model_config`` and ``training_config`` JSON attributes at the root and
optimizer state under ``optimizer_weights/``); ``save_weights`` puts them at the root. The group's
``layer_names`` attribute lists layers in order, each layer group's ``weight_names`` its weights,
stored at ``<layer>/<weight name>``. Shown names drop TensorFlow's ``:0`` and, when the weight name does
not start with its layer's (a nested model's ``dense/kernel:0`` inside ``inner``), gain the layer name.

Every tensor keeps its HDF5 path as ``key``. Opening reads metadata only; values are read on demand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import CorruptFileError, MissingDependencyError, NotACheckpointError, NotFoundError, UnsupportedError
from ..info import MODEL, OPTIMIZER, TRAINING, TensorInfo
from ..storage import sources
from . import keras_names
from .keras_config import LayerSpec, ModelSpec, parse_json, parse_model, sublayers

KERAS3, LEGACY = "keras3", "legacy"
_NOT_MODEL = ("optimizer", "metrics")  # top-level groups of a weights file that hold no model variables
_KERAS213_CONTAINER = "_layer_checkpoint_dependencies"  # where Keras 2.12-2.14 saved a model's layers
_CONTAINERS = ("layers", _KERAS213_CONTAINER)


def import_h5py():
    """h5py, or a MissingDependencyError saying how to install it."""
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("reading Keras files needs h5py: pip install h5py") from None
    return h5py


class KerasH5Reader:
    """Lists and reads the weights of one Keras HDF5 file (a path or URL, or a file object with ``label`` as its name).

    ``model`` is the model config when one is known (given, or the legacy file's ``model_config``).
    """

    def __init__(self, source: Any, label: str, model: ModelSpec | None = None, keras_version: str | None = None,
                 ) -> None:
        h5py = import_h5py()
        self.label = label
        self.data_files = [label]
        self.model = model
        self._opt_class: str | None = model.optimizer if model else None
        self._keras_version = keras_version
        self.keras2 = False
        self._owned = None  # the file object opened here for a URL (h5py reads it through the byte-source layer)
        if isinstance(source, str) and sources.is_url(source):
            source = self._owned = sources.open_file(source)
        try:
            self._file = h5py.File(source, "r")
        except FileNotFoundError:
            self._close_owned()
            raise NotFoundError(f"{label}: no such file") from None
        except OSError as exc:
            self._close_owned()
            raise CorruptFileError(f"{label}: not a readable HDF5 file ({_short(exc)})") from None
        except BaseException:
            self._close_owned()
            raise
        self.tensors: list[TensorInfo] = []
        self._datasets: dict[str, Any] = {}
        self._taken: set[str] = set()
        try:
            self.layout = self._read_layout()
        except (OSError, KeyError, ValueError, RuntimeError) as exc:  # h5py's view of damaged metadata
            self.close()
            raise CorruptFileError(f"{label}: damaged HDF5 structure ({_short(exc)})") from None
        except Exception:
            self.close()
            raise

    def _read_layout(self) -> str:
        root = self._file
        if "vars" in root or "layers" in root or _group(root, "optimizer/vars") is not None:
            self._read_keras3()
            return KERAS3
        weights = _group(root, "model_weights") if "model_weights" in root else root
        if weights is not None and "layer_names" in weights.attrs:
            self._read_legacy(weights)
            return LEGACY
        raise NotACheckpointError(
            f"{self.label}: an HDF5 file, but not Keras weights (no 'layers'/'vars' groups of a Keras 3 "
            "weights file, no 'layer_names' attribute of a legacy Keras file)")

    # --- Keras 3 ----------------------------------------------------------------------------------

    def _read_keras3(self) -> None:
        root = _group(self._file, "vars")
        # Keras 2 (tf_keras) writes the same layout, without the ``name`` attributes and with its own naming
        self.keras2 = self._keras_version.startswith("2.") if self._keras_version else \
            root is not None and "name" not in root.attrs
        trainable: list[tuple[str, tuple[int, ...], str]] = []
        tree = _Node.of(self._file, "")
        self._walk(tree, [(name, False) for name in self._root_scope()], self.model, None, trainable, True)
        metrics = tree.children.get("metrics")
        if metrics is not None:  # Keras 2 saves its compiled metrics' state (a Mean's total and count)
            self._walk(metrics, [("metrics", False)], None, None, [], False, TRAINING)
        optimizer = tree.children.get("optimizer")
        if optimizer is not None:
            self._add_optimizers(optimizer, None, trainable)

    def _root_scope(self) -> list[str]:
        """A Sequential model builds its layers inside its own name scope (``seq/dense/kernel``); others do not.

        Without a config, a Sequential is told by its ``layers`` holding no ``input_layer``, which a
        functional model's always holds.
        """
        root = _group(self._file, "vars")
        name = _text(root.attrs.get("name")) if root is not None else None
        if self.keras2:  # Keras 2 names a Sequential's weights without the model's scope
            return []
        if self.model is not None:
            sequential = self.model.class_name == "Sequential"
        else:
            layers = _group(self._file, "layers")
            sequential = layers is not None and not any(key.startswith("input_layer") for key in layers)
        return [name] if sequential and name else []

    def _walk(self, node: _Node, chain: list[tuple[str, bool]], owner: ModelSpec | None, spec: LayerSpec | None,
              trainable: list, train: bool, role: str = MODEL) -> None:
        """Add the variables of the object at ``node`` and of every object below it, in Keras' order.

        ``owner`` is the config of the model whose ``layers`` may lie below; ``spec`` this object's own.
        ``chain`` holds the names of the objects above, each with whether it is a model.
        """
        own = node.vars
        if own is not None and node.key:
            name = _text(own.attrs.get("name")) or (spec.name if spec is not None else node.key)
            chain = [*chain, (name, spec is not None and spec.model is not None)]
            train = train and (spec is None or spec.config.get("trainable", True) is not False)
            self._add_layer(own, chain, node.key, spec, trainable, train, role)
            owner = spec.model if spec is not None else None
        elif own is not None and len(own):  # the root model's own variables
            self._add_layer(own, [(_text(own.attrs.get("name")) or "model", True)], "", None, trainable, train)
        children = [key for key in node.children if not (not node.key and key in _NOT_MODEL)]
        if owner is not None and node.key in _CONTAINERS:
            specs = _layer_keys(owner, node.children if node.key == _KERAS213_CONTAINER else None)
        else:
            specs = sublayers(spec, self.keras2) if spec is not None else {}
        if specs:
            order = list(specs)
            children.sort(key=lambda key: order.index(key) if key in specs else len(order))
        for key in children:
            self._walk(node.children[key], chain, owner, specs.get(key), trainable, train, role)

    def _add_layer(self, own: Any, chain: list[tuple[str, bool]], key: str, spec: Any, trainable: list, train: bool,
                   role: str = MODEL) -> None:
        numbers = sorted((k for k in own if isinstance(own[k], _h5py_dataset())), key=_number)
        classes = [keras_names.snake_case(spec.class_name)] if spec else []
        classes += [keras_names.stem(key), keras_names.stem(chain[-1][0])]
        names = keras_names.layer_weight_names(classes, len(numbers), spec.config if spec else None, self.keras2)
        prefix = "/".join(name for name, _ in chain if name)  # an unnamed object adds no scope (see sublayers)
        # Keras 2 names a variable by the layers that create it, leaving out the models around them
        scope = "/".join(name for name, model in chain if name and not model) if self.keras2 else prefix
        for i, number in enumerate(numbers):
            weight = names[i] if names else number
            # a random generator's state is not a parameter
            kind = TRAINING if weight == "seed_generator_state" else role
            info = self._add(own[number], f"{prefix}/{weight}", kind)
            if kind != MODEL:
                continue
            if train and names and keras_names.is_trainable_weight(classes, weight):
                trainable.append((info.name, info.shape, f"{scope}/{weight}"))
            elif train and not names:
                trainable.append((info.name, info.shape, f"{scope}/{weight}"))

    def _add_optimizers(self, node: _Node, outer: str | None, trainable: list) -> list[TensorInfo]:
        """The optimizer's variables and those of any optimizer saved below it; returns the optimizer's own.

        A ``LossScaleOptimizer`` (mixed precision) keeps its own and its wrapped optimizer's variables in
        ``optimizer/vars`` and saves the wrapped one again in ``optimizer/inner_optimizer/vars``, named
        here as Keras names it: its iteration ``adam/iteration``, its slots in the outer one's scope
        (``loss_scale_optimizer/adam/dense_kernel_momentum``). The outer one's own variables are
        ``loss_scale_optimizer/step_counter``...; its copies of the wrapped ones keep their HDF5 paths.
        """
        own, found = node.vars, []
        children = dict(node.children)
        if own is not None:
            name = _text(own.attrs.get("name"))
            if outer is None:  # older Keras 3 files carry no name attributes: the configured name is the same
                prefix = name or (self.model.optimizer_name if self.model else None) or "optimizer"
                class_name, heads = self._opt_class or prefix, None
            else:
                prefix = f"{outer}/{name or node.key}"
                class_name, heads = keras_names.stem(name or node.key), name
            wrapped = children.pop("inner_optimizer", None)
            inner = self._add_optimizers(wrapped, prefix, trainable) if wrapped is not None else []
            found = self._add_optimizer(own, prefix, class_name, trainable, inner, heads)
            outer = prefix
        for child in children.values():
            self._add_optimizers(child, outer or node.key, trainable)
        return found

    def _add_optimizer(self, group: Any, prefix: str, class_name: str, trainable: list, wrapped: list[TensorInfo],
                       heads: str | None) -> list[TensorInfo]:
        numbers = sorted((k for k in group if isinstance(group[k], _h5py_dataset())), key=_number)
        shapes = [tuple(group[n].shape) for n in numbers]
        named = None
        loss_scale = keras_names.loss_scale_names(shapes, [info.shape for info in wrapped]) if wrapped else None
        if loss_scale is not None:  # the copies: the wrapped optimizer's names are taken by its own group
            named = [(f"{prefix}/{n}", None) for n in loss_scale] + [(None, info.slot_of) for info in wrapped]
        elif self.model is not None:  # the model's variable order is known only from its config
            named = keras_names.optimizer_names(class_name, prefix, shapes, trainable, self.keras2, heads)
        added = []
        for i, number in enumerate(numbers):
            name, slot_of = named[i] if named else (f"{prefix}/{number}", None)
            added.append(self._add(group[number], name or group[number].name.lstrip("/"), OPTIMIZER, slot_of))
        return added

    # --- legacy Keras 2 -----------------------------------------------------------------------------

    def _read_legacy(self, weights: Any) -> None:
        if self.model is None and "model_config" in self._file.attrs:
            document = parse_json(_text(self._file.attrs["model_config"]) or "", f"{self.label}: model_config")
            training = self._file.attrs.get("training_config")
            compile_config = parse_json(_text(training), f"{self.label}: training_config") if training else None
            self.model = parse_model(document, self.label, compile_config)
        for layer_name in (_text(n) for n in weights.attrs["layer_names"]):
            layer = _group(weights, layer_name)
            if layer is None:
                raise CorruptFileError(f"{self.label}: layer '{layer_name}' is listed in layer_names but has no group")
            for weight_name in (_text(n) for n in layer.attrs.get("weight_names", [])):
                shown = weight_name.removesuffix(":0")
                if layer_name not in shown.split("/")[:-1]:
                    shown = f"{layer_name}/{shown}"
                self._add(_dataset(layer, weight_name, self.label), shown, MODEL)
        optimizer = _group(self._file, "optimizer_weights")
        if optimizer is not None:
            for weight_name in (_text(n) for n in optimizer.attrs.get("weight_names", [])):
                dataset = _dataset(optimizer, weight_name, self.label)
                self._add(dataset, weight_name.removesuffix(":0"), OPTIMIZER, _legacy_slot_of(weight_name))

    # --- shared ---------------------------------------------------------------------------------

    def _add(self, dataset: Any, name: str, role: str, slot_of: str | None = None) -> TensorInfo:
        key = dataset.name.lstrip("/")
        if name in self._taken:  # two weights Keras would name alike: the second keeps its HDF5 path
            name = key
        self._taken.add(name)
        dtype = _dtype(dataset, self.label, name)
        shape = tuple(int(d) for d in dataset.shape)
        info = TensorInfo(name, key, dtype.name, shape,
                          math.prod(shape) * dtype.itemsize, role=role, slot_of=slot_of)
        self.tensors.append(info)
        self._datasets[key] = (dataset, dtype)
        return info

    def read(self, key: str) -> np.ndarray:
        found = self._datasets.get(key)
        if found is None:
            raise NotFoundError(f"{self.label}: no dataset '{key}'")
        dataset, dtype = found
        try:
            value = np.asarray(dataset[()])
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise CorruptFileError(f"{self.label}: '{key}': cannot read its data ({_short(exc)})") from None
        if value.dtype != dtype:
            value = value.view(dtype)
        return value.reshape(dataset.shape)

    def close(self) -> None:
        self._file.close()
        self._close_owned()

    def _close_owned(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None


def _dtype(dataset: Any, label: str, name: str) -> np.dtype:
    """The array dtype Keras loads: the stored one, or bfloat16 for Keras 3's tagged 2-byte opaque data."""
    if _text(dataset.attrs.get("dtype")) == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    dtype = dataset.dtype
    if dtype.kind not in "biufc":
        raise UnsupportedError(f"{label}: '{name}' ({dataset.name}) has HDF5 type {dtype}, not a numeric array")
    return dtype


def _legacy_slot_of(weight_name: str) -> str | None:
    """tf.keras 2.11+ optimizers name slots ``Adam/m/dense/kernel:0``: the slot of ``dense/kernel``."""
    parts = weight_name.removesuffix(":0").split("/")
    return "/".join(parts[2:]) if len(parts) > 2 and len(parts[1]) <= 2 else None


def _layer_keys(model: ModelSpec, present: dict[str, _Node] | None = None) -> dict[str, LayerSpec]:
    """The group name Keras gives each of ``model.layers`` (``saving_lib._save_container_state``), in order.

    Layers are keyed by their class in snake_case, with a counter from the second of a class on
    (``dense``, ``dense_1``...); a Sequential's ``layers`` leave out its InputLayer. Keras 2.12-2.13
    saved the ``_layer_checkpoint_dependencies`` dict instead, which lists a layer with weights twice
    (``layer_with_weights-N`` and ``layer-M``), and counted the repeat it skipped (``conv2d``,
    ``conv2d_2``...); Keras 2.14 no longer counted it. ``present`` (that container's objects) tells which.
    """
    plain = _numbered(model, lambda key: False)
    if present is None or set(plain) <= set(present):
        return plain
    return _numbered(model, lambda key: key in present and present[key].has_data())


def _numbered(model: ModelSpec, counted_twice: Callable[[str], bool]) -> dict[str, LayerSpec]:
    used: dict[str, int] = {}
    keys: dict[str, LayerSpec] = {}
    for layer in model.layers:
        if model.class_name == "Sequential" and layer.class_name == "InputLayer":
            continue
        name = keras_names.snake_case(layer.class_name)
        count = used.get(name, -1) + 1
        key = f"{name}_{count}" if count else name
        keys[key] = layer
        used[name] = count + 1 if counted_twice(key) else count
    return keys


class _Node:
    """A saved object: its HDF5 group (None for a path no group has), its ``vars`` and the objects below it.

    Keras 2 on Windows joined object paths with backslashes, which HDF5 keeps in one group's name
    (``enc\\_layer_checkpoint_dependencies\\conv2d`` at the root): such a name is split back into its path.
    """

    def __init__(self, group: Any, key: str) -> None:
        self.group = group
        self.key = key
        self.children: dict[str, _Node] = {}

    @classmethod
    def of(cls, group: Any, key: str) -> _Node:
        node = cls(group, key)
        node._add_children(group)
        return node

    def _add_children(self, group: Any) -> None:
        for name in group:
            child = group[name]
            if not isinstance(child.name, str):  # h5py gives bytes for a name that is not UTF-8: damaged metadata
                raise ValueError(f"object name {child.name[:60]!r} is not UTF-8")
            if name == "vars" or not isinstance(child, _h5py_group()):
                continue
            *path, last = name.split("\\")
            parent = self
            for part in path:
                parent = parent.children.setdefault(part, _Node(None, part))
            node = parent.children.setdefault(last, _Node(child, last))
            if node.group is None:  # ``a`` listed after ``a\\b`` made a node for it
                node.group = child
            node._add_children(child)

    @property
    def vars(self) -> Any:
        return _group(self.group, "vars") if self.group is not None else None

    def has_data(self) -> bool:
        """Whether any variable is stored at or below this object."""
        own = self.vars
        if own is not None and any(isinstance(own[k], _h5py_dataset()) for k in own):
            return True
        return any(child.has_data() for child in self.children.values())


def _group(parent: Any, path: str) -> Any:
    try:
        found = parent.get(path)
    except (KeyError, OSError, ValueError):
        return None
    return found if isinstance(found, _h5py_group()) else None


def _dataset(group: Any, name: str, label: str) -> Any:
    try:
        found = group.get(name)
    except (KeyError, OSError, ValueError):
        found = None
    if not isinstance(found, _h5py_dataset()):
        raise CorruptFileError(f"{label}: weight '{name}' of '{group.name.lstrip('/')}' is listed but not stored")
    return found


def _number(key: str) -> tuple[int, str]:
    return (int(key), key) if key.isdigit() else (1 << 62, key)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _text(value.item())
    return str(value)


def _short(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:200]


def _h5py_group():
    return import_h5py().Group


def _h5py_dataset():
    return import_h5py().Dataset
