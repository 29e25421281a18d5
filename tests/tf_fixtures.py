"""Checkpoints written by real TensorFlow: the ground truth for the exactness tests and the samples.

Each ``write_*`` builder writes into the directory it is given and returns ``{label: path}``, the
path being what ``tf.train.load_checkpoint`` accepts (a prefix, a V1 file or pattern, a SavedModel
directory). Graph-mode builders run inside their own ``tf.Graph`` so nothing leaks between them.
Values come from seeded numpy, so every run writes the same numbers.

Run as a script to write all of them (plus ``manifest.json``, the merged labels) into OUTDIR::

    python tests/tf_fixtures.py OUTDIR [BUILDER ...]
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import ml_dtypes  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

v1 = tf.compat.v1
PathLike = str | os.PathLike


def _dir(directory: PathLike) -> Path:
    """Create the directory (TF's V1 saver refuses a missing parent)."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _session(cpus: int = 1) -> v1.Session:
    return v1.Session(config=v1.ConfigProto(device_count={"CPU": cpus}))


def _sliced_initializer(full: np.ndarray) -> Callable:
    """An initializer giving each partition its own slice of ``full``, so values are known exactly."""

    def init(shape, dtype=None, partition_info=None):
        offset = partition_info.var_offset if partition_info is not None else [0] * len(shape)
        index = tuple(slice(o, o + n) for o, n in zip(offset, shape))
        return tf.constant(full[index], dtype=dtype)

    return init


def _var(name: str, value: np.ndarray, trainable: bool = True) -> tf.Variable:
    return v1.get_variable(name, initializer=tf.constant(value), trainable=trainable)


# --- TF1 CNN ---------------------------------------------------------------------------------------


def _conv_block(x: tf.Tensor, index: int, rng: np.random.RandomState, batch_norm: bool) -> tf.Tensor:
    """3x3 conv with 8 filters, optional batch norm (with moving statistics), relu, 2x2 max-pool."""
    with v1.variable_scope(f"conv_block{index}"):
        with v1.variable_scope("conv"):
            shape = (3, 3, int(x.shape[-1]), 8)
            kernel = _var("kernel", rng.normal(0, 0.3, shape).astype(np.float32))
            bias = _var("bias", np.zeros(8, np.float32))
        x = tf.nn.conv2d(x, kernel, strides=1, padding="SAME") + bias
        if batch_norm:
            x = _batch_norm(x)
        x = tf.nn.relu(x)
        return tf.nn.max_pool2d(x, 2, 2, padding="SAME")


def _batch_norm(x: tf.Tensor) -> tf.Tensor:
    """Batch norm whose moving_mean/moving_variance are updated in UPDATE_OPS, as tf.layers did."""
    with v1.variable_scope("bn"):
        gamma = _var("gamma", np.ones(8, np.float32))
        beta = _var("beta", np.zeros(8, np.float32))
        moving_mean = _var("moving_mean", np.zeros(8, np.float32), trainable=False)
        moving_var = _var("moving_variance", np.ones(8, np.float32), trainable=False)
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])
        for moving, batch in ((moving_mean, mean), (moving_var, var)):
            v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, moving.assign(0.9 * moving + 0.1 * batch))
        return tf.nn.batch_normalization(x, mean, var, beta, gamma, 1e-3)


def _dense(x: tf.Tensor, scope: str, units: int, rng: np.random.RandomState) -> tuple[tf.Tensor, tf.Variable]:
    with v1.variable_scope(scope):
        kernel = _var("kernel", rng.normal(0, 0.3, (int(x.shape[-1]), units)).astype(np.float32))
        bias = _var("bias", np.zeros(units, np.float32))
    return tf.matmul(x, kernel) + bias, kernel


