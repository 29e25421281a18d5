"""Graphs written by real TensorFlow, and what TensorFlow itself reads back from them: test_graph's ground truth.

Each ``write_*`` builder writes its files into the directory it is given and returns
``{label: path}``. ``truth(label, path)`` then loads the file the way a TensorFlow user would, into a
fresh ``tf.Graph`` (``import_meta_graph`` for .meta files, ``import_graph_def`` for GraphDefs,
``saved_model.loader.load`` for SavedModels), and records every node's op, data inputs (tensor names),
control inputs and the function library, plus signature defs and conv/pool attributes.

Run as a script to write all of them and OUTDIR/truth.json ({label: {"path", "nodes", ...}})::

    python tests/tf_graph_fixtures.py OUTDIR
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import text_format  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402

v1 = tf.compat.v1
PathLike = str | os.PathLike
CONV_OPS = ("Conv2D", "DepthwiseConv2dNative", "MaxPool", "AvgPool")


def _dir(directory: PathLike) -> Path:
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _weight(name: str, shape: tuple[int, ...], rng: np.random.RandomState) -> tf.Variable:
    return v1.get_variable(name, initializer=tf.constant(rng.normal(0, 0.1, shape).astype(np.float32)))


def _cnn_body(images: tf.Tensor, rng: np.random.RandomState) -> tf.Tensor:
    """Convolutions with varied kernel sizes, strides, padding and a dilation; pools; a dense head."""
    with v1.variable_scope("cnn"):
        with v1.variable_scope("conv1"):
            x = tf.nn.conv2d(images, _weight("kernel", (5, 5, 3, 8), rng), strides=1, padding="SAME")
            x = tf.nn.relu(tf.nn.bias_add(x, _weight("bias", (8,), rng)))
        x = tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME", name="pool1")
        with v1.variable_scope("conv2"):
            x = tf.nn.relu(tf.nn.conv2d(x, _weight("kernel", (3, 3, 8, 16), rng), strides=2, padding="VALID"))
        with v1.variable_scope("dilated"):
            x = tf.nn.conv2d(x, _weight("kernel", (3, 3, 16, 16), rng), strides=1, padding="SAME", dilations=2)
        with v1.variable_scope("depthwise"):
            x = tf.nn.depthwise_conv2d(x, _weight("kernel", (3, 3, 16, 1), rng), strides=[1, 2, 2, 1],
                                       padding="SAME")
        x = tf.nn.avg_pool2d(x, ksize=2, strides=2, padding="VALID", name="pool2")
        x = tf.reduce_mean(x, axis=[1, 2], name="global_pool")
        with v1.variable_scope("logits"):
            logits = tf.matmul(x, _weight("kernel", (16, 10), rng)) + _weight("bias", (10,), rng)
    return logits


def write_cnn(directory: PathLike) -> dict[str, str]:
    """TF1-style CNN (VariableV2 variables) with summaries, Adam and a Saver, exported as cnn.meta."""
    out = _dir(directory)
    rng = np.random.RandomState(11)
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, (None, 32, 32, 3), name="images")
        labels = v1.placeholder(tf.int64, (None,), name="labels")
        with v1.variable_scope("", use_resource=False):
            logits = _cnn_body(images, rng)
            tf.nn.softmax(logits, name="probabilities")
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            v1.summary.scalar("loss", loss)
            v1.summary.histogram("logits", logits)
            v1.summary.merge_all()
            global_step = v1.train.get_or_create_global_step()
            v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=global_step)
        saver = v1.train.Saver(max_to_keep=3)
        path = str(out / "cnn.meta")
        saver.export_meta_graph(path)
    return {"cnn": path}


def write_loops(directory: PathLike) -> dict[str, str]:
    """A while loop, a cond and a tf.function called from a graph: control flow v2 fills the function library."""
    out = _dir(directory)
    with tf.Graph().as_default():
        x = v1.placeholder(tf.float32, (None, 4), name="x")
        w = tf.Variable(np.eye(4, dtype=np.float32) * 0.5, name="w")

        @tf.function
        def scale(t: tf.Tensor) -> tf.Tensor:
            return t * 2.0 + tf.reduce_sum(t)

        _, y = v1.while_loop(lambda i, acc: i < 3, lambda i, acc: (i + 1, tf.matmul(acc, w)),
                             [tf.constant(0), x], name="loop")
        y = tf.cond(tf.reduce_sum(y) > 0, lambda: y * 2.0, lambda: -y, name="branch")
        tf.identity(scale(y), name="output")
        saver = v1.train.Saver()
        path = str(out / "loops.meta")
        saver.export_meta_graph(path)
    return {"loops": path}


def write_old_style(directory: PathLike) -> dict[str, str]:
    """A TF 0.x/1.x-style graph: ref variables under the old op name ``Variable``, v1 control flow
    (Enter/Merge/Switch/NextIteration/Exit), a V1 saver. Written by TF, then the op renamed as TF 0.x had it."""
    out = _dir(directory)
    v1.disable_control_flow_v2()
    try:
        with tf.Graph().as_default():
            x = v1.placeholder(tf.float32, (None, 3), name="input")
            with v1.variable_scope("layer", use_resource=False):
                w = v1.get_variable("weights", initializer=tf.ones((3, 3)))
                b = v1.get_variable("biases", initializer=tf.zeros((3,)))
            _, y = v1.while_loop(lambda i, acc: i < 2, lambda i, acc: (i + 1, tf.matmul(acc, w) + b),
                                 [tf.constant(0), x])
            tf.identity(y, name="output")
            meta = v1.train.Saver(write_version=v1.train.SaverDef.V1).export_meta_graph()
    finally:
        v1.enable_control_flow_v2()
    for node in meta.graph_def.node:
        if node.op == "VariableV2":
            node.op = "Variable"
    path = out / "old_style.meta"
    path.write_bytes(meta.SerializeToString())
    return {"old_style": str(path)}


def write_frozen(directory: PathLike) -> dict[str, str]:
    """The CNN's inference graph with variables folded into constants: frozen.pb and frozen.pbtxt."""
    out = _dir(directory)
    rng = np.random.RandomState(12)
    with tf.Graph().as_default() as graph:
        images = v1.placeholder(tf.float32, (None, 32, 32, 3), name="images")
        tf.nn.softmax(_cnn_body(images, rng), name="probabilities")
        with v1.Session(graph=graph) as sess:
            sess.run(v1.global_variables_initializer())
            frozen = v1.graph_util.convert_variables_to_constants(sess, graph.as_graph_def(), ["probabilities"])
    tf.io.write_graph(frozen, str(out), "frozen.pb", as_text=False)
    tf.io.write_graph(frozen, str(out), "frozen.pbtxt", as_text=True)
    return {"frozen_pb": str(out / "frozen.pb"), "frozen_pbtxt": str(out / "frozen.pbtxt")}


