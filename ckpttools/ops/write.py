"""``write_checkpoint``: any mapping of names to numpy arrays as a TensorFlow V2 checkpoint.

So weights from npz, safetensors, PyTorch or JAX become a checkpoint TensorFlow restores,
without TensorFlow. Tensors are written one at a time as they come (a generator keeps
memory near the largest tensor); nothing is in place until every file is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..formats.bundle_writer import BundleWriter
from ..formats.state_file import update_state_file


def write_checkpoint(prefix: str, tensors: Mapping[str, Any] | Iterable[tuple[str, Any]], *, num_shards: int = 1,
                     max_shard_bytes: int | None = None, force: bool = False, state_file: bool = True) -> list[str]:
    """Write ``tensors`` (name -> array, or ``(name, array)`` pairs) as the V2 checkpoint ``prefix``.

    Arrays keep their dtype (numpy, or ml_dtypes' bfloat16/float8/int4); bytes, str and object
    arrays become string tensors. ``num_shards`` spreads tensors over that many data files,
    balanced by size; ``max_shard_bytes`` instead starts a new data file when one would grow
    past it (a tensor larger than the limit gets a data file of its own). An existing
    checkpoint at ``prefix`` is kept (OutputError) unless ``force``. ``state_file`` makes
    ``prefix`` the newest checkpoint of its directory's ``checkpoint`` file (a relative path).
    Returns the paths written: data files, index, then the state file.

    Example:
        >>> import numpy as np, ckpttools
        >>> ckpttools.write_checkpoint("out/model.ckpt-1", {"dense/kernel": np.ones((3, 4), np.float32)})
        ['out/model.ckpt-1.data-00000-of-00001', 'out/model.ckpt-1.index', 'out/checkpoint']
    """
    items = tensors.items() if isinstance(tensors, Mapping) else tensors
    with BundleWriter(prefix, num_shards=num_shards, max_shard_bytes=max_shard_bytes, force=force) as writer:
        for name, value in items:
            writer.add(name, value)
    paths = writer.finished_paths
    if state_file:
        paths.append(update_state_file(prefix))
    return paths
