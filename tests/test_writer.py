"""The V2 writer without TensorFlow: what it writes reads back through our reader, files appear only when
complete, bad input fails with a clear error and leaves nothing behind. (TensorFlow's own verdict on what we
write is in tests/test_writer_tf.py.)"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import ckpttools
from ckpttools.errors import MissingDataError, OutputError
from ckpttools.formats import bundle_writer
from ckpttools.formats.bundle import BundleReader
from ckpttools.formats.bundle_writer import BundleWriter, same_checkpoint, stale_partials
from ckpttools.formats.crc import crc32c
from ckpttools.formats.sstable import Table, read_table
from ckpttools.formats.sstable_writer import TableWriter, short_successor, shortest_separator
from ckpttools.formats.state_file import parse_state
from ckpttools.formats.textproto import c_escape, unescape_text_proto
from ckpttools.storage import filecopy, outputs


def sample_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    return {
        "dense/kernel": rng.standard_normal((3, 4)).astype(np.float32),
        "dense/bias": rng.standard_normal(4),
        "step": np.int64(7),
        "bf": rng.standard_normal((2, 3)).astype(ml_dtypes.bfloat16),
        "f8": rng.standard_normal(5).astype(ml_dtypes.float8_e4m3fn),
        "i4": np.array([-8, 7, 0, 3], ml_dtypes.int4),
        "c128": (rng.standard_normal(3) + 2j).astype(np.complex128),
        "mask": np.array([[True, False]]),
        "empty": np.zeros((0, 5), np.float16),
        "big_endian": np.arange(4, dtype=">i4"),
        "strings": np.array([[b"", b"a\x00b"], ["caf\u00e9", b"x" * 1000]], dtype=object),
        "no_strings": np.zeros((0, 2), dtype=object),
        "one_string": np.array("scalar"),
        "fortran": np.asfortranarray(rng.standard_normal((3, 5)).astype(np.float32)),
    }


def expected(value: np.ndarray) -> np.ndarray:
    if value.dtype.kind in "OU":
        return np.array([v.encode() if isinstance(v, str) else v for v in value.reshape(-1).tolist()],
                        dtype=object).reshape(value.shape)
    return value


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    want = expected(np.asarray(want))
    assert got.shape == want.shape
    if want.dtype == object:
        assert got.tolist() == want.tolist()
    else:
        assert got.dtype == want.dtype.newbyteorder("=")
        assert got.tobytes() == np.ascontiguousarray(want.astype(want.dtype.newbyteorder("="))).tobytes()


def test_round_trip_through_reader(tmp_path):
    tensors = sample_tensors()
    paths = ckpttools.write_checkpoint(str(tmp_path / "model.ckpt-7"), tensors)
    assert [os.path.basename(p) for p in paths] == ["model.ckpt-7.data-00000-of-00001", "model.ckpt-7.index",
                                                     "checkpoint"]
    with ckpttools.open_checkpoint(str(tmp_path)) as ckpt:
        assert ckpt.prefix == str(tmp_path / "model.ckpt-7")
        assert sorted(info.key for info in ckpt) == sorted(tensors)
        for name, value in tensors.items():
            assert_same(ckpt.get(name), value)
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in paths)


def test_generator_input_and_dtype_override(tmp_path):
    prefix = str(tmp_path / "q")
    ckpttools.write_checkpoint(prefix, ((f"t{i}", np.full(3, i, np.int8)) for i in range(3)), state_file=False)
    with BundleWriter(str(tmp_path / "r")) as writer:
        writer.add("q", np.array([1, -2], np.int8), dtype="qint8")
        writer.add("list", [1.5, 2.5], dtype="float16")
        with pytest.raises(ValueError, match="cannot be stored as int32"):
            writer.add("bad", np.zeros(2, np.float32), dtype="int32")
    reader = BundleReader(str(tmp_path / "r"))
    assert {t.name: t.dtype for t in reader.tensors} == {"q": "qint8", "list": "float16"}
    assert reader.read("list").tolist() == [1.5, 2.5]
    assert not os.path.exists(tmp_path / "checkpoint")


def test_add_raw_streams_chunks(tmp_path):
    value = np.arange(10000, dtype=np.float32).reshape(100, 100)
    raw = value.tobytes()
    with BundleWriter(str(tmp_path / "m")) as writer:
        writer.add_raw("w", "float32", (100, 100), (raw[i : i + 999] for i in range(0, len(raw), 999)), len(raw))
        writer.add_raw("empty", "int32", (0,), [], 0)
    reader = BundleReader(str(tmp_path / "m"))
    assert reader.read("w").tobytes() == raw
    assert reader.read("empty").shape == (0,)


def test_big_tensors_stream_in_order(tmp_path):
    """Tensors above the overlap threshold go through the helper thread; odd chunk sizes, several tensors."""
    rng = np.random.default_rng(5)
    big = rng.integers(0, 2**32, (5 << 20) // 4, dtype=np.uint32)
    other = rng.standard_normal(3 << 20)
    raw = other.tobytes()
    step = (1 << 20) + 7
    with BundleWriter(str(tmp_path / "b")) as writer:
        writer.add("big", big)
        writer.add_raw("other", "float64", other.shape, (raw[i : i + step] for i in range(0, len(raw), step)),
                       len(raw))
        writer.add("small", np.arange(3))
    reader = BundleReader(str(tmp_path / "b"))
    assert reader.read("big").tobytes() == big.tobytes()
    assert reader.read("other").tobytes() == raw
    assert reader.read("small").tolist() == [0, 1, 2]


def test_add_copy_copies_neighbours_at_once_around_other_writes(tmp_path, monkeypatch):
    """Copies that continue each other in the source become one kernel copy; a write in between, a gap in
    the source or another shard ends it; the entries keep the crc32c given and the bytes land in order."""
    rng = np.random.default_rng(7)
    parts = [rng.standard_normal(n).astype(np.float32) for n in (3, 5, 2, 4, 6)]
    source = tmp_path / "source.bin"
    source.write_bytes(b"".join(p.tobytes() for p in parts[:3]) + b"gap!" + b"".join(p.tobytes() for p in parts[3:]))
    offsets = [0, 12, 32, 44, 60]
    calls = []
    real = bundle_writer.copy_range
    monkeypatch.setattr(bundle_writer, "copy_range", lambda *args: calls.append(args[-1]) or real(*args))
    with BundleWriter(str(tmp_path / "m")) as writer:
        for name, part, offset in zip("abc", parts, offsets):
            writer.add_copy(name, "float32", part.shape, str(source), offset, part.nbytes, crc32c(part.tobytes()))
        writer.add("written", np.arange(3))
        for name, part, offset in zip("de", parts[3:], offsets[3:]):
            writer.add_copy(name, "float32", part.shape, str(source), offset, part.nbytes, crc32c(part.tobytes()))
    assert calls == [40, 40]  # a+b+c, then d+e
    reader = BundleReader(str(tmp_path / "m"))  # checks every crc32c as it reads
    for name, part in zip("abcde", parts):
        assert reader.read(name).tobytes() == part.tobytes()
    assert reader.read("written").tolist() == [0, 1, 2]
    data = (tmp_path / "m.data-00000-of-00001").read_bytes()
    assert data == b"".join(p.tobytes() for p in parts[:3]) + np.arange(3).tobytes() + b"".join(
        p.tobytes() for p in parts[3:])


def test_add_copy_of_a_short_source_spoils_the_writer(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"\0" * 10)
    writer = BundleWriter(str(tmp_path / "m"))
    with pytest.raises(MissingDataError, match="source.bin: file too short .*ends at byte 10, the index needs 12"):
        writer.add_copy("a", "float32", (3,), str(source), 0, 12, 0)
        writer.finish()
    assert sorted(os.listdir(tmp_path)) == ["source.bin"]


@pytest.mark.parametrize("refused", [["copy_file_range"], ["copy_file_range", "sendfile"]])
def test_copy_range_falls_back_where_the_kernel_refuses(tmp_path, monkeypatch, refused):
    def refuse(*args):
        raise OSError(errno.EXDEV, "cross-device")

    for name in refused:
        monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(filecopy, "_broken", set())
    raw = os.urandom(filecopy._CHUNK + 100)
    (tmp_path / "src").write_bytes(raw)
    with open(tmp_path / "src", "rb") as src, open(tmp_path / "dst", "wb") as dst:
        dst.write(b"head")
        dst.flush()
        filecopy.copy_range(src.fileno(), 5, dst.fileno(), 4, len(raw) - 5)
        with pytest.raises(filecopy.SourceTooShort):
            filecopy.copy_range(src.fileno(), len(raw) - 1, dst.fileno(), len(raw), 2)
    assert (tmp_path / "dst").read_bytes()[: len(raw) - 1] == b"head" + raw[5:]
    assert filecopy._broken == set(refused)


@pytest.mark.parametrize("announced, chunks", [(8, [b"1234"]), (4, [b"12345678"])])
def test_add_raw_wrong_length_spoils_the_writer(tmp_path, announced, chunks):
    writer = BundleWriter(str(tmp_path / "m"))
    with pytest.raises(ValueError):
        writer.add_raw("w", "float32", (announced // 4,), chunks, announced)
    with pytest.raises(ValueError, match="already failed"):
        writer.finish()
    assert os.listdir(tmp_path) == []


def test_sliced_tensor(tmp_path):
    full = np.arange(30, dtype=np.float32).reshape(10, 3)
    with BundleWriter(str(tmp_path / "p")) as writer:
        writer.add_sliced("part", "float32", (10, 3), [((0, 0), full[:4]), ((4, 0), full[4:])])
    reader = BundleReader(str(tmp_path / "p"))
    assert reader.read("part").tobytes() == full.tobytes()
    (info,) = reader.tensors
    assert [(s.start, s.shape) for s in info.slices] == [((0, 0), (4, 3)), ((4, 0), (6, 3))]


@pytest.mark.parametrize("slices, message", [
    ([((0, 0), np.zeros((4, 3), np.float32))], "cover 12 of the 30"),
    ([((0, 0), np.zeros((6, 3), np.float32)), ((4, 0), np.zeros((6, 3), np.float32))], "overlaps"),
    ([((8, 0), np.zeros((4, 3), np.float32))], "lies outside"),
    ([((0,), np.zeros((10,), np.float32))], "rank"),
])  # fmt: skip
def test_bad_slices(tmp_path, slices, message):
    with pytest.raises(ValueError, match=message), BundleWriter(str(tmp_path / "p")) as writer:
        writer.add_sliced("part", "float32", (10, 3), slices)
    assert os.listdir(tmp_path) == []


def test_duplicate_and_bad_keys(tmp_path):
    with pytest.raises(ValueError, match="'a' added twice"):
        ckpttools.write_checkpoint(str(tmp_path / "d"), [("a", np.zeros(1)), ("a", np.ones(1))])
    for key in ("", "\0slice"):
        with pytest.raises(ValueError, match="invalid tensor name"):
            ckpttools.write_checkpoint(str(tmp_path / "d"), {key: np.zeros(1)})
    with pytest.raises(ValueError, match="no TensorFlow equivalent"):
        ckpttools.write_checkpoint(str(tmp_path / "d"), {"t": np.zeros(1, "datetime64[s]")})
    with pytest.raises(ValueError, match="unknown dtype 'float7'"):
        with BundleWriter(str(tmp_path / "e")) as writer:
            writer.add_raw("x", "float7", (1,), [b"1"], 1)
    assert not any(name.endswith(".partial") for name in os.listdir(tmp_path))


def test_shards_balanced_and_size_limited(tmp_path):
    tensors = {f"t{i}": np.full(100 * (i + 1), i, np.uint8) for i in range(6)}
    paths = ckpttools.write_checkpoint(str(tmp_path / "n"), tensors, num_shards=3, state_file=False)
    assert [os.path.basename(p) for p in paths[:3]] == [f"n.data-0000{k}-of-00003" for k in range(3)]
    sizes = sorted(os.path.getsize(p) for p in paths[:3])
    assert sum(sizes) == 2100 and sizes[-1] - sizes[0] <= 600
    paths = ckpttools.write_checkpoint(str(tmp_path / "m"), tensors, max_shard_bytes=700, state_file=False)
    assert [os.path.getsize(p) for p in paths[:-1]] == [600, 400, 500, 600]
    for prefix in ("n", "m"):
        reader = BundleReader(str(tmp_path / prefix))
        for name, value in tensors.items():
            assert reader.read(name).tobytes() == value.tobytes()


def test_existing_output_kept_unless_force(tmp_path):
    prefix = str(tmp_path / "x")
    ckpttools.write_checkpoint(prefix, {"a": np.zeros(3)}, num_shards=2)
    before = {p: open(p, "rb").read() for p in map(str, tmp_path.iterdir())}
    with pytest.raises(OutputError, match="already exists"):
        ckpttools.write_checkpoint(prefix, {"b": np.ones(3)})
    assert {p: open(p, "rb").read() for p in map(str, tmp_path.iterdir())} == before
    ckpttools.write_checkpoint(prefix, {"b": np.ones(3)}, force=True)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "x.data-00000-of-00001", "x.index"]
    assert [t.name for t in BundleReader(prefix).tensors] == ["b"]


def test_missing_directory(tmp_path):
    with pytest.raises(OutputError, match="does not exist"):
        ckpttools.write_checkpoint(str(tmp_path / "nope" / "x"), {"a": np.zeros(1)})


def test_exception_midway_leaves_nothing(tmp_path):
    def tensors():
        yield "a", np.zeros(1000)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ckpttools.write_checkpoint(str(tmp_path / "x"), tensors())
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("size", [10, 3 << 20])  # written directly; by the helper thread
def test_disk_full_is_one_clear_error(tmp_path, size):
    writer = BundleWriter(str(tmp_path / "x"))

    class Full(io.RawIOBase):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    writer._shards[0].file.close()
    writer._shards[0].file = Full()
    with pytest.raises(OutputError, match="disk full while writing; nothing was written"):
        writer.add("a", np.zeros(size))
    assert os.listdir(tmp_path) == []


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    prefix = str(tmp_path / "x")
    tag = ".ckpttools-partial-"
    dead = tmp_path / f".x.data-00000{tag}{outputs.HOST}-999999999-abc123"
    other_host = tmp_path / f".x.index{tag}elsewhere-999999999-abc123"
    alive = tmp_path / f".x.index{tag}{outputs.HOST}-{os.getpid()}-abc123"
    for path in (dead, other_host, alive):
        path.write_bytes(b"junk")
    assert stale_partials(prefix) == [str(dead)]
    ckpttools.write_checkpoint(prefix, {"a": np.zeros(1)}, state_file=False)
    assert not dead.exists() and other_host.exists() and alive.exists()


def test_same_checkpoint(tmp_path):
    prefix = str(tmp_path / "x")
    ckpttools.write_checkpoint(prefix, {"a": np.zeros(1)}, state_file=False)
    os.symlink(tmp_path, tmp_path / "link")
    assert same_checkpoint(prefix, str(tmp_path / "link" / "x"))
    assert same_checkpoint(prefix, str(tmp_path / "." / "x"))
    assert not same_checkpoint(prefix, str(tmp_path / "y"))


def test_state_file_relative_and_keeps_existing_checkpoints(tmp_path):
    for step in (1, 2):
        ckpttools.write_checkpoint(str(tmp_path / f"model.ckpt-{step}"), {"a": np.zeros(1)})
    ckpttools.write_checkpoint(str(tmp_path / "we\"ird é"), {"a": np.zeros(1)})
    text = (tmp_path / "checkpoint").read_text()
    assert text.splitlines()[0] == 'model_checkpoint_path: "we\\"ird \\303\\251"'
    assert parse_state(text) == ('we"ird é', ["model.ckpt-1", "model.ckpt-2", 'we"ird é'])
    os.remove(tmp_path / "model.ckpt-1.index")
    ckpttools.write_checkpoint(str(tmp_path / "model.ckpt-3"), {"a": np.zeros(1)})
    assert parse_state((tmp_path / "checkpoint").read_text()) == (
        "model.ckpt-3", ["model.ckpt-2", 'we"ird é', "model.ckpt-3"])
    assert unescape_text_proto(c_escape("a\\b\n\t'\x01")) == "a\\b\n\t'\x01"


def test_table_writer_many_blocks_and_separators():
    items = [(b"k%05d" % i + b"\xff" * (i % 3), os.urandom(i % 50)) for i in range(3000)]
    buf = io.BytesIO()
    writer = TableWriter(buf, block_size=512)
    for key, value in items:
        writer.add(key, value)
    writer.finish()
    table = Table(buf.getvalue())
    assert len(table._index) > 100
    assert read_table(buf.getvalue()) == items
    assert all(table.get(key) == value for key, value in items[::97])
    assert table.get(b"k00001\x00") is None
    assert shortest_separator(b"abcdef", b"abzz") == b"abd"
    assert shortest_separator(b"abc", b"abcd") == b"abc"
    assert shortest_separator(b"ab\xff1", b"ac") == b"ab\xff1"
    assert short_successor(b"\xff\xffa") == b"\xff\xffb" and short_successor(b"\xff") == b"\xff"
    with pytest.raises(ValueError, match="increasing order"):
        writer = TableWriter(io.BytesIO())
        writer.add(b"b", b"")
        writer.add(b"a", b"")


WRITE_AND_TRANSFER = """
import json, sys
import numpy as np
import ckpttools
from ckpttools.cli import main
out = sys.argv[1]
ckpttools.write_checkpoint(out + "/w", {"a": np.zeros(3, np.float32), "s": np.array([b"x"], dtype=object)})
try:
    main(["transfer", "--from", sys.argv[2], "--into", sys.argv[3], "-o", out + "/t"], prog_name="ckpttools")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tensorboard"))),
      file=sys.stderr)
