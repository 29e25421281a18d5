"""Import ``ckpttools.tfcore`` for a command, keeping TensorFlow's start-up chatter off the terminal.

TensorFlow logs to file descriptor 2 before its logging is configured (oneDNN and CUDA notices), so
quieting it needs the descriptor itself redirected while it loads; if the import fails, what it said
is shown after all.
"""

from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType


def import_tfcore(quiet: bool = True) -> ModuleType:
    """``ckpttools.tfcore``, or MissingDependencyError (exit 6) with the install hint."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ logs after start-up: errors only
    if not quiet or "tensorflow" in sys.modules:
        from .. import tfcore
        return tfcore
    with tempfile.TemporaryFile() as captured:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            from .. import tfcore
        except BaseException:
            _restore(saved)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        _restore(saved)
    return tfcore


def _restore(saved: int) -> None:
    os.dup2(saved, 2)
    os.close(saved)
