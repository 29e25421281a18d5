"""Files written by real TensorFlow/Keras for the real-file regression tests (tests/test_real_files.py).

Each case is a kind of file that once gave a wrong answer or a crash: lookup tables (empty and
not), a function library holding a convolution, Placeholders of old graphs, a ``checkpoint`` state
file naming a non-ASCII directory, a compiled and fitted Keras model with metrics, SavedModels laid
out in export folders, names with empty components, a 64 KiB name, a big checkpoint to kill an
``extract`` of. Next to the files, ``truth.json`` records what TensorFlow itself reads from them.

    python tests/real_file_fixtures.py OUTDIR
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import text_format  # noqa: E402

v1 = tf.compat.v1
LONG_NAME = "n" * 70_000  # over the zip format's 64 KiB limit for a member name


def _checkpoint_view(prefix: str) -> dict:
    """TensorFlow's reading of a checkpoint: {key: [dtype, shape]}."""
    reader = tf.train.load_checkpoint(prefix)
    dtypes = reader.get_variable_to_dtype_map()
    return {key: [dtypes[key].name, list(shape)] for key, shape in reader.get_variable_to_shape_map().items()}


class _Tables(tf.Module):
    def __init__(self) -> None:
        super().__init__()
        self.empty = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1)
        self.vocab = tf.lookup.experimental.MutableHashTable(tf.int64, tf.string, default_value="")
        self.vocab.insert(tf.constant([1, 22, 333], tf.int64), tf.constant(["x", "yy", ""]))
        self.weight = tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def lookup(self, keys: tf.Tensor) -> tf.Tensor:
        return self.empty.lookup(keys)


def write_tables(root: Path) -> dict:
    """Lookup tables in a TF2 checkpoint and a SavedModel: ``table-keys``/``table-values``, one set empty."""
    module = _Tables()
    prefix = tf.train.Checkpoint(module=module).write(str(root / "tables" / "ckpt"))
    saved = str(root / "tables_saved_model")
    tf.saved_model.save(module, saved)
    return {"tables_ckpt": {"path": prefix, "tf": _checkpoint_view(prefix)},
            "tables_saved_model": {"path": saved, "tf": _checkpoint_view(saved + "/variables/variables")}}


def _keras_conv_model():
    import keras

    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")])


def write_conv_functions(root: Path) -> dict:
    """A GraphDef whose function library holds a Conv2D, and a Keras SavedModel (whose functions do too)."""
    kernel = tf.constant(np.ones((3, 3, 1, 2), np.float32))

    @tf.function
    def conv(x):
        return tf.nn.conv2d(x, kernel, strides=1, padding="SAME")

    @tf.function
    def outer(x):
        return conv(x) + 1.0

    graph_def = outer.get_concrete_function(tf.TensorSpec([1, 8, 8, 1], tf.float32)).graph.as_graph_def()
    path = root / "conv_function.pb"
    path.write_bytes(graph_def.SerializeToString())
    model = _keras_conv_model()
    saved = str(root / "keras_conv_saved_model")
    model.export(saved)
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((Path(saved) / "saved_model.pb").read_bytes())
    return {"conv_function": {"path": str(path), "functions": _function_ops(graph_def)},
            "keras_conv_saved_model": {"path": saved, "functions": _function_ops(proto.meta_graphs[0].graph_def),
                                       "count_params": int(model.count_params()), "tf": _checkpoint_view(
                                           saved + "/variables/variables")}}


def _function_ops(graph_def) -> dict:
    """{function name: sorted op types of its body}, as TensorFlow's protos hold them."""
    return {f.signature.name: sorted({node.op for node in f.node_def}) for f in graph_def.library.function}


def _shape_of(tensor: tf.Tensor) -> list | None:
    """What TensorFlow reports: None for unknown rank, None in the list for an unknown dimension."""
    return None if tensor.shape.rank is None else [d for d in tensor.shape.as_list()]


