"""The inlined decoder of index entries (one per tensor, the hot path of listing) reads every varint width
and field layout as the protobuf wire format defines them; unusual layouts fall back to the general decoder."""

from __future__ import annotations

import pytest

from ckpttools.formats import messages
from ckpttools.formats.protowire import WireError


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def entry_bytes(offset: int, size: int, shard: int = 0, dtype: int = 1) -> bytes:
    shape = b"\x12\x02\x08\x04\x12\x03\x08" + varint(300)[:1] + varint(300)[1:]  # dims [4, 300]
    fields = b"\x08" + varint(dtype) + b"\x12" + varint(len(shape)) + shape
    if shard:
        fields += b"\x18" + varint(shard)
    return fields + b"\x20" + varint(offset) + b"\x28" + varint(size) + b"\x35" + bytes([1, 2, 3, 4])


@pytest.mark.parametrize("offset", [0, 1, 127, 128, 300, 16383, 16384, 2**21 + 5, 2**35 + 7, 2**62])
def test_every_varint_width(offset: int) -> None:
    entry = messages.parse_bundle_entry(entry_bytes(offset, offset // 3 + 1, shard=offset % 5))
    assert (entry.dtype, entry.shape, entry.offset, entry.size) == (1, (4, 300), offset, offset // 3 + 1)
    assert (entry.shard_id, entry.crc32c) == (offset % 5, 0x04030201)


def test_an_unknown_field_takes_the_general_path() -> None:
    buf = entry_bytes(128, 4) + b"\x88\x01\x05"  # field 17, varint 5: a newer writer's field
    entry = messages.parse_bundle_entry(buf)
    assert (entry.offset, entry.size) == (128, 4)


@pytest.mark.parametrize("cut", [1, 3, 12, 15])
def test_truncated_entries_are_wire_errors(cut: int) -> None:
    buf = entry_bytes(200, 16)
    with pytest.raises(WireError):
        messages.parse_bundle_entry(buf[:-cut])


def test_the_inline_path_agrees_with_the_general_decoder_on_every_prefix_and_byte_change() -> None:
    """Every truncation and every single-byte change of real entries decodes as the general decoder decodes it,
    or fails as cleanly: the inline path may take only entries it reads exactly right."""
    for buf in (entry_bytes(300, 16, shard=2), entry_bytes(2**20, 2**14), entry_bytes(0, 4)):
        variants = [buf[:cut] for cut in range(len(buf))]
        variants += [buf[:i] + bytes([b]) + buf[i + 1 :] for i in range(len(buf))
                     for b in (0, 0x12, 0x35, 0x7F, 0x80, 0xFF)]
        general = messages._parse_bundle_entry_fields  # noqa: SLF001 - the reference decoder
        for variant in variants:
            assert _decoded(messages.parse_bundle_entry, variant) == _decoded(general, variant), variant.hex()


def test_the_inline_path_agrees_with_the_general_decoder_on_random_entries() -> None:
    """Seeded random entries: every field present or not, varints of every width (up to negative ones),
    then up to two bytes changed and maybe a cut."""
    import random

    rng = random.Random(20261202)
    general = messages._parse_bundle_entry_fields  # noqa: SLF001 - the reference decoder
    for _ in range(5000):
        buf = b"\x08" + varint(rng.choice([1, 7, 200])) + b"\x12\x04\x12\x02\x08\x05"
        for key in (0x18, 0x20, 0x28):
            if rng.random() < 0.7:
                buf += bytes([key]) + varint(rng.choice([0, 1, 127, 128, 2**14, 2**21 - 1, 2**40, 2**62, 2**63 - 1,
                                                         2**63, 2**64 - 1]))
        buf += b"\x35" + rng.randbytes(4)
        for _ in range(rng.choice([0, 0, 1, 2])):
            at, byte = rng.randrange(len(buf)), rng.choice([0x80, 0xFF, 0x18, 0x20, 0x28, 0x35, rng.randrange(256)])
            buf = buf[:at] + bytes([byte]) + buf[at + 1 :]
        if rng.random() < 0.2:
            buf = buf[: rng.randrange(len(buf))]
        assert _decoded(messages.parse_bundle_entry, buf) == _decoded(general, buf), buf.hex()


def _decoded(parse, buf: bytes):
    try:
        return parse(buf)
    except WireError:
        return "WireError"


@pytest.mark.parametrize("enabled", [True, False])
def test_opening_leaves_the_garbage_collector_as_it_found_it(enabled: bool, tmp_path) -> None:
    """The collector is paused while an index is read, then back as it was, also when opening fails."""
    import gc
    from pathlib import Path

    import ckpttools
    from ckpttools.errors import CkptError

    sample = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn"
    (tmp_path / "model.ckpt.index").write_bytes(b"not a table at all" * 4)
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with ckpttools.open_checkpoint(sample) as ckpt:
            assert len(ckpt) > 0
        assert gc.isenabled() is enabled
        with pytest.raises(CkptError):
            ckpttools.open_checkpoint(tmp_path / "model.ckpt")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
