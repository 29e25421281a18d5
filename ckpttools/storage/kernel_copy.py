"""Append a byte range of one local file to another inside the kernel, checksumming it on a thread meanwhile.

Copying through Python costs two copies per byte (the read into a buffer, the write out of it) plus
fresh buffers' page faults; ``filecopy.copy_range`` has the kernel move page-cache pages from file to
file instead, at ``cp`` speed. The checksum still needs the bytes: a thread reads them (one copy) and
hashes them while the kernel copies, so the two overlap on two cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ..formats.crc import crc32c
from .filecopy import copy_range

CRC_CHUNK = 4 << 20  # bytes read per crc32c call (google_crc32c releases the GIL on bytes of 1 MiB and more)
COPY_STEP = 64 << 20  # bytes copied between progress calls (and chances to see Ctrl-C)


def copy_with_crc32c(src: int, offset: int, size: int, dst: int, progress: Callable[[int], None]) -> int:
    """Append ``size`` bytes at ``offset`` of descriptor ``src`` to ``dst`` at its position (which then
    follows them); return their crc32c (unmasked), computed on a thread from the source during the copy.

    Raises EOFError when ``src`` ends before ``size`` bytes, OSError when a file fails (ENOSPC...).
    """
    if size <= CRC_CHUNK:  # a thread costs more than it saves here: one read, one write
        data = os.pread(src, size, offset)
        if len(data) < size:
            raise EOFError(f"file ends at byte {offset + len(data)}, before byte {offset + size}")
        write_all(dst, data)
        progress(size)
        return crc32c(data)
    result: dict[str, object] = {}

    def checksum() -> None:
        try:
            result["crc"] = _crc32c_of_range(src, offset, size)
        except BaseException as exc:  # handed to the caller below
            result["error"] = exc

    worker = threading.Thread(target=checksum, name="ckpttools-crc32c", daemon=True)
    worker.start()
    try:
        start = os.lseek(dst, 0, os.SEEK_CUR)
        for done in range(0, size, COPY_STEP):
            step = min(COPY_STEP, size - done)
            copy_range(src, offset + done, dst, start + done, step)
            progress(step)
        os.lseek(dst, start + size, os.SEEK_SET)
    finally:
        worker.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["crc"]  # type: ignore[return-value]


def _crc32c_of_range(fd: int, offset: int, size: int) -> int:
    crc = 0
    end = offset + size
    while offset < end:
        chunk = os.pread(fd, min(CRC_CHUNK, end - offset), offset)
        if not chunk:
            raise EOFError(f"file ends at byte {offset}, before byte {end}")
        crc = crc32c(chunk, crc)
        offset += len(chunk)
    return crc


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to descriptor ``fd`` at its position (``os.write`` may write less than given)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]
