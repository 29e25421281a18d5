"""Build numpy arrays from decoded tensor bytes.

Kept apart from the index parsers so that listing a checkpoint never imports
numpy: the readers import this module only when a value is read.
"""

from __future__ import annotations

import numpy as np

from .dtypes import DType


def buffer(nbytes: int) -> np.ndarray:
    """An uninitialised, writable byte buffer (unlike ``bytearray(n)``, not zero-filled first)."""
    return np.empty(nbytes, dtype=np.uint8)


def empty(shape: tuple[int, ...], dtype: DType) -> np.ndarray:
    """An uninitialised array to assemble a partitioned tensor into."""
    return np.empty(shape, dtype=object if dtype.is_string else dtype.numpy)


def from_buffer(raw: np.ndarray, dtype: DType, shape: tuple[int, ...], big_endian: bool) -> np.ndarray:
    """View the stored bytes as an array (writable: ``raw`` is ours), in native byte order."""
    array = raw.view(dtype.numpy).reshape(shape)
    return array.byteswap() if big_endian else array


def strings(items: list[bytes], shape: tuple[int, ...]) -> np.ndarray:
    """An object array of bytes, the way TensorFlow's reader returns string tensors."""
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out.reshape(shape)
