"""crc32c as TensorFlow stores it (``tsl/lib/hash/crc32c.h``).

TensorFlow "masks" stored checksums so that a crc of data that itself holds
crcs does not degenerate: ``mask(c) = rotr(c, 15) + 0xa282ead8``.
"""

from __future__ import annotations

import google_crc32c

_MASK_DELTA = 0xA282EAD8


_CHUNK = 1 << 22


def crc32c(data: bytes | bytearray | memoryview, initial: int = 0) -> int:
    """Return the crc32c of ``data``, continuing from ``initial``.

    google_crc32c takes only ``bytes``; mutable buffers are fed through in
    4 MiB copies so memory stays bounded whatever the tensor size.
    """
    if isinstance(data, bytes):
        return google_crc32c.extend(initial, data)
    view = memoryview(data).cast("B")
    crc = initial
    for start in range(0, len(view), _CHUNK):
        crc = google_crc32c.extend(crc, bytes(view[start : start + _CHUNK]))
    return crc


def mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask(masked: int) -> int:
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF
