"""Read ahead on a thread, so reading and writing a large copy overlap.

Reading a shard (file read + crc32c) and writing an archive (zip crc32 + file write) each release the
GIL, so a reader thread a few chunks ahead keeps both cores busy. The queue is bounded, so memory stays
at ``depth`` chunks; an error in the reader reaches the consumer where the failing chunk would have been.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()
WORTH_A_THREAD = 8 << 20  # bytes: a stream this small is a chunk or so, and a thread for it costs more than it saves


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """Yield ``items`` in order while a thread produces up to ``depth`` of them ahead.

    Example:
        >>> list(prefetch(iter(range(5))))
        [0, 1, 2, 3, 4]
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(ready, item, stop):
                    return
            _put(ready, _DONE, stop)
        except BaseException as exc:  # handed over to the consumer, raised there
            _put(ready, _Failure(exc), stop)

    worker = threading.Thread(target=produce, name="ckpttools-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:  # finished, failed or abandoned (Ctrl-C, a write error): let the reader go
        stop.set()
        worker.join()


def read_ahead(items: Iterable[T], nbytes: int) -> Iterator[T]:
    """``prefetch(items)`` for a stream of more than ``WORTH_A_THREAD`` bytes, the items as they come otherwise
    (a checkpoint of 20,000 small tensors would start 20,000 threads)."""
    return prefetch(items) if nbytes > WORTH_A_THREAD else iter(items)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(ready: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Put ``item`` once there is room; False if the consumer has gone."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


__all__ = ["WORTH_A_THREAD", "prefetch", "read_ahead"]
