"""Mismatched pairs written by real TensorFlow/Keras, for ``ckpttools doctor``, and TensorFlow's restore as judge.

Build (one subprocess)::

    python tests/tf_doctor_fixtures.py build OUTDIR       -> OUTDIR/manifest.json

* ``slim``: a TF1 model saved under ``Net/conv1/weights``-style names (slim layout: ``weights``/``biases``,
  10 classes, Adam slots); ``layout.meta``, the same network built as ``cnn/conv_block1/conv/kernel``
  with a 5-class head, and its freshly initialised checkpoint ``layout_init``; TensorFlow's own errors
  restoring the source into that graph (``restore_error.txt``).
* ``keras``: a Keras 3 model saved by ``tf.train.Checkpoint`` (TF2 object paths) and ``tf1_layers.meta``,
  the same network's variables under the names ``tf.compat.v1.layers`` gives them (``conv/kernel``);
  TensorFlow's error restoring it into the same model with a 5-class head (``shape_error.txt``).
* ``cnn5_slim``: the registered ``cnn5`` network's variables saved under slim names ``Net/conv1/weights``.
* ``partitioned``, ``excluded``: graphs whose saver restores partitioned variables, or leaves one out of
  its ``var_list`` (``build_saver_cases``).

Judge (one subprocess)::

    python tests/tf_doctor_fixtures.py restore SPEC.json   -> JSON {case: {"restored": n, "error": str|null}}

SPEC maps case -> {"meta", "checkpoint", "mapping": {checkpoint key: graph variable}}: TensorFlow's Saver
restores exactly those variables from the checkpoint into the imported graph and each restored value is
compared with the checkpoint's tensor. Without "mapping", the graph's own saver restores it (as
``import_meta_graph`` + ``restore`` would; "keys": {graph variable: key} for a variable the saver names
otherwise) and the answer lists the checkpoint keys restored.
``serve OUTDIR`` builds, prints ``ready``, then answers one SPEC per stdin line (TensorFlow is imported
once for both; the tests use this).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
IMAGES = (None, 28, 28, 1)


def _slim_net(images, classes: int, names: tuple[str, str, str], scopes: list[str]):
    """conv 3x3x8, conv 3x3x8, dense 16, logits: with the given kernel/bias names and scope names."""
    kernel_name, bias_name, root = names
    x = images
    with v1.variable_scope(root):
        for scope, shape in zip(scopes[:2], [(3, 3, 1, 8), (3, 3, 8, 8)]):
            with v1.variable_scope(scope):
                w = v1.get_variable(kernel_name, shape)
                b = v1.get_variable(bias_name, shape[-1:], initializer=v1.constant_initializer(0.1))
                x = tf.nn.relu(tf.nn.conv2d(x, w, [1, 2, 2, 1], "SAME") + b)
        x = tf.reduce_mean(x, axis=[1, 2])
        for scope, width in ((scopes[2], 16), (scopes[3], classes)):
            with v1.variable_scope(scope):
                w = v1.get_variable(kernel_name, (int(x.shape[-1]), width))
                b = v1.get_variable(bias_name, (width,), initializer=v1.constant_initializer(0.1))
                x = tf.matmul(x, w) + b
    return x


SLIM = (("weights", "biases", "Net"), ["conv1", "conv2", "fc", "logits"])
LAYOUT = (("kernel", "bias", "cnn"), ["conv_block1/conv", "conv_block2/conv", "dense", "logits"])


def _graph(names, scopes, classes: int, train: bool = False):
    graph = tf.Graph()
    with graph.as_default():
        v1.set_random_seed(1)
        images = v1.placeholder(tf.float32, IMAGES, name="images")
        logits = _slim_net(images, classes, names, scopes)
        if train:
            labels = v1.placeholder(tf.int64, (None,), name="labels")
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
            v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=v1.train.get_or_create_global_step())
    return graph


def _restore_error(graph, checkpoint: str) -> str:
    with graph.as_default(), v1.Session() as sess:
        try:
            v1.train.Saver().restore(sess, checkpoint)
        except Exception as exc:  # noqa: BLE001 - the text is the fixture
            return str(exc)
    raise RuntimeError("the restore was expected to fail")


def build_slim(out: Path) -> dict[str, str]:
    rng = np.random.RandomState(0)
    graph = _graph(*SLIM, classes=10, train=True)
    with graph.as_default(), v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        feed = {"images:0": rng.uniform(0, 1, (4, 28, 28, 1)), "labels:0": rng.randint(0, 10, 4)}
        sess.run(graph.get_operation_by_name("Adam"), feed)
        source = v1.train.Saver().save(sess, str(out / "slim" / "model.ckpt"), global_step=1,
                                       write_meta_graph=False)
    layout = _graph(*LAYOUT, classes=5)
    with layout.as_default(), v1.Session() as sess:
        sess.run(v1.global_variables_initializer())
        init = v1.train.Saver().save(sess, str(out / "layout_init" / "model.ckpt"), global_step=0,
                                     write_meta_graph=False)
        v1.train.export_meta_graph(str(out / "layout.meta"))
    (out / "restore_error.txt").write_text(_restore_error(_graph(*LAYOUT, classes=5), source))
    return {"slim": source, "layout_meta": str(out / "layout.meta"), "layout_init": init,
            "restore_error": str(out / "restore_error.txt")}


def _keras_model(classes: int):
    import keras

    keras.utils.set_random_seed(0)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(4, 3, name="conv"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(12, name="hidden"),
        keras.layers.Dense(classes, name="logits"),
    ])


def build_keras(out: Path) -> dict[str, str]:
    path = tf.train.Checkpoint(model=_keras_model(3)).write(str(out / "keras" / "ckpt"))  # the prefix itself
    try:
        tf.train.Checkpoint(model=_keras_model(5)).restore(path)
    except Exception as exc:  # noqa: BLE001 - TensorFlow's text is the fixture
        (out / "shape_error.txt").write_text(f"{type(exc).__name__}: {exc}")
    else:
        raise RuntimeError("restoring 3 classes into 5 was expected to fail")
    graph = tf.Graph()  # the names tf.compat.v1.layers gives (the module itself needs Keras 2)
    with graph.as_default():
        for layer, shape in (("conv", (3, 3, 1, 4)), ("hidden", (4, 12)), ("logits", (12, 3))):
            v1.get_variable(f"{layer}/kernel", shape)
            v1.get_variable(f"{layer}/bias", shape[-1:])
        v1.train.export_meta_graph(str(out / "tf1_layers.meta"))
    return {"keras": path, "tf1_layers_meta": str(out / "tf1_layers.meta"), "shape_error": str(out / "shape_error.txt")}


def build_cnn5_slim(out: Path, directory: str = "cnn5_slim") -> dict[str, str]:
    """cnn5's variables (10 classes) under slim names, as an old training script would have saved them.

    Also the shipped sample ``sample_checkpoints/slim_cnn5`` (``sample_checkpoints/make_samples.py``).
    """
    rng = np.random.RandomState(2)
    graph = tf.Graph()
    with graph.as_default():
        shapes = [(f"conv{i}", (3, 3, 1 if i == 1 else 8, 8)) for i in range(1, 6)]
        shapes += [("fc", (8, 32)), ("logits", (32, 10))]
        for scope, shape in shapes:
            v1.get_variable(f"Net/{scope}/weights", initializer=rng.normal(size=shape).astype(np.float32))
            v1.get_variable(f"Net/{scope}/biases", initializer=rng.normal(size=shape[-1:]).astype(np.float32))
        v1.train.get_or_create_global_step()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            path = v1.train.Saver(save_relative_paths=True).save(sess, str(Path(out) / directory / "model.ckpt"),
                                                                 global_step=7, write_meta_graph=False)
    return {"cnn5_slim": path}


def build_saver_cases(out: Path) -> dict[str, str]:
    """Graphs whose Saver is not "every variable op, as named": judged by the graph's own saver.

    * ``partitioned``: ``emb/w`` [4, 6] split in two [4, 3] parts on axis 1 and ``emb/table`` [10, 4] in
      three on axis 0, saved with its meta graph; ``partitioned_nosaver.meta``, the same graph exported
      before any Saver (only the ``variables`` collection's ``save_slice_info`` says how the parts join).
    * ``excluded``: ``a``, ``b`` and ``d`` (under the key ``old_d``) saved by
      ``Saver(var_list={"a": a, "b": b, "old_d": d})``; ``c`` is left out, so TensorFlow restores the
      checkpoint (which has no ``c``) into the graph all the same.
    """
    graph = tf.Graph()
    with graph.as_default():
        with v1.variable_scope("emb"):
            v1.get_variable("w", (4, 6), partitioner=v1.fixed_size_partitioner(2, axis=1))
            v1.get_variable("table", (10, 4), partitioner=v1.fixed_size_partitioner(3))
        v1.train.export_meta_graph(str(out / "partitioned_nosaver.meta"))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            partitioned = v1.train.Saver().save(sess, str(out / "partitioned" / "model.ckpt"), global_step=1)
    graph = tf.Graph()
    with graph.as_default():
        a, b = v1.get_variable("a", (2, 3)), v1.get_variable("b", (3,))
        v1.get_variable("c", (5,))
        d = v1.get_variable("d", (4,))
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            saver = v1.train.Saver(var_list={"a": a, "b": b, "old_d": d})
            excluded = saver.save(sess, str(out / "excluded" / "model.ckpt"), global_step=1)
    return {"partitioned": partitioned, "partitioned_meta": partitioned + ".meta",
            "partitioned_nosaver_meta": str(out / "partitioned_nosaver.meta"),
            "excluded": excluded, "excluded_meta": excluded + ".meta"}


def restore_with_graph_saver(meta: str, checkpoint: str, keys: dict[str, str]) -> list[str]:
    """TensorFlow's own verdict: the meta graph's saver (``Saver()`` when it has none) restores the checkpoint,
    and every variable restored holds the checkpoint's value (its slice, for a part; KEYS names the key of a
    variable saved under another name). The keys restored."""
    graph = tf.Graph()
    with graph.as_default(), v1.Session() as sess:
        saver = v1.train.import_meta_graph(meta) or v1.train.Saver()
        saver.restore(sess, checkpoint)
        reader = tf.train.load_checkpoint(checkpoint)
        stored = reader.get_variable_to_shape_map()
        restored = set()
        for variable in v1.global_variables():
            part = variable._save_slice_info
            key = keys.get(variable.op.name) or (part.full_name if part else variable.op.name)
            if key not in stored:
                continue  # left out of the saver: not looked up
            expected = reader.get_tensor(key)
            if part:
                expected = expected[tuple(slice(o, o + n) for o, n in zip(part.var_offset, part.var_shape))]
            if not np.array_equal(sess.run(variable), expected):
                raise AssertionError(f"{variable.op.name} differs from {key} after the restore")
            restored.add(key)
    return sorted(restored)


def restore(spec: dict) -> dict:
    """TensorFlow's Saver restores the mapped variables; each value is compared with the checkpoint's."""
    results = {}
    for case, item in spec.items():
        if "mapping" not in item:
            try:
                keys = restore_with_graph_saver(item["meta"], item["checkpoint"], item.get("keys", {}))
                results[case] = {"restored": keys, "error": None}
            except Exception as exc:  # noqa: BLE001
                results[case] = {"restored": [], "error": str(exc).splitlines()[0]}
            continue
        graph = tf.Graph()
        try:
            with graph.as_default(), v1.Session() as sess:
                v1.train.import_meta_graph(item["meta"])
                by_name = {v.op.name: v for v in v1.global_variables()}
                var_list = {key: by_name[name] for key, name in item["mapping"].items()}
                v1.train.Saver(var_list=var_list).restore(sess, item["checkpoint"])
                reader = tf.train.load_checkpoint(item["checkpoint"])
                for key, variable in var_list.items():
                    if not np.array_equal(sess.run(variable), reader.get_tensor(key)):
                        raise AssertionError(f"{variable.op.name} differs from {key} after the restore")
            results[case] = {"restored": len(var_list), "error": None}
        except Exception as exc:  # noqa: BLE001
            results[case] = {"restored": 0, "error": str(exc).splitlines()[0]}
    return results


def build(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    manifest = {**build_slim(out), **build_keras(out), **build_cnn5_slim(out), **build_saver_cases(out)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def serve(out: Path) -> None:
    """Build, say ``ready``, then judge each spec line from stdin until an empty line: TensorFlow loads once."""
    build(out)
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        print(json.dumps(restore(json.loads(line))), flush=True)


def main(argv: list[str]) -> int:
    if argv[:1] in (["build"], ["serve"]) and len(argv) == 2:
        (build if argv[0] == "build" else serve)(Path(argv[1]))
        return 0
    if argv[:1] == ["restore"] and len(argv) == 2:
        print(json.dumps(restore(json.loads(Path(argv[1]).read_text()))))
        return 0
    print("usage: python tests/tf_doctor_fixtures.py build OUTDIR | serve OUTDIR | restore SPEC.json", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
