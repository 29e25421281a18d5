"""TensorFlow's verdict on what the writer writes: every fixture checkpoint (tests/tf_fixtures.py, the
shipped samples) read with ckpttools and written back with ckpttools is read by ``tf.train.load_checkpoint``
with the same keys, dtypes, shapes and bits; where TensorFlow wrote one shard, our ``.index`` and ``.data``
files are byte-identical to its own; a TF1 graph restores what we wrote with ``tf.compat.v1.train.Saver``."""

from __future__ import annotations

import filecmp
import importlib.util
import os
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from test_exact import ALL_LABELS, V1_LABELS, as_array, assert_identical, tf_path, tf_value

import ckpttools
from ckpttools.formats.bundle_writer import BundleWriter
from ckpttools.formats.messages import parse_bundle_entry, parse_bundle_header
from ckpttools.formats.sstable import Table, read_table

pytestmark = pytest.mark.tf

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
SAMPLE_LABELS = ["sample:tf1_cnn", "sample:tf2_keras", "sample:sharded"]


@pytest.fixture(scope="module")
def tf() -> Any:
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def fixtures_module(tf: Any) -> Any:
    spec = importlib.util.spec_from_file_location("tf_fixtures", Path(__file__).with_name("tf_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def source_path(tf_ckpts: Any, label: str) -> str:
    if label.startswith("sample:"):
        return ckpttools.open_checkpoint(str(SAMPLES / label.split(":")[1])).prefix
    return tf_path(tf_ckpts, label)


def stored_order(prefix: str) -> dict[str, tuple[int, int]]:
    """key -> (shard, offset) of each V2 tensor (a partitioned one: of its first stored slice)."""
    if not os.path.isfile(prefix + ".index"):
        return {}
    with open(prefix + ".index", "rb") as f:
        entries = [(key, parse_bundle_entry(value)) for key, value in read_table(f.read()) if key]
    whole = {key.decode(): (e.shard_id, e.offset) for key, e in entries if key[0] != 0 and not e.slices}
    parts = sorted((e.shard_id, e.offset, key) for key, e in entries if key[0] == 0)
    for shard, offset, key in parts:  # slice keys are \0 + ordered-code(name) ...: find their variable
        for name, e in entries:
            if name[0] != 0 and e.slices and key.startswith(b"\x00\x00" + _escaped(name)):
                whole.setdefault(name.decode(), (shard, offset))
    return whole


def _escaped(name: bytes) -> bytes:
    return name.replace(b"\x00", b"\x00\xff").replace(b"\xff", b"\xff\x00") + b"\x00\x01"


def write_back(source: str, out: str, **options: Any) -> ckpttools.Checkpoint:
    """Read every tensor of ``source`` with ckpttools and write it with ckpttools, in TF's data order."""
    ckpt = ckpttools.open_checkpoint(source)
    order = stored_order(ckpt.prefix)
    infos = sorted(ckpt, key=lambda info: (order.get(info.key, (0, 0)), info.key))
    with BundleWriter(out, **options) as writer:
        for info in infos:
            value = ckpt.get(info.key)
            if info.slices:
                parts = [(s.start, value[tuple(slice(a, b) for a, b in zip(s.start, s.stop))]) for s in info.slices]
                writer.add_sliced(info.key, info.dtype, info.shape, parts)
            else:
                writer.add(info.key, value, dtype=info.dtype)
    return ckpt


def tf_matches(tf: Any, source: str, out: str) -> None:
    """TF reads ``out`` with the same keys, dtypes, shapes and bits as ``source``."""
    theirs, ours = tf.train.load_checkpoint(source), tf.train.load_checkpoint(out)
    assert ours.get_variable_to_shape_map() == theirs.get_variable_to_shape_map()
    assert ours.get_variable_to_dtype_map() == theirs.get_variable_to_dtype_map()
    for key in theirs.get_variable_to_shape_map():
        assert_identical(as_array(tf_value(tf, ours, out, key)), tf_value(tf, theirs, source, key), key)


@pytest.mark.parametrize("label", ALL_LABELS + SAMPLE_LABELS)
def test_round_trip_is_read_by_tensorflow(tf: Any, tf_ckpts: Any, tmp_path: Path, label: str) -> None:
    source = source_path(tf_ckpts, label)
    out = str(tmp_path / "copy")
    ckpt = write_back(source, out)
    tf_matches(tf, source, out)
    with ckpttools.open_checkpoint(out) as copy:
        assert sorted(i.key for i in copy) == sorted(i.key for i in ckpt)
        for info in ckpt:
            assert copy.info(info.key).slices == tuple(
                type(s)(s.start, s.shape, 0, s.nbytes) for s in info.slices) or label in V1_LABELS
            assert_identical(copy.get(info.key), ckpt.get(info.key), info.key)
    if os.path.isfile(ckpt.prefix + ".index"):
        with open(ckpt.prefix + ".index", "rb") as f:
            single = parse_bundle_header(dict(read_table(f.read()))[b""]).num_shards == 1
        if label == "many_keys":  # 4000 keys: an index of several data blocks
            assert len(Table(out + ".index")._index) > 1
        if single:  # one shard, same order: TensorFlow's own bytes
            assert filecmp.cmp(ckpt.prefix + ".index", out + ".index", shallow=False)
            assert filecmp.cmp(ckpt.prefix + ".data-00000-of-00001", out + ".data-00000-of-00001", shallow=False)


@pytest.mark.parametrize("options", [{"num_shards": 3}, {"max_shard_bytes": 600}])
def test_several_shards_are_read_by_tensorflow(tf: Any, tf_ckpts: Any, tmp_path: Path, options: dict) -> None:
    out = str(tmp_path / "copy")
    write_back(tf_ckpts["tf1_cnn"], out, **options)
    shards = sorted(p.name for p in tmp_path.glob("copy.data-*"))
    assert len(shards) >= 3 and shards[0].endswith(f"-of-{len(shards):05d}")
    tf_matches(tf, tf_ckpts["tf1_cnn"], out)


def written_values() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "z/kernel": rng.standard_normal((3, 4)).astype(np.float32),
        "a/bias": np.arange(5, dtype=np.int64),
        "scalar": np.float64(3.5),
        "empty": np.zeros((0, 3), np.float32),
        "strings": np.array([[b"", b"hello"], [b"\x00\xff", b"x" * 200]], dtype=object),
        "no_strings": np.zeros((0, 2), dtype=object),
        "empty_string": np.array(b"", dtype=object),
        "bf": rng.standard_normal(7).astype(ml_dtypes.bfloat16),
        "f8": rng.standard_normal(6).astype(ml_dtypes.float8_e5m2),
        "i4": np.array([-8, 7, 0, -1], ml_dtypes.int4),
        "c": (rng.standard_normal(3) + 1j).astype(np.complex64),
        "bool": np.array([True, False, True]),
        "u64": np.array([0, 2**64 - 1], np.uint64),
    }


def test_same_bytes_as_save_v2(tf: Any, tmp_path: Path) -> None:
    values = written_values()
    tensors = [tf.constant(v.tolist() if v.size else np.zeros(v.shape, bytes), dtype=tf.string) if v.dtype == object
               else tf.constant(v) for v in values.values()]
    tf.raw_ops.SaveV2(prefix=str(tmp_path / "tf"), tensor_names=list(values), shape_and_slices=[""] * len(values),
                      tensors=tensors)
    ckpttools.write_checkpoint(str(tmp_path / "ours"), values, state_file=False)
    for suffix in (".index", ".data-00000-of-00001"):
        assert (tmp_path / f"tf{suffix}").read_bytes() == (tmp_path / f"ours{suffix}").read_bytes(), suffix
    reader = tf.train.load_checkpoint(str(tmp_path / "ours"))
    for name, value in values.items():
        assert_identical(as_array(reader.get_tensor(name)), value, name)


def test_tf1_saver_restores_what_we_write(tf: Any, fixtures_module: Any, tmp_path: Path) -> None:
    """Partitioned (fixed_size_partitioner and friends) and plain variables of a TF1 graph restore from our
    checkpoint, which holds other values than the graph's initializers."""
    v1 = tf.compat.v1
    wanted = {name: full * 3 + 1 for name, (full, _) in fixtures_module.partitioned_values().items()}
    wanted["plain"] = np.arange(6, dtype=np.float32).reshape(2, 3) - 9
    with tf.Graph().as_default():
        variables = {}
        for name, (full, partitioner) in fixtures_module.partitioned_values().items():
            variables[name] = v1.get_variable(name, shape=full.shape, dtype=tf.as_dtype(full.dtype),
                                              initializer=v1.zeros_initializer(), partitioner=partitioner)
        variables["plain"] = v1.get_variable("plain", shape=(2, 3), initializer=v1.zeros_initializer())
        saver = v1.train.Saver()
        prefix = str(tmp_path / "model.ckpt-9")
        with BundleWriter(prefix) as writer:
            for name, variable in variables.items():
                parts = list(variable) if not isinstance(variable, tf.Variable) else []
                if not parts:
                    writer.add(name, wanted[name])
                    continue
                starts = [part._get_save_slice_info().var_offset for part in parts]
                writer.add_sliced(name, wanted[name].dtype.name, wanted[name].shape,
                                  [(tuple(s), wanted[name][tuple(slice(a, a + n) for a, n in zip(s, p.shape))])
                                   for s, p in zip(starts, parts)])
        with v1.Session() as sess:
            saver.restore(sess, prefix)
            for name, variable in variables.items():
                value = sess.run(variable.as_tensor() if not isinstance(variable, tf.Variable) else variable)
                assert_identical(value, wanted[name], name)


@pytest.mark.parametrize("fields", [
    {"dtype": 1, "shape": ()},
    {"dtype": 14, "shape": (0, 3), "shard_id": 2, "offset": 2**40 + 5, "size": 300, "crc32c": 0xA282EAD8},
    {"dtype": 9, "shape": (4096, 1), "offset": 127, "size": 128, "crc32c": 1},
    {"dtype": 1, "shape": (8, 6), "slices": [[(0, 4), (0, -1)], [(4, 4), (2, 4)]]},
])
def test_bundle_entries_are_what_protobuf_serializes(tf: Any, fields: dict) -> None:
    from tensorflow.core.protobuf import tensor_bundle_pb2

    from ckpttools.formats.encoders import encode_bundle_entry

    proto = tensor_bundle_pb2.BundleEntryProto(dtype=fields["dtype"], shard_id=fields.get("shard_id", 0),
                                               offset=fields.get("offset", 0), size=fields.get("size", 0),
                                               crc32c=fields.get("crc32c", 0))
    proto.shape.SetInParent()  # TensorFlow always sets it (TensorShape::AsProto), a scalar's too
    for size in fields["shape"]:
        proto.shape.dim.add(size=size)
    for extents in fields.get("slices", []):
        part = proto.slices.add()
        for start, length in extents:
            extent = part.extent.add(start=start)
            if length != -1:
                extent.length = length
    for _ in range(2):  # the second time from the cache of dtypes and shapes
        assert encode_bundle_entry(**fields) == proto.SerializeToString(deterministic=True), fields