def write_tf1_cnn(directory: PathLike, keep: int = 5, relative_paths: bool = False) -> dict[str, str]:
    """TF1 CNN under scopes cnn/conv_block1..5, cnn/dense, cnn/logits, trained with AdamOptimizer.

    Has Adam/Adam_1 slots, beta1_power/beta2_power, global_step, two batch norms' moving statistics
    and an ExponentialMovingAverage shadow of cnn/logits/kernel; saved (with .meta) at steps 10 and 20.
    ``keep=1`` leaves only step 20 (the samples); ``relative_paths`` makes the state file relocatable.
    """
    out = _dir(directory)
    rng = np.random.RandomState(1)
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, (None, 28, 28, 1), name="images")
        labels = v1.placeholder(tf.int64, (None,), name="labels")
        feed = {images: rng.uniform(0, 1, (8, 28, 28, 1)), labels: rng.randint(0, 10, 8)}
        with v1.variable_scope("cnn"):
            x = images
            for index in range(1, 6):
                x = _conv_block(x, index, rng, batch_norm=index in (1, 3))
            x = tf.reshape(x, [-1, 8])  # 28 -> 14 -> 7 -> 4 -> 2 -> 1
            x, _ = _dense(tf.nn.relu(x), "dense", 16, rng)
            logits, logits_kernel = _dense(tf.nn.relu(x), "logits", 10, rng)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
        global_step = v1.train.get_or_create_global_step()
        with tf.control_dependencies(v1.get_collection(v1.GraphKeys.UPDATE_OPS)):
            step = v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=global_step)
        ema = v1.train.ExponentialMovingAverage(0.99, num_updates=global_step)
        with tf.control_dependencies([step]):
            train_op = ema.apply([logits_kernel])
        saver = v1.train.Saver(max_to_keep=keep, save_relative_paths=relative_paths)
        paths = {}
        with _session() as sess:
            sess.run(v1.global_variables_initializer())
            for save_at in (10, 20):
                while sess.run(global_step) < save_at:
                    sess.run(train_op, feed)
                paths[save_at] = saver.save(sess, str(out / "model.ckpt"), global_step=save_at)
    result = {"tf1_cnn": paths[20]}
    if keep > 1:
        result["tf1_cnn_step10"] = paths[10]
    return result


# --- every dtype -------------------------------------------------------------------------------------

NUMERIC_DTYPES = (
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "complex64", "complex128",
)  # fmt: skip
STRINGS = [b"", b"hello", b"\x00", b"\xff\xfe\x00\x01", b"x" * 300, "caf\u00e9".encode(), b""]


def _random_values(dtype: str, shape: tuple[int, ...], rng: np.random.RandomState) -> np.ndarray:
    """Deterministic values spanning the dtype: negatives for signed ints, extremes for the rest."""
    if dtype.startswith("complex"):
        return (rng.normal(0, 10, shape) + 1j * rng.normal(0, 10, shape)).astype(dtype)
    if dtype.startswith("float"):
        return rng.normal(0, 100, shape).astype(dtype)
    limits = np.iinfo(dtype)
    low, high = max(int(limits.min), -(2**62)), min(int(limits.max), 2**62)
    values = rng.randint(low, high, shape, dtype=np.int64 if low < 0 else np.uint64).astype(dtype)
    flat = values.reshape(-1)
    flat[:2] = [limits.min, limits.max][: flat.size]
    return values


