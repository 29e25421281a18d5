"""Mutators for fuzzing the readers: byte-level and structure-aware (protobuf, tables, zip, JSON).

Each mutator takes the file's bytes and a ``random.Random`` and returns a ``Mutation``: the new bytes,
the byte ranges it touched (in the original file's coordinates; an insertion or deletion touches
everything after it) and ``legit``: the tensor keys whose values the mutation changed *consistently*
(checksums recomputed), so that a different value there is what the file now says, not a silent
wrong read ("*" = any tensor). Byte-level mutations never recompute a checksum.

Zip, safetensors and state-file mutators are in fuzz_file_mutators. Structure-aware mutations reach
code that byte flips cannot: a table is rebuilt with valid block
checksums around a mutated entry, so the entry parser sees extreme field values instead of the block
checksum failing first.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from ckpttools.formats.crc import crc32c, mask
from ckpttools.formats.sstable import FOOTER_SIZE, MAGIC, Table, _block_entries, _decode_block, _read_handle

EVERYTHING = 1 << 62
INTERESTING = [0, 1, 2, 7, 0x7F, 0x80, 0xFF, 0x3FFF, 0x4000, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53,
               2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64 - 2, 2**64 - 4096]


@dataclass
class Mutation:
    data: bytes
    what: str
    touched: list[tuple[int, int]] = field(default_factory=list)
    legit: set[str] = field(default_factory=set)


# --- encoding helpers -----------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 70) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _weird_varint(rng: random.Random) -> bytes:
    """Varints a sane writer never produces: overlong, above 2^64, unterminated."""
    return rng.choice([b"\xff" * 9 + b"\x7f", b"\xff" * 10 + b"\x01", b"\x80" * 10 + b"\x00", b"\xff" * 12,
                       b"\x80" * 11 + b"\x01", b"\xff" * 9 + b"\x02", b"\xff\xff\xff\xff\x0f"])


def interesting_int(rng: random.Random) -> int:
    value = rng.choice(INTERESTING)
    if rng.random() < 0.3:
        value = min(max(0, value + rng.choice([-1, 1])), 2**64 - 1)
    return value


# --- byte level -----------------------------------------------------------------------------------------


def byte_mutation(data: bytes, rng: random.Random, donors: list[bytes] = ()) -> Mutation:
    """Flips, overwrites, truncation, insertion, deletion and splicing (from this file or a donor)."""
    n = len(data)
    if n == 0:
        return Mutation(bytes(rng.randbytes(rng.randint(1, 64))), "fill empty", [(0, EVERYTHING)])
    op = rng.randrange(9)
    pos = rng.randrange(n)
    out = bytearray(data)
    if op == 0:
        bit = 1 << rng.randrange(8)
        out[pos] ^= bit
        return Mutation(bytes(out), f"flip bit {bit:#x} at {pos}", [(pos, pos + 1)])
    if op == 1:
        out[pos] = rng.choice([0, 0xFF, 0x7F, 0x80, 0x01, rng.randrange(256)])
        return Mutation(bytes(out), f"set byte {pos}", [(pos, pos + 1)])
    if op == 2:
        width = rng.choice([1, 2, 4, 8])
        pos = rng.randrange(max(1, n - width + 1))
        value = interesting_int(rng) & ((1 << (8 * width)) - 1)
        out[pos : pos + width] = value.to_bytes(width, "little")[: n - pos]
        return Mutation(bytes(out), f"set {width}-byte int at {pos}", [(pos, pos + width)])
    if op == 3:
        cut = rng.randrange(n)
        return Mutation(data[:cut], f"truncate to {cut}", [(cut, EVERYTHING)])
    if op == 4:
        size = rng.randint(1, min(64, n))
        return Mutation(data[:pos] + data[pos + size :], f"delete {size} at {pos}", [(pos, EVERYTHING)])
    if op == 5:
        blob = rng.randbytes(rng.randint(1, 16)) if rng.random() < 0.5 else _weird_varint(rng)
        return Mutation(data[:pos] + blob + data[pos:], f"insert {len(blob)} at {pos}", [(pos, EVERYTHING)])
    if op == 6:
        size = rng.randint(1, min(256, n))
        src = rng.randrange(max(1, n - size))
        return Mutation(data[:pos] + data[src : src + size] + data[pos:], f"duplicate {size} to {pos}",
                        [(pos, EVERYTHING)])
    if op == 7 and donors:
        donor = rng.choice(donors)
        if donor:
            size = rng.randint(1, min(512, len(donor)))
            src = rng.randrange(max(1, len(donor) - size))
            out[pos : pos + size] = donor[src : src + size]
            return Mutation(bytes(out), f"splice {size} donor bytes at {pos}", [(pos, pos + size)])
    count = rng.randint(2, 8)
    for _ in range(count):
        out[rng.randrange(n)] = rng.randrange(256)
    return Mutation(bytes(out), f"{count} random bytes", [(0, EVERYTHING)])


# --- protobuf -------------------------------------------------------------------------------------------


def proto_spans(buf: bytes) -> list[tuple[int, int, int, int, int]] | None:
    """``(start, number, wire_type, payload_start, end)`` per field, or None if ``buf`` is no message."""
    spans, pos, end = [], 0, len(buf)
    try:
        while pos < end:
            start = pos
            key, pos = _rv(buf, pos)
            number, wire = key >> 3, key & 7
            if number == 0:
                return None
            if wire == 0:
                payload = pos
                _, pos = _rv(buf, pos)
            elif wire == 2:
                size, pos = _rv(buf, pos)
                payload = pos
                pos += size
            elif wire in (1, 5):
                payload = pos
                pos += 8 if wire == 1 else 4
            else:
                return None
            if pos > end:
                return None
            spans.append((start, number, wire, payload, pos))
    except IndexError:
        return None
    return spans


def _rv(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80 or shift > 63:
            return result, pos
        shift += 7


def _field(number: int, wire: int, payload: bytes) -> bytes:
    body = varint(len(payload)) + payload if wire == 2 else payload
    return varint(number << 3 | wire) + body


def _random_payload(wire: int, rng: random.Random) -> bytes:
    if wire == 0:
        return varint(interesting_int(rng)) if rng.random() < 0.8 else _weird_varint(rng)
    if wire == 1:
        return interesting_int(rng).to_bytes(8, "little", signed=False)[:8]
    if wire == 5:
        return (interesting_int(rng) & 0xFFFFFFFF).to_bytes(4, "little")
    return rng.choice([b"", rng.randbytes(rng.randint(1, 12)), varint(interesting_int(rng)),
                       _field(rng.randint(1, 8), 0, varint(interesting_int(rng)))])


def mutate_proto(buf: bytes, rng: random.Random, depth: int = 0) -> tuple[bytes, str]:
    """One structure-aware change somewhere in a message (recursing into sub-messages)."""
    spans = proto_spans(buf)
    if not spans:
        return byte_mutation(buf, rng).data, "bytes (not a message)"
    start, number, wire, payload, end = rng.choice(spans)
    head, tail = buf[:start], buf[end:]
    if wire == 2 and depth < 12 and rng.random() < 0.55:
        inner = buf[payload:end]
        if proto_spans(inner):
            new, what = mutate_proto(inner, rng, depth + 1)
            return head + _field(number, 2, new) + tail, f"{number}.{what}"
    op = rng.randrange(8)
    if op == 0 or (op == 1 and wire != 0):  # new value of the same wire type
        return head + _field(number, wire, _random_payload(wire, rng)) + tail, f"{number}=extreme"
    if op == 1:  # an over-long or >64-bit varint
        return head + varint(number << 3) + _weird_varint(rng) + tail, f"{number}=weird varint"
    if op == 2:  # the same field number with another wire type
        other = rng.choice([w for w in (0, 1, 2, 5) if w != wire])
        return head + _field(number, other, _random_payload(other, rng)) + tail, f"{number} wire {wire}->{other}"
    if op == 3 and wire == 2:  # a length prefix that lies
        size = rng.choice([0, end - payload + 1, end - payload - 1, interesting_int(rng)])
        return head + varint(number << 3 | 2) + varint(max(size, 0)) + buf[payload:end] + tail, f"{number} len lies"
    if op == 4:
        return head + tail, f"drop {number}"
    if op == 5:
        return head + buf[start:end] * rng.choice([2, 3]) + tail, f"repeat {number}"
    if op == 6:
        new_number = rng.choice([number, rng.randint(1, 20), 0, 2**29 - 1])
        new_wire = rng.choice([0, 1, 2, 5, 3, 4, 6, 7])
        payload_bytes = _random_payload(new_wire if new_wire in (0, 1, 2, 5) else 0, rng)
        return head + buf[start:end] + varint(new_number << 3 | new_wire) + payload_bytes + tail, "insert field"
    # a deep nest of sub-messages
    nest = buf[start:end]
    for _ in range(rng.choice([50, 200, 2000])):
        nest = _field(number, 2, nest)
    return head + nest + tail, f"nest {number}"


# --- tables (V2 index, V1 files) ------------------------------------------------------------------------


def read_table(data: bytes) -> list[tuple[bytes, bytes]]:
    return list(Table(data, verify=False))


def build_table(entries: list[tuple[bytes, bytes]], rng: random.Random, snappy: bool = False) -> bytes:
    """A valid table holding ``entries``: blocks of a random size, every block checksummed."""
    per_block = rng.choice([1, 3, 16, 1000])
    out = bytearray()
    index = []
    for i in range(0, max(len(entries), 1), per_block):
        chunk = entries[i : i + per_block]
        if not chunk:
            break
        handle = _append_block(out, _block(chunk), snappy)
        index.append((chunk[-1][0], handle))
    meta = _append_block(out, _block([]), False)
    index_handle = _append_block(out, _block([(k, varint(o) + varint(s)) for k, (o, s) in index]), snappy)
    footer = varint(meta[0]) + varint(meta[1]) + varint(index_handle[0]) + varint(index_handle[1])
    out += footer + b"\0" * (40 - len(footer)) + struct.pack("<Q", MAGIC)
    return bytes(out)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    out, restarts = bytearray(), []
    for key, value in entries:
        restarts.append(len(out))
        out += varint(0) + varint(len(key)) + varint(len(value)) + key + value
    restarts = restarts or [0]
    return bytes(out) + b"".join(struct.pack("<I", r) for r in restarts) + struct.pack("<I", len(restarts))


def _append_block(out: bytearray, block: bytes, snappy: bool) -> tuple[int, int]:
    offset = len(out)
    body, kind = (snappy_literals(block), 1) if snappy else (block, 0)
    out += body + bytes([kind]) + struct.pack("<I", mask(crc32c(body + bytes([kind]))))
    return offset, len(body)


def snappy_literals(data: bytes) -> bytes:
    """A valid raw snappy stream made of literals only (and one back-reference when possible)."""
    out = bytearray(varint(len(data)))
    pos = 0
    while pos < len(data):
        chunk = data[pos : pos + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
        pos += len(chunk)
    return bytes(out)


def table_blocks(data: bytes) -> list[tuple[int, int]]:
    """``(offset, size)`` of every data block and of the index block, from the footer."""
    footer = data[-FOOTER_SIZE:]
    _, pos = _read_handle(footer, 0)
    index_handle, _ = _read_handle(footer, pos)
    raw = data[index_handle[0] : index_handle[0] + index_handle[1] + 5]
    handles = [_read_handle(value, 0)[0] for _, value in _block_entries(_decode_block(raw, 0, False))]
    return handles + [index_handle]


def mutate_table(data: bytes, rng: random.Random, value_legit: bool) -> Mutation:
    """Rebuild the table with one entry's value mutated (proto-aware), or entries dropped/duplicated,
    or one block handle / compression byte changed with its checksum recomputed.

    ``value_legit``: entry values hold tensor values themselves (V1), so changing one is legitimate.
    """
    entries = read_table(data)
    if not entries:
        return byte_mutation(data, rng)
    op = rng.randrange(10)
    if op < 6:
        i = rng.randrange(len(entries))
        key, value = entries[i]
        new, what = mutate_proto(value, rng)
        entries[i] = (key, new)
        legit = {"*"} if key == b"" or value_legit else set()
        return Mutation(build_table(entries, rng, snappy=rng.random() < 0.15), f"entry {key[:40]!r}: {what}",
                        legit=legit)
    if op == 6:
        i = rng.randrange(len(entries))
        del entries[i]
        return Mutation(build_table(entries, rng), "drop an entry")
    if op == 7:
        i = rng.randrange(len(entries))
        entries.insert(i, entries[i])
        return Mutation(build_table(entries, rng), "duplicate an entry")
    if op == 8:
        rebuilt = build_table(entries, rng, snappy=True)
        mutation = _corrupt_snappy_block(rebuilt, rng)
        mutation.legit = {"*"} if value_legit else set()
        return mutation
    return _mutate_handle(build_table(entries, rng), rng)


def _corrupt_snappy_block(data: bytes, rng: random.Random) -> Mutation:
    """Mutate the snappy stream of one block and recompute the block's checksum."""
    offset, size = rng.choice(table_blocks(data))
    body = bytearray(data[offset : offset + size])
    if body:
        for _ in range(rng.randint(1, 3)):
            body[rng.randrange(len(body))] = rng.randrange(256)
    new = bytes(body) + b"\x01"
    out = data[:offset] + new + struct.pack("<I", mask(crc32c(new))) + data[offset + size + 5 :]
    return Mutation(out, "snappy stream corrupted, crc fixed", [(offset, offset + size)])