class Scorer(tf.Module):
    """A SavedModel with two signatures: named multi-input/multi-output, and a single unnamed output."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.RandomState(13)
        self.w = tf.Variable(rng.normal(size=(4, 3)).astype(np.float32), name="w")
        self.b = tf.Variable(np.zeros(3, np.float32), name="b")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features"),
                                  tf.TensorSpec([None], tf.int64, name="ids")])
    def score(self, features: tf.Tensor, ids: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"scores": tf.nn.softmax(tf.matmul(features, self.w) + self.b), "ids_out": ids * 2}

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def embed(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.w)


def write_saved_model(directory: PathLike) -> dict[str, str]:
    """tf.saved_model.save with two signatures, plus the same SavedModel as text (saved_model.pbtxt)."""
    out = _dir(directory)
    module = Scorer()
    binary_dir = out / "scorer"
    tf.saved_model.save(module, str(binary_dir), signatures={"serving_default": module.score, "embed": module.embed})
    saved = saved_model_pb2.SavedModel.FromString((binary_dir / "saved_model.pb").read_bytes())
    text_dir = _dir(out / "scorer_text")
    (text_dir / "saved_model.pbtxt").write_text(text_format.MessageToString(saved))
    shutil.copytree(binary_dir / "variables", text_dir / "variables")  # so TensorFlow can load it too
    return {"saved_model": str(binary_dir), "saved_model_text": str(text_dir / "saved_model.pbtxt")}


def write_keras_slots(directory: PathLike) -> dict[str, str]:
    """A Keras 2 SavedModel trained with a legacy optimizer: its object graph reaches the Adam slots
    only through the optimizer's ``slot_variables`` (a real-world file once crashed ``graph --summary``)."""
    try:
        import tf_keras
    except ImportError:
        return {}
    tf_keras.utils.set_random_seed(5)
    model = tf_keras.Sequential([tf_keras.layers.Dense(3, input_shape=(4,), name="d1"),
                                 tf_keras.layers.Dense(2, name="d2")])
    model.compile(tf_keras.optimizers.legacy.Adam(), "mse")
    model.fit(np.ones((8, 4), np.float32), np.ones((8, 2), np.float32), verbose=0)
    out = _dir(directory) / "keras_slots"
    model.save(str(out), save_format="tf")
    return {"keras_slots": str(out)}


