"""Checks that the slices of a partitioned tensor tile it exactly: in bounds, no overlap, no gap.

Both V2 bundles and V1 checkpoints assemble a partitioned variable into an uninitialised array;
slice extents from a corrupt index could leave part of it unwritten (returned as garbage), write
outside it, or claim a shape far larger than the stored bytes. The readers check here first.
"""

from __future__ import annotations

import math

from .messages import FULL_EXTENT


class SliceError(ValueError):
    """The slices do not describe a valid partition of the tensor."""


class SlicesMissing(SliceError):
    """The slices are valid but cover less than the tensor: the rest may be in files not opened."""


def slice_region(shape: tuple[int, ...], extents: list[tuple[int, int]]) -> tuple[tuple[slice, ...], tuple[int, ...]]:
    """The numpy index and the shape of one slice; SliceError when it lies outside ``shape``."""
    if len(extents) != len(shape):
        raise SliceError(f"slice has {len(extents)} dimensions, the tensor {len(shape)}")
    index, sizes = [], []
    for (start, length), dim in zip(extents, shape):
        if length == FULL_EXTENT and start == 0:
            stop = dim
        elif length < 0 or start < 0 or start + length > dim:
            raise SliceError(f"extent start={start} length={length} lies outside dimension {dim}")
        else:
            stop = start + length
        index.append(slice(start, stop))
        sizes.append(stop - start)
    return tuple(index), tuple(sizes)


def check_tiling(shape: tuple[int, ...], regions: list[tuple[slice, ...]]) -> None:
    """SliceError unless ``regions`` (from slice_region) cover ``shape`` exactly once.

    Marks a boolean mask of the tensor's shape: callers bound the element count by the stored
    bytes before calling, so the mask is never larger than the tensor being read.
    """
    import numpy as np

    covered = sum(math.prod(r.stop - r.start for r in region) for region in regions)
    if covered < math.prod(shape):
        raise SlicesMissing("slices do not add up to the tensor's size")
    if covered > math.prod(shape):
        raise SliceError("slices do not add up to the tensor's size")
    mask = np.zeros(shape, dtype=bool)
    for region in regions:
        if mask[region].any():
            raise SliceError("slices overlap")
        mask[region] = True
    if not mask.all():
        raise SliceError("slices leave part of the tensor uncovered")
