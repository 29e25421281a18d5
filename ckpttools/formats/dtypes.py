"""TensorFlow's ``DataType`` enum (``tensorflow/core/framework/types.proto``) as numpy dtypes.

Names are TensorFlow's own (``tf.float32.name`` == ``"float32"``), so what we
print matches what TensorFlow prints. bfloat16 and the float8 types come from
``ml_dtypes``, the package TensorFlow and JAX themselves use for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np


@dataclass(frozen=True)
class DType:
    """One TensorFlow dtype: its enum value, name and numpy storage type."""

    enum: int
    name: str
    numpy: np.dtype | None  # None: not stored as a fixed-size array (string)

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize if self.numpy is not None else 0

    @property
    def is_string(self) -> bool:
        return self.enum == STRING


STRING = 7

_TABLE = [
    (1, "float32", np.float32),
    (2, "float64", np.float64),
    (3, "int32", np.int32),
    (4, "uint8", np.uint8),
    (5, "int16", np.int16),
    (6, "int8", np.int8),
    (7, "string", None),
    (8, "complex64", np.complex64),
    (9, "int64", np.int64),
    (10, "bool", np.bool_),
    (11, "qint8", np.int8),
    (12, "quint8", np.uint8),
    (13, "qint32", np.int32),
    (14, "bfloat16", ml_dtypes.bfloat16),
    (15, "qint16", np.int16),
    (16, "quint16", np.uint16),
    (17, "uint16", np.uint16),
    (18, "complex128", np.complex128),
    (19, "float16", np.float16),
    (22, "uint32", np.uint32),
    (23, "uint64", np.uint64),
    (24, "float8_e5m2", ml_dtypes.float8_e5m2),
    (25, "float8_e4m3fn", ml_dtypes.float8_e4m3fn),
    (26, "float8_e4m3fnuz", ml_dtypes.float8_e4m3fnuz),
    (27, "float8_e4m3b11fnuz", ml_dtypes.float8_e4m3b11fnuz),
    (28, "float8_e5m2fnuz", ml_dtypes.float8_e5m2fnuz),
]

_BY_ENUM = {
    enum: DType(enum, name, None if kind is None else np.dtype(kind)) for enum, name, kind in _TABLE
}
_UNSUPPORTED = {
    0: "invalid", 20: "resource", 21: "variant", 29: "int4", 30: "uint4",
    31: "int2", 32: "uint2", 33: "float4_e2m1fn",
}


def from_enum(enum: int) -> DType:
    """Return the dtype for a ``DataType`` value.

    Unknown or unsupported values give a DType without numpy storage whose
    name says what it is, so listing still works; reading its values fails.
    """
    dtype = _BY_ENUM.get(enum)
    if dtype is not None:
        return dtype
    return DType(enum, _UNSUPPORTED.get(enum, f"dtype_{enum}"), None)


def is_readable(dtype: DType) -> bool:
    """True when we can decode this dtype's values."""
    return dtype.numpy is not None or dtype.is_string
