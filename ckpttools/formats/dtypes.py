"""TensorFlow's ``DataType`` enum (``tensorflow/core/framework/types.proto``) as numpy dtypes.

Names are TensorFlow's own (``tf.float32.name`` == ``"float32"``), so what we
print matches what TensorFlow prints. bfloat16 and the float8 types come from
``ml_dtypes``, the package TensorFlow and JAX themselves use for them.
"""

from __future__ import annotations

from functools import cache
from typing import NamedTuple


class DType(NamedTuple):
    """One TensorFlow dtype: its enum value, name, element size and numpy storage type.

    The numpy type is resolved on first use so that listing a checkpoint never
    imports numpy or ml_dtypes (importing them costs more than reading an index).
    """

    enum: int
    name: str
    itemsize: int  # 0: not a fixed-size element (string) or not decodable
    storage: str | None  # "numpy:float32" / "ml_dtypes:bfloat16"; None for strings and unsupported types

    @property
    def numpy(self):  # -> numpy.dtype | None
        return None if self.storage is None else _numpy_dtype(self.storage)

    @property
    def is_string(self) -> bool:
        return self.enum == STRING


STRING = 7

_TABLE = [
    (1, "float32", 4, "numpy:float32"),
    (2, "float64", 8, "numpy:float64"),
    (3, "int32", 4, "numpy:int32"),
    (4, "uint8", 1, "numpy:uint8"),
    (5, "int16", 2, "numpy:int16"),
    (6, "int8", 1, "numpy:int8"),
    (7, "string", 0, None),
    (8, "complex64", 8, "numpy:complex64"),
    (9, "int64", 8, "numpy:int64"),
    (10, "bool", 1, "numpy:bool_"),
    (11, "qint8", 1, "numpy:int8"),
    (12, "quint8", 1, "numpy:uint8"),
    (13, "qint32", 4, "numpy:int32"),
    (14, "bfloat16", 2, "ml_dtypes:bfloat16"),
    (15, "qint16", 2, "numpy:int16"),
    (16, "quint16", 2, "numpy:uint16"),
    (17, "uint16", 2, "numpy:uint16"),
    (18, "complex128", 16, "numpy:complex128"),
    (19, "float16", 2, "numpy:float16"),
    (22, "uint32", 4, "numpy:uint32"),
    (23, "uint64", 8, "numpy:uint64"),
    (24, "float8_e5m2", 1, "ml_dtypes:float8_e5m2"),
    (25, "float8_e4m3fn", 1, "ml_dtypes:float8_e4m3fn"),
    (26, "float8_e4m3fnuz", 1, "ml_dtypes:float8_e4m3fnuz"),
    (27, "float8_e4m3b11fnuz", 1, "ml_dtypes:float8_e4m3b11fnuz"),
    (28, "float8_e5m2fnuz", 1, "ml_dtypes:float8_e5m2fnuz"),
    (29, "int4", 1, "ml_dtypes:int4"),  # sub-byte types: TensorFlow stores one element per byte
    (30, "uint4", 1, "ml_dtypes:uint4"),
    (31, "int2", 1, "ml_dtypes:int2"),
    (32, "uint2", 1, "ml_dtypes:uint2"),
    (33, "float4_e2m1fn", 1, "ml_dtypes:float4_e2m1fn"),
]

_BY_ENUM = {enum: DType(enum, name, size, storage) for enum, name, size, storage in _TABLE}
_UNSUPPORTED = {0: "invalid", 20: "resource", 21: "variant"}


@cache
def _numpy_dtype(storage: str):  # -> numpy.dtype
    import importlib

    import numpy as np

    module, attr = storage.split(":")
    return np.dtype(getattr(importlib.import_module(module), attr))


def from_enum(enum: int) -> DType:
    """Return the dtype for a ``DataType`` value.

    Unknown or unsupported values give a DType without numpy storage whose
    name says what it is, so listing still works; reading its values fails.
    """
    dtype = _BY_ENUM.get(enum)
    if dtype is not None:
        return dtype
    return DType(enum, _UNSUPPORTED.get(enum, f"dtype_{enum}"), 0, None)


class _Names(dict):
    """enum -> dtype name; a plain dict lookup for the known enums, ``from_enum``'s name for the others."""

    def __missing__(self, enum: int) -> str:
        return from_enum(enum).name


NAMES: dict[int, str] = _Names({enum: dtype.name for enum, dtype in _BY_ENUM.items()})


def from_name(name: str) -> DType:
    """The dtype with TensorFlow name ``name`` (``"float32"``); KeyError for unknown names."""
    return _BY_NAME[name]


_BY_NAME = {dtype.name: dtype for dtype in _BY_ENUM.values()}


def is_readable(dtype: DType) -> bool:
    """True when we can decode this dtype's values."""
    return dtype.storage is not None or dtype.is_string


def from_numpy(np_dtype) -> DType | None:
    """The TensorFlow dtype a numpy (or ml_dtypes) array is stored as, or None.

    Where several TensorFlow dtypes share a numpy type (``int8``/``qint8``), the
    plain one wins; the quantized ones are only chosen by name.
    """
    import numpy as np

    key = np.dtype(np_dtype).newbyteorder("=")
    for dtype in _BY_ENUM.values():
        if dtype.storage is not None and not dtype.name.startswith("q") and dtype.numpy == key:
            return dtype
    return None
