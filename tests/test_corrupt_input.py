"""Regression tests for each class of corrupt input the fuzzer found, on TensorFlow-written files.

Every case is a real checkpoint (tests/tf_fixtures.py or sample_checkpoints) with one targeted
change; the promise is a CkptError naming the file, before anything the file cannot hold is
allocated or probed, or values equal to the uncorrupted reading.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ckpttools import open_checkpoint
from ckpttools.errors import ChecksumError, CkptError, CorruptFileError, UnsupportedError
from ckpttools.formats import snappy
from ckpttools.formats.messages import ObjectNode
from ckpttools.formats.objgraph import rename
from ckpttools.info import TensorInfo
from ckpttools.resolve import resolve

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_mutators as mut  # noqa: E402

SMALL = 1 << 20  # "nothing the file cannot hold": allocations stay under 1 MiB for these KB-sized files


# --- helpers --------------------------------------------------------------------------------------------


def _copy_prefix(prefix: str, into: Path) -> str:
    """A copy of a checkpoint, read once whole (lazy imports and caches are warm before measuring)."""
    src = Path(prefix)
    for path in src.parent.iterdir():
        if path.name == src.name or path.name.startswith(src.name + "."):
            shutil.copy(path, into / path.name)
    _read_everything(str(into / src.name))
    return str(into / src.name)


def _edit_index(prefix: str, edit: Callable[[list[tuple[bytes, bytes]]], None], snappy_blocks: bool = False) -> None:
    """Rewrite PREFIX.index with ``edit`` applied to its entries; every block gets a valid checksum."""
    path = Path(prefix + ".index")
    entries = mut.read_table(path.read_bytes())
    edit(entries)
    path.write_bytes(mut.build_table(entries, random.Random(0), snappy=snappy_blocks))


def _set_field(message: bytes, number: int, encoded: bytes) -> bytes:
    """``message`` with every field ``number`` replaced by the already-encoded field ``encoded``."""
    spans = mut.proto_spans(message)
    return b"".join(message[s:e] for s, n, _, _, e in spans if n != number) + encoded


def _edit_entry(key: str, number: int, encoded: bytes) -> Callable:
    def edit(entries: list[tuple[bytes, bytes]]) -> None:
        for i, (k, value) in enumerate(entries):
            if k == key.encode():
                entries[i] = (k, _set_field(value, number, encoded))
                return
        raise AssertionError(f"no entry {key}")

    return edit


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equal (NaN == NaN); string tensors element by element."""
    if a.dtype.hasobject or b.dtype.hasobject:
        return a.shape == b.shape and a.reshape(-1).tolist() == b.reshape(-1).tolist()
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _varint_field(number: int, value: int) -> bytes:
    return mut.varint(number << 3) + mut.varint(value)


def _read_everything(path: str) -> dict[str, object]:
    with open_checkpoint(path) as ckpt:
        return {info.key: ckpt.get(info.name) for info in ckpt}


