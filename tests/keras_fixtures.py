"""Keras files written by real Keras 3 (and by tf_keras, the Keras 2 line, for the legacy format).

Run as a script: ``python tests/keras_fixtures.py OUTDIR``. It writes the files and, for each, what
Keras itself holds: ``OUTDIR/manifest.json`` maps a label to ``{"path", "expected"}``, ``expected``
naming an npz of every variable keyed by the name Keras users know (``w.path`` in Keras 3, the
``weight.name`` without ``:0`` in Keras 2) and ``dtypes`` giving each one's dtype (bfloat16 is
stored in the npz as its uint16 bits). A custom layer's variables are keyed ``<layer>/<index>``,
the name ckpttools documents for classes it does not know.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402


def _keras3_models():
    import keras

    @keras.saving.register_keras_serializable(package="fixtures")
    class MyScale(keras.layers.Layer):
        """A layer class only this script knows: its weights must still be listed."""

        def build(self, input_shape):
            self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.scale

    layers = keras.layers
    keras.utils.set_random_seed(0)
    sequential = keras.Sequential([
        keras.Input((6,)), layers.Dense(5), layers.Dropout(0.1), layers.BatchNormalization(),
        layers.Dense(3, use_bias=False), layers.Dense(2),
    ], name="seq")  # fmt: skip
    image = keras.Input((8, 8, 3), name="image")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    x = layers.Conv2D(4, 3, padding="same")(image)
    x = layers.BatchNormalization(center=False)(x)
    x = layers.GlobalAveragePooling2D()(x)
    t = layers.Embedding(20, 4)(tokens)
    t = layers.LSTM(6)(t)
    x = layers.Concatenate()([x, t])
    head = keras.Sequential([keras.Input((10,)), layers.Dense(8), layers.Dense(4)], name="head")
    x = head(x)
    x = layers.Lambda(lambda v: v * 2.0, name="double")(x)
    x = MyScale(name="my_scale")(x)
    out = layers.Dense(3, name="logits")(x)
    functional = keras.Model([image, tokens], out, name="net")
    rng = np.random.default_rng(0)
    sequential.compile("adam", "mse", run_eagerly=True)  # eager: no graph tracing, a faster fixture
    sequential.fit(rng.normal(size=(8, 6)), rng.normal(size=(8, 2)), epochs=2, batch_size=4, verbose=0)
    functional.compile(keras.optimizers.Adam(1e-2), "mse", run_eagerly=True)
    functional.fit([rng.normal(size=(8, 8, 8, 3)), rng.integers(0, 20, (8, 5))], rng.normal(size=(8, 3)),
                   epochs=1, batch_size=4, verbose=0)
    bf16 = keras.Sequential([keras.Input((4,)), layers.Dense(3, dtype="bfloat16", name="half")], name="bf16")
    return sequential, functional, bf16


def _expected_keras3(model, custom=("my_scale",)) -> dict[str, np.ndarray]:
    found, renamed = {}, {}
    for layer in model.layers:
        for i, weight in enumerate(layer.weights):
            name = f"{layer.name}/{i}" if layer.name in custom else weight.path
            renamed[weight.path.replace("/", "_")] = name.replace("/", "_")
            found[name] = np.asarray(weight.numpy())
    if getattr(model, "optimizer", None) is not None and model.optimizer.built:
        for variable in model.optimizer.variables:
            prefix, _, slot = variable.path.partition("/")
            for old, new in renamed.items():  # slots are named after their variable
                slot = new + slot[len(old):] if slot.startswith(old + "_") else slot
            found[f"{prefix}/{slot}"] = np.asarray(variable.numpy())
    return found


def _save_expected(out: Path, label: str, arrays: dict[str, np.ndarray]) -> dict:
    dtypes = {name: str(a.dtype) for name, a in arrays.items()}
    stored = {name: a.view(np.uint16) if str(a.dtype) == "bfloat16" else a for name, a in arrays.items()}
    path = out / f"expected_{label}.npz"
    np.savez(path, **stored)
    return {"expected": str(path), "dtypes": dtypes}


def write_keras3(out: Path) -> dict[str, dict]:
    import tensorflow as tf

    sequential, functional, bf16 = _keras3_models()
    manifest = {}
    for label, model in (("sequential", sequential), ("functional", functional), ("bf16", bf16)):
        expected = _save_expected(out, label, _expected_keras3(model))
        model.save(out / f"{label}.keras")
        manifest[f"{label}.keras"] = {"path": str(out / f"{label}.keras"), **expected}
        if label != "bf16":
            model.save_weights(out / f"{label}.weights.h5")
            manifest[f"{label}.weights.h5"] = {"path": str(out / f"{label}.weights.h5"), **expected}
            model.save(out / f"{label}_legacy.h5")  # Keras 3's legacy HDF5 writer, which stores weight names
            legacy = _save_expected(out, f"{label}_legacy", _expected_keras3(model, custom=()))
            manifest[f"{label}_legacy.h5"] = {"path": str(out / f"{label}_legacy.h5"), **legacy}
    keras = sys.modules["keras"]
    image = keras.Input((28, 28, 1))
    pretrained = keras.Model(image, keras.layers.Conv2D(8, 3, padding="same", name="conv_block1")(image))
    pretrained.save(out / "conv.keras")  # shaped like cnn5's first block, for transfer
    manifest["conv.keras"] = {"path": str(out / "conv.keras")}
    deflated = out / "functional_deflated.keras"
    with zipfile.ZipFile(out / "functional.keras") as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item.filename, src.read(item))
    manifest["functional_deflated.keras"] = {**manifest["functional.keras"], "path": str(deflated)}
    try:  # Keras 3's other weights format: each layer's weights pickled into model.weights.npz
        from keras.src.saving import saving_lib

        saving_lib.save_model(sequential, out / "npz_weights.keras", weights_format="npz")
        manifest["npz_weights.keras"] = {"path": str(out / "npz_weights.keras")}
    except (ImportError, TypeError):
        pass
    prefix = tf.train.Checkpoint(model=sequential).write(str(out / "tf_sequential" / "ckpt"))
    manifest["tf_sequential"] = {"path": prefix}
    manifest.update(write_loss_scale(out))
    manifest.update(write_conv_rnn(out))
    return manifest


def write_conv_rnn(out: Path) -> dict[str, dict]:
    """A ConvLSTM1D (its ``conv_lstm_cell``, one without a bias) beside a TimeDistributed layer, fitted."""
    import keras

    layers = keras.layers
    keras.utils.set_random_seed(2)
    frames = keras.Input((4, 6, 2), name="frames")
    x = layers.TimeDistributed(layers.Dense(3))(frames)
    x = layers.ConvLSTM1D(2, 3, return_sequences=True)(x)
    x = layers.ConvLSTM1D(2, 1, use_bias=False)(x)
    model = keras.Model(frames, layers.Flatten()(x), name="conv_rnn")
    model.compile(keras.optimizers.Adam(name="adam"), "mse", run_eagerly=True)
    rng = np.random.default_rng(2)
    model.fit(rng.normal(size=(4, 4, 6, 2)), rng.normal(size=(4, 8)), epochs=1, verbose=0)
    expected = _save_expected(out, "conv_rnn", _expected_keras3(model))
    model.save(out / "conv_rnn.keras")
    model.save_weights(out / "conv_rnn.weights.h5")
    return {name: {"path": str(out / name), **expected} for name in ("conv_rnn.keras", "conv_rnn.weights.h5")}


def write_loss_scale(out: Path) -> dict[str, dict]:
    """A model trained with mixed precision's LossScaleOptimizer, which saves its wrapped optimizer twice.

    ``inner`` holds the wrapped optimizer's variables in order, keyed by their Keras paths.
    """
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="d1"), keras.layers.Dense(2, name="d2")],
                             name="seq")
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(1e-2))
    model.compile(optimizer, "mse", run_eagerly=True)
    rng = np.random.default_rng(1)
    model.fit(rng.normal(size=(8, 4)), rng.normal(size=(8, 2)), epochs=2, batch_size=4, verbose=0)
    inner = {variable.path: np.asarray(variable.numpy()) for variable in optimizer.inner_optimizer.variables}
    np.savez(out / "expected_loss_scale_inner.npz", **{f"{i:03d}|{k}": v for i, (k, v) in enumerate(inner.items())})
    manifest = {}
    for name in ("loss_scale.keras", "loss_scale.weights.h5"):
        model.save(out / name) if name.endswith(".keras") else model.save_weights(out / name)
        manifest[name] = {"path": str(out / name), "inner": str(out / "expected_loss_scale_inner.npz"),
                          "loaded": str(out / "expected_loss_scale_loaded.npz")}
    loaded = keras.saving.load_model(out / "loss_scale.keras").optimizer  # every variable, by Keras' own path
    np.savez(out / "expected_loss_scale_loaded.npz", **{v.path: np.asarray(v.numpy()) for v in loaded.variables})
    return manifest


def write_keras2(out: Path) -> dict[str, dict]:
    """tf_keras (Keras 2.x): ``model.save('x.h5')`` and ``save_weights('x.h5')``, Keras 2's own writer."""
    k2 = _tf_keras(1)
    if k2 is None:
        return {}
    inner = k2.Sequential([k2.layers.Dense(4, input_shape=(8,)), k2.layers.Dense(3)], name="inner")
    inp = k2.Input((8,))
    x = k2.layers.Dense(8)(inp)
    x = k2.layers.BatchNormalization()(x)
    model = k2.Model(inp, inner(x))
    rng = np.random.default_rng(1)
    found = _keras2_trained(model, rng.normal(size=(8, 8)), rng.normal(size=(8, 3)))
    weights_only = _keras2_names(model)
    model.save(out / "keras2_model.h5")
    model.save_weights(out / "keras2_weights.h5")
    model.save(out / "keras2.keras")  # Keras 2's own .keras writer: no name attributes, Keras 2 names
    return {
        "keras2.keras": {"path": str(out / "keras2.keras"), **_save_expected(out, "keras2_model", found)},
        "keras2_model.h5": {"path": str(out / "keras2_model.h5"), **_save_expected(out, "keras2_model", found)},
        "keras2_weights.h5": {"path": str(out / "keras2_weights.h5"),
                              **_save_expected(out, "keras2_weights", weights_only)},
    }