"""


def test_writing_and_transfer_into_import_no_tensorflow(tmp_path):
    samples = Path(__file__).resolve().parent.parent / "sample_checkpoints"
    result = subprocess.run([sys.executable, "-c", WRITE_AND_TRANSFER, str(tmp_path), str(samples / "tf1_cnn"),
                             str(samples / "tf2_keras")], capture_output=True, text=True, check=True)
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert os.path.isfile(tmp_path / "w.index") and os.path.isfile(tmp_path / "t.index")


def test_interrupt_between_renames_leaves_nothing(tmp_path, monkeypatch):
    real_replace = os.replace
    calls = []

    def interrupted(src, dst):
        calls.append(dst)
        if dst.endswith(".index"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(bundle_writer.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ckpttools.write_checkpoint(str(tmp_path / "x"), {"a": np.zeros(4)}, num_shards=2)
    assert len(calls) == 3 and os.listdir(tmp_path) == []


def test_state_file_with_non_ascii_names_is_followed(tmp_path):
    """TensorFlow (and we) escape non-ASCII bytes of state file paths as octal; the resolver must undo it."""
    for step in (2, 1):  # the state file names step 1; the newest by step would be 2
        ckpttools.write_checkpoint(str(tmp_path / f"mod\u00e8le.ckpt-{step}"), {"a": np.zeros(1)})
    with ckpttools.open_checkpoint(str(tmp_path)) as ckpt:
        assert ckpt.prefix == str(tmp_path / "mod\u00e8le.ckpt-1")
        assert "does not exist" not in (ckpt.note or "")