def write_old_placeholders(root: Path) -> dict:
    """A TF1 graph as old TensorFlow (GraphDef version <= 21) wrote it: Placeholders with an empty
    ``shape {}`` or no shape attribute, some carrying the real shape in ``_output_shapes``."""
    graph = tf.Graph()
    with graph.as_default():
        images = v1.placeholder(tf.float32, [None, 32, 32, 1], name="images")
        v1.placeholder(tf.int64, [None], name="labels")
        v1.placeholder(tf.float32, None, name="anything")
        v1.placeholder(tf.float32, [], name="rate")
        tf.identity(tf.reduce_sum(images), name="total")
        meta = v1.train.export_meta_graph(graph_def=graph.as_graph_def(add_shapes=True), graph=graph)
    graph_def = meta.graph_def
    graph_def.versions.producer = 21
    nodes = {node.name: node for node in graph_def.node}
    nodes["images"].attr["shape"].shape.Clear()  # empty `shape {}`; real shape only in _output_shapes
    del nodes["labels"].attr["shape"]  # missing attr; _output_shapes keeps [?]
    nodes["anything"].attr["shape"].shape.Clear()
    del nodes["anything"].attr["_output_shapes"]  # nothing known: unknown rank
    # "rate" keeps its scalar shape in _output_shapes, which old TF wrote for scalars
    meta_path = root / "old_placeholders.meta"
    meta_path.write_bytes(meta.SerializeToString())
    pb_path = root / "old_placeholders.pb"
    pb_path.write_bytes(graph_def.SerializeToString())
    imported = tf.Graph()
    with imported.as_default():
        v1.train.import_meta_graph(str(meta_path))
    names = ("images", "labels", "anything", "rate")
    shapes = {name: _shape_of(imported.get_tensor_by_name(f"{name}:0")) for name in names}
    return {"old_placeholders": {"path": str(meta_path), "pb": str(pb_path), "shapes": shapes}}


def write_unicode_states(root: Path) -> dict:
    """``checkpoint`` state files naming non-ASCII paths with octal escapes, as TensorFlow wrote them with
    protobuf 3 (``text_format`` escaped every non-ASCII byte): a local path, and a Windows path from
    another machine. The truth is what ``tf.train.get_checkpoint_state`` reads back."""
    from tensorflow.python.checkpoint.checkpoint_management import CheckpointState

    out = {}
    for label, named in (("unicode_state", None), ("windows_state", "C:\\Users\\桌面\\modèle\\ckpt-1")):
        directory = root / label / "桌面" / "modèle"
        prefix = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(directory / "ckpt-1"))
        state = CheckpointState(model_checkpoint_path=named or prefix, all_model_checkpoint_paths=[named or prefix])
        (directory / "checkpoint").write_text(text_format.MessageToString(state, as_utf8=False), encoding="ascii")
        out[label] = {"path": str(directory), "prefix": prefix,
                      "named": tf.train.get_checkpoint_state(str(directory)).model_checkpoint_path}
    return out


def _fit(model, keras) -> None:
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(3)])
    rng = np.random.RandomState(0)
    model.fit(rng.rand(16, 8, 8, 1).astype(np.float32), rng.randint(0, 10, 16), epochs=1, verbose=0)