def _keras2_names(model) -> dict[str, np.ndarray]:
    """Every weight by its Keras 2 name (without ``:0``), under its layer's name where the weight's lacks it."""
    found = {}
    for layer in model.layers:
        for weight in layer.weights:
            name = weight.name.removesuffix(":0")
            found[name if name.split("/")[0] == layer.name else f"{layer.name}/{name}"] = weight.numpy()
    return found


def _tf_keras(seed: int):
    """tf_keras with its random seed set, or None where it is not installed."""
    try:
        import tf_keras as k2
    except ImportError:
        return None
    k2.utils.set_random_seed(seed)
    return k2


def _keras2_trained(model, x: np.ndarray | list[np.ndarray], y: np.ndarray) -> dict[str, np.ndarray]:
    """Train ``model`` briefly with Adam; every weight and optimizer variable by its Keras 2 name."""
    model.compile(sys.modules["tf_keras"].optimizers.Adam(), "mse", run_eagerly=True)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    found = _keras2_names(model)
    for variable in model.optimizer.variables():
        found[variable.name.removesuffix(":0")] = variable.numpy()
    return found


def write_keras2_rnn(out: Path) -> dict[str, dict]:
    """tf_keras LSTM, GRU and Bidirectional(LSTM) layers saved as ``.keras`` (no names stored) and legacy ``.h5``."""
    k2 = _tf_keras(3)
    if k2 is None:
        return {}
    layers = k2.layers
    model = k2.Sequential([
        layers.LSTM(4, return_sequences=True, input_shape=(5, 3)), layers.GRU(3, return_sequences=True),
        layers.Bidirectional(layers.LSTM(2, use_bias=False)), layers.Dense(1),
    ], name="rnn")  # fmt: skip
    rng = np.random.default_rng(3)
    found = _keras2_trained(model, rng.normal(size=(8, 5, 3)), rng.normal(size=(8, 1)))
    expected = _save_expected(out, "keras2_rnn", found)
    model.save(out / "keras2_rnn.keras")
    model.save(out / "keras2_rnn.h5")
    return {label: {"path": str(out / label), **expected} for label in ("keras2_rnn.keras", "keras2_rnn.h5")}


