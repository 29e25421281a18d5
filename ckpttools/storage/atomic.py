"""Write outputs atomically: a temporary file beside the target, renamed when complete.

An interrupted or failed write leaves nothing behind, and an existing file is
never replaced unless the caller says ``force``. A process killed outright
(``kill -9``, power loss) cannot clean up, so temporary files are named after
the output and the writing process (``.OUT.ckpttools-partial-<host>-<pid>``): the
next write of the same output on the same host removes those whose process is
gone (another host's files are never touched: its pids mean nothing here).
"""

from __future__ import annotations

import errno
import os
import re
import socket
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
    remove_stale_partials(path)
    check_writable(path, force)
    tmp = _create_partial(path)
    try:
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


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


PARTIAL_TAG = ".ckpttools-partial-"
HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"  # safe in a file name


def partial_path(path: str, attempt: int = 0) -> str:
    """The temporary file name for writing ``path`` from this process: ``DIR/.NAME.ckpttools-partial-HOST-PID``.

    The pid in the name lets a later run tell a live writer's file from one a killed
    process left behind; ``attempt`` > 0 adds ``-N`` for a second file of the same process.
    """
    directory, name = os.path.split(os.path.abspath(path))
    suffix = f"-{attempt}" if attempt else ""
    return os.path.join(directory, f".{name}{PARTIAL_TAG}{HOST}-{os.getpid()}{suffix}")


def remove_stale_partials(path: str) -> list[str]:
    """Remove the temporary files of writes of ``path`` whose process (on this host) no longer runs;
    return their paths.

    Files of live processes (another write in progress, or this process) and of other hosts are kept.
    Files that cannot be removed are skipped: clean-up never fails a write.
    """
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(re.escape(f".{name}{PARTIAL_TAG}{HOST}-") + r"(\d+)(?:-\d+)?")
    try:
        entries = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for entry in sorted(entries):
        match = pattern.fullmatch(entry)
        if match is None or _process_alive(int(match.group(1))):
            continue
        stale = os.path.join(directory, entry)
        try:
            os.remove(stale)
        except OSError:
            continue
        removed.append(stale)
    return removed


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine); a reused pid counts as alive, erring on the safe side."""
    if pid == os.getpid() or os.name != "posix":  # (on Windows, os.kill would terminate the process)
        return True
    try:
        os.kill(pid, 0)
    except PermissionError:
        return True  # exists, owned by another user
    except (OSError, OverflowError, ValueError):
        return False  # ProcessLookupError, or not a pid at all
    return True


def _create_partial(path: str) -> str:
    """Create this process's temporary file for ``path`` (exclusively, with the usual permissions)."""
    directory = os.path.dirname(os.path.abspath(path))
    for attempt in range(1000):
        tmp = partial_path(path, attempt)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any output
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{path}: cannot create a file in {directory} ({exc.strerror})") from None
        os.close(fd)
        return tmp
    raise OutputError(f"{path}: cannot create a temporary file in {directory} (too many left by this process)")
