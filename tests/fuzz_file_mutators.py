"""Structure-aware mutators for the non-table files: zip/npy (npz), safetensors JSON, `checkpoint` state files.

Same contract as fuzz_mutators: each returns a ``Mutation`` with the bytes, what changed, and the
tensors whose values the change legitimately alters.
"""

from __future__ import annotations

import json
import random
import re
import zlib

from fuzz_mutators import Mutation, byte_mutation, interesting_int

# --- zip / npy ------------------------------------------------------------------------------------------

_ZIP_FIELDS = {  # signature -> [(offset, width)] of numeric header fields
    b"PK\x03\x04": [(4, 2), (6, 2), (8, 2), (14, 4), (18, 4), (22, 4), (26, 2), (28, 2)],
    b"PK\x01\x02": [(6, 2), (8, 2), (10, 2), (16, 4), (20, 4), (24, 4), (28, 2), (30, 2), (32, 2), (42, 4)],
    b"PK\x05\x06": [(8, 2), (10, 2), (12, 4), (16, 4), (20, 2)],
    b"PK\x06\x06": [(24, 8), (32, 8), (40, 8), (48, 8)],
    b"PK\x06\x07": [(8, 8)],
}


def mutate_zip_header(data: bytes, rng: random.Random) -> Mutation:
    """Set one numeric field of a local, central or end-of-directory record (method, flags, sizes...)."""
    spots = [(m.start(), sig) for sig in _ZIP_FIELDS for m in re.finditer(re.escape(sig), data)]
    if not spots:
        return byte_mutation(data, rng)
    start, sig = rng.choice(spots)
    offset, width = rng.choice(_ZIP_FIELDS[sig])
    pos = start + offset
    if pos + width > len(data):
        return byte_mutation(data, rng)
    choices = [0, 1, 8, 12, 14, 93, 99, 0xFFFF, (1 << (8 * width)) - 1, interesting_int(rng)]
    value = rng.choice(choices) & ((1 << (8 * width)) - 1)
    out = data[:pos] + value.to_bytes(width, "little") + data[pos + width :]
    return Mutation(out, f"zip field {sig[2:]!r}+{offset}={value:#x}", [(pos, pos + width)])


