"""Byte sources: read ``size`` bytes at ``offset`` from a local file or a URL, through one small interface.

The format readers only ever ask a source for ranges, so they work unchanged on ``s3://``, ``gs://``,
``https://`` and fsspec's chained URLs (``simplecache::s3://...``). Local paths (and ``file://``) keep
the fast path: ``os.pread`` on one descriptor, no fsspec import. Remote sources live in ``remote.py``.

Storage options (credentials overrides, endpoints, anonymous access) travel in a context variable set by
``using(options)`` (the CLI's ``--storage-option``), so readers need no extra parameter: they capture
``current_options()`` when they open and pass them to every later ``open_source``.
"""

from __future__ import annotations

import contextvars
import glob as _glob
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from .byte_source import ByteSource as ByteSource
from .cache import cache_dir as cache_dir
from .cache import reset_cache_dir as reset_cache_dir
from .cache import set_cache_dir as set_cache_dir
from .urls import file_name as file_name
from .urls import is_url as is_url
from .urls import local_path as local_path
from .urls import redact as redact

_OPTIONS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("ckpttools_storage_options", default=None)
_COPY_CHUNK = 8 << 20  # copy_file's pieces


def current_options() -> dict:
    """The storage options in effect (``--storage-option`` / ``open_checkpoint(storage_options=...)``)."""
    return dict(_OPTIONS.get() or {})


@contextmanager
def using(options: dict | None) -> Iterator[None]:
    """Make ``options`` the storage options of every source opened inside the block."""
    token = _OPTIONS.set(dict(options) if options else _OPTIONS.get())
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def set_options(options: dict | None) -> contextvars.Token:
    """Set the storage options until ``reset_options(token)`` (the CLI: for the length of one command)."""
    return _OPTIONS.set(dict(options) if options else None)


def reset_options(token: contextvars.Token) -> None:
    _OPTIONS.reset(token)




def open_source(path: str, storage_options: dict | None = None) -> ByteSource:
    """A byte source for ``path``: local (pread) or remote (fsspec, block cache). Raises like ``open``
    locally (FileNotFoundError, OSError) and ``NotFoundError``/``RemoteError`` for URLs."""
    if is_url(path):
        from .remote import RemoteSource

        return RemoteSource(path, storage_options if storage_options is not None else current_options())
    return LocalSource(local_path(path))


class LocalSource:
    """A local file read with ``os.pread`` (no shared file position, so threads may read at once)."""

    def __init__(self, path: str) -> None:
        self.name = path
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self.size = os.fstat(self._fd).st_size
        except OSError:
            os.close(self._fd)
            raise

    def read_at(self, offset: int, size: int) -> bytes:
        parts = []
        while size > 0:
            got = os.pread(self._fd, size, offset)
            if not got:
                break
            parts.append(got)
            offset += len(got)
            size -= len(got)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readinto_at(self, offset: int, buffer: memoryview) -> int:
        """Fill ``buffer`` from ``offset`` (straight into it, no copy); return the bytes read."""
        done = 0
        while done < len(buffer):
            got = os.preadv(self._fd, [buffer[done:]], offset + done)
            if not got:
                break
            done += got
        return done

    def iter_chunks(self, offset: int, size: int, chunk_size: int) -> Iterator[bytes]:
        while size > 0:
            chunk = self.read_at(offset, min(chunk_size, size))
            if not chunk:
                return
            yield chunk
            offset += len(chunk)
            size -= len(chunk)

    def read_all(self) -> bytes:
        return self.read_at(0, self.size)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> LocalSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- path questions, answered locally with os, remotely with fsspec (cached per process) --------------


def isfile(path: str) -> bool:
    if is_url(path):
        from . import remote

        return remote.isfile(path, current_options())
    return os.path.isfile(local_path(path))


def isdir(path: str) -> bool:
    if is_url(path):
        from . import remote

        return remote.isdir(path, current_options())
    return os.path.isdir(local_path(path))


def getsize(path: str) -> int:
    if is_url(path):
        from . import remote

        return remote.info(path, current_options())["size"]
    return os.path.getsize(local_path(path))


def getmtime(path: str) -> float:
    if is_url(path):
        from . import remote

        return remote.mtime(path, current_options())
    return os.path.getmtime(local_path(path))


def list_files(directory: str) -> list[str]:
    """The paths of the files directly in ``directory`` (one listing; remote listings are cached)."""
    if is_url(directory):
        from . import remote

        return remote.list_files(directory, current_options())
    directory = local_path(directory)
    return [entry.path for entry in os.scandir(directory) if entry.is_file()]


def list_dirs(directory: str) -> list[str]:
    """The paths of the directories directly in ``directory`` (remotely: from the directory's one listing)."""
    if is_url(directory):
        from . import remote

        return remote.list_dirs(directory, current_options())
    directory = local_path(directory)
    return [entry.path for entry in os.scandir(directory) if entry.is_dir()]


def glob(pattern: str) -> list[str]:
    """Paths matching a glob in one directory; remotely, filtered from one (cached) listing."""
    if is_url(pattern):
        import fnmatch

        directory, _, name = pattern.rpartition("/")
        try:
            files = list_files(directory)
        except Exception:  # noqa: BLE001 - an unlistable location simply matches nothing
            return []
        return [path for path in files if fnmatch.fnmatchcase(path.rpartition("/")[2], name)]
    return _glob.glob(local_path(pattern))


def read_bytes(path: str) -> bytes:
    """The whole file (small files: state files, graphs, indexes)."""
    source = open_source(path)
    try:
        return source.read_all()
    finally:
        source.close()


def copy_file(path: str, destination: str) -> None:
    """Copy the file ``path`` (local or a URL, streamed in bounded pieces) to the local ``destination``."""
    if not is_url(path):
        shutil.copyfile(local_path(path), destination)
        return
    source = open_source(path)
    try:
        with open(destination, "wb") as out:
            for chunk in source.iter_chunks(0, source.size, _COPY_CHUNK):
                out.write(chunk)
    finally:
        source.close()


def open_file(path: str, storage_options: dict | None = None) -> io.BufferedReader:
    """A binary file object for ``path``: the plain local file, or a buffered view of a remote one.

    The remote buffer is smaller than the source's cached blocks, so the small reads of zipfile and h5py
    (headers, directories) are served from the block cache instead of each fetching a buffer's worth.
    """
    if not is_url(path):
        return open(local_path(path), "rb")  # noqa: SIM115 - the caller closes it
    from .filerange import SourceFile

    return io.BufferedReader(SourceFile(open_source(path, storage_options)), buffer_size=8 << 10)
