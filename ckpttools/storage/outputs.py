"""Checkpoint outputs on disk: checks before writing, temporary names, and what a killed writer left.

A checkpoint is several files (data shards, index, state file), so it cannot be one atomic
rename like ``atomic.atomic_path``. Writers put each file under a hidden temporary name beside
the output, in ``atomic``'s convention: ``.BASENAME.PART.ckpttools-partial-HOST-PID-RANDOM``, and
rename them all when complete. The host and pid in the name let a later writer tell a stale
temporary (its process is gone) from one still being written, and remove it.
"""

from __future__ import annotations

import errno
import glob
import os
import re

from ..errors import OutputError
from .atomic import HOST, PARTIAL_TAG, _process_alive, _remove

_PARTIAL = re.compile(
    r"\.(?:data-\d{5}|index)" + re.escape(PARTIAL_TAG) + r"(?P<host>[A-Za-z0-9_-]+)-(?P<pid>\d+)-[0-9a-f]+")


def new_tag() -> str:
    """This writer's part of its temporary names: host, pid and a random suffix."""
    return f"{HOST}-{os.getpid()}-{os.urandom(3).hex()}"  # (secrets would load OpenSSL for the same bytes)


def partial_path(prefix: str, part: str, tag: str) -> str:
    """The temporary name of one file (``part``: ``data-00003``, ``index``) of the checkpoint ``prefix``."""
    directory, base = os.path.split(os.path.abspath(prefix))
    return os.path.join(directory, f".{base}.{part}{PARTIAL_TAG}{tag}")


def existing_data_files(prefix: str) -> list[str]:
    """The ``PREFIX.data-KKKKK-of-NNNNN`` files present, whatever their shard count."""
    return glob.glob(glob.escape(prefix) + ".data-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]")


def check_output_prefix(prefix: str, force: bool) -> None:
    """Fail before any work when the checkpoint ``prefix`` cannot or must not be written."""
    directory = os.path.dirname(os.path.abspath(prefix))
    if not os.path.isdir(directory):
        raise OutputError(f"{prefix}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputError(f"{prefix}: directory {directory} is not writable")
    if os.path.isdir(prefix + ".index"):
        raise OutputError(f"{prefix}.index: is a directory")
    if not force and (os.path.exists(prefix + ".index") or existing_data_files(prefix)):
        raise OutputError(f"{prefix}: a checkpoint already exists there (use --force to overwrite)")


def same_checkpoint(a: str, b: str) -> bool:
    """True when prefixes ``a`` and ``b`` name the same checkpoint (symlinks, ``..`` and hard links resolved).

    Callers refuse to write a checkpoint onto its own source with this.
    """
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a + ".index", b + ".index")
    except OSError:
        return False


def stale_partials(prefix: str) -> list[str]:
    """Temporary files of ``prefix`` left by a writer on this host that is no longer running."""
    directory, base = os.path.split(os.path.abspath(prefix))
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), f".{glob.escape(base)}.*{PARTIAL_TAG}*")):
        match = _PARTIAL.fullmatch(path[len(directory) + len(base) + 2 :])
        if match and match.group("host") == HOST and not _process_alive(int(match.group("pid"))):
            found.append(path)
    return found


def remove_stale_partials(prefix: str) -> None:
    for path in stale_partials(prefix):
        _remove(path)


def write_error(prefix: str, exc: OSError) -> OutputError:
    """One line for an OSError while writing the checkpoint ``prefix`` (disk full gets its own words)."""
    if exc.errno == errno.ENOSPC:
        return OutputError(f"{prefix}: disk full while writing; nothing was written")
    where = f" ({exc.filename})" if exc.filename else ""
    return OutputError(f"{prefix}: write failed{where}: {exc.strerror or exc}; nothing was written")
