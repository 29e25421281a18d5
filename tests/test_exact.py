"""Exactness against TensorFlow itself: for checkpoints written by real TF (tests/tf_fixtures.py),
ckpttools must list the same keys, shapes and dtypes as ``tf.train.load_checkpoint`` and read
bit-identical values. TensorFlow is imported only by the fixtures below, never at collection.
"""

from __future__ import annotations

import glob
import importlib.util
import math
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ckpttools
from ckpttools.formats.sstable import read_table

pytestmark = pytest.mark.tf

V2_LABELS = [
    "tf1_cnn", "tf1_cnn_step10", "all_dtypes", "exotic_dtypes", "partitioned", "sharded", "many_keys",
]  # fmt: skip
TF2_LABELS = ["tf2_keras", "tf2_module", "tf2_module_slots", "saved_model"]
V1_LABELS = ["v1", "v1_sharded", "many_keys_v1"]
ALL_LABELS = V2_LABELS + TF2_LABELS + V1_LABELS
PARTITIONED_LABELS = ["partitioned", "sharded", "v1", "v1_sharded"]
ATTRIBUTE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
# TF stores these one element per byte and reads them back; the reader does not decode them yet.


@pytest.fixture(scope="module")
def tf() -> Any:
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def fixtures_module(tf: Any) -> Any:
    """tests/tf_fixtures.py, for the values it meant to write (it imports TensorFlow). Loaded by path:
    tests/ is not a package."""
    spec = importlib.util.spec_from_file_location("tf_fixtures", Path(__file__).with_name("tf_fixtures.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tf_path(tf_ckpts: Any, label: str) -> str:
    """What tf.train.load_checkpoint needs: for a SavedModel, its variables prefix."""
    path = tf_ckpts[label]
    return os.path.join(path, "variables", "variables") if label == "saved_model" else path


def tf_reader(tf: Any, tf_ckpts: Any, label: str) -> Any:
    return tf.train.load_checkpoint(tf_path(tf_ckpts, label))


def tf_value(tf: Any, reader: Any, path: str, key: str) -> Any:
    """TF's value for ``key``. Its CheckpointReader refuses V1 partitioned variables
    ("Sliced checkpoints are not supported"); the Restore op reassembles them instead."""
    try:
        return reader.get_tensor(key)
    except tf.errors.UnimplementedError:
        dtype = reader.get_variable_to_dtype_map()[key]
        return tf.raw_ops.Restore(file_pattern=path, tensor_name=key, dt=dtype).numpy()


def as_array(value: Any) -> np.ndarray:
    """TF returns numpy scalars (and plain bytes for string scalars); compare arrays throughout."""
    return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)


def assert_identical(ours: np.ndarray, theirs: Any, key: str) -> None:
    """Same dtype, shape and bits (NaN payloads, -0.0 and bfloat16 included); strings as bytes objects."""
    theirs = as_array(theirs)
    assert isinstance(ours, np.ndarray), f"{key}: got {type(ours).__name__}, not an ndarray"
    assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), key
    if theirs.dtype == object:
        assert all(type(item) is bytes for item in ours.flat), f"{key}: strings must be bytes objects"
        assert ours.tolist() == theirs.tolist(), key
        return
    if theirs.dtype.name == "bfloat16":
        np.testing.assert_array_equal(ours.view(np.uint16), theirs.view(np.uint16), err_msg=key)
    else:
        np.testing.assert_array_equal(ours, theirs, err_msg=key)  # readable diff; NaN == NaN here
    assert ours.tobytes() == theirs.tobytes(), f"{key}: values differ in their bits"


# --- listing and values, every checkpoint ----------------------------------------------------------


