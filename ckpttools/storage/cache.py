"""A directory cache for remote reads, keyed by the object's version (ETag, GCS generation...).

Each fetched range is one file named by a hash of (URL, version, range). A changed object has a new
version, so stale bytes are never returned; files of old versions are simply never read again (delete
the directory to reclaim them). Entries are written to a temporary name and renamed, so a reader never
sees half an entry, and concurrent commands may share the directory.
"""

from __future__ import annotations

import contextlib
import os

_VERSION_FIELDS = ("generation", "ETag", "etag", "VersionId", "md5Hash", "crc32c")
# Where remote reads are cached (None: no cache); process-wide, so reader threads see it too.
_CACHE_DIR: list[str | None] = [os.environ.get("CKPTTOOLS_CACHE_DIR") or None]


def cache_dir() -> str | None:
    """The directory remote reads are cached in, or None (``--cache-dir``, ``$CKPTTOOLS_CACHE_DIR``)."""
    return _CACHE_DIR[-1]


def set_cache_dir(directory: str | None) -> int:
    """Cache remote reads in ``directory`` (None: no cache) until ``reset_cache_dir(token)``."""
    _CACHE_DIR.append(directory)
    return len(_CACHE_DIR) - 1


def reset_cache_dir(token: int) -> None:
    del _CACHE_DIR[token:]


def version_of(info: dict) -> str | None:
    """What identifies this object's content: its ETag/generation, else size and modification time."""
    for field in _VERSION_FIELDS:
        if info.get(field):
            return f"{field}={info[field]}"
    stamp = info.get("Last-Modified") or info.get("LastModified") or info.get("mtime") or info.get("updated")
    if stamp and info.get("size") is not None:
        return f"size={info['size']};modified={stamp}"
    return None  # nothing tells a change apart: do not cache


def _entry(directory: str, url: str, version: str, start: int, end: int | None) -> str:
    import hashlib  # (here: every command learns the cache directory from this module; few read through it)

    digest = hashlib.sha256(f"{url}\0{version}\0{start}\0{end}".encode()).hexdigest()
    return os.path.join(directory, digest[:2], digest)


def get(directory: str, url: str, version: str, start: int, end: int | None) -> bytes | None:
    try:
        with open(_entry(directory, url, version, start, end), "rb") as f:
            return f.read()
    except OSError:
        return None


def put(directory: str, url: str, version: str, start: int, end: int | None, data: bytes) -> None:
    """Store one range; a cache that cannot be written is skipped, never an error."""
    import tempfile

    path = _entry(directory, url, version, start, end)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".partial")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(NameError, OSError):
            os.remove(tmp)