def write_keras2_wrappers(out: Path) -> dict[str, dict]:
    """tf_keras TimeDistributed layers and ConvLSTM1D/2D, saved as ``.keras``, and the reloaded model's weights.

    tf_keras builds the wrapped layer and the convolutional cell in the outer layer's scope
    (``time_distributed/kernel``, ``conv_lstm1d/recurrent_kernel``), though the file stores them a level below.
    """
    k2 = _tf_keras(6)
    if k2 is None:
        return {}
    layers = k2.layers
    frames, clips = k2.Input((4, 6, 2)), k2.Input((3, 4, 4, 1))
    x = layers.TimeDistributed(layers.Dense(3))(frames)
    x = layers.TimeDistributed(layers.Dense(3, use_bias=False))(x)
    x = layers.ConvLSTM1D(2, 3, return_sequences=True)(x)
    x = layers.Flatten()(layers.ConvLSTM1D(2, 1, use_bias=False)(x))
    y = layers.Flatten()(layers.ConvLSTM2D(2, 3)(clips))
    model = k2.Model([frames, clips], layers.Dense(2)(layers.Concatenate()([x, y])))
    rng = np.random.default_rng(6)
    found = _keras2_trained(model, [rng.normal(size=(8, 4, 6, 2)), rng.normal(size=(8, 3, 4, 4, 1))],
                            rng.normal(size=(8, 2)))
    path = out / "keras2_wrappers.keras"
    model.save(path)
    loaded = _keras2_names(k2.models.load_model(path))  # its optimizer's slots lose their "Adam/" scope
    np.savez(out / "expected_keras2_wrappers_loaded.npz", **loaded)
    return {path.name: {"path": str(path), "loaded": str(out / "expected_keras2_wrappers_loaded.npz"),
                        **_save_expected(out, "keras2_wrappers", found)}}


