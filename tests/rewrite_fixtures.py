"""TensorFlow's side of the rewrite tests: build the source checkpoints, then judge the rewritten ones.

``python tests/rewrite_fixtures.py build OUTDIR`` writes, with real TensorFlow:

* ``tf1/model.ckpt-{1,2,3}`` (+ ``.meta``, state file): a TF1 graph under ``net/`` (a dense kernel and
  bias, a partitioned embedding in 2 parts, an int32 counter, a string vocabulary), trained one Adam
  step between saves, with ``global_step`` and ExponentialMovingAverage shadows of kernel and embedding;
* ``v1/model.ckpt-3``: the same variables saved by the V1 saver;
* ``tf2/ckpt-{1,2,3}``: a Keras 3 model and its Adam optimizer, ``tf.train.Checkpoint(model, optimizer)``,
  fit one batch between saves.

``python tests/rewrite_fixtures.py judge JOBS.json`` answers for each job, with TensorFlow:
``tf.train.load_checkpoint``'s dtypes, shapes and value bytes, and whether the checkpoint restores into a
TF1 graph (``tf.compat.v1.train.Saver``, the graph built under the job's scope) or into a fresh Keras
model (``tf.train.Checkpoint(model=...).restore(...).assert_existing_objects_matched()``).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1


def tf1_graph(scope: str = "net", dtype: str = "float32") -> tuple[list, object, object]:
    """The TF1 model: (model variables, train op, global step). Values are seeded, shapes fixed."""
    rng = np.random.RandomState(11)
    ftype = tf.as_dtype(dtype)
    with v1.variable_scope(scope):
        kernel = v1.get_variable("dense/kernel", initializer=tf.constant(rng.normal(size=(6, 4)), ftype))
        bias = v1.get_variable("dense/bias", initializer=tf.constant(rng.normal(size=4), ftype))
        emb = v1.get_variable("emb", shape=(10, 3), dtype=ftype, partitioner=v1.fixed_size_partitioner(2),
                              initializer=v1.random_normal_initializer(seed=3))
        counts = v1.get_variable("counts", initializer=tf.constant([3, 1, 4], tf.int32), trainable=False)
        vocab = v1.get_variable("vocab", initializer=tf.constant([b"<pad>", b"", b"\xff\x00x"]), trainable=False)
    x = tf.constant(rng.normal(size=(5, 6)), ftype)
    ids = tf.constant([1, 7, 9])
    loss = tf.reduce_sum(tf.matmul(x, kernel) + bias) ** 2 / 100 + tf.reduce_sum(tf.nn.embedding_lookup(emb, ids))
    return [kernel, bias, emb, counts, vocab], loss, rng


def build(outdir: Path) -> dict[str, str]:
    paths: dict[str, str] = {}
    with tf.Graph().as_default():
        _, loss, _ = tf1_graph()
        step = v1.train.get_or_create_global_step()
        train = v1.train.AdamOptimizer(0.1).minimize(loss, global_step=step)
        ema = v1.train.ExponentialMovingAverage(0.5)
        with tf.control_dependencies([train]):
            train = ema.apply([v for v in v1.trainable_variables()])
        saver = v1.train.Saver(max_to_keep=5, save_relative_paths=True)
        v1_saver = v1.train.Saver(write_version=v1.train.SaverDef.V1)
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            for n in (1, 2, 3):
                sess.run(train)
                paths[f"tf1_{n}"] = saver.save(sess, str(outdir / "tf1" / "model.ckpt"), global_step=n)
            (outdir / "v1").mkdir()
            paths["v1"] = v1_saver.save(sess, str(outdir / "v1" / "model.ckpt"), global_step=3,
                                        write_meta_graph=False)
    model, optimizer = keras_model(), None
    import keras

    optimizer = keras.optimizers.Adam(0.01)
    model.compile(optimizer=optimizer, loss="mse")
    rng = np.random.RandomState(12)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    for n in (1, 2, 3):
        model.fit(rng.normal(size=(8, 5)).astype(np.float32), rng.normal(size=(8, 2)).astype(np.float32),
                  batch_size=8, verbose=0)
        paths[f"tf2_{n}"] = checkpoint.save(str(outdir / "tf2" / "ckpt"))
    return paths


def keras_model(dtype: str = "float32"):
    import keras

    keras.utils.set_random_seed(5)
    return keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="hidden", dtype=dtype),
                             keras.layers.Dense(2, name="out", dtype=dtype)])


def _encode(value: np.ndarray) -> dict:
    if value.dtype == object:
        return {"strings": [base64.b64encode(item).decode() for item in value.reshape(-1)]}
    return {"bytes": base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()}


def _read(reader, key: str) -> dict:
    try:
        return _encode(np.asarray(reader.get_tensor(key)))
    except tf.errors.UnimplementedError as exc:  # V1 partitioned variables: "Sliced checkpoints are not supported"
        return {"error": exc.message}


def judge(job: dict) -> dict:
    """TensorFlow's reading of one checkpoint, and the restore the job asks for."""
    reader = tf.train.load_checkpoint(job["path"])
    dtypes = reader.get_variable_to_dtype_map()
    shapes = reader.get_variable_to_shape_map()
    result: dict = {"tensors": {key: {"dtype": dtypes[key].name, "shape": list(shapes[key]), **_read(reader, key)}
                                for key in dtypes}}
    try:
        if job.get("restore") == "tf1":
            with tf.Graph().as_default():
                variables, _, _ = tf1_graph(job.get("scope", "net"), job.get("dtype", "float32"))
                saver = v1.train.Saver(var_list=variables)
                with v1.Session() as sess:
                    saver.restore(sess, job["path"])
                    result["restored"] = {v.op.name: _encode(np.asarray(sess.run(v))) for v in
                                          [v for part in variables for v in _parts(part)]}
        elif job.get("restore") == "tf2":
            model = keras_model(job.get("dtype", "float32"))
            tf.train.Checkpoint(model=model).restore(job["path"]).assert_existing_objects_matched()
            result["restored"] = {v.path: _encode(np.asarray(v.numpy())) for v in model.weights}
    except Exception as exc:  # reported to the test, which shows it
        result["restore_error"] = f"{type(exc).__name__}: {exc}"
    return result


def _parts(variable) -> list:
    return [variable] if isinstance(variable, tf.Variable) else list(variable)  # a PartitionedVariable: its parts


def main(argv: list[str]) -> int:
    if argv[0] == "build":
        outdir = Path(argv[1])
        print(json.dumps(build(outdir)))
    else:
        jobs = json.loads(Path(argv[1]).read_text())
        print(json.dumps({name: judge(job) for name, job in jobs.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
