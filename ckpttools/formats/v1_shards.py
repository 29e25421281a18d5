"""How V1 checkpoints name their shards: ``PREFIX-00001-of-00003`` (no numpy here: path resolution uses it)."""

from __future__ import annotations

import re

_SHARD = re.compile(r"-(\d{5})-of-(\d{5})$")


def shard_of(path: str) -> tuple[int, int, str] | None:
    """``(index, count, pattern of them all)`` for a file named as one of several shards of a V1 checkpoint
    (``model.ckpt-7-00001-of-00003``: ``(1, 3, "model.ckpt-7-?????-of-00003")``); None otherwise."""
    match = _SHARD.search(path)
    if match is None or int(match.group(2)) < 2:
        return None
    return int(match.group(1)), int(match.group(2)), f"{path[:match.start()]}-?????-of-{match.group(2)}"