def all_dtype_values() -> dict[str, np.ndarray]:
    """Every value write_all_dtypes stores, by variable name (also the expected values)."""
    rng = np.random.RandomState(2)
    values: dict[str, np.ndarray] = {}
    for dtype in NUMERIC_DTYPES:
        values[f"dtypes/{dtype}"] = _random_values(dtype, (3, 4), rng)
        values[f"scalars/{dtype}"] = _random_values(dtype, (), rng)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, 3.4e38, -1.5], np.float32)
    values["dtypes/float32_special"] = special
    values["dtypes/float64_special"] = special.astype(np.float64)
    values["dtypes/float16_special"] = np.array([np.nan, np.inf, -np.inf, -0.0, 6e-8, 65504], np.float16)
    values["dtypes/bfloat16"] = np.concatenate([rng.normal(0, 100, 10), [np.nan, np.inf, -np.inf, -0.0]])
    values["dtypes/bfloat16"] = values["dtypes/bfloat16"].astype(ml_dtypes.bfloat16).reshape(2, 7)
    values["scalars/bfloat16"] = np.array(-2.5, ml_dtypes.bfloat16)
    values["dtypes/bool"] = rng.randint(0, 2, (5, 3)).astype(bool)
    values["scalars/bool"] = np.array(True)
    values["dtypes/string"] = np.array(STRINGS, dtype=object)
    values["dtypes/string_2d"] = np.array([[b"a", b""], [b"\x00\xff", b"last"]], dtype=object)
    values["scalars/string"] = np.array(b"\x00scalar\xff", dtype=object)
    values["scalars/empty_string"] = np.array(b"", dtype=object)
    for dtype in ("float32", "int64", "bool", "bfloat16"):
        values[f"empty/{dtype}_0"] = np.zeros((0,), ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
        values[f"empty/{dtype}_3x0"] = np.zeros((3, 0), ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    values["empty/string_0"] = np.zeros((0,), dtype=object)
    values["empty/string_3x0"] = np.zeros((3, 0), dtype=object)
    values["dtypes/float32_big"] = rng.normal(0, 1, (64, 33)).astype(np.float32)  # more than one block
    return values


def _constant(value: np.ndarray) -> tf.Tensor:
    if value.dtype == object:
        return tf.constant(value.tolist() if value.size else np.zeros(value.shape, bytes), dtype=tf.string)
    return tf.constant(value)


def write_all_dtypes(directory: PathLike) -> dict[str, str]:
    """One V2 checkpoint with a tf.Variable of every dtype, scalars, zero-element tensors, NaN/inf."""
    out = _dir(directory)
    with tf.Graph().as_default():
        values = all_dtype_values()
        variables = [v1.get_variable(name, initializer=_constant(value)) for name, value in values.items()]
        saver = v1.train.Saver(variables)
        with _session() as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(out / "model.ckpt"), global_step=1, write_meta_graph=False)
    return {"all_dtypes": prefix}


# --- dtypes a tf.Variable cannot always hold --------------------------------------------------------

EXOTIC_DTYPES = (
    "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz",
    "float4_e2m1fn",
    "int4", "uint4", "int2", "uint2", "qint8", "quint8", "qint16", "quint16", "qint32",
)  # fmt: skip


def exotic_values() -> dict[str, tuple[np.ndarray, str]]:
    """name -> (numpy value, TF dtype name): float8/float4, sub-byte ints (stored one per byte), quantized."""
    rng = np.random.RandomState(9)
    values = {}
    for name in EXOTIC_DTYPES:
        tf_dtype = tf.as_dtype(name)
        if name.startswith("float"):
            value = np.append(rng.normal(0, 2, 11), [0.0, -0.5, 1.0]).astype(tf_dtype.as_numpy_dtype)
        else:
            base = np.dtype(tf_dtype.base_dtype.as_numpy_dtype) if not tf_dtype.is_quantized else None
            limits = ml_dtypes.iinfo(base) if base is not None else np.iinfo(name.lstrip("q"))
            value = rng.randint(int(limits.min), int(limits.max) + 1, 14).astype(np.int64)
            value[:2] = [limits.min, limits.max]
            value = value.astype(base if base is not None else name.lstrip("q"))
        values[f"exotic/{name}"] = (value.reshape(2, 7), name)
    return values


def write_exotic_dtypes(directory: PathLike) -> dict[str, str]:
    """float8/float4, int4/uint4/int2/uint2 and quantized tensors, saved with the SaveV2 op (what Saver
    runs): TF 2.21 fails to initialize variables of several of these dtypes (float8 *fnuz, qint16) in a
    session."""
    out = _dir(directory)
    prefix = str(out / "model.ckpt-1")
    with tf.Graph().as_default():
        values = exotic_values()
        tensors = [tf.constant(value, dtype=tf.as_dtype(dtype)) for value, dtype in values.values()]
        save = tf.raw_ops.SaveV2(
            prefix=prefix, tensor_names=list(values), shape_and_slices=[""] * len(values), tensors=tensors
        )
        with _session() as sess:
            sess.run(save)
    return {"exotic_dtypes": prefix}


# --- many keys: multi-block index tables, a tensor bigger than a read chunk ------------------------------

MANY_KEYS = 4000  # TF's table blocks are 256 KiB: long, dissimilar keys fill several index blocks


def many_key_names() -> list[str]:
    """Keys whose leading bytes differ, so the table's prefix compression saves little."""
    digests = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(MANY_KEYS)]
    return [f"{d[:20]}/layer_{i:04d}/{d[20:]}/kernel" for i, d in enumerate(digests)]