def write_keras213(out: Path) -> dict[str, dict]:
    """``.keras`` files in the layouts of Keras 2.13 and of Keras 2.14 on Windows, which no installable Keras writes.

    Both are derived from what tf_keras writes today, as real files of those versions show them: the
    layers' groups sit under ``_layer_checkpoint_dependencies``, keyed by class; Keras 2.13 counted a
    layer with weights twice (``dense``, ``dense_2``; an InputLayer or Activation once); Keras 2.14 on
    Windows counted each once but joined the path with backslashes into one group name at the root.
    """
    k2 = _tf_keras(4)
    if k2 is None:
        return {}
    import h5py
    from tf_keras.src.utils.generic_utils import to_snake_case
    layers = k2.layers
    inp = k2.Input((6, 6, 3))  # shaped like the real file's blocks: Conv2D, ReLU, DepthwiseConv2D, ReLU, Conv2D
    x = layers.Conv2D(4, 1, use_bias=False)(inp)
    x = layers.ReLU()(x)
    x = layers.DepthwiseConv2D(3, use_bias=False)(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(5, 1)(x)
    x = layers.BatchNormalization()(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = k2.Model(inp, layers.Dense(2)(x))
    model.save(out / "keras2_functional.keras")
    expected = _save_expected(out, "keras213", _keras2_names(model))
    manifest = {}
    for label, gapped, windows in (("keras213.keras", True, False), ("keras214_windows.keras", False, True)):
        keys: dict[str, str] = {}  # tf_keras' key under layers/ -> the old key
        now: dict[str, int] = {}
        old: dict[str, int] = {}
        for layer in model.layers:
            cls = to_snake_case(type(layer).__name__)  # Keras' own naming of the groups
            n, o = now.get(cls, -1) + 1, old.get(cls, -1) + 1
            now[cls] = n
            old[cls] = o + 1 if gapped and layer.weights else o
            keys[f"{cls}_{n}" if n else cls] = f"{cls}_{o}" if o else cls
        sep = "\\" if windows else "/"
        weights = out / f"{label}.weights.h5"
        with zipfile.ZipFile(out / "keras2_functional.keras") as src:
            (out / "src.weights.h5").write_bytes(src.read("model.weights.h5"))
            config = src.read("config.json")
        with h5py.File(out / "src.weights.h5", "r") as f, h5py.File(weights, "w") as g:
            g.create_group("vars")
            for key in f["layers"]:
                g.copy(f["layers"][key], f"_layer_checkpoint_dependencies{sep}{keys[key]}")
        version = "2.14.0" if windows else "2.13.1"
        with zipfile.ZipFile(out / label, "w") as dst:
            dst.writestr("metadata.json", json.dumps({"keras_version": version, "date_saved": "2023-10-14@08:58:24"}))
            dst.writestr("config.json", config)
            dst.write(weights, "model.weights.h5")
        weights.unlink()
        manifest[label] = {"path": str(out / label), **expected}
    (out / "src.weights.h5").unlink()
    return manifest


def main(outdir: str) -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    manifest = write_keras3(out)
    manifest.update(write_keras2(out))
    manifest.update(write_keras2_rnn(out))
    manifest.update(write_keras2_wrappers(out))
    manifest.update(write_keras213(out))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
