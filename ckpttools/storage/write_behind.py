"""A seekable output file whose writes are made on a thread, in order, while the caller goes on.

zipfile computes each member's CRC-32 and then writes its bytes, both on the caller's thread: for a 1 GB
npz, half a second of CRC and as much again of copying into the page cache, one after the other. Under a
``WriteBehind`` the caller computes the CRC of the next chunk while a writer thread stores the last one.

Each write is positioned (``os.pwrite`` at the offset the file position had), so ``tell`` and ``seek``
never wait. At most ``limit`` bytes are queued; a larger write waits for those and is made at once
(queued, it would keep a whole tensor alive next to the caller's next one). Read-only buffers are queued
as they are, other ones copied first (small): nothing can change queued bytes. An error of the writer
thread is raised by the next call, and ``close`` (which the caller must reach) waits for the last write.
"""

from __future__ import annotations

import os
import threading
from collections import deque

LIMIT = 4 << 20


class WriteBehind:
    """``write``/``tell``/``seek``/``flush``/``close`` on descriptor ``fd`` (which stays open), writes on a thread."""

    def __init__(self, fd: int, limit: int = LIMIT) -> None:
        self._fd = fd
        self._limit = limit
        self._pos = self._end = 0
        self._jobs: deque[tuple[int, bytes | memoryview]] = deque()
        self._queued = 0
        self._error: BaseException | None = None
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="ckpttools-write", daemon=True)
        self._thread.start()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        if size > self._limit:
            self.flush()
            write_at(self._fd, view, self._pos)
        elif size:
            if not view.readonly:
                view = memoryview(bytes(view))
            with self._changed:
                while self._queued and self._queued + size > self._limit and self._error is None:
                    self._changed.wait()
                self._raise()
                self._jobs.append((self._pos, view))
                self._queued += size
                self._changed.notify_all()
        self._pos += size
        self._end = max(self._end, self._pos)
        return size

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def seekable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        """Wait until every queued write is made (raising the writer thread's error, if any)."""
        with self._changed:
            while self._jobs and self._error is None:
                self._changed.wait()
            self._raise()

    def close(self) -> None:
        """Make the queued writes (raising any error) and stop the thread."""
        try:
            self.flush()
        finally:
            with self._changed:
                self._closing = True
                self._changed.notify_all()
            self._thread.join()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
            return
        with self._changed:  # failing anyway (the output is discarded): drop what is queued, keep that error
            self._jobs.clear()
            self._closing = True
            self._changed.notify_all()
        self._thread.join()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._jobs and not self._closing:
                    self._changed.wait()
                if not self._jobs:
                    return
                offset, view = self._jobs[0]
            try:
                write_at(self._fd, view, offset)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                with self._changed:
                    self._error = exc
                    self._jobs.clear()
                    self._queued = 0
                    self._changed.notify_all()
                return
            with self._changed:
                self._jobs.popleft()
                self._queued -= len(view)
                self._changed.notify_all()


def write_at(fd: int, data: bytes | memoryview, offset: int) -> None:
    """All of ``data`` at ``offset`` (``os.pwrite`` may write less than asked)."""
    view = memoryview(data)
    while view:
        done = os.pwrite(fd, view, offset)
        view, offset = view[done:], offset + done
