"""A directory cache for remote reads, keyed by the object's version (ETag, GCS generation...).

Each fetched range is one file named by a hash of (URL, version, range). A changed object has a new
version, so stale bytes are never returned; files of old versions are simply never read again (delete
the directory to reclaim them). Entries are written to a temporary name and renamed, so a reader never
sees half an entry, and concurrent commands may share the directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile

_VERSION_FIELDS = ("generation", "ETag", "etag", "VersionId", "md5Hash", "crc32c")


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
