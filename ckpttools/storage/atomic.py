"""Write outputs atomically: a temporary file beside the target, renamed when complete.

An interrupted or failed write leaves nothing behind, and an existing file is
never replaced unless the caller says ``force``.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import OutputError


def check_writable(path: str, force: bool) -> None:
    """Fail early, before any work, when ``path`` cannot or must not be written."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory; give a file name")
    if os.path.exists(path) and not force:
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    if not os.path.isdir(directory):
        raise OutputError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: directory {directory} is not writable")


@contextmanager
def atomic_path(path: str, force: bool = False) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path``.

    Example:
        >>> with atomic_path("weights.npz") as tmp:
        ...     numpy.savez(tmp, w=w)
    """
    check_writable(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".partial")
    except OSError as exc:
        raise OutputError(f"{path}: cannot create a file in {directory} ({exc.strerror})") from None
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; outputs get the usual permissions
        yield tmp
        if os.path.exists(path) and not force:  # appeared while we worked
            raise OutputError(f"{path}: already exists (use --force to overwrite)")
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        if exc.errno == errno.ENOSPC:
            raise OutputError(f"{path}: disk full while writing; nothing was written") from None
        raise OutputError(f"{path}: write failed ({exc.strerror or exc}); nothing was written") from None
    except BaseException:
        _remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
