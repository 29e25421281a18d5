"""Averaging checkpoints: which ones, whether they agree, and the element-wise mean in bounded memory.

The mean is accumulated in float64 (complex128 for complex tensors) in the order the checkpoints are
given and divided once, exactly as ``numpy.mean(numpy.stack(values).astype(float64), axis=0)`` does,
then converted to the output dtype. Whole tensors are averaged chunk by chunk as their bytes stream
from every input, so memory is a few chunks per input, never a whole tensor; partitioned variables
are averaged one stored part at a time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from ..checkpoint import Checkpoint
from ..errors import InputMismatchError, NotFoundError
from ..formats import dtypes
from ..resolve import resolve
from ..storage import sources
from .rewrite_plan import COMPLEX_DTYPES

if TYPE_CHECKING:
    import numpy as np

_STATE_PATHS = re.compile(r'^all_model_checkpoint_paths:\s*"((?:[^"\\]|\\.)*)"', re.MULTILINE)
_STEP = re.compile(r"-(\d+)$")


def newest_checkpoints(path: str, count: int) -> list[str]:
    """The ``count`` newest checkpoint prefixes of a directory (or of the directory holding ``path``), newest first.

    The ``checkpoint`` state file's ``all_model_checkpoint_paths`` give the order when they name enough
    checkpoints (relative paths, or paths from another machine found by their file name here); otherwise
    every ``*.index`` of the directory, ordered by the step number in the name, then modification time.
    """
    if count < 2:
        raise InputMismatchError(f"--average-last {count}: average at least 2 checkpoints")
    directory = path.rstrip("/") if sources.isdir(path) else os.path.dirname(resolve(path).prefix) or "."
    found = _from_state_file(directory)
    if len(found) < count:  # tf.train.Checkpoint.save lists only the latest: look at every index
        found = _by_step(directory)
    if len(found) < count:
        raise NotFoundError(f"{directory}: --average-last {count} needs {count} checkpoints, found {len(found)}"
                            + (f" ({', '.join(os.path.basename(p) for p in found)})" if found else ""))
    return found[-count:][::-1]


def _from_state_file(directory: str) -> list[str]:
    state = f"{directory}/checkpoint"
    try:
        if not sources.isfile(state):
            return []
        text = sources.read_bytes(state).decode("utf-8", errors="replace")
    except OSError:  # unreadable (a URL that fails says so: RemoteError)
        return []
    remote = sources.is_url(directory)  # a URL's state file names paths on the machine that wrote it
    out = []
    for named in _STATE_PATHS.findall(text):
        named = named.encode().decode("unicode_escape")
        here = [] if remote and os.path.isabs(named) else \
            [named if os.path.isabs(named) else os.path.join(directory, named)]
        for candidate in (*here, os.path.join(directory, sources.file_name(named))):
            if sources.isfile(candidate + ".index"):
                out.append(candidate)
                break
    return out


def _by_step(directory: str) -> list[str]:
    prefixes = [path[: -len(".index")] for path in sources.list_files(directory) if path.endswith(".index")]

    def order(prefix: str) -> tuple[int, float]:
        match = _STEP.search(prefix)
        return (int(match.group(1)) if match else -1, sources.getmtime(prefix + ".index"))

    return sorted(prefixes, key=order)


def check_same(base: Checkpoint, others: Sequence[Checkpoint]) -> None:
    """Every averaged checkpoint must hold the same tensors, dtypes, shapes and partitioning as ``base``."""
    want = {info.key: info for info in base}
    for other in others:
        have = {info.key: info for info in other}
        for key in sorted(want.keys() | have.keys()):
            mine, theirs = want.get(key), have.get(key)
            if theirs is None:
                raise InputMismatchError(f"{other.prefix}: has no '{mine.name}', which {base.prefix} has; "
                                         "averaged checkpoints must hold the same variables")
            if mine is None:
                raise InputMismatchError(f"{other.prefix}: has '{theirs.name}', which {base.prefix} does not; "
                                         "averaged checkpoints must hold the same variables")
            if (mine.dtype, mine.shape) != (theirs.dtype, theirs.shape):
                raise InputMismatchError(
                    f"{other.prefix}: '{mine.name}' is {theirs.dtype}{list(theirs.shape)}, "
                    f"in {base.prefix} it is {mine.dtype}{list(mine.shape)}")
            if [(s.start, s.shape) for s in mine.slices] != [(s.start, s.shape) for s in theirs.slices]:
                raise InputMismatchError(f"{other.prefix}: '{mine.name}' is partitioned differently than in "
                                         f"{base.prefix}")


def mean(values: Sequence[np.ndarray], out_dtype: str, total: np.ndarray | None = None) -> np.ndarray:
    """The float64 mean of same-shaped arrays, in ``out_dtype``.

    ``total``, when given, is a float64 (complex128) buffer of the right size to accumulate in: a chunked
    caller reuses it instead of allocating one per chunk.
    """
    import numpy as np  # only when averaging: a plain rewrite starts without numpy

    complex_ = out_dtype in COMPLEX_DTYPES or np.iscomplexobj(values[0])
    accumulate = np.complex128 if complex_ else np.float64
    if total is None or total.dtype != accumulate:
        total = np.empty(values[0].shape, accumulate)
    np.copyto(total, values[0], casting="unsafe")
    for value in values[1:]:
        np.add(total, value, out=total)
    np.divide(total, len(values), out=total)
    return total.astype(dtypes.from_name(out_dtype).numpy)


def mean_chunks(streams: Sequence[Iterable[bytes]], dtype: str, out_dtype: str) -> Iterator[memoryview]:
    """The mean of the inputs' stored bytes, chunk by chunk, as output bytes (one float64 buffer, reused)."""
    import numpy as np

    source = dtypes.from_name(dtype).numpy
    buffer: np.ndarray | None = None
    for chunks in _aligned(streams, source.itemsize):
        arrays = [np.frombuffer(chunk, source) for chunk in chunks]
        if buffer is None or buffer.size < arrays[0].size:
            buffer = np.empty(arrays[0].size, np.complex128 if np.iscomplexobj(arrays[0]) or
                              out_dtype in COMPLEX_DTYPES else np.float64)
        yield memoryview(mean(arrays, out_dtype, buffer[: arrays[0].size]).reshape(-1).view(np.uint8))