def write_keras_metrics(root: Path) -> dict:
    """Keras models compiled with metrics and fitted, each saved as a TF2 checkpoint and a SavedModel:
    tf.keras (Keras 2: ``save_weights``, ``model.save``) and Keras 3 (``tf.train.Checkpoint``, ``tf.saved_model``)."""
    import keras
    import tf_keras

    tf_keras.utils.set_random_seed(2)
    legacy = tf_keras.Sequential([tf_keras.Input((8, 8, 1)), tf_keras.layers.Conv2D(2, 3, activation="relu"),
                                  tf_keras.layers.Flatten(), tf_keras.layers.Dense(10, activation="softmax")])
    _fit(legacy, tf_keras)
    legacy_prefix = str(root / "tf_keras_metrics" / "ckpt")
    legacy.save_weights(legacy_prefix)
    legacy_saved = str(root / "tf_keras_metrics_saved_model")
    legacy.save(legacy_saved, save_format="tf")
    model = _keras_conv_model()
    _fit(model, keras)
    prefix = tf.train.Checkpoint(model=model, optimizer=model.optimizer).write(str(root / "keras_metrics" / "ckpt"))
    saved = str(root / "keras_metrics_saved_model")
    tf.saved_model.save(model, saved)
    return {"keras_metrics": {"checkpoint": prefix, "saved_model": saved, "count_params": int(model.count_params())},
            "tf_keras_metrics": {"checkpoint": legacy_prefix, "saved_model": legacy_saved,
                                 "count_params": int(legacy.count_params())}}


class _Scale(tf.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.scale = tf.Variable(value)


def write_text_vectorization(root: Path) -> dict:
    """tf.keras TextVectorization/StringLookup: their ``token_counts`` tables are saved even when empty,
    as 0-element string keys and int64 values (a checkpoint and a Keras SavedModel)."""
    import tf_keras

    vectorize = tf_keras.layers.TextVectorization(max_tokens=10)
    vectorize.adapt(tf.constant(["a b c", "b c d"]))
    unadapted = tf_keras.layers.StringLookup()
    prefix = tf.train.Checkpoint(vectorize=vectorize, lookup=unadapted).write(str(root / "text" / "ckpt"))
    model = tf_keras.Sequential([tf_keras.Input((1,), dtype=tf.string), vectorize])
    saved = str(root / "text_saved_model")
    model.save(saved, save_format="tf")
    return {"text_ckpt": {"path": prefix, "tf": _checkpoint_view(prefix)},
            "text_saved_model": {"path": saved, "tf": _checkpoint_view(saved + "/variables/variables")}}


def write_equal_module(root: Path) -> dict:
    """A tf.Module SavedModel with equal zero variables, under TF's default name and under one shared name:
    different variables, though their name, shape and checksum agree."""
    module = tf.Module()
    module.a, module.b = tf.Variable(tf.zeros([5])), tf.Variable(tf.zeros([5]))
    module.c, module.d = tf.Variable(tf.zeros([5]), name="bias"), tf.Variable(tf.zeros([5]), name="bias")
    tf.saved_model.save(module, str(root / "equal_module"))
    return {"equal_module": {"path": str(root / "equal_module")}}


def write_exports(root: Path) -> dict:
    """Export folders: timestamped versions, several named models, a TF1 Hub module layout."""
    exports = root / "exports"
    for stamp, value in (("1600000000", 1.0), ("1600000500", 2.0), ("1599999999", 3.0)):
        tf.saved_model.save(_Scale(value), str(exports / "export" / stamp))
    (exports / "export" / "temp-1600000900").mkdir()  # an unfinished export: not a candidate
    for name, value in (("resnet", 4.0), ("mobilenet", 5.0)):
        tf.saved_model.save(_Scale(value), str(exports / "models" / name))
    hub = exports / "hub_module"
    tf.saved_model.save(_Scale(6.0), str(hub))
    (hub / "tfhub_module.pb").write_bytes(b"\x08\x03")  # ModuleDef{format: FORMAT_V3}, as hub writes it
    moved = exports / "moved"  # a SavedModel whose variables were written under another prefix
    tf.saved_model.save(_Scale(7.0), str(moved))
    for path in (moved / "variables").iterdir():
        path.rename(path.with_name(path.name.replace("variables", "model", 1)))
    values = {}
    for path in (*sorted((exports / "export").glob("1*")), exports / "models" / "resnet", hub, moved):
        var_dir = path / "variables"
        prefix = str(var_dir / next(p.name for p in var_dir.iterdir() if p.suffix == ".index")[: -len(".index")])
        values[str(path)] = {"prefix": prefix, "scale": float(tf.train.load_checkpoint(prefix).get_tensor(
            "scale/.ATTRIBUTES/VARIABLE_VALUE"))}
    return {"exports": {"path": str(exports), "values": values}}


def write_odd_names(root: Path) -> dict:
    """Names TF1 variables cannot have but checkpoints do: empty components; a name over 64 KiB."""
    names = {"linear//weight": np.arange(4, dtype=np.float32), "linear/bias": np.ones(2, np.float32),
             "a//b//c": np.full(3, 7, np.int32), "//lead": np.zeros(1, np.float32)}
    prefix = str(root / "odd" / "model.ckpt")
    (root / "odd").mkdir()
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=list(names), shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(v) for v in names.values()])
    long_prefix = str(root / "long" / "model.ckpt")
    (root / "long").mkdir()
    tf.raw_ops.SaveV2(prefix=long_prefix, tensor_names=[LONG_NAME, "short"], shape_and_slices=["", ""],
                      tensors=[tf.constant([1.0, 2.0]), tf.constant([3.0])])
    return {"odd_names": {"path": prefix, "tf": _checkpoint_view(prefix)},
            "long_name": {"path": long_prefix, "tf": _checkpoint_view(long_prefix)}}


