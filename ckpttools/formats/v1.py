"""Reader for V1 checkpoints (TF 0.x / early 1.x ``model.ckpt-1000``, no ``.index``).

From ``tensorflow/core/util/tensor_slice_writer.cc`` and
``saved_tensor_slice.proto``: each file (one, or ``PREFIX-00000-of-00002``
shards) is a table (see ``sstable``) whose values are ``SavedTensorSlices``:

* key ``""`` -> ``meta``: for every tensor its name, shape, dtype and the
  slices this file holds;
* key ``EncodeTensorNameSlice(name, slice)`` -> ``data``: one slice, its values
  in a ``TensorProto``'s typed repeated fields (``float_val``, ``int64_val``...).

A whole variable is stored as one slice with full extents. Values have no
checksum of their own; the table's block checksums cover them.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import CorruptFileError, MissingDataError, NotFoundError, UnsupportedError
from ..info import SliceInfo, TensorInfo
from . import dtypes, messages
from .ordered_code import slice_key
from .protowire import FIXED32, FIXED64, LENGTH, VARINT, WireError, as_int64, packed_varints
from .slices import SliceError, SlicesMissing, check_tiling, slice_region
from .sstable import Table, TableError
from .v1_shards import shard_of

# TensorProto typed-value fields: field number -> how values are stored.
_FLOAT, _DOUBLE, _INT, _STRING, _SCOMPLEX, _INT64, _BOOL, _DCOMPLEX, _HALF = 5, 6, 7, 8, 9, 10, 11, 12, 13
_UINT32, _UINT64 = 16, 17
_FIELD_FOR_DTYPE = {
    "float32": _FLOAT, "float64": _DOUBLE, "complex64": _SCOMPLEX, "complex128": _DCOMPLEX,
    "int32": _INT, "int16": _INT, "int8": _INT, "uint8": _INT, "uint16": _INT,
    "qint8": _INT, "quint8": _INT, "qint16": _INT, "quint16": _INT, "qint32": _INT,
    "int64": _INT64, "bool": _BOOL, "float16": _HALF, "bfloat16": _HALF,
    "uint32": _UINT32, "uint64": _UINT64, "string": _STRING,
}


class V1Reader:
    """Reads a V1 checkpoint (one file or several shards) lazily."""

    def __init__(self, files: list[str]) -> None:
        self.files = files
        self._tables: list[Table] = []
        self._metas: dict[str, tuple[int, messages.SliceMeta]] = {}  # name -> (file index, meta)
        try:
            for index, path in enumerate(files):
                self._load(index, path)
        except Exception:
            self.close()
            raise
        self.tensors = [self._info(name) for name in sorted(self._metas)]

    @property
    def data_files(self) -> list[str]:
        return list(self.files)

    def _load(self, index: int, path: str) -> None:
        try:
            table = Table(path)
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        except TableError as exc:
            raise CorruptFileError(f"{path}: not a readable V1 checkpoint ({exc})") from None
        self._tables.append(table)
        try:
            header = table.get(b"")
            meta = messages.parse_saved_tensor_slices(header)[0] if header is not None else None
        except (TableError, WireError) as exc:
            raise CorruptFileError(f"{path}: corrupt V1 checkpoint metadata ({exc})") from None
        if meta is None:
            raise CorruptFileError(f"{path}: table has no V1 checkpoint metadata entry")
        for tensor in meta:
            if tensor.name in self._metas:
                known = self._metas[tensor.name][1]
                known.slices.extend(tensor.slices)  # slices of one variable spread over shards
            else:
                self._metas[tensor.name] = (index, tensor)

    def _info(self, name: str) -> TensorInfo:
        _, meta = self._metas[name]
        dtype = dtypes.from_enum(meta.dtype)
        itemsize = dtype.itemsize
        nbytes = math.prod(meta.shape) * itemsize
        slices: tuple[SliceInfo, ...] = ()
        if len(meta.slices) > 1:
            slices = tuple(
                SliceInfo(tuple(s for s, _ in ext), _extent_shape(ext, meta.shape), None,
                          math.prod(_extent_shape(ext, meta.shape)) * itemsize)
                for ext in meta.slices
            )
        return TensorInfo(name, name, dtype.name, meta.shape, nbytes, slices=slices)

    def read(self, name: str) -> np.ndarray:
        """Return the value of tensor ``name``, reassembling its slices."""
        if name not in self._metas:
            raise NotFoundError(f"{self.files[0]}: no tensor '{name}'")
        _, meta = self._metas[name]
        dtype = dtypes.from_enum(meta.dtype)
        if not dtypes.is_readable(dtype) or dtype.name not in _FIELD_FOR_DTYPE:
            raise UnsupportedError(f"{self.files[0]}: '{name}' has dtype {dtype.name}, which ckpttools cannot decode")
        count = math.prod(meta.shape)
        if count > self._max_elements:
            raise CorruptFileError(f"{self.files[0]}: '{name}' claims {count} elements, more than its files can hold")
        try:
            regions = [slice_region(meta.shape, extents) for extents in meta.slices]
            check_tiling(meta.shape, [index for index, _ in regions])
        except SliceError as exc:
            lone = shard_of(self.files[0]) if len(self.files) == 1 else None
            if lone and isinstance(exc, SlicesMissing):
                raise MissingDataError(f"{self.files[0]}: '{name}' is partitioned across the shards of this V1 "
                                       f"checkpoint, and this file (shard {lone[0] + 1} of {lone[1]}) holds only "
                                       f"part of it; open them all: {lone[2]} (or their directory)") from None
            raise CorruptFileError(f"{self.files[0]}: the slices of '{name}' are invalid ({exc})") from None
        numpy_dtype = object if dtype.is_string else dtype.numpy
        full = np.empty(meta.shape, dtype=numpy_dtype)
        for extents, (index, shape) in zip(meta.slices, regions):
            full[index] = self._read_slice(name, extents, dtype, shape)
        return full

    def read_slice(self, name: str, number: int) -> np.ndarray:
        """The value of the ``number``-th stored slice of partitioned tensor ``name``."""
        if name not in self._metas or number >= len(self._metas[name][1].slices):
            raise NotFoundError(f"{self.files[0]}: no slice {number} of '{name}'")
        meta = self._metas[name][1]
        dtype = dtypes.from_enum(meta.dtype)
        if not dtypes.is_readable(dtype) or dtype.name not in _FIELD_FOR_DTYPE:
            raise UnsupportedError(f"{self.files[0]}: '{name}' has dtype {dtype.name}, which ckpttools cannot decode")
        extents = meta.slices[number]
        return self._read_slice(name, extents, dtype, _extent_shape(extents, meta.shape))

    @property
    def _max_elements(self) -> int:
        """An upper bound on the elements the files can hold: each takes at least one byte of a
        TensorProto, and a snappy-compressed block expands at most ~22 times."""
        return 22 * sum(table.size for table in self._tables)

    def _read_slice(self, name: str, extents: list, dtype: dtypes.DType, shape: tuple) -> np.ndarray:
        key = slice_key(name, extents)
        home = self._metas[name][0]
        for table in [self._tables[home]] + self._tables[:home] + self._tables[home + 1 :]:
            try:
                value = table.get(key)
            except TableError as exc:
                raise CorruptFileError(f"{self.files[0]}: corrupt data block for '{name}' ({exc})") from None
            if value is not None:
                break
        else:
            raise CorruptFileError(f"{self.files[0]}: slice {extents} of '{name}' is listed but not stored")
        try:
            saved = messages.parse_saved_tensor_slices(value)[1]
            values = messages.parse_tensor_values(saved.tensor if saved else b"")
            array = _decode_values(values, dtype)
        except (WireError, ValueError) as exc:
            raise CorruptFileError(f"{self.files[0]}: corrupt values for '{name}' ({exc})") from None
        count = int(np.prod(shape, dtype=np.int64))
        if array.size != count:
            raise CorruptFileError(
                f"{self.files[0]}: '{name}' holds {array.size} values, shape {list(shape)} needs {count}"
            )
        return array.reshape(shape)

    def close(self) -> None:
        for table in self._tables:
            table.close()


def _extent_shape(extents: list[tuple[int, int]], full: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(n if n >= 0 else size for (_, n), size in zip(extents, full))


def _decode_values(values: messages.TensorValues, dtype: dtypes.DType) -> np.ndarray:
    """Turn a TensorProto's typed fields (or tensor_content) into a flat array."""
    if values.content and not dtype.is_string:
        return np.frombuffer(values.content, dtype=dtype.numpy).copy()
    items = values.by_field.get(_FIELD_FOR_DTYPE[dtype.name], [])
    if dtype.is_string:
        if any(wire_type != LENGTH for wire_type, _ in items):
            raise WireError("a string value is not length-delimited")
        return np.array([bytes(v) for _, v in items] or [], dtype=object)
    if dtype.name in ("float32", "complex64"):
        return _fixed(items, "<f4", FIXED32).view(dtype.numpy)
    if dtype.name in ("float64", "complex128"):
        return _fixed(items, "<f8", FIXED64).view(dtype.numpy)
    if any(wire_type not in (VARINT, LENGTH) for wire_type, _ in items):
        raise WireError(f"{dtype.name} values are not varints")
    ints = [i for _, v in items for i in packed_varints(v)]
    if dtype.name in ("float16", "bfloat16"):  # half_val holds the 16-bit patterns
        if any(i > 0xFFFF for i in ints):
            raise WireError(f"a {dtype.name} value does not fit 16 bits")
        return np.array(ints, dtype=np.uint16).view(dtype.numpy)
    if dtype.name in ("uint32", "uint64", "bool"):
        return np.array(ints, dtype=np.uint64).astype(dtype.numpy)
    return np.array([as_int64(i) for i in ints], dtype=np.int64).astype(dtype.numpy)


def _fixed(items: list, fmt: str, wire_type: int) -> np.ndarray:
    """Concatenate packed (bytes) or unpacked (int bits) fixed-width values."""
    parts = []
    width = 4 if wire_type == FIXED32 else 8
    for item_type, value in items:
        if item_type == LENGTH and len(value) % width == 0:
            parts.append(bytes(value))
        elif item_type == wire_type:
            parts.append(int(value).to_bytes(width, "little"))
        else:
            raise WireError(f"a {fmt} value has wire type {item_type}")
    return np.frombuffer(b"".join(parts), dtype=fmt)