def mutate_npy_member(data: bytes, rng: random.Random) -> Mutation:
    """Rewrite one member's .npy header (shape, dtype, order, length), keeping the zip itself valid."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(data)) as src:
        infos = src.infolist()
        members = [(info, src.read(info)) for info in infos]
    i = rng.randrange(len(members))
    info, body = members[i]
    body = _mutate_npy(body, rng)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for j, (other, member_body) in enumerate(members):
            dst.writestr(other, body if j == i else member_body, compress_type=other.compress_type)
    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
    return Mutation(out.getvalue(), f"npy header of {name}", legit={name})


def _mutate_npy(body: bytes, rng: random.Random) -> bytes:
    if len(body) < 10 or not body.startswith(b"\x93NUMPY"):
        return byte_mutation(body, rng).data
    major = body[6]
    hlen_size = 2 if major == 1 else 4
    hlen = int.from_bytes(body[8 : 8 + hlen_size], "little")
    header = body[8 + hlen_size : 8 + hlen_size + hlen].decode("latin1")
    data = body[8 + hlen_size + hlen :]
    op = rng.randrange(6)
    if op == 0:
        dims = tuple(rng.choice([0, 1, 3, -1, 2**31, 2**62, 2**63 - 1, 10**30]) for _ in range(rng.randint(0, 4)))
        header = re.sub(r"'shape': \([^)]*\)", f"'shape': {dims!r}", header)
    elif op == 1:
        descr = rng.choice(["'|O'", "'<U4'", "'|V8'", "'>f4'", "'<f8'", "'|S0'", "[('a', '<f4')]", "'<i4'",
                            "'bogus'", "'<M8[s]'", "'|b1'", "'<c16'", "'S18446744073709551615'"])
        header = re.sub(r"'descr': ('[^']*'|\[.*?\])", f"'descr': {descr}", header)
    elif op == 2:
        header = header.replace("False", "True")
    elif op == 3:
        header = rng.choice(["{}", "[1, 2]", "{'descr': '<f4'}", "((((((((((((((((((((" * 50, "__import__('os')",
                             "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"])
    elif op == 4:
        hlen = interesting_int(rng) & ((1 << (8 * hlen_size)) - 1)
        return body[:8] + hlen.to_bytes(hlen_size, "little") + body[8 + hlen_size :]
    else:
        return body[:6] + bytes([rng.choice([0, 1, 2, 3, 9]), 0]) + body[8:]
    encoded = header.encode("latin1")
    return body[:8] + len(encoded).to_bytes(hlen_size, "little") + encoded + data


# --- safetensors ----------------------------------------------------------------------------------------


def mutate_safetensors_header(data: bytes, rng: random.Random) -> Mutation:
    """Rewrite the JSON header: extreme shapes and offsets, bad types, deep nesting, lying length."""
    length = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + length])
    except ValueError:
        return byte_mutation(data, rng)
    names = [n for n in header if n != "__metadata__"]
    rest = data[8 + length :]
    if rng.random() < 0.1:
        bogus = rng.choice([2**64 - 1, 2**63, len(data), length + 1, 0, 7])
        return Mutation(bogus.to_bytes(8, "little") + data[8:], "header length lies", legit={"*"})
    extreme = [2**31, 2**53, 2**63, 2**64, -1, 1.5, "7", None, True, [], {}, 10**40]
    text = None
    name = rng.choice(names) if names else "x"
    entry = header.get(name) if isinstance(header.get(name), dict) else {}
    op = rng.randrange(8)
    if op == 0 and isinstance(entry.get("shape"), list):
        shape = list(entry["shape"]) or [1]
        shape[rng.randrange(len(shape))] = rng.choice(extreme)
        entry["shape"] = shape
    elif op == 1 and isinstance(entry.get("data_offsets"), list):
        offsets = list(entry["data_offsets"])
        offsets[rng.randrange(len(offsets))] = rng.choice(extreme + [0, len(rest), len(rest) + 1])
        entry["data_offsets"] = offsets
    elif op == 2:
        entry["dtype"] = rng.choice(["F128", "Q8", "", 3, None, "BOOL", "F64", "I8"])
    elif op == 3:
        header[name] = rng.choice([[], "x", 3, None, {"dtype": "F32"}, {}])
    elif op == 4:
        depth = rng.choice([100, 1000, 100000])
        text = "{" + json.dumps(name) + ":" + "[" * depth + "]" * depth + "}"
    elif op == 5:
        header["__metadata__"] = rng.choice([[1], {"a": {"b": 1}}, "x", None, {"format": "pt"}])
    elif op == 6:
        text = json.dumps(header).replace("[", "[" + rng.choice(["1e400", "-0", "1.0e2", "NaN", "Infinity"]) + ",", 1)
    else:
        del header[name]
        if rng.random() < 0.5:
            header[name + "x"] = entry
    encoded = (text if text is not None else json.dumps(header)).encode()
    out = len(encoded).to_bytes(8, "little") + encoded + rest
    return Mutation(out, f"header op {op} on {name[:30]!r}", legit={"*"} if op in (4, 6) else {name})


# --- checkpoint state files -----------------------------------------------------------------------------


def mutate_state(data: bytes, rng: random.Random) -> Mutation:
    """Text-level damage to a ``checkpoint`` state file, including the blank-line flood."""
    op = rng.randrange(6)
    if op == 0:
        return Mutation(b"\n" * 100_000 + data, "100,000 blank lines first")
    if op == 1:
        return Mutation(data.replace(b'"', b'"' + rng.choice([b"\\x", b"\\377\\377", b"\\u12", b"\\", b"\\\\"]), 1),
                        "escape inside the path")
    if op == 2:
        return Mutation(b"model_checkpoint_path: \"" + b"a" * 100_000, "long unterminated line")
    if op == 3:
        return Mutation(b" \t" * 50_000 + b"model_checkpoint_path: \"x\"\n", "whitespace flood")
    if op == 4:
        return Mutation(data + zlib.compress(data), "binary tail")
    return byte_mutation(data, rng)