def write_big(root: Path) -> dict:
    """A 32 MB checkpoint: an ``extract`` of it takes long enough to be killed mid-write."""
    rng = np.random.RandomState(3)
    variables = {f"layer{i}": tf.Variable(rng.standard_normal((1024, 4096)).astype(np.float32)) for i in range(2)}
    prefix = tf.train.Checkpoint(**variables).write(str(root / "big" / "ckpt"))
    return {"big": {"path": prefix}}


def write_long_pbtxt(root: Path) -> dict:
    """A text GraphDef with a ~8 KB line (a constant's tensor_content), cut in the middle of that line."""
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(np.arange(2048, dtype=np.float32), name="table")
    text = text_format.MessageToString(graph.as_graph_def())
    long_line = max(text.splitlines(), key=len)
    cut = text.index(long_line) + len(long_line) // 2
    path = root / "truncated.pbtxt"
    path.write_text(text[:cut])
    return {"truncated_pbtxt": {"path": str(path), "long_line": len(long_line)}}


class _ConfiguredLayer(tf.Module):
    """Saves its config as JSON text under the attribute ``OBJECT_CONFIG_JSON`` beside its variables, as every
    Keras layer and model of TF 2.0-2.2 did in ``model.save_weights`` checkpoints."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.kernel = tf.Variable(np.arange(2 * units, dtype=np.float32).reshape(2, units))
        self._config = json.dumps({"class_name": "Dense", "config": {"units": units}})

    def _serialize_to_tensors(self) -> dict:
        return {"OBJECT_CONFIG_JSON": tf.constant(self._config)}

    def _restore_from_tensors(self, restored_tensors: dict):
        return tf.no_op()


def write_object_config(root: Path) -> dict:
    """A checkpoint whose root object and a child save OBJECT_CONFIG_JSON text, the root's key being
    ``/.ATTRIBUTES/OBJECT_CONFIG_JSON`` (model.save_weights makes the model the root)."""
    model = _ConfiguredLayer(3)
    model.layer_with_weights_1 = _ConfiguredLayer(2)
    prefix = tf.train.Checkpoint(model).write(str(root / "object_config" / "cp.ckpt"))
    return {"object_config": {"path": prefix, "tf": _checkpoint_view(prefix)}}


BUILDERS = (write_tables, write_conv_functions, write_old_placeholders, write_unicode_states,
            write_keras_metrics, write_text_vectorization, write_equal_module, write_exports,
            write_odd_names, write_big, write_long_pbtxt, write_object_config)


def main(outdir: str) -> None:
    root = Path(outdir)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    truth: dict = {}
    for builder in BUILDERS:
        truth.update(builder(root))
    (root / "truth.json").write_text(json.dumps(truth, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
