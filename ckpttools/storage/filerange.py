"""A read-only, seekable file object over a byte source, or over a byte range of one.

Lets libraries that take file objects read through the byte-source layer: ``zipfile`` on a remote
``.npz`` or ``.keras``, and h5py on a Keras weights member stored uncompressed inside a ``.keras`` zip,
read in place (no copy to disk, no read of the whole member), locally or at a URL.
"""

from __future__ import annotations

import io

from .byte_source import ByteSource


class SourceFile(io.RawIOBase):
    """Bytes ``[start, start + length)`` of ``source`` (all of it by default), seen as a file of their own.

    Closing it closes the source.
    """

    def __init__(self, source: ByteSource, start: int = 0, length: int | None = None) -> None:
        super().__init__()
        self.source = source
        self.name = source.name
        self._start = start
        self._length = source.size - start if length is None else length
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        if base + offset < 0:
            raise OSError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:  # type: ignore[override]  # any writable buffer
        view = memoryview(buffer).cast("B")
        wanted = max(0, min(len(view), self._length - self._pos))
        if wanted == 0:
            return 0
        got = self.source.readinto_at(self._start + self._pos, view[:wanted])
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self.source.close()
        super().close()
