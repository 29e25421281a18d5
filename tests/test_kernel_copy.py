"""Copies made inside the kernel (``filecopy.copy_range``) with their crc32c checked from the source meanwhile
(``crcscan.verified``), as ``rewrite`` and ``extract`` to .safetensors make them: tensors arrive whole, and a
damaged byte, a short data file or a full disk leaves no output."""

from __future__ import annotations

import errno
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import ckpttools
from ckpttools.errors import ChecksumError, MissingDataError, OutputError
from ckpttools.formats.crc import crc32c
from ckpttools.ops import extract as extract_module
from ckpttools.ops.extract import write_weights
from ckpttools.ops.write import write_checkpoint
from ckpttools.storage import filecopy
from ckpttools.storage.crcscan import verified
from ckpttools.storage.spans import ByteRange

SIZE = 9 * (1 << 20) + 123  # more than one copy step (filecopy's 8 MiB), so progress moves inside the range


def copy(tmp_path: Path, data: bytes, offset: int, size: int) -> tuple[bytes, list[int]]:
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(data)
    dst.write_bytes(b"head")
    advanced: list[int] = []
    with open(src, "rb") as s, open(dst, "r+b", buffering=0) as d:
        filecopy.copy_range(s.fileno(), offset, d.fileno(), 4, size, advanced.append)
        assert (os.lseek(s.fileno(), 0, os.SEEK_CUR), os.lseek(d.fileno(), 0, os.SEEK_CUR)) == (0, 0)
    return dst.read_bytes(), advanced


@pytest.mark.parametrize("size", [0, 100, SIZE])
def test_a_range_is_copied_whole_with_progress_by_steps(tmp_path: Path, size: int) -> None:
    data = os.urandom(SIZE + 1000)
    out, advanced = copy(tmp_path, data, 777, size)
    assert out == b"head" + data[777 : 777 + size]
    assert sum(advanced) == size and len(advanced) == -(-size // (8 << 20))


@pytest.mark.parametrize("size", [100, SIZE])
def test_a_short_source_is_source_too_short(tmp_path: Path, size: int) -> None:
    with pytest.raises(filecopy.SourceTooShort) as caught:
        copy(tmp_path, os.urandom(size), 10, size)
    assert caught.value.copied == size - 10


def test_write_all_appends_at_the_position(tmp_path: Path) -> None:
    with open(tmp_path / "out.bin", "wb", buffering=0) as f:
        filecopy.write_all(f.fileno(), b"head")
        filecopy.write_all(f.fileno(), memoryview(np.arange(3, dtype=np.int32)))
    assert (tmp_path / "out.bin").read_bytes() == b"head" + np.arange(3, dtype=np.int32).tobytes()


def ranges_of(tmp_path: Path, data: bytes, spans: list[tuple[int, int]]) -> list[ByteRange]:
    path = tmp_path / "src.bin"
    path.write_bytes(data)
    return [ByteRange(str(path), offset, size, crc32c(data[offset : offset + size]), f"t{offset}")
            for offset, size in spans]


def test_verified_passes_intact_ranges_and_names_a_damaged_one(tmp_path: Path) -> None:
    data = bytearray(os.urandom(SIZE))
    spans = [(0, 100), (100, SIZE - 200), (SIZE - 50, 50)]
    ranges = ranges_of(tmp_path, bytes(data), spans)
    with verified(ranges):
        pass
    data[SIZE - 150] ^= 1  # in the big middle range
    Path(ranges[0].path).write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="checksum mismatch in 't100'"), verified(ranges):
        pass


def test_verified_finds_a_short_file(tmp_path: Path) -> None:
    data = os.urandom(1000)
    ranges = ranges_of(tmp_path, data, [(0, 500), (500, 500)])
    Path(ranges[0].path).write_bytes(data[:900])
    with pytest.raises(MissingDataError, match="file too short for 't500'"), verified(ranges):
        pass


def test_a_failure_in_the_copy_wins_over_the_check(tmp_path: Path) -> None:
    """The copy fails first (disk full...): that is the error reported, and the checking thread is gone."""
    ranges = ranges_of(tmp_path, os.urandom(SIZE), [(0, SIZE)])
    ranges = [ranges[0]._replace(crc=ranges[0].crc ^ 1)]  # would be a checksum error
    with pytest.raises(OSError, match="No space"), verified(ranges):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert not [t for t in threading.enumerate() if t.name == "ckpttools-verify"]


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory) -> str:
    prefix = str(tmp_path_factory.mktemp("big") / "model.ckpt")
    rng = np.random.default_rng(0)
    write_checkpoint(prefix, {"big/kernel": rng.random((1200, 1100), np.float32), "small/bias": np.arange(7.0),
                              "empty/kernel": np.zeros((0, 3), np.float32)})
    return prefix


def test_extract_to_safetensors_copies_big_tensors_exactly(big_checkpoint: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    copied_keys = []
    real = extract_module.copy_range
    monkeypatch.setattr(extract_module, "copy_range", lambda *args: copied_keys.append(args[1]) or real(*args))
    out = tmp_path / "w.safetensors"
    write_weights(big_checkpoint, str(out))
    with ckpttools.open_checkpoint(big_checkpoint) as ckpt, ckpttools.open_checkpoint(out) as copied:
        assert sorted(copied_keys) == sorted(r.offset for r in ckpt.stored_ranges().values())
        for name in ("big/kernel", "small/bias", "empty/kernel"):
            np.testing.assert_array_equal(copied.get(name), ckpt.get(name))


def damaged_copy(big_checkpoint: str, tmp_path: Path) -> tuple[Path, ByteRange]:
    """A copy of the checkpoint, and where its big tensor lies in its data file."""
    for path in Path(big_checkpoint).parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    with ckpttools.open_checkpoint(str(tmp_path / "model.ckpt")) as ckpt:
        return tmp_path / "model.ckpt", ckpt.stored_ranges()["big/kernel"]


def extract_fails(source: Path, tmp_path: Path, error: type[Exception], match: str) -> None:
    out = tmp_path / "out" / "w.safetensors"
    out.parent.mkdir()
    with pytest.raises(error, match=match):
        write_weights(str(source), str(out))
    assert list(out.parent.iterdir()) == []


def test_a_damaged_byte_in_a_big_tensor_is_a_checksum_error_and_no_output(big_checkpoint: str,
                                                                          tmp_path: Path) -> None:
    source, stored = damaged_copy(big_checkpoint, tmp_path)
    data = bytearray(Path(stored.path).read_bytes())
    data[stored.offset + stored.size - 3] ^= 0x10  # near the end: found only after the copy
    Path(stored.path).write_bytes(bytes(data))
    extract_fails(source, tmp_path, ChecksumError, "checksum mismatch in 'big/kernel'")


def test_a_short_data_file_is_missing_data_and_no_output(big_checkpoint: str, tmp_path: Path) -> None:
    source, stored = damaged_copy(big_checkpoint, tmp_path)
    os.truncate(stored.path, stored.offset + stored.size - 1000)
    end = stored.offset + stored.size
    extract_fails(source, tmp_path, MissingDataError, f"file too short for 'big/kernel' .*{end}, file has {end - 1000}")


def test_a_full_disk_during_a_copy_is_an_output_error_and_no_output(big_checkpoint: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    real = extract_module.copy_range

    def full(src: int, offset: int, dst: int, dst_offset: int, size: int, progress=None) -> None:
        real(src, offset, dst, dst_offset, size // 2, progress)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(extract_module, "copy_range", full)
    extract_fails(Path(big_checkpoint), tmp_path, OutputError, "disk full")
