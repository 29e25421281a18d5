"""The one interface every format reader reads files through (local files and URLs alike)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class ByteSource(Protocol):
    """What every reader needs from a file: its name and size, and bytes by range."""

    name: str

    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, size: int) -> bytes: ...

    def readinto_at(self, offset: int, buffer: memoryview) -> int: ...

    def iter_chunks(self, offset: int, size: int, chunk_size: int) -> Iterator[bytes | memoryview]: ...

    def read_all(self) -> bytes: ...

    def close(self) -> None: ...
