"""What the reader reports about a tensor: small frozen dataclasses, no I/O."""

from __future__ import annotations

import math
from typing import NamedTuple

# Roles: why a tensor is in the checkpoint. Only "model" counts as parameters.
MODEL = "model"
OPTIMIZER = "optimizer"  # optimizer slots and hyper-parameter variables
TRAINING = "training"  # global_step, save_counter, moving-average shadows
METADATA = "metadata"  # the TF2 object graph itself
DUPLICATE = "duplicate"  # a second saved copy of a model variable (Keras 3 exports save each one twice)


class SliceInfo(NamedTuple):
    """One stored part of a partitioned variable."""

    start: tuple[int, ...]
    shape: tuple[int, ...]
    shard: int | None  # data shard holding it (None for V1 files)
    nbytes: int

    @property
    def stop(self) -> tuple[int, ...]:
        return tuple(s + n for s, n in zip(self.start, self.shape))


class TensorInfo(NamedTuple):
    """A variable as stored: its names, dtype, shape and where it lives.

    ``key`` is the name TensorFlow's ``CheckpointReader`` uses; ``name`` is what
    we show (for TF2 checkpoints, the readable object path). A named tuple, so
    immutable and cheap to build: opening a checkpoint builds one per tensor
    (20,000 and more); ``info._replace(name=...)`` gives a changed copy.
    """

    name: str
    key: str
    dtype: str
    shape: tuple[int, ...]
    nbytes: int
    role: str = MODEL
    slot_of: str | None = None  # the variable an optimizer slot belongs to
    slot_name: str | None = None
    original_name: str | None = None  # TF2: the variable's own name (full_name)
    shards: tuple[int, ...] = ()
    slices: tuple[SliceInfo, ...] = ()

    @property
    def size(self) -> int:
        """Number of elements (parameters)."""
        return math.prod(self.shape)

    @property
    def partitioned(self) -> bool:
        return bool(self.slices)