def write_many_keys(directory: PathLike) -> dict[str, str]:
    """V2 and V1 checkpoints of 4000 small tensors (index tables of several blocks), written by the SaveV2
    and SaveSlices ops (run eagerly: a graph of 4000 constants is slow to optimize). The V2 one also holds
    ``big/embedding``, a 4.4 MB float32 (more than one 4 MiB read)."""
    out = _dir(directory)
    names = many_key_names()
    tensors = [tf.constant(np.full((2,), i, np.float32) - 0.5) for i in range(len(names))]
    big = tf.constant(np.random.RandomState(10).normal(size=(1100, 1000)).astype(np.float32))
    v2_prefix, v1_file = str(_dir(out / "v2") / "model.ckpt-1"), str(_dir(out / "v1") / "model.ckpt-1")
    tf.raw_ops.SaveV2(
        prefix=v2_prefix, tensor_names=names + ["big/embedding"], shape_and_slices=[""] * (len(names) + 1),
        tensors=tensors + [big],
    )  # fmt: skip
    full = [""] * len(names)  # no slicing: whole tensors
    tf.raw_ops.SaveSlices(filename=v1_file, tensor_names=names, shapes_and_slices=full, data=tensors)
    return {"many_keys": v2_prefix, "many_keys_v1": v1_file}


# --- partitioned ---------------------------------------------------------------------------------------


def partitioned_values() -> dict[str, tuple[np.ndarray, Callable]]:
    """name -> (full value, partitioner) for write_partitioned."""
    rng = np.random.RandomState(3)
    f32 = np.float32
    return {
        "part/fixed_10x3": (rng.normal(size=(10, 3)).astype(f32), v1.fixed_size_partitioner(3)),
        "part/fixed_7x4x2": (rng.normal(size=(7, 4, 2)).astype(f32), v1.fixed_size_partitioner(2)),
        "part/axis1_3x8": (rng.normal(size=(3, 8)).astype(f32), v1.fixed_size_partitioner(4, axis=1)),
        "part/axis_size_20x5": (
            rng.normal(size=(20, 5)).astype(f32),
            v1.variable_axis_size_partitioner(max_shard_bytes=120),
        ),
        "part/min_max_12x4": (
            rng.normal(size=(12, 4)).astype(np.float64),
            v1.min_max_variable_partitioner(max_partitions=4, min_slice_size=64),
        ),
        "part/int64_9": (rng.randint(-(10**12), 10**12, 9).astype(np.int64), v1.fixed_size_partitioner(3)),
    }


def write_partitioned(directory: PathLike) -> dict[str, str]:
    """V2 checkpoint of partitioned variables (fixed, axis-1, axis-size, min-max) plus a plain one."""
    out = _dir(directory)
    with tf.Graph().as_default():
        for name, (full, partitioner) in partitioned_values().items():
            v1.get_variable(
                name, shape=full.shape, dtype=tf.as_dtype(full.dtype),
                initializer=_sliced_initializer(full), partitioner=partitioner,
            )  # fmt: skip
        _var("plain", np.arange(6, dtype=np.float32).reshape(2, 3))
        saver = v1.train.Saver()
        with _session() as sess:
            sess.run(v1.global_variables_initializer())
            prefix = saver.save(sess, str(out / "model.ckpt"), global_step=3, write_meta_graph=False)
    return {"partitioned": prefix}


# --- sharded V2 ------------------------------------------------------------------------------------------


def _round_robin(cpus: int) -> Callable:
    """A device function putting each new variable (handle) on the next CPU: partitions spread over shards."""
    count = [0]

    def place(op) -> str:
        if op.type in ("VarHandleOp", "VariableV2"):
            count[0] += 1
            return f"/cpu:{count[0] % cpus}"
        return op.device

    return place


def write_sharded(directory: PathLike, relative_paths: bool = False) -> dict[str, str]:
    """Saver(sharded=True) over variables on three CPUs: data shards .data-0000k-of-00003.

    ``spread`` is one partitioned variable whose parts live on different devices, hence shards.
    """
    out = _dir(directory)
    rng = np.random.RandomState(4)
    with tf.Graph().as_default():
        for cpu in range(3):
            with tf.device(f"/cpu:{cpu}"), v1.variable_scope(f"tower{cpu}"):
                _var("weights", rng.normal(size=(16, 8 + cpu)).astype(np.float32))
                _var("bias", rng.normal(size=(8 + cpu,)).astype(np.float64))
                _var("ids", rng.randint(-50, 50, (4, cpu + 1)).astype(np.int32))
        with v1.device(_round_robin(3)):
            full = rng.normal(size=(9, 2)).astype(np.float32)
            v1.get_variable(
                "spread", shape=full.shape, initializer=_sliced_initializer(full),
                partitioner=v1.fixed_size_partitioner(3),
            )  # fmt: skip
        with tf.device("/cpu:2"):
            global_step = v1.train.get_or_create_global_step()
        saver = v1.train.Saver(sharded=True, save_relative_paths=relative_paths)
        with _session(cpus=3) as sess:
            sess.run(v1.global_variables_initializer())
            sess.run(global_step.assign(100))
            prefix = saver.save(sess, str(out / "model.ckpt"), global_step=100, write_meta_graph=False)
    return {"sharded": prefix}


