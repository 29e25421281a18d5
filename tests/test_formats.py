"""Unit tests of the low-level decoders, checked against independent implementations."""

from __future__ import annotations

import random

import pytest

from ckpttools.formats import snappy
from ckpttools.formats.crc import crc32c, mask, unmask
from ckpttools.formats.protowire import WireError, as_int64, fields, read_varint
from ckpttools.formats.sstable import Table, TableError

cramjam = pytest.importorskip("cramjam")


@pytest.mark.parametrize("seed", range(8))
def test_snappy_matches_reference_compressor(seed: int) -> None:
    rng = random.Random(seed)
    words = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))) for _ in range(30)]
    data = b"".join(rng.choice(words) for _ in range(rng.randrange(0, 5000)))
    compressed = bytes(cramjam.snappy.compress_raw(data))
    assert snappy.decompress(compressed, len(data)) == data


def test_snappy_overlapping_copy() -> None:
    # literal "ab", then copy length 10 at offset 2 (overlaps itself): "abababababab"
    stream = bytes([12, (2 - 1) << 2]) + b"ab" + bytes([((10 - 4) << 2) | 1, 2])
    assert snappy.decompress(stream, 100) == b"ab" * 6


@pytest.mark.parametrize(
    "stream",
    [
        bytes([200, 1]) + b"",  # claims 200 bytes, has none
        bytes([5, 0x01, 9]),  # copy before any output
        bytes([0xFF] * 11),  # endless varint
    ],
)
def test_snappy_rejects_bad_streams(stream: bytes) -> None:
    with pytest.raises(snappy.SnappyError):
        snappy.decompress(stream, 1000)


def test_snappy_refuses_absurd_declared_size() -> None:
    stream = bytes([0xFF, 0xFF, 0xFF, 0xFF, 0x0F])  # 4 GiB
    with pytest.raises(snappy.SnappyError, match="claims"):
        snappy.decompress(stream, 1 << 20)


def test_mask_roundtrip_and_known_crc() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard crc32c check value
    for value in (0, 1, 0xFFFFFFFF, 0x12345678):
        assert unmask(mask(value)) == value


def test_crc_of_mutable_buffers_matches_bytes() -> None:
    data = bytes(random.Random(1).randrange(256) for _ in range(10_000))
    assert crc32c(bytearray(data)) == crc32c(data) == crc32c(memoryview(data))


def test_varints_and_signed_values() -> None:
    assert read_varint(bytes([0x96, 0x01]), 0) == (150, 2)
    minus_one = bytes([0xFF] * 9 + [0x01])
    assert as_int64(read_varint(minus_one, 0)[0]) == -1
    with pytest.raises(WireError):
        read_varint(bytes([0x80] * 11), 0)
    with pytest.raises(WireError):
        list(fields(bytes([0x0A, 0x05, 0x01])))  # length 5, one byte present


@pytest.mark.parametrize("data", [b"", b"x" * 47, b"\x00" * 100])
def test_table_rejects_non_tables(data: bytes) -> None:
    with pytest.raises(TableError):
        Table(data)
