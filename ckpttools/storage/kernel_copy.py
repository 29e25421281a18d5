"""Copy a byte range from one local file to another inside the kernel, checksumming it on a thread meanwhile.

Copying through Python costs two copies per byte (the read into a buffer, the write out of it) and a
buffer's page faults; ``copy_file_range`` moves page-cache pages from file to file without either, at
``cp`` speed. The checksum still needs the bytes: a thread reads them (one copy) and hashes them
while the kernel copies, so the two overlap on two cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from ..formats.crc import crc32c

CRC_CHUNK = 4 << 20  # bytes read per crc32c call (google_crc32c releases the GIL on bytes of 1 MiB and more)
COPY_STEP = 64 << 20  # bytes per copy_file_range call: progress and Ctrl-C are seen between steps


def copy_with_crc32c(src: int, offset: int, size: int, dst: int, progress: Callable[[int], None]) -> int:
    """Append ``size`` bytes at ``offset`` of file descriptor ``src`` to ``dst`` (at its position); return
    their crc32c (unmasked), computed on a thread from the source while the kernel copies.

    Raises OSError when either file fails, and EOFError when ``src`` ends before ``size`` bytes.
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
        _copy(src, offset, size, dst, progress)
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


def _copy(src: int, offset: int, size: int, dst: int, progress: Callable[[int], None]) -> None:
    """copy_file_range where the kernel and the file systems allow it, else read and write."""
    copy_range = getattr(os, "copy_file_range", None)  # Linux only
    end = offset + size
    while offset < end:
        step = min(COPY_STEP, end - offset)
        done = 0
        if copy_range is not None:
            try:
                done = copy_range(src, dst, step, offset)
            except OSError:  # e.g. EXDEV (older kernels across file systems), EINVAL, ENOSYS: copy by hand
                copy_range = None
        if copy_range is None:
            done = _read_write(src, offset, step, dst)
        if not done:
            raise EOFError(f"file ends at byte {offset}, before byte {end}")
        offset += done
        progress(done)


def _read_write(src: int, offset: int, size: int, dst: int) -> int:
    done = 0
    while done < size:
        chunk = os.pread(src, min(CRC_CHUNK, size - done), offset + done)
        if not chunk:
            break
        write_all(dst, chunk)
        done += len(chunk)
    return done


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to descriptor ``fd`` (``os.write`` may write less than it is given)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]
