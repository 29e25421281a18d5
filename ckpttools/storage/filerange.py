"""A read-only, seekable file object over a byte range of another file.

Lets a library that takes file objects (h5py) read a member stored uncompressed inside
an archive (a ``.keras`` zip) in place: no copy to disk, no read of the whole member.
"""

from __future__ import annotations

import io
import os


class FileRange(io.RawIOBase):
    """Bytes ``[start, start + length)`` of ``path``, seen as a file of their own."""

    def __init__(self, path: str, start: int, length: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._start = start
        self._length = length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._length}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self._length - self._pos))
        if wanted == 0:
            return 0
        self._file.seek(self._start + self._pos)
        got = self._file.readinto(view[:wanted])
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()
