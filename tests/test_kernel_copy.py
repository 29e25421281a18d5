"""Tensors copied file to file inside the kernel (``extract`` to .safetensors) arrive whole, with their crc32c
checked on a thread meanwhile: a damaged byte anywhere is a checksum error and leaves no output."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import ckpttools
from ckpttools.errors import ChecksumError
from ckpttools.formats.crc import crc32c
from ckpttools.ops.extract import write_weights
from ckpttools.ops.write import write_checkpoint
from ckpttools.storage import kernel_copy

SIZE = 9 * (1 << 20) + 123  # more than two crc chunks, so the threaded path runs


def copy(tmp_path: Path, data: bytes, offset: int, size: int) -> tuple[int, bytes, int]:
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(data)
    advanced = []
    with open(src, "rb") as s, open(dst, "wb", buffering=0) as d:
        d.write(b"head")
        crc = kernel_copy.copy_with_crc32c(s.fileno(), offset, size, d.fileno(), advanced.append)
    return crc, dst.read_bytes(), sum(advanced)


@pytest.mark.parametrize("size", [0, 100, SIZE])
def test_a_range_is_copied_whole_with_its_crc32c(tmp_path: Path, size: int) -> None:
    data = os.urandom(SIZE + 1000)
    crc, out, advanced = copy(tmp_path, data, 777, size)
    assert out == b"head" + data[777 : 777 + size]
    assert crc == crc32c(data[777 : 777 + size]) and advanced == size


def test_the_copy_follows_the_output_position(tmp_path: Path) -> None:
    """What is written after a copy lands after it, as with a plain write."""
    data = os.urandom(SIZE)
    (tmp_path / "src.bin").write_bytes(data)
    with open(tmp_path / "src.bin", "rb") as s, open(tmp_path / "dst.bin", "wb", buffering=0) as d:
        kernel_copy.write_all(d.fileno(), b"head")
        kernel_copy.copy_with_crc32c(s.fileno(), 0, SIZE, d.fileno(), lambda n: None)
        kernel_copy.write_all(d.fileno(), b"tail")
    assert (tmp_path / "dst.bin").read_bytes() == b"head" + data + b"tail"


@pytest.mark.parametrize("size", [100, SIZE])
def test_a_short_source_is_an_eof_error(tmp_path: Path, size: int) -> None:
    with pytest.raises(EOFError):
        copy(tmp_path, os.urandom(size), 10, size)


@pytest.fixture(scope="module")
def big_checkpoint(tmp_path_factory) -> str:
    prefix = str(tmp_path_factory.mktemp("big") / "model.ckpt")
    rng = np.random.default_rng(0)
    write_checkpoint(prefix, {"big/kernel": rng.random((1200, 1100), np.float32), "small/bias": np.arange(7.0)})
    return prefix


def test_extract_to_safetensors_copies_big_tensors_exactly(big_checkpoint: str, tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    write_weights(big_checkpoint, str(out))
    with ckpttools.open_checkpoint(big_checkpoint) as ckpt, ckpttools.open_checkpoint(out) as copied:
        for name in ("big/kernel", "small/bias"):
            np.testing.assert_array_equal(copied.get(name), ckpt.get(name))


def test_a_damaged_byte_in_a_big_tensor_is_a_checksum_error_and_no_output(big_checkpoint: str,
                                                                          tmp_path: Path) -> None:
    import shutil

    damaged = tmp_path / "model.ckpt"
    for path in Path(big_checkpoint).parent.iterdir():
        shutil.copy(path, tmp_path / path.name)
    with ckpttools.open_checkpoint(str(damaged)) as ckpt:
        entry = ckpt._reader._entries["big/kernel"]  # noqa: SLF001 - the byte to damage
        data_file = Path(ckpt.data_files()[0])
    data = bytearray(data_file.read_bytes())
    data[entry.offset + entry.size - 3] ^= 0x10  # in the last crc chunk: found only after the copy
    data_file.write_bytes(bytes(data))
    out = tmp_path / "out" / "w.safetensors"
    out.parent.mkdir()
    with pytest.raises(ChecksumError):
        write_weights(str(damaged), str(out))
    assert list(out.parent.iterdir()) == []
