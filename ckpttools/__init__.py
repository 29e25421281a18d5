"""ckpttools: look inside TensorFlow checkpoints and carry their weights into new models.

Reading never imports TensorFlow. Start with ``open_checkpoint``.
"""

from __future__ import annotations

from .checkpoint import Checkpoint, open_checkpoint
from .errors import CkptError
from .info import SliceInfo, TensorInfo

__version__ = "0.1.0"

__all__ = ["Checkpoint", "CkptError", "SliceInfo", "TensorInfo", "__version__", "extract", "open_checkpoint",
           "warm_start", "write_checkpoint", "write_weights"]


def __getattr__(name: str):
    """``extract``/``write_weights``/``write_checkpoint`` (numpy) and ``warm_start`` (TensorFlow) load on first use."""
    if name in ("extract", "write_weights"):
        from .ops import extract as weights

        return getattr(weights, name)
    if name == "write_checkpoint":
        from .ops.write import write_checkpoint

        return write_checkpoint
    if name == "warm_start":
        from .tfcore.warm_start import warm_start

        return warm_start
    raise AttributeError(f"module 'ckpttools' has no attribute '{name}'")
