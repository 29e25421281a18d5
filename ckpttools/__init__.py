"""ckpttools: look inside TensorFlow checkpoints and carry their weights into new models.

Reading never imports TensorFlow. Start with ``open_checkpoint``.
"""

from __future__ import annotations

from .checkpoint import Checkpoint, open_checkpoint
from .errors import CkptError
from .info import SliceInfo, TensorInfo

__version__ = "0.1.0"

__all__ = ["Checkpoint", "CkptError", "SliceInfo", "TensorInfo", "__version__", "open_checkpoint"]
