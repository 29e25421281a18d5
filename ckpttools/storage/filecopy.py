"""Copy a byte range from one file to another inside the kernel.

A rewrite, or an extract to ``.safetensors``, moves most of a checkpoint unchanged. Read-then-write
pulls every byte into the process and pushes it back; ``copy_file_range`` (Linux, macOS has none)
moves the page-cache pages in the kernel, which on the machines we measured took a fifth of the
system time of ``read``/``write`` (bench/bench_rewrite.py). Where the kernel or file system
refuses it (another file system, an old kernel, a FUSE mount), ``sendfile`` and then plain
``pread``/``pwrite`` in bounded chunks do the same job. The bytes are never seen here: callers check
their crc32c apart (``crcscan.verified``).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from ..errors import MissingDataError

_CHUNK = 8 << 20  # the fallback's buffer; also the most one call is asked to move
_UNSUPPORTED = {errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM,
                errno.ETXTBSY, errno.EBADF, errno.ENOTSOCK}
_broken: set[str] = set()  # methods the kernel refused in this process: not tried again


class SourceTooShort(EOFError):
    """The source file ended before the range did."""

    def __init__(self, copied: int) -> None:
        super().__init__(f"source ended after {copied} bytes")
        self.copied = copied


def copy_range(src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, size: int,
               progress: Callable[[int], None] | None = None) -> None:
    """Copy ``size`` bytes at ``src_offset`` of ``src_fd`` to ``dst_offset`` of ``dst_fd``.

    Neither file position is used or moved. ``progress`` hears of the bytes as each bounded step
    lands (so a bar moves, and Ctrl-C is seen, inside a big range). Raises SourceTooShort when the
    source ends first, OSError for a failed write (ENOSPC...).
    """
    done = 0
    while done < size:
        n = _copy_some(src_fd, src_offset + done, dst_fd, dst_offset + done, min(size - done, _CHUNK))
        if n == 0:
            raise SourceTooShort(done)
        done += n
        if progress is not None:
            progress(n)


def _copy_some(src_fd: int, src_offset: int, dst_fd: int, dst_offset: int, size: int) -> int:
    if "copy_file_range" not in _broken and hasattr(os, "copy_file_range"):
        try:
            return os.copy_file_range(src_fd, dst_fd, size, src_offset, dst_offset)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            _broken.add("copy_file_range")
    if "sendfile" not in _broken and hasattr(os, "sendfile"):
        try:
            os.lseek(dst_fd, dst_offset, os.SEEK_SET)  # sendfile writes at the output's position
            return os.sendfile(dst_fd, src_fd, src_offset, size)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            _broken.add("sendfile")
    data = os.pread(src_fd, size, src_offset)
    written = 0
    while written < len(data):
        written += os.pwrite(dst_fd, data[written:] if written else data, dst_offset + written)
    return len(data)


class SourceFiles:
    """The files copied from, each opened once (read-only) and all closed together."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def fd(self, path: str, what: str = "data file") -> int:
        """The descriptor of ``path``; MissingDataError naming ``what`` it is when it cannot be opened."""
        fd = self._fds.get(path)
        if fd is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                raise MissingDataError(f"{path}: cannot read {what} ({exc.strerror})") from None
            self._fds[path] = fd
        return fd

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> SourceFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to descriptor ``fd`` at its position (``os.write`` may write less than given)."""
    view = memoryview(data).cast("B")
    while view:
        view = view[os.write(fd, view) :]


__all__ = ["SourceFiles", "SourceTooShort", "copy_range", "write_all"]