def _mutate_handle(data: bytes, rng: random.Random) -> Mutation:
    """Point one index-block handle elsewhere (index block re-checksummed)."""
    footer = data[-FOOTER_SIZE:]
    _, pos = _read_handle(footer, 0)
    (io, isz), _ = _read_handle(footer, pos)
    raw = data[io : io + isz + 5]
    items = list(_block_entries(_decode_block(raw, io, False)))
    if not items:
        return byte_mutation(data, rng)
    i = rng.randrange(len(items))
    (off, size), _ = _read_handle(items[i][1], 0)
    if rng.random() < 0.5:
        off = interesting_int(rng) if rng.random() < 0.5 else max(0, off + rng.randint(-8, 8))
    else:
        size = interesting_int(rng) if rng.random() < 0.5 else max(0, size + rng.randint(-8, 8))
    items[i] = (items[i][0], varint(off) + varint(size))
    block = _block(items)
    body = block + b"\x00"
    index = body + struct.pack("<I", mask(crc32c(body)))
    start = len(data) - FOOTER_SIZE
    new_footer = footer[:pos] + varint(start) + varint(len(block))
    new_footer += b"\0" * (40 - len(new_footer)) + struct.pack("<Q", MAGIC)
    return Mutation(data[:start] + index + new_footer, "block handle changed")