# --- V1 -----------------------------------------------------------------------------------------------------


def v1_values() -> dict[str, np.ndarray]:
    """Plain (unpartitioned) variables of write_v1; V1 cannot store bfloat16."""
    rng = np.random.RandomState(5)
    return {
        "v1/float32": rng.normal(size=(4, 5)).astype(np.float32),
        "v1/float64": np.array([np.nan, np.inf, -np.inf, -0.0, 1.5], np.float64),
        "v1/int32": rng.randint(-(2**31), 2**31 - 1, (3, 2)).astype(np.int32),
        "v1/int64": np.array([-(2**63), 2**63 - 1, 0, -1], np.int64),
        "v1/string": np.array([b"", b"a\x00b", b"\xff" * 3, b"v1"], dtype=object),
        "v1/bool": np.array([[True, False, True]]),
        "v1/scalar": np.array(3.25, np.float32),
        "v1/empty": np.zeros((2, 0), np.float32),
    }


def _save_v1(prefix: Path, step: int, sharded: bool) -> str:
    """Save the V1 variables (and a partitioned one) with the V1 saver; devices only matter if sharded."""
    cpus = 3 if sharded else 1
    with tf.Graph().as_default():
        for index, (name, value) in enumerate(v1_values().items()):
            with tf.device(f"/cpu:{index % cpus}"):
                v1.get_variable(name, initializer=_constant(value))
        with v1.device(_round_robin(cpus)):
            full = np.arange(30, dtype=np.float32).reshape(10, 3) - 7.5
            v1.get_variable(
                "v1/partitioned", shape=full.shape, initializer=_sliced_initializer(full),
                partitioner=v1.fixed_size_partitioner(3),
            )  # fmt: skip
        saver = v1.train.Saver(sharded=sharded, write_version=v1.train.SaverDef.V1)
        with _session(cpus) as sess:
            sess.run(v1.global_variables_initializer())
            return saver.save(sess, str(prefix), global_step=step, write_meta_graph=not sharded)


def write_v1(directory: PathLike) -> dict[str, str]:
    """V1 checkpoints: a single file ``single/model.ckpt-5`` (+ .meta) and three shards
    ``sharded/model.ckpt-7-0000k-of-00003`` (TF returns, and reads, the ``?????`` pattern)."""
    out = _dir(directory)
    return {
        "v1": _save_v1(_dir(out / "single") / "model.ckpt", 5, sharded=False),
        "v1_sharded": _save_v1(_dir(out / "sharded") / "model.ckpt", 7, sharded=True),
    }


# --- TF2 object-based ---------------------------------------------------------------------------------------


def write_tf2_keras(directory: PathLike) -> dict[str, str]:
    """Keras 3 Conv2D + BatchNormalization + Dense, Adam, fit one step, tf.train.Checkpoint(model, optimizer).

    Keras 3 stores the layer kernels only under ``optimizer/_trainable_variables/N/...`` keys.
    """
    import keras

    out = _dir(directory)
    keras.utils.set_random_seed(6)
    rng = np.random.RandomState(6)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(4, 3, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Flatten(),
            keras.layers.Dense(3, name="dense"),
        ]
    )
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    x, y = rng.uniform(size=(4, 8, 8, 1)).astype(np.float32), rng.randint(0, 3, 4)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    prefix = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(out / "ckpt"))
    return {"tf2_keras": prefix}


class Dense(tf.Module):
    """A tf.Module layer: two tf.Variables."""

    def __init__(self, n_in: int, n_out: int, rng: np.random.RandomState, name: str | None = None) -> None:
        super().__init__(name=name)
        self.w = tf.Variable(rng.normal(size=(n_in, n_out)).astype(np.float32), name="w")
        self.b = tf.Variable(np.zeros(n_out, np.float32), name="b")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return tf.matmul(x, self.w) + self.b