@pytest.mark.parametrize("label", ALL_LABELS)
def test_keys_shapes_and_dtypes_match_tensorflow(tf: Any, tf_ckpts: Any, label: str) -> None:
    reader = tf_reader(tf, tf_ckpts, label)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
        infos = {info.key: info for info in ckpt}
        assert len(infos) == len(ckpt), "keys must be unique"
        assert sorted(infos) == sorted(shapes)
        for key, info in infos.items():
            assert info.shape == tuple(shapes[key]), key
            assert info.dtype == dtypes[key].name, key
            assert info.size == math.prod(shapes[key]), key
            assert key in ckpt and info.name in ckpt and ckpt.info(key) == info == ckpt.info(info.name)
        assert len({info.name for info in ckpt}) == len(ckpt), "display names must be unique"
        assert [info.name for info in ckpt] == sorted(info.name for info in ckpt)
        assert ckpt.missing_data_files() == []


@pytest.mark.parametrize("label", ALL_LABELS)
def test_values_are_bit_identical_to_tensorflow(tf: Any, tf_ckpts: Any, label: str) -> None:
    reader = tf_reader(tf, tf_ckpts, label)
    with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
        for info in ckpt:
            ours = ckpt.get(info.key)
            assert_identical(ours, tf_value(tf, reader, tf_path(tf_ckpts, label), info.key), info.key)
            if info.name != info.key:
                assert_identical(ckpt.get(info.name), ours, info.name)


@pytest.mark.parametrize("label", ALL_LABELS)
def test_values_read_in_storage_order_runs_are_bit_identical_to_tensorflow(tf: Any, tf_ckpts: Any,
                                                                           label: str) -> None:
    """``Checkpoint.values`` (runs of tensors read as one stream) and ``streams`` give TensorFlow's values and
    bytes, whatever the order asked: storage order, name order, reversed."""
    reader = tf_reader(tf, tf_ckpts, label)
    with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
        stored = [info.name for info in ckpt.in_storage_order(list(ckpt))]
        assert sorted(stored) == sorted(info.name for info in ckpt)
        for names in (stored, [info.name for info in ckpt], stored[::-1]):
            for name, ours in ckpt.values(names):
                assert_identical(ours, tf_value(tf, reader, tf_path(tf_ckpts, label), ckpt.info(name).key), name)
        for name, stream in ckpt.streams(stored):
            if stream is not None:
                assert b"".join(stream) == as_array(reader.get_tensor(ckpt.info(name).key)).tobytes(), name
        every_other = [name if i % 2 else None for i, name in enumerate(stored)]  # None: a place held, not read
        for asked, (name, stream) in zip(every_other, ckpt.streams(every_other), strict=True):
            assert name == asked and (asked is not None or stream is None)
            if stream is not None:
                assert b"".join(stream) == as_array(reader.get_tensor(ckpt.info(name).key)).tobytes(), name


@pytest.mark.parametrize("label", ALL_LABELS)
def test_format_is_detected(tf_ckpts: Any, label: str) -> None:
    expected = "v1" if label in V1_LABELS else "tf2" if label in TF2_LABELS else "v2"
    with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
        assert ckpt.format == expected
        assert ckpt.saved_model == (label == "saved_model")


# --- values as written ----------------------------------------------------------------------------


def test_every_dtype_reads_back_as_written(tf_ckpts: Any, fixtures_module: Any) -> None:
    """Guards the fixture too: TF must have stored exactly what tf_fixtures asked for."""
    expected = fixtures_module.all_dtype_values()
    with ckpttools.open_checkpoint(tf_ckpts["all_dtypes"]) as ckpt:
        assert {info.name for info in ckpt} == set(expected)
        for name, value in expected.items():
            assert_identical(ckpt.get(name), value, name)


SUB_BYTE = {"int4", "uint4", "int2", "uint2", "float4_e2m1fn"}


def test_exotic_dtypes_read_back_as_written(tf_ckpts: Any, fixtures_module: Any) -> None:
    """float8, 4- and 2-bit and quantized types decode to TF's numpy types (quantized ones as plain ints)."""
    with ckpttools.open_checkpoint(tf_ckpts["exotic_dtypes"]) as ckpt:
        for name, (value, dtype) in fixtures_module.exotic_values().items():
            assert ckpt.info(name).dtype == dtype
            if dtype in SUB_BYTE:  # TF stores these one per byte, sign-extended (int4 -8 is 0xf8): compare values
                np.testing.assert_array_equal(ckpt.get(name).astype(np.float32), value.astype(np.float32), name)
            else:
                assert_identical(ckpt.get(name), value, name)


