"""Summary statistics of tensor values, computed in bounded extra memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float: the dtypes min/max/mean make sense for
_CHUNK = 1 << 20  # elements per step: temporaries stay ~8 MB whatever the tensor


@dataclass(frozen=True)
class TensorStats:
    """min/max/mean/std over finite values, and how many values are NaN or infinite."""

    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    nan: int
    inf: int


def tensor_stats(array: np.ndarray) -> TensorStats | None:
    """Statistics of a numeric array, or None for strings (bytes, unicode, objects), complex numbers
    and other non-numeric dtypes: they have no min or mean.

    Example:
        >>> tensor_stats(np.array([1.0, np.nan, 3.0])).mean
        2.0
    """
    if array.dtype.kind not in NUMERIC_KINDS:
        return None
    flat = array.reshape(-1)
    count = nan = inf = 0
    mean = m2 = 0.0  # running mean and sum of squared deviations (Chan et al. merge)
    low, high = np.inf, -np.inf
    for start in range(0, flat.size, _CHUNK):
        chunk = flat[start : start + _CHUNK].astype(np.float64)
        finite = np.isfinite(chunk)
        nan += int(np.isnan(chunk).sum())
        inf += int(np.isinf(chunk).sum())
        values = chunk[finite]
        if values.size:
            chunk_mean = float(values.mean())
            chunk_m2 = float(np.square(values - chunk_mean).sum())
            merged = count + values.size
            delta = chunk_mean - mean
            mean += delta * values.size / merged
            m2 += chunk_m2 + delta * delta * count * values.size / merged
            count = merged
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    if count == 0:
        return TensorStats(None, None, None, None, nan, inf)
    return TensorStats(low, high, mean, (m2 / count) ** 0.5, nan, inf)