def _refused(path: str, *names: str, error: type = CkptError) -> str:
    """Open and read everything; assert it fails with ``error``, naming the file, in one line,
    allocating less than SMALL bytes on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(error) as caught:
            _read_everything(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(caught.value)
    assert "\n" not in message
    assert any(name in message for name in (path, os.path.dirname(path), *names)), message
    assert peak < SMALL, f"allocated {peak} bytes before refusing"
    return message


@pytest.fixture
def dtypes_ckpt(tf_ckpts, tmp_path) -> str:
    return _copy_prefix(tf_ckpts["all_dtypes"], tmp_path)


# --- V2 index entries -----------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.parametrize("number, encoded", [
    (2, _varint_field(2, 5)),  # shape as a varint: wire type mismatch (TypeError before)
    (1, mut.varint(1 << 3 | 2) + b"\x01\x01"),  # dtype as bytes
    (5, mut.varint(5 << 3) + b"\xff" * 9 + b"\x7f"),  # size above 64 bits (OverflowError before)
    (2, mut._field(2, 2, mut._field(2, 2, _varint_field(1, 2**64 - 1)))),  # dimension -1
    (2, mut._field(2, 2, mut._field(2, 2, _varint_field(1, 2**62)) + mut._field(2, 2, b""))),  # [2^62, 0]
], ids=["shape-varint", "dtype-bytes", "huge-varint", "negative-dim", "zero-size-but-huge"])  # fmt: skip
def test_malformed_entry_fields_are_corrupt(dtypes_ckpt: str, number: int, encoded: bytes) -> None:
    _edit_index(dtypes_ckpt, _edit_entry("dtypes/float32", number, encoded))
    assert dtypes_ckpt + ".index" in _refused(dtypes_ckpt, error=CorruptFileError)


@pytest.mark.tf
def test_absurd_shard_count_is_refused_without_probing_names(dtypes_ckpt: str) -> None:
    _edit_index(dtypes_ckpt, _edit_entry("", 1, _varint_field(1, 2**31)))
    began = time.perf_counter()
    message = _refused(dtypes_ckpt, error=CorruptFileError)
    assert time.perf_counter() - began < 1 and "2147483648 data shards" in message


@pytest.mark.tf
@pytest.mark.parametrize("number, value", [(3, 7), (4, 2**63 - 1), (4, 2**64 - 8), (5, 2**62), (5, 2**64 - 1)],
                         ids=["shard-id", "offset-max", "offset-negative", "size-huge", "size-negative"])
def test_offsets_and_sizes_are_checked_before_seeking_or_allocating(dtypes_ckpt: str, number: int,
                                                                    value: int) -> None:
    _edit_index(dtypes_ckpt, _edit_entry("dtypes/float32_big", number, _varint_field(number, value)))
    assert "dtypes/float32_big" in _refused(dtypes_ckpt)


@pytest.mark.tf
def test_string_sizes_follow_tensorflows_encoding(dtypes_ckpt: str, tf_ckpts) -> None:
    """TensorFlow writes a length varint per string and a 4-byte checksum of the lengths, even for
    empty strings and zero-element tensors: so size >= count, and 0 for count > 0 is corrupt."""
    entries = dict(mut.read_table(Path(dtypes_ckpt + ".index").read_bytes()))
    from ckpttools.formats.messages import parse_bundle_entry

    sizes = {key: parse_bundle_entry(entries[key.encode()]).size
             for key in ("scalars/empty_string", "empty/string_0", "empty/string_3x0", "dtypes/string_2d")}
    assert sizes["scalars/empty_string"] == 1 + 4 and sizes["empty/string_0"] == sizes["empty/string_3x0"] == 4
    assert sizes["dtypes/string_2d"] == 4 + 4 + (1 + 2 + 4)  # 4 lengths, their crc, the bytes
    _edit_index(dtypes_ckpt, _edit_entry("dtypes/string_2d", 5, _varint_field(5, 0)))
    assert "dtypes/string_2d" in _refused(dtypes_ckpt, error=CorruptFileError)


@pytest.mark.tf
def test_zero_element_string_tensors_are_still_checksummed(dtypes_ckpt: str) -> None:
    _edit_index(dtypes_ckpt, _edit_entry("empty/string_0", 6, mut.varint(6 << 3 | 5) + b"\x01\x02\x03\x04"))
    assert "empty/string_0" in _refused(dtypes_ckpt, error=ChecksumError)


# --- partitioned variables ------------------------------------------------------------------------------


def _edit_slices(key: str, change: Callable[[list[bytes]], list[bytes]]) -> Callable:
    def edit(entries: list[tuple[bytes, bytes]]) -> None:
        for i, (k, value) in enumerate(entries):
            if k == key.encode():
                spans = mut.proto_spans(value)
                slices = [value[s:e] for s, n, _, _, e in spans if n == 7]
                rest = b"".join(value[s:e] for s, n, _, _, e in spans if n != 7)
                entries[i] = (k, rest + b"".join(change(slices)))

    return edit


@pytest.mark.tf
@pytest.mark.parametrize("change", [lambda s: s[1:], lambda s: s + s[:1], lambda s: s[:1] * len(s)],
                         ids=["slice-dropped", "slice-twice", "same-slice-everywhere"])
def test_partitions_must_tile_the_tensor(tf_ckpts, tmp_path, change) -> None:
    prefix = _copy_prefix(tf_ckpts["partitioned"], tmp_path)
    _edit_index(prefix, _edit_slices("part/fixed_10x3", change))
    assert "part/fixed_10x3" in _refused(prefix, error=CorruptFileError)


# --- table blocks and snappy ----------------------------------------------------------------------------


@pytest.mark.tf
def test_snappy_compressed_index_reads_the_same_values(dtypes_ckpt: str, tmp_path) -> None:
    expected = _read_everything(dtypes_ckpt)
    _edit_index(dtypes_ckpt, lambda entries: None, snappy_blocks=True)
    got = _read_everything(dtypes_ckpt)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert _same(got[key], value), key


@pytest.mark.tf
def test_damaged_snappy_block_with_a_valid_checksum_is_corrupt(dtypes_ckpt: str) -> None:
    _edit_index(dtypes_ckpt, lambda entries: None, snappy_blocks=True)
    from ckpttools.formats.crc import crc32c, mask

    path = Path(dtypes_ckpt + ".index")
    data = path.read_bytes()
    offset, size = mut.table_blocks(data)[0]
    body = data[offset : offset + size]
    declared, pos = mut._rv(body, 0)
    body = mut.varint(declared + 1) + body[pos:]  # one byte more than the stream holds
    assert len(body) == size
    trailer = b"\x01" + mask(crc32c(body + b"\x01")).to_bytes(4, "little")
    path.write_bytes(data[:offset] + body + trailer + data[offset + size + 5 :])
    _refused(dtypes_ckpt, error=CorruptFileError)


def test_snappy_stops_at_truncated_elements() -> None:
    for stream in (bytes([20, 0xF0, 0x05]), bytes([20, 0x02]), bytes([20, 0x0B, 0x01])):
        with pytest.raises(snappy.SnappyError):
            snappy.decompress(stream, 1000)


def test_snappy_long_overlapping_copy_is_exact() -> None:
    stream = bytes([64 + 3, (3 - 1) << 2]) + b"abc" + bytes([((64 - 1) << 2) | 2, 3, 0])
    assert snappy.decompress(stream, 1000) == (b"abc" * 23)[:67]


# --- every byte of a data file --------------------------------------------------------------------------


@pytest.mark.tf
def test_every_byte_flip_of_a_data_file_is_caught(dtypes_ckpt: str) -> None:
    """Flip each byte of a V2 data shard in turn: the tensor holding it fails its checksum (through
    ``get`` and through the streaming path ``extract`` uses); every other tensor reads unchanged."""
    from ckpttools.formats.messages import parse_bundle_entry

    entries = {k.decode(): parse_bundle_entry(v) for k, v in mut.read_table(Path(dtypes_ckpt + ".index").read_bytes())
               if k}
    owner = {}
    for key, entry in entries.items():
        for pos in range(entry.offset, entry.offset + entry.size):
            owner[pos] = key
    data_path = Path(dtypes_ckpt + ".data-00000-of-00001")
    original = data_path.read_bytes()
    assert set(owner) == set(range(len(original)))  # TensorFlow leaves no unchecked gap
    with open_checkpoint(dtypes_ckpt) as ckpt:
        expected = {info.key: ckpt.get(info.name) for info in ckpt}
        with open(data_path, "r+b") as f:
            for pos, byte in enumerate(original):
                f.seek(pos)
                f.write(bytes([byte ^ 0xFF]))
                f.flush()
                key = owner[pos]
                with pytest.raises(CorruptFileError):  # ChecksumError, or string lengths that make no sense
                    ckpt.get(key)
                stream = ckpt.stream(key)
                if stream is not None:
                    with pytest.raises(ChecksumError):
                        b"".join(stream)
                if pos % 97 == 0:  # the others still read as before (sampled: all of them is slow)
                    for other, value in expected.items():
                        if other != key:
                            assert _same(ckpt.get(other), value), other
                f.seek(pos)
                f.write(bytes([byte]))


# --- V1 -------------------------------------------------------------------------------------------------


@pytest.mark.tf
def test_v1_value_of_the_wrong_wire_type_is_corrupt(tf_ckpts, tmp_path) -> None:
    path = _copy_prefix(tf_ckpts["v1"], tmp_path)
    entries = mut.read_table(Path(path).read_bytes())
    for i, (key, value) in enumerate(entries):
        if key.startswith(b"\x00") and b"v1/float32" in key:
            spans = mut.proto_spans(value)
            data = next(value[p:e] for _, n, _, p, e in spans if n == 2)  # SavedSlice
            inner = mut.proto_spans(data)
            tensor = next(data[p:e] for _, n, _, p, e in inner if n == 3)
            tensor = _set_field(tensor, 4, _varint_field(4, 12345))  # tensor_content as a varint
            data = _set_field(data, 3, mut._field(3, 2, tensor))
            entries[i] = (key, _set_field(value, 2, mut._field(2, 2, data)))
    Path(path).write_bytes(mut.build_table(entries, random.Random(0)))
    assert "v1/float32" in _refused(path, error=CorruptFileError)


@pytest.mark.tf
def test_v1_shape_larger_than_the_file_is_refused_before_allocating(tf_ckpts, tmp_path) -> None:
    path = _copy_prefix(tf_ckpts["v1"], tmp_path)
    entries = mut.read_table(Path(path).read_bytes())
    dims = mut._field(2, 2, _varint_field(1, 2**20)) * 2  # 2^40 elements: a valid shape, not in 1 KB
    shape = mut._field(2, 2, dims)
    meta_key, meta_value = entries[0]
    assert meta_key == b""
    spans = mut.proto_spans(meta_value)
    meta = next(meta_value[p:e] for _, n, _, p, e in spans if n == 1)
    tensors = [meta[p:e] for _, n, _, p, e in mut.proto_spans(meta) if n == 1]
    tensors = [_set_field(t, 2, shape) if b"v1/float32" in t else t for t in tensors]
    meta = b"".join(mut._field(1, 2, t) for t in tensors)
    entries[0] = (b"", _set_field(meta_value, 1, mut._field(1, 2, meta)))
    Path(path).write_bytes(mut.build_table(entries, random.Random(0)))
    assert "v1/float32" in _refused(path, error=CorruptFileError)


# --- npz ------------------------------------------------------------------------------------------------


def _npz(tmp_path: Path, compress: bool = False) -> Path:
    path = tmp_path / "w.npz"
    arrays = {"a": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.array([b"x", b"yz"])}
    (np.savez_compressed if compress else np.savez)(path, **arrays)
    return path


def _poke(path: Path, signature: bytes, offset: int, value: int, width: int) -> None:
    data = bytearray(path.read_bytes())
    for start in [i for i in range(len(data)) if data.startswith(signature, i)]:
        data[start + offset : start + offset + width] = value.to_bytes(width, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("signature, offset, value, width, error", [
    (b"PK\x01\x02", 8, 1, 2, UnsupportedError),  # encrypted
    (b"PK\x01\x02", 10, 14, 2, UnsupportedError),  # lzma: not an npz method
    (b"PK\x01\x02", 10, 99, 2, UnsupportedError),  # AES
    (b"PK\x01\x02", 24, 2**32 - 1, 4, CorruptFileError),  # uncompressed size 4 GiB
    (b"PK\x03\x04", 26, 0xFFFF, 2, CorruptFileError),  # local name length
    (b"PK\x05\x06", 16, 2**31, 4, CorruptFileError),  # central directory offset
    (b"PK\x01\x02", 6, 0x3FF, 2, CorruptFileError),  # "zip file version" NotImplementedError
], ids=["encrypted", "lzma", "aes", "usize", "name-length", "cd-offset", "version"])  # fmt: skip
def test_damaged_zip_records_are_clean_errors(tmp_path, signature, offset, value, width, error) -> None:
    path = _npz(tmp_path)
    _poke(path, signature, offset, value, width)
    _refused(str(path), error=error)


def test_damaged_deflate_stream_is_corrupt(tmp_path) -> None:
    path = _npz(tmp_path, compress=True)
    data = bytearray(path.read_bytes())
    data[60:70] = b"\xff" * 10  # inside the first member's deflate stream
    path.write_bytes(bytes(data))
    _refused(str(path), error=CorruptFileError)


@pytest.mark.parametrize("header", [
    "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (" + "(" * 200 + "), }",
    "{'descr': '<f4', 'fortran_order': False, 'shape': (3,",
])  # fmt: skip
def test_npy_header_that_does_not_match_the_member_is_corrupt(tmp_path, header: str) -> None:
    """The member is rewritten whole (valid CRC): only the .npy header lies."""
    path = _npz(tmp_path)
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist()}
    body = members["a.npy"]
    values = body[10 + int.from_bytes(body[8:10], "little") :]
    encoded = header.encode() + b"\n"
    members["a.npy"] = b"\x93NUMPY\x01\x00" + len(encoded).to_bytes(2, "little") + encoded + values
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    path.write_bytes(out.getvalue())
    _refused(str(path), error=CorruptFileError)


# --- safetensors ----------------------------------------------------------------------------------------


def _safetensors(tmp_path: Path, header: dict | str, data: bytes = b"\0" * 16) -> Path:
    text = header if isinstance(header, str) else json.dumps(header)
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(text.encode()).to_bytes(8, "little") + text.encode() + data)
    return path


@pytest.mark.parametrize("header", [
    '{"a": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 16]}}',
    '{"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}',
    '{"a": {"dtype": "F32", "shape": [4.0], "data_offsets": [0, 16]}}',
    '{"a": {"dtype": "F32", "shape": [true, 4], "data_offsets": [0, 16]}}',
    '{"a": {"dtype": "F32", "shape": [4611686018427387904], "data_offsets": [0, 18446744073709551616]}}',
    '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [16, 32]}}',
    '{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16, 32]}}',
    '{"a": {"dtype": "F32", "shape": [4611686018427387904, 0], "data_offsets": [0, 0]}}',
    '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
    '{"bad\\nname": {"dtype": "F128", "shape": [4], "data_offsets": [0, 16]}}',
], ids=["inf", "negative", "float", "bool", "huge", "outside", "three-offsets", "zero-size-but-huge", "deep",
        "newline-name"])
def test_safetensors_header_errors_are_clean(tmp_path, header: str) -> None:
    path = _safetensors(tmp_path, header)
    _refused(str(path), error=CorruptFileError)


# --- checkpoint state file ------------------------------------------------------------------------------


def test_state_file_of_blank_lines_resolves_in_linear_time(sample_dir: Path, tmp_path) -> None:
    shutil.copytree(sample_dir / "tf1_cnn", tmp_path / "run")
    state = tmp_path / "run" / "checkpoint"
    state.write_text("\n" * 100_000 + state.read_text() + " \t\n" * 100_000)
    began = time.perf_counter()
    found = resolve(str(tmp_path / "run"))
    assert time.perf_counter() - began < 0.5
    assert found.prefix.endswith("model.ckpt-20") and "from" in found.note


def test_state_file_with_a_broken_escape_falls_back_cleanly(sample_dir: Path, tmp_path) -> None:
    shutil.copytree(sample_dir / "tf1_cnn", tmp_path / "run")
    (tmp_path / "run" / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-20\\x"\n')
    assert resolve(str(tmp_path / "run")).prefix.endswith("model.ckpt-20")


# --- TF2 object graph -----------------------------------------------------------------------------------


def test_damaged_object_graph_never_gives_two_tensors_one_name() -> None:
    """Two nodes reached by the same path, and a reference to a node that does not exist."""
    nodes = [
        ObjectNode(children=[(1, "layer"), (2, "layer"), (99, "ghost")]),
        ObjectNode(attributes=[("VARIABLE_VALUE", "a", "a/.ATTRIBUTES/VARIABLE_VALUE")]),
        ObjectNode(attributes=[("VARIABLE_VALUE", "b", "b/.ATTRIBUTES/VARIABLE_VALUE")], slots=[(7, "m", 8)]),
    ]
    infos = [TensorInfo(k, k, "float32", (1,), 4) for k in ("a/.ATTRIBUTES/VARIABLE_VALUE",
                                                           "b/.ATTRIBUTES/VARIABLE_VALUE")]
    names = [info.name for info in rename(infos, nodes)]
    assert len(set(names)) == 2 and names[0] != "layer"


# --- Keras files ----------------------------------------------------------------------------------------


def test_keras_weights_read_in_place_are_checked_against_the_zip_crc(sample_dir: Path, tmp_path) -> None:
    """A .keras archive's weights are read in place, past zipfile's own CRC check: a damaged byte
    inside a tensor must still fail (it returned a different value before)."""
    path = tmp_path / "small_cnn.keras"
    shutil.copy(sample_dir / "keras" / "small_cnn.keras", path)
    with open_checkpoint(str(path)) as ckpt:
        info = max(ckpt, key=lambda i: i.nbytes)
        value = np.asarray(ckpt.get(info.name))
    needle = value.reshape(-1)[:4].tobytes()
    data = bytearray(path.read_bytes())
    at = bytes(data).index(needle)
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    with open_checkpoint(str(path)) as ckpt:
        with pytest.raises(ChecksumError, match="CRC-32"):
            ckpt.get(info.name)


def test_keras_archive_with_an_unknown_zip_method_is_a_clean_error(sample_dir: Path, tmp_path) -> None:
    path = tmp_path / "small_cnn.keras"
    shutil.copy(sample_dir / "keras" / "small_cnn.keras", path)
    _poke(path, b"PK\x01\x02", 10, 99, 2)  # AES: zipfile raises NotImplementedError
    _refused(str(path), error=CorruptFileError)


def test_hdf5_object_name_that_is_not_utf8_is_a_clean_error(sample_dir: Path, tmp_path) -> None:
    data = (sample_dir / "keras" / "small_cnn.weights.h5").read_bytes()
    at = data.index(b"layers")
    path = tmp_path / "w.weights.h5"
    path.write_bytes(data[: at + 1] + b"\xff" + data[at + 2 :])  # h5py then gives the name as bytes
    assert "not UTF-8" in _refused(str(path), error=CorruptFileError)