def _aligned(streams: Sequence[Iterable[bytes]], itemsize: int) -> Iterator[list[bytes]]:
    """Chunks of equal length from every stream (whole elements), however each stream splits its bytes."""
    iterators = [iter(stream) for stream in streams]
    pending = [b""] * len(iterators)
    while True:
        for i, iterator in enumerate(iterators):
            if not pending[i]:
                pending[i] = next(iterator, b"")
        size = min(len(chunk) for chunk in pending)
        size -= size % itemsize
        if size == 0:
            if any(pending):  # one input ended early or split inside an element: join with its next chunk
                if all(pending) and _extend_shortest(iterators, pending):
                    continue
                raise InputMismatchError("averaged tensors have different stored sizes")
            for iterator in iterators:  # drain, so each stream verifies its checksum
                for _ in iterator:
                    raise InputMismatchError("averaged tensors have different stored sizes")
            return
        yield [chunk[:size] for chunk in pending]
        pending = [chunk[size:] for chunk in pending]


def _extend_shortest(iterators: list[Iterator[bytes]], pending: list[bytes]) -> bool:
    shortest = min(range(len(pending)), key=lambda i: len(pending[i]))
    more = next(iterators[shortest], b"")
    pending[shortest] = bytes(pending[shortest]) + bytes(more)
    return bool(more)


__all__ = ["check_same", "mean", "mean_chunks", "newest_checkpoints"]
