"""Summary statistics of tensor values, computed in bounded extra memory.

A tensor whose stored bytes are its array (V2, whole, native order) is summarised while it streams
from its shard, chunk by chunk, so a progress bar can advance by bytes inside a big tensor and memory
stays at a chunk; any other tensor is read whole first. Many tensors are read in storage order, runs of
them as one stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..checkpoint import Checkpoint
from ..errors import UnsupportedError
from ..formats import dtypes
from ..info import TensorInfo

NON_NUMERIC_KINDS = "SUOcMm"  # bytes, unicode, objects, complex, datetimes: no min or mean (bfloat16 is "V")
_CHUNK = 1 << 20  # elements per step: temporaries stay ~8 MB whatever the tensor

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TensorStats:
    """min/max/mean/std over finite values, and how many values are NaN or infinite."""

    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    inf: int


class _Running:
    """Running min, max, mean and variance (Chan et al. merge) over chunks of values."""

    def __init__(self) -> None:
        self.count = self.nan = self.inf = 0
        self.mean = self.m2 = 0.0
        self.low, self.high = np.inf, -np.inf

    def add(self, flat: np.ndarray) -> None:
        for start in range(0, flat.size, _CHUNK):
            chunk = flat[start : start + _CHUNK].astype(np.float64)
            finite = np.isfinite(chunk)
            self.nan += int(np.isnan(chunk).sum())
            self.inf += int(np.isinf(chunk).sum())
            values = chunk[finite]
            if not values.size:
                continue
            chunk_mean = float(values.mean())
            chunk_m2 = float(np.square(values - chunk_mean).sum())
            merged = self.count + values.size
            delta = chunk_mean - self.mean
            self.mean += delta * values.size / merged
            self.m2 += chunk_m2 + delta * delta * self.count * values.size / merged
            self.count = merged
            self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def result(self) -> TensorStats:
        if self.count == 0:
            return TensorStats(None, None, None, None, self.nan, self.inf)
        return TensorStats(self.low, self.high, self.mean, (self.m2 / self.count) ** 0.5, self.nan, self.inf)


def tensor_stats(array: np.ndarray) -> TensorStats | None:
    """Statistics of a numeric array, or None for strings (bytes, unicode, objects), complex numbers
    and other non-numeric dtypes: they have no min or mean.

    Example:
        >>> tensor_stats(np.array([1.0, np.nan, 3.0])).mean
        2.0
    """
    if array.dtype.kind in NON_NUMERIC_KINDS or array.dtype.fields is not None:
        return None
    running = _Running()
    running.add(array.reshape(-1))
    return running.result()


def chunk_stats(chunks: Iterable[bytes | memoryview], dtype: np.dtype,
                progress: Progress | None = None) -> TensorStats:
    """Statistics of a tensor given as its raw bytes in chunks (an element may straddle two chunks).

    The values are summed in the same ``_CHUNK``-element steps as ``tensor_stats`` of the whole array,
    whatever sizes the chunks come in (a local file and a URL deliver different ones), so the mean and
    std are the same to the last bit wherever the tensor is read from.
    """
    running = _Running()
    step = _CHUNK * dtype.itemsize
    pending = bytearray()
    for chunk in chunks:
        data = memoryview(chunk).cast("B")
        if progress:
            progress(len(data))
        if pending:
            take = min(step - len(pending), len(data))
            pending += data[:take]
            data = data[take:]
            if len(pending) < step:
                continue
            running.add(np.frombuffer(bytes(pending), dtype=dtype))
            pending.clear()
        whole = len(data) - len(data) % step
        if whole:
            running.add(np.frombuffer(data[:whole], dtype=dtype))
        pending += data[whole:]
    if len(pending) >= dtype.itemsize:
        running.add(np.frombuffer(bytes(pending), dtype=dtype, count=len(pending) // dtype.itemsize))
    return running.result()


def variable_stats(ckpt: Checkpoint, info: TensorInfo, progress: Progress | None = None) -> TensorStats | None:
    """Statistics of one variable, streamed from its shard where possible; ``progress`` gets bytes read."""
    dtype = _streamed_dtype(info)
    return _stats(ckpt, info, ckpt.stream(info.name) if dtype is not None else None, dtype, progress)


def variables_stats(ckpt: Checkpoint, infos: Iterable[TensorInfo], progress: Progress | None = None
                    ) -> dict[str, TensorStats | None]:
    """Statistics of each variable by name, None for a dtype the reader cannot decode. Read in storage order,
    runs of tensors stored together streamed as one (``Checkpoint.streams``: one pipeline of requests for a
    URL instead of a round trip per tensor)."""
    ordered = ckpt.in_storage_order(infos)
    dtypes_of = [_streamed_dtype(info) for info in ordered]
    streams = ckpt.streams(None if dtype is None else info.name for info, dtype in zip(ordered, dtypes_of))
    found: dict[str, TensorStats | None] = {}
    for info, dtype, (_, stream) in zip(ordered, dtypes_of, streams):
        try:
            found[info.name] = _stats(ckpt, info, stream, dtype, progress)
        except UnsupportedError:  # listed, but its dtype cannot be decoded: no stats, keep going
            found[info.name] = None
            if progress:
                progress(info.nbytes)
    return found


def _streamed_dtype(info: TensorInfo) -> np.dtype | None:
    """The numpy dtype to summarise ``info``'s stored bytes as, when they can be (not complex, not strings)."""
    try:
        dtype = dtypes.from_name(info.dtype).numpy
    except KeyError:  # a dtype the reader cannot decode: get() says so
        return None
    return dtype if dtype is not None and dtype.kind != "c" and dtype.itemsize else None


def _stats(ckpt: Checkpoint, info: TensorInfo, stream: Iterable[bytes] | None, dtype: np.dtype | None,
           progress: Progress | None) -> TensorStats | None:
    if stream is not None:
        return chunk_stats(stream, dtype, progress)
    found = tensor_stats(ckpt.get(info.name))
    if progress:
        progress(info.nbytes)
    return found