BUILDERS: dict[str, Callable[[PathLike], dict[str, str]]] = {
    "cnn": write_cnn,
    "loops": write_loops,
    "old_style": write_old_style,
    "frozen": write_frozen,
    "saved_model": write_saved_model,
    "keras_slots": write_keras_slots,
}


# --- what TensorFlow reads back --------------------------------------------------------------------------


def _import(label: str, path: str) -> tuple[tf.Graph, object | None]:
    """Load ``path`` into a fresh graph as a user would; return the graph and the MetaGraphDef (if any)."""
    graph = tf.Graph()
    with graph.as_default():
        if label.startswith("saved_model") or label == "keras_slots":
            export_dir = path if os.path.isdir(path) else os.path.dirname(path)
            with v1.Session(graph=graph) as sess:
                return graph, v1.saved_model.loader.load(sess, ["serve"], export_dir)
        if path.endswith(".meta"):
            v1.train.import_meta_graph(path)
            return graph, None
        graph_def = tf.compat.v1.GraphDef()
        data = Path(path).read_bytes()
        if path.endswith(".pbtxt"):
            text_format.Parse(data.decode(), graph_def)
        else:
            graph_def.ParseFromString(data)
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph, None


def _conv_attrs(op: tf.Operation) -> dict:
    attrs = {key: op.get_attr(key) for key in ("strides", "padding", "data_format", "dilations", "ksize")
             if key in op.node_def.attr}
    attrs = {k: v.decode() if isinstance(v, bytes) else list(v) for k, v in attrs.items()}
    if op.type in ("Conv2D", "DepthwiseConv2dNative"):
        attrs["filter_shape"] = op.inputs[1].shape.as_list()
    return attrs


def _shape(proto) -> list | None:
    shape = tf.TensorShape(proto)
    return shape.as_list() if shape.rank is not None else None


def _signature_json(meta) -> dict:
    out = {}
    for key, signature in meta.signature_def.items():
        def tensors(mapping):  # the init-op signature has an output of DT_INVALID with no shape
            return {k: {"name": t.name, "dtype": tf.as_dtype(t.dtype).name if t.dtype else None,
                        "shape": _shape(t.tensor_shape) if t.HasField("tensor_shape") else None}
                    for k, t in mapping.items()}
        out[key] = {"method_name": signature.method_name, "inputs": tensors(signature.inputs),
                    "outputs": tensors(signature.outputs)}
    return out


def truth(label: str, path: str) -> dict:
    """What TensorFlow sees in the file: nodes, functions, conv attributes, signatures."""
    graph, meta = _import(label, path)
    nodes = {
        op.name: [op.type, [t.name for t in op.inputs], sorted(c.name for c in op.control_inputs)]
        for op in graph.get_operations()
    }
    library = graph.as_graph_def().library
    result = {
        "path": path,
        "nodes": nodes,
        "functions": {f.signature.name: len(f.node_def) for f in library.function},
        "conv": {op.name: _conv_attrs(op) for op in graph.get_operations() if op.type in CONV_OPS},
    }
    if meta is not None:
        result["signatures"] = _signature_json(meta)
        result["tags"] = list(meta.meta_info_def.tags)
        variables = Path(path).parent / "variables" if Path(path).is_file() else Path(path) / "variables"
        if (variables / "variables.index").exists():
            reader = tf.train.load_checkpoint(str(variables / "variables"))
            result["checkpoint_keys"] = sorted(reader.get_variable_to_shape_map())
    return result


def write_all(outdir: PathLike) -> dict:
    """Build every graph into OUTDIR/<builder>/ and write OUTDIR/truth.json: {"tensorflow", "graphs"}."""
    root = _dir(outdir)
    truths = {}
    for name, builder in BUILDERS.items():
        for label, path in builder(root / name).items():
            truths[label] = truth(label, path)
    document = {"tensorflow": {"version": tf.__version__, "git_version": tf.version.GIT_VERSION}, "graphs": truths}
    (root / "truth.json").write_text(json.dumps(document, indent=1, sort_keys=True))
    return document


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: python tests/tf_graph_fixtures.py OUTDIR", file=sys.stderr)
        return 2
    for label, found in write_all(argv[0])["graphs"].items():
        print(f"{label}\t{found['path']}\t{len(found['nodes'])} nodes\t{len(found['functions'])} functions")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