class Net(tf.Module):
    """A tf.Module tree: attributes, a list and a dict of modules, and non-float variables."""

    def __init__(self, rng: np.random.RandomState) -> None:
        super().__init__(name="net")
        self.encoder = Dense(4, 8, rng, name="encoder")
        self.blocks = [Dense(8, 8, rng, name=f"block{i}") for i in range(2)]
        self.heads = {"cls": Dense(8, 3, rng, name="cls"), "reg": Dense(8, 1, rng, name="reg")}
        self.heads["odd/key.name"] = Dense(8, 1, rng, name="odd")  # TF escapes "/" and "." in its key
        self.steps = tf.Variable(np.int64(42), trainable=False, name="steps")
        self.vocab = tf.Variable([b"<pad>", b"", b"\xff\x00"], trainable=False, name="vocab")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.nn.relu(self.encoder(x))
        for block in self.blocks:
            x = tf.nn.relu(block(x))
        return self.heads["cls"](x) + self.heads["reg"](x) + self.heads["odd/key.name"](x)


def write_tf2_module(directory: PathLike) -> dict[str, str]:
    """tf.Module tree checkpoints: ``plain`` (variables only) and ``slots`` (net + an eager
    tf.compat.v1 AdamOptimizer, whose slots are ``.OPTIMIZER_SLOT/optimizer/m`` and ``/v`` keys)."""
    out = _dir(directory)
    rng = np.random.RandomState(7)
    plain = tf.train.Checkpoint(net=Net(rng)).save(str(out / "plain" / "ckpt"))
    net, optimizer = Net(rng), v1.train.AdamOptimizer(0.01)
    x = tf.constant(rng.normal(size=(5, 4)).astype(np.float32))
    for _ in range(2):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(x) ** 2)
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
    slots = tf.train.Checkpoint(net=net, optimizer=optimizer).save(str(out / "slots" / "ckpt"))
    return {"tf2_module": plain, "tf2_module_slots": slots}


class Affine(tf.Module):
    """What write_saved_model exports: variables and a signature."""

    def __init__(self) -> None:
        super().__init__()
        rng = np.random.RandomState(8)
        self.w = tf.Variable(rng.normal(size=(4, 2)).astype(np.float32), name="w")
        self.b = tf.Variable(np.array([0.5, -0.5], np.float32), name="b")
        self.calls = tf.Variable(np.int64(0), trainable=False, name="calls")

    @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
    def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": tf.matmul(x, self.w) + self.b}


def write_saved_model(directory: PathLike) -> dict[str, str]:
    """A SavedModel directory; its variables live in ``variables/variables.*``."""
    out = _dir(directory)
    module = Affine()
    tf.saved_model.save(module, str(out), signatures=module.__call__)
    return {"saved_model": str(out)}


class Doubler(tf.Module):
    """A model with no variables: its one weight is a constant of its graph."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"y": x * tf.constant(2.0)}


def write_saved_model_no_variables(directory: PathLike) -> dict[str, str]:
    """A variable-free SavedModel (real ones exist: exported wake-word models, tensorflow/serving test data)."""
    out = _dir(directory)
    module = Doubler()
    tf.saved_model.save(module, str(out), signatures=module.__call__)
    return {"saved_model_no_variables": str(out)}


BUILDERS: dict[str, Callable[[PathLike], dict[str, str]]] = {
    "tf1_cnn": write_tf1_cnn,
    "all_dtypes": write_all_dtypes,
    "exotic_dtypes": write_exotic_dtypes,
    "many_keys": write_many_keys,
    "partitioned": write_partitioned,
    "sharded": write_sharded,
    "v1": write_v1,
    "tf2_keras": write_tf2_keras,
    "tf2_module": write_tf2_module,
    "saved_model": write_saved_model,
    "saved_model_no_variables": write_saved_model_no_variables,
}


def write_all(outdir: PathLike, names: list[str] | None = None) -> dict[str, str]:
    """Run the builders (all, or those named) into OUTDIR/<builder>/ and write OUTDIR/manifest.json."""
    root = _dir(outdir)
    paths: dict[str, str] = {}
    for name in names or BUILDERS:
        paths.update(BUILDERS[name](root / name))
    (root / "manifest.json").write_text(json.dumps(paths, indent=1, sort_keys=True))
    return paths


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(f"usage: python tests/tf_fixtures.py OUTDIR [{' '.join(BUILDERS)}]", file=sys.stderr)
        return 2
    for label, path in write_all(argv[0], argv[1:] or None).items():
        print(f"{label}\t{path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
