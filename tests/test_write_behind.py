"""storage/write_behind.py: an archive written through a WriteBehind is the same file as one written directly,
queued bytes cannot change after ``write`` returns, and an error of the writer thread reaches the caller."""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import pytest

from ckpttools.storage.write_behind import WriteBehind


def _members(seed: int) -> list[tuple[str, list[bytes]]]:
    rng = random.Random(seed)
    sizes = [0, 1, 1000, 64 << 10, 300 << 10, 5 << 20]  # below, at and above the queue's limit (1 MiB here)
    return [(f"m{i}.npy", [rng.randbytes(rng.choice(sizes)) for _ in range(rng.randint(1, 4))]) for i in range(8)]


def _archive(f, members: list[tuple[str, list[bytes]]], compression: int) -> None:
    with zipfile.ZipFile(f, "w", compression=compression, allowZip64=True) as archive:
        for name, chunks in members:
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(memoryview(chunk))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_through_write_behind_is_the_same_file(tmp_path: Path, compression: int) -> None:
    members = _members(seed=compression)
    direct, behind = tmp_path / "direct.zip", tmp_path / "behind.zip"
    with open(direct, "wb") as f:
        _archive(f, members, compression)
    with open(behind, "wb", buffering=0) as f, WriteBehind(f.fileno(), limit=1 << 20) as out:
        _archive(out, members, compression)
    assert behind.read_bytes() == direct.read_bytes()
    with zipfile.ZipFile(behind) as archive:
        assert archive.testzip() is None
        assert [archive.read(name) for name, _ in members] == [b"".join(chunks) for _, chunks in members]


def test_mutable_buffers_are_copied_before_write_returns(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    with open(path, "wb", buffering=0) as f, WriteBehind(f.fileno(), limit=1 << 20) as out:
        buffer = bytearray(b"a" * 1000)
        for letter in b"bcd":
            out.write(buffer)
            buffer[:] = bytes([letter]) * 1000  # changed at once, while the write may still be queued
        assert out.tell() == 3000
        out.seek(10)
        out.write(b"XY")
        out.seek(0, os.SEEK_END)
        out.write(b"!")
    assert path.read_bytes() == b"a" * 10 + b"XY" + b"a" * 988 + b"b" * 1000 + b"c" * 1000 + b"!"


def test_an_error_of_the_writer_thread_reaches_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "read-only"
    path.write_bytes(b"")
    with open(path, "rb") as f:  # writing to a read-only descriptor fails (EBADF) on the writer thread
        out = WriteBehind(f.fileno())
        out.write(b"x" * 100)
        with pytest.raises(OSError):
            out.close()
