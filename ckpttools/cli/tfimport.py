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


def import_tfcore(quiet: bool | None = None) -> ModuleType:
    """``ckpttools.tfcore``, or MissingDependencyError (exit 6) with the install hint.

    TensorFlow's own logs (C++ messages such as grappler's "remapper failed", Python deprecation
    warnings) stay hidden unless ``ckpttools --debug`` (``quiet`` None: follow that flag).
    """
    if quiet is None:
        quiet = not _debug()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "0")  # C++ logs: none, or all
    if not quiet or "tensorflow" in sys.modules:
        from .. import tfcore
        tfcore.show_tensorflow_logs(not quiet)
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
    tfcore.show_tensorflow_logs(False)
    return tfcore


def _debug() -> bool:
    """True under ``ckpttools --debug``."""
    import click

    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("debug"))


def _restore(saved: int) -> None:
    os.dup2(saved, 2)
    os.close(saved)
