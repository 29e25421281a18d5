"""Reader for ``.safetensors`` files (https://github.com/huggingface/safetensors#format).

Layout: an 8-byte little-endian header length N, N bytes of JSON mapping each
tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
relative to the end of the header; optional ``"__metadata__"``), then the
raw little-endian tensor bytes.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from ..errors import CorruptFileError, NotFoundError
from ..info import TensorInfo
from ..storage import sources
from . import dtypes
from .messages import MAX_ELEMENTS

if TYPE_CHECKING:
    import numpy as np

# safetensors dtype code -> TensorFlow-style name
_NAMES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8",
    "U64": "uint64", "U32": "uint32", "U16": "uint16", "U8": "uint8", "BOOL": "bool",
    "F8_E5M2": "float8_e5m2", "F8_E4M3": "float8_e4m3fn",
}  # fmt: skip


class _DtypeTable(Mapping):
    """code -> (TensorFlow-style name, numpy dtype), resolved on use: importing ml_dtypes (bfloat16,
    float8) takes longer than extracting a small checkpoint, so only tensors of those types pay for it."""

    def __getitem__(self, code: str) -> tuple[str, np.dtype]:
        name = _NAMES[code]
        return name, dtypes.from_name(name).numpy

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)


DTYPES: Mapping[str, tuple[str, np.dtype]] = _DtypeTable()
CODE_FOR_NAME = {name: code for code, name in _NAMES.items()}
MAX_HEADER = 100 * 1024 * 1024  # the format's own limit


def read_header(path: str) -> tuple[dict, int]:
    """Parse the JSON header; return it and the offset where tensor data starts."""
    try:
        with sources.open_source(path) as f:
            head = f.read_at(0, 8)
            if len(head) < 8:
                raise CorruptFileError(f"{path}: too short for a safetensors header")
            (length,) = struct.unpack("<Q", head)
            if length > MAX_HEADER:
                raise CorruptFileError(f"{path}: safetensors header claims {length} bytes")
            raw = f.read_at(8, length)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    if len(raw) != length:
        raise CorruptFileError(f"{path}: truncated safetensors header")
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise CorruptFileError(f"{path}: safetensors header is not JSON ({reason})") from None
    if not isinstance(header, dict):
        raise CorruptFileError(f"{path}: safetensors header is not a JSON object")
    return header, 8 + length


def _naturals(values: object) -> tuple[int, ...]:
    """A JSON list of non-negative integers (shape dims, offsets); ValueError for anything else."""
    if not isinstance(values, list) or not all(type(v) is int and v >= 0 for v in values):
        raise ValueError(f"expected a list of non-negative integers, got {str(values)[:60]}")
    return tuple(values)


class SafetensorsReader:
    """Lists a safetensors file from its header; reads tensors by seeking."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data_files = [path]
        self._options = sources.current_options()
        header, self._start = read_header(path)
        self.metadata = header.pop("__metadata__", None) or {}
        self._entries: dict[str, tuple[np.dtype, tuple[int, ...], int, int]] = {}
        size = sources.getsize(path) - self._start
        self.tensors = []
        for name, entry in header.items():
            try:
                tf_name, dtype = DTYPES[entry["dtype"]]
                shape = _naturals(entry["shape"])
                begin, end = _naturals(entry["data_offsets"])
            except (KeyError, TypeError, ValueError) as exc:
                raise CorruptFileError(f"{path}: bad header entry for '{name}' ({exc!r})") from None
            nbytes = math.prod(shape) * dtype.itemsize
            if end - begin != nbytes or end > size or math.prod(d for d in shape if d) > MAX_ELEMENTS:
                raise CorruptFileError(f"{path}: '{name}' offsets {begin}..{end} do not fit its shape or the file")
            self._entries[name] = (dtype, shape, begin, end)
            self.tensors.append(TensorInfo(name, name, tf_name, shape, nbytes))

    def read(self, name: str) -> np.ndarray:
        if name not in self._entries:
            raise NotFoundError(f"{self.path}: no tensor '{name}'")
        dtype, shape, begin, end = self._entries[name]
        buf = bytearray(end - begin)
        with sources.open_source(self.path, self._options) as f:
            if f.readinto_at(self._start + begin, memoryview(buf)) != len(buf):
                raise CorruptFileError(f"{self.path}: file too short for '{name}'")
        import numpy as np  # only when values are read

        return np.frombuffer(buf, dtype=dtype).reshape(shape)

    def close(self) -> None:
        pass