def test_many_keys_and_a_big_tensor(tf_ckpts: Any, fixtures_module: Any) -> None:
    """Index tables of several blocks (found by name, not only by iteration) and a tensor over 4 MiB."""
    names = fixtures_module.many_key_names()
    for label in ("many_keys", "many_keys_v1"):
        with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
            for i in (0, 1, len(names) // 2, len(names) - 1):
                np.testing.assert_array_equal(ckpt.get(names[i]), np.full((2,), i - 0.5, np.float32))
    with ckpttools.open_checkpoint(tf_ckpts["many_keys"]) as ckpt:
        big = ckpt.get("big/embedding")
        assert big.shape == (1100, 1000) and ckpt.info("big/embedding").nbytes == big.nbytes > 1 << 22


def test_partitioned_variables_reassemble_as_written(tf_ckpts: Any, fixtures_module: Any) -> None:
    with ckpttools.open_checkpoint(tf_ckpts["partitioned"]) as ckpt:
        for name, (full, _) in fixtures_module.partitioned_values().items():
            assert_identical(ckpt.get(name), full, name)
    with ckpttools.open_checkpoint(tf_ckpts["v1"]) as ckpt:
        for name, value in fixtures_module.v1_values().items():
            assert_identical(ckpt.get(name), value, name)


# --- partitioned variables ----------------------------------------------------------------------------


def tf_slice_counts(tf: Any, tf_ckpts: Any, label: str) -> Counter:
    """Slices per variable as TF lists them: V2 debug_string lists each slice key (``\\0name\\0\\1...``),
    V1 says ``name (DT_X) [shape], N slices``."""
    counts: Counter = Counter()
    for line in tf_reader(tf, tf_ckpts, label).debug_string().split(b"\n"):
        if line.startswith(b"\x00"):
            counts[line[1 : line.index(b"\x00\x01", 1)].decode()] += 1
        elif line.endswith(b" slices"):
            counts[line.split(b" (DT_")[0].decode()] = int(line.rsplit(b", ", 1)[1].split()[0])
    return counts


def assert_tiles_once(info: Any) -> None:
    """The slices cover every element of the full shape exactly once."""
    cover = np.zeros(info.shape, np.int32)
    for part in info.slices:
        assert len(part.start) == len(part.shape) == len(info.shape), info.key
        assert all(0 <= a < b <= n for a, b, n in zip(part.start, part.stop, info.shape)), (info.key, part)
        cover[tuple(slice(a, b) for a, b in zip(part.start, part.stop))] += 1
    assert (cover == 1).all(), f"{info.key}: slices {info.slices} do not tile {info.shape} exactly once"


@pytest.mark.parametrize("label", PARTITIONED_LABELS)
def test_slices_tile_partitioned_variables(tf: Any, tf_ckpts: Any, label: str) -> None:
    expected = tf_slice_counts(tf, tf_ckpts, label)
    assert expected, "the fixture should hold partitioned variables"
    with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
        counts = {info.key: len(info.slices) for info in ckpt if info.slices}
        assert counts == dict(expected)
        for info in ckpt:
            if info.slices:
                assert_tiles_once(info)
                if label not in V1_LABELS:
                    assert info.nbytes == sum(part.nbytes for part in info.slices), info.key


def test_partitioner_layouts(tf_ckpts: Any) -> None:
    """The partitioners split where they should: axis 0 by default, axis 1 when asked."""
    with ckpttools.open_checkpoint(tf_ckpts["partitioned"]) as ckpt:
        layout = {info.key: sorted((p.start, p.shape) for p in info.slices) for info in ckpt}
    assert layout["part/fixed_10x3"] == [((0, 0), (4, 3)), ((4, 0), (3, 3)), ((7, 0), (3, 3))]
    assert layout["part/fixed_7x4x2"] == [((0, 0, 0), (4, 4, 2)), ((4, 0, 0), (3, 4, 2))]
    assert layout["part/axis1_3x8"] == [((0, k), (3, 2)) for k in (0, 2, 4, 6)]
    assert layout["plain"] == []


def test_sharded_checkpoint_uses_three_shards(tf_ckpts: Any) -> None:
    prefix = tf_ckpts["sharded"]
    assert len(glob.glob(prefix + ".data-*-of-00003")) == 3
    with ckpttools.open_checkpoint(prefix + ".data-00002-of-00003") as ckpt:
        assert ckpt.prefix == prefix
        assert {part.shard for part in ckpt.info("spread").slices} == {0, 1, 2}


# --- the index, cross-checked with TensorFlow's own protos -------------------------------------------------


def index_entries(tf: Any, tf_ckpts: Any, label: str) -> tuple[Any, dict[bytes, Any]]:
    """(header, {raw key: BundleEntryProto}) of a V2 index, the values parsed by TF's protobuf classes.

    The table is walked with our decoder; its keys are checked against TF's own listing first.
    """
    from tensorflow.core.protobuf import tensor_bundle_pb2

    prefix = tf_path(tf_ckpts, label)
    raw = dict(read_table(Path(prefix + ".index").read_bytes()))
    reader = tf_reader(tf, tf_ckpts, label)
    # debug_string lists each table key except the full entries of partitioned variables.
    listed = {line.rsplit(b" (DT_", 1)[0] for line in reader.debug_string().split(b"\n") if line}
    assert set(raw) - {b""} == listed | {key.encode() for key in reader.get_variable_to_shape_map()}
    header = tensor_bundle_pb2.BundleHeaderProto.FromString(raw.pop(b""))
    return header, {key: tensor_bundle_pb2.BundleEntryProto.FromString(value) for key, value in raw.items()}


@pytest.mark.parametrize("label", V2_LABELS + TF2_LABELS)
def test_index_agrees_with_tensorflow_protos(tf: Any, tf_ckpts: Any, label: str) -> None:
    header, entries = index_entries(tf, tf_ckpts, label)
    parts: dict[str, list[tuple[int, int]]] = {}
    for key, entry in entries.items():
        if key.startswith(b"\x00"):
            name = key[1 : key.index(b"\x00\x01", 1)].decode()
            parts.setdefault(name, []).append((entry.shard_id, entry.size))
    data_files = sorted(glob.glob(tf_path(tf_ckpts, label) + ".data-*"))
    assert len(data_files) == header.num_shards
    with ckpttools.open_checkpoint(tf_ckpts[label]) as ckpt:
        for key, entry in entries.items():
            if key.startswith(b"\x00"):
                continue
            info = ckpt.info(key.decode())
            assert info.dtype == tf.as_dtype(entry.dtype).name
            assert info.shape == tuple(dim.size for dim in entry.shape.dim)
            if entry.slices:
                assert sorted((p.shard, p.nbytes) for p in info.slices) == sorted(parts[info.key]), info.key
            else:  # an empty string tensor stores only a 4-byte checksum: it lists as 0 bytes
                assert info.nbytes == (entry.size if info.size else 0), info.key
        # TF writes the shards back to back: every stored byte belongs to exactly one entry.
        empty = sum(4 for info in ckpt if info.dtype == "string" and not info.size and not info.slices)
        assert sum(info.nbytes for info in ckpt) + empty == sum(os.path.getsize(path) for path in data_files)


# --- names and roles ----------------------------------------------------------------------------------------


def test_tf1_roles_and_adam_slots(tf_ckpts: Any) -> None:
    with ckpttools.open_checkpoint(tf_ckpts["tf1_cnn"]) as ckpt:
        infos = {info.name: info for info in ckpt}
    for name, info in infos.items():
        assert info.name == info.key
        if name.endswith(("/Adam", "/Adam_1")):
            assert (info.role, info.slot_of) == ("optimizer", name.rsplit("/", 1)[0]), name
            assert infos[info.slot_of].shape == info.shape
        elif name.startswith("cnn/") and not name.endswith("ExponentialMovingAverage"):
            assert (info.role, info.slot_of) == ("model", None), name
    assert infos["beta1_power"].role == infos["beta2_power"].role == "optimizer"
    assert infos["global_step"].role == "training"
    assert infos["cnn/logits/kernel/ExponentialMovingAverage"].role == "training"
    assert infos["cnn/conv_block3/bn/moving_variance"].role == "model"


def test_keras3_kernels_get_layer_paths(tf_ckpts: Any) -> None:
    """Keras 3 stores layer weights only under optimizer/_trainable_variables/N: show the layer path."""
    with ckpttools.open_checkpoint(tf_ckpts["tf2_keras"]) as ckpt:
        trainable = [info for info in ckpt if info.key.startswith("optimizer/_trainable_variables/")]
        assert len(trainable) == 6  # conv kernel+bias, bn gamma+beta, dense kernel+bias
        for info in trainable:
            assert not info.name.startswith("optimizer/"), info.name
            assert info.role == "model", info.name
            if len(info.shape) > 1:
                assert "kernel" in info.name, info.name
        for info in ckpt:
            assert "/.ATTRIBUTES/" not in info.name, info.name
            if info.key.startswith("model/"):
                assert info.role == "model", info.name
        assert ckpt.info("_CHECKPOINTABLE_OBJECT_GRAPH").role == "metadata"
        assert ckpt.info("save_counter" + ATTRIBUTE_SUFFIX).role == "training"


def test_keras3_adam_slots_point_at_their_variables(tf_ckpts: Any) -> None:
    with ckpttools.open_checkpoint(tf_ckpts["tf2_keras"]) as ckpt:
        names = {info.name: info for info in ckpt}
        slots = [info for info in ckpt if info.slot_of is not None]
        assert len(slots) == 12  # m and v for each of the six trainable variables
        for slot in slots:
            assert slot.role == "optimizer"
            target = names[slot.slot_of]
            assert (target.role, target.shape, target.dtype) == ("model", slot.shape, slot.dtype), slot.name
        assert set(Counter(slot.slot_of for slot in slots).values()) == {2}



def test_module_tree_names_are_object_paths(tf_ckpts: Any) -> None:
    with ckpttools.open_checkpoint(tf_ckpts["tf2_module"]) as ckpt:
        for info in ckpt:  # local names stay escaped as in TF's keys, so every "/" is a real scope boundary
            assert info.name == info.key.removesuffix(ATTRIBUTE_SUFFIX), info.key
        assert ckpt.info("net/heads/odd.Skey..name/w").key == "net/heads/odd.Skey..name/w" + ATTRIBUTE_SUFFIX
        assert ckpt.info("net/heads/cls/w").shape == (8, 3)
        assert ckpt.get("net/vocab").tolist() == [b"<pad>", b"", b"\xff\x00"]


def test_optimizer_slot_keys_point_at_their_variables(tf_ckpts: Any) -> None:
    """``var/.OPTIMIZER_SLOT/optimizer/m`` belongs to ``var``, whatever name ``var`` is shown under."""
    with ckpttools.open_checkpoint(tf_ckpts["tf2_module_slots"]) as ckpt:
        slots = [info for info in ckpt if "/.OPTIMIZER_SLOT/" in info.key]
        assert len(slots) == 24  # m and v of 12 variables
        for slot in slots:
            owner = ckpt.info(slot.key.split("/.OPTIMIZER_SLOT/")[0] + ATTRIBUTE_SUFFIX)
            assert (slot.role, slot.slot_of) == ("optimizer", owner.name), slot.key
            assert owner.role == "model"
            # shown under its variable's readable path, escaped like the variable ("odd.Skey..name")
            assert slot.name.startswith(owner.name + "/"), (slot.name, owner.name)
        assert ckpt.info("optimizer/beta1_power" + ATTRIBUTE_SUFFIX).role == "optimizer"


# --- ways of pointing at a checkpoint -----------------------------------------------------------------------


def test_tf1_directory_and_files_resolve_to_the_same_prefix(tf_ckpts: Any) -> None:
    prefix = tf_ckpts["tf1_cnn"]
    for given in (os.path.dirname(prefix), prefix, prefix + ".index", prefix + ".meta",
                  prefix + ".data-00000-of-00001"):  # fmt: skip
        with ckpttools.open_checkpoint(given) as ckpt:
            assert ckpt.prefix == prefix, given
    with ckpttools.open_checkpoint(tf_ckpts["tf1_cnn_step10"]) as ckpt:
        assert ckpt.prefix.endswith("model.ckpt-10")


def test_v1_paths(tf_ckpts: Any) -> None:
    single = tf_ckpts["v1"]
    for given in (single, os.path.dirname(single)):
        with ckpttools.open_checkpoint(given) as ckpt:
            assert (ckpt.format, ckpt.prefix) == ("v1", single), given
    pattern = tf_ckpts["v1_sharded"]  # .../model.ckpt-7-?????-of-00003
    for given in (pattern, pattern.split("-?????")[0], os.path.dirname(pattern)):
        with ckpttools.open_checkpoint(given) as ckpt:
            assert ckpt.format == "v1" and len(ckpt) == 9, given


def test_one_shard_of_a_v1_checkpoint_lists_as_tensorflow_does_and_names_the_rest(tf: Any, tf_ckpts: Any) -> None:
    """One file of a 3-shard V1 checkpoint, given alone: its variables as TensorFlow lists them, a note giving
    the pattern of all shards, and a partitioned variable whose other slices are in the other files refused with
    that pattern (TensorFlow returns it with the missing rows left uninitialised)."""
    from click.testing import CliRunner

    from ckpttools.cli import main

    pattern = tf_ckpts["v1_sharded"]
    lone = pattern.replace("?????", "00001")
    shapes = tf.train.load_checkpoint(lone).get_variable_to_shape_map()
    with ckpttools.open_checkpoint(lone) as ckpt:
        assert {info.name: list(info.shape) for info in ckpt} == shapes
        assert ckpt.note and pattern in ckpt.note and "shard 2 of 3" in ckpt.note
        with pytest.raises(ckpttools.errors.MissingDataError, match=re.escape(pattern)):
            ckpt.get("v1/partitioned")  # (tests/tf_fixtures.py: rows 0-3 are in this file, 4-9 in the others)
    result = CliRunner().invoke(main, ["verify", lone])
    assert result.exit_code != 0 and "verify every shard together" in result.stdout
    assert CliRunner().invoke(main, ["verify", pattern]).exit_code == 0


def test_saved_model_directory(tf_ckpts: Any) -> None:
    with ckpttools.open_checkpoint(tf_ckpts["saved_model"]) as ckpt:
        assert ckpt.saved_model and ckpt.format == "tf2"
        assert ckpt.prefix == os.path.join(tf_ckpts["saved_model"], "variables", "variables")
        assert {"w", "b", "calls"} <= {info.name for info in ckpt}


# --- the shipped samples ------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["tf1_cnn", "tf2_keras", "sharded"])
def test_samples_match_tensorflow(tf: Any, sample_dir: Path, sample: str) -> None:
    """TF resolves the sample directory through its (relative) state file; we must agree on everything."""
    directory = sample_dir / sample
    reader = tf.train.load_checkpoint(str(directory))
    shapes = reader.get_variable_to_shape_map()
    with ckpttools.open_checkpoint(directory) as ckpt:
        assert ckpt.prefix == tf.train.latest_checkpoint(str(directory))
        assert sorted(info.key for info in ckpt) == sorted(shapes)
        for info in ckpt:
            assert info.shape == tuple(shapes[info.key])
            assert_identical(ckpt.get(info.key), reader.get_tensor(info.key), info.key)
    assert len(glob.glob(str(directory / "*.index"))) == 1, "samples keep only their last step"
