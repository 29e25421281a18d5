"""Remote byte sources on fsspec: block-aligned cached reads, merged ranges, bounded parallel requests.

Small reads (table footers, index blocks, headers) are rounded out to ``BLOCK`` bytes and kept in a small
LRU, and the missing blocks of one read are fetched with ONE ranged request. Large reads (tensor bytes)
bypass the cache and are split into ``PART``-sized ranged requests, at most ``IN_FLIGHT`` at once, whose
bytes are handed to the caller in ``SLICE``-sized views: its checksums and writes then work on bytes still
in the CPU cache (handing over whole parts made each later pass read them from memory again, which
cost more CPU than the download itself; an output written 1 MiB at a time took 4-6 times the system
time of 256 KiB writes).
Reads and sizes of plain ``http(s)://`` files go through the standard library (``http_ranges``: one copy,
socket to ``bytes``, on the fetching thread; one HEAD for the size), everything else through fsspec.
File metadata (``info``), directory listings and each URL's HTTP client are kept per process, so resolving
a checkpoint never asks the same question twice and a file's HEAD and GETs share one connection. Every
failure becomes a ``NotFoundError`` or ``RemoteError`` naming the URL with any credentials removed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import MissingDependencyError, NotFoundError, RemoteError
from . import cache, http_ranges
from .cache import cache_dir
from .urls import redact

BLOCK = 32 << 10  # small reads (footers, headers, index blocks) are rounded out to this and cached
CACHED_BLOCKS = 32  # 1 MiB of small-read cache per file
DIRECT = BLOCK  # reads at least this large fetch exactly their range, uncached
STREAM = 1 << 20  # reads at least this large are split into parallel PART-sized requests
PART = 4 << 20  # large reads are split into ranged requests of this size...
IN_FLIGHT = 4  # ...at most this many at once (per process)...
SLICE = 256 << 10  # ...and handed over in views of at most this size

_T = TypeVar("_T")
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
_INFO: dict[tuple[str, str], dict | None] = {}  # (url, options) -> info, None when it does not exist
_LISTINGS: dict[tuple[str, str], dict[str, dict]] = {}  # (dir url, options) -> {child url: info}
# (url, options) -> its standard-library client (None: read through fsspec), shared by the HEAD of ``info``
# and the reads of every source of the URL; the most recent few (connections are kept per server, in
# ``http_ranges``)
CLIENTS = 64
_CLIENTS: OrderedDict[tuple[str, str], http_ranges.RangeClient | None] = OrderedDict()
_CLIENTS_LOCK = threading.Lock()
_BACKENDS = {"s3": "s3fs (pip install 'ckpttools[s3]')", "gs": "gcsfs (pip install 'ckpttools[gcs]')",
             "gcs": "gcsfs (pip install 'ckpttools[gcs]')", "http": "aiohttp (pip install 'ckpttools[http]')",
             "https": "aiohttp (pip install 'ckpttools[http]')",
             "hf": "huggingface_hub (pip install 'ckpttools[hf]')"}


def open_fs(url: str, options: dict) -> tuple[Any, str]:
    """The fsspec file system for ``url`` and the path within it."""
    try:
        import fsspec
    except ImportError:
        raise MissingDependencyError(f"{redact(url)}: reading URLs needs fsspec (pip install 'ckpttools[remote]')") \
            from None
    try:
        return fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        scheme = url.split("://", 1)[0].split("::")[-1]
        need = _BACKENDS.get(scheme, f"the fsspec backend for {scheme}://")
        raise MissingDependencyError(f"{redact(url)}: reading {scheme}:// URLs needs {need} ({exc})") from None
    except ValueError as exc:
        raise NotFoundError(f"{redact(url)}: not a URL ckpttools can read ({exc})") from None


def call(url: str, what: str, fn: Callable[[], _T]) -> _T:
    """Run one storage operation, turning the backend's exceptions into one-line ckpttools errors."""
    try:
        return fn()
    except (NotFoundError, RemoteError, MissingDependencyError):
        raise
    except FileNotFoundError as exc:
        cause = exc.__cause__  # fsspec's HTTP info turns every failure into this: a refused connection, a
        status = getattr(cause, "status", None)  # timeout or an option aiohttp rejects is not a missing file
        if isinstance(status, int) and status not in (404, 410) or \
                (status is None and cause is not None and _is_http(url)):
            raise RemoteError(f"{redact(url)}: {what} failed ({_describe(cause)})") from None
        raise NotFoundError(f"{redact(url)}: no such file") from None
    except PermissionError:
        raise RemoteError(f"{redact(url)}: access denied while {what} (check the credentials)") from None
    except Exception as exc:  # noqa: BLE001 - aiohttp, botocore and timeouts share no base class
        raise RemoteError(f"{redact(url)}: {what} failed ({_describe(exc)})") from None


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status", None) or getattr(exc, "code", None)
    if isinstance(status, int):
        reason = {403: "access denied", 404: "not found", 401: "not authorised"}.get(status, "server error")
        return f"HTTP {status}, {reason}"
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return "timed out"
    if "NoCredentials" in type(exc).__name__ or "DefaultCredentialsError" in type(exc).__name__:
        return ("no credentials found: configure them as the backend expects (environment, config file), "
                "or use --storage-option anon=true for public data")
    text = redact(str(exc).splitlines()[0]) if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _key(url: str, options: dict) -> tuple[str, str]:
    return url, repr(sorted(options.items()))


def info(url: str, options: dict) -> dict:
    """Size, ETag... of ``url`` (cached); NotFoundError when it does not exist."""
    key = _key(url, options)
    if key not in _INFO:
        try:
            _INFO[key] = call(url, "reading its size", lambda: _info(url, options))
        except NotFoundError:
            _INFO[key] = None
    found = _INFO[key]
    if found is None:
        raise NotFoundError(f"{redact(url)}: no such file")
    return found


def _info(url: str, options: dict) -> dict:
    client = _range_client(url, options)
    if client is not None:
        try:
            return client.head()
        except http_ranges.Unsupported:  # (a redirect, no Content-Length, HEAD refused): fsspec follows it
            pass
    fs, path = open_fs(url, options)
    return fs.info(path)


def isfile(url: str, options: dict) -> bool:
    parent, _, _ = url.rstrip("/").rpartition("/")
    listed = _LISTINGS.get(_key(parent, options))
    if listed is not None:  # the parent was listed: answer from the listing, no request
        found = listed.get(url.rstrip("/"))
        return found is not None and found.get("type") != "directory"
    try:
        found = info(url, options)
    except NotFoundError:
        return False
    if _is_http(url) and str(found.get("url", url)).endswith("/") and \
            (not url.endswith("/") or str(found.get("mimetype", "")).startswith("text/html")):
        return False  # redirected to ``url/``, or ``url/`` is an HTML page: the server's page for a directory
    return found.get("type", "file") != "directory"


def _is_http(url: str) -> bool:
    return url.split("::")[-1].startswith(("http://", "https://"))


def isdir(url: str, options: dict) -> bool:
    if _is_http(url):  # HTTP has no directories: a URL ending in / that serves an HTML index counts as one
        try:
            return str(info(url.rstrip("/") + "/", options).get("mimetype", "")).startswith("text/html")
        except (NotFoundError, RemoteError):
            return False
    fs, path = open_fs(url, options)
    return bool(call(url, "checking whether it is a directory", lambda: fs.isdir(path)))


def list_files(directory: str, options: dict) -> list[str]:
    """The files directly in ``directory`` (one listing request, cached)."""
    directory = directory.rstrip("/")
    key = _key(directory, options)
    if key not in _LISTINGS:
        fs, path = open_fs(directory + "/" if _is_http(directory) else directory, options)
        entries = call(directory, "listing", lambda: fs.ls(path, detail=True))
        listed = {}
        for entry in entries:
            name = str(entry["name"]).rstrip("/").rpartition("/")[2]
            child = f"{directory}/{name}"
            listed[child] = entry
            if entry.get("type") != "directory" and entry.get("size") is not None:
                _INFO.setdefault(_key(child, options), entry)
        _LISTINGS[key] = listed
    return [url for url, entry in _LISTINGS[key].items() if entry.get("type") != "directory"]


def list_dirs(directory: str, options: dict) -> list[str]:
    """The directories directly in ``directory``, from the same one (cached) listing as ``list_files``."""
    list_files(directory, options)
    listed = _LISTINGS[_key(directory.rstrip("/"), options)]
    return [url for url, entry in listed.items() if entry.get("type") == "directory"]


def mtime(url: str, options: dict) -> float:
    found = info(url, options)
    for field in ("mtime", "LastModified", "updated", "last_modified", "Last-Modified"):
        value = found.get(field)
        if isinstance(value, str):
            value = _parse_time(value)
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        if isinstance(value, (int, float)):
            return float(value)
    return 0.0


def _parse_time(text: str) -> Any:
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    for parse in (parsedate_to_datetime, datetime.fromisoformat):
        try:
            return parse(text)
        except (TypeError, ValueError):
            continue
    return None


def forget(url: str | None = None) -> None:
    """Drop cached metadata and clients (all of them, or one URL's): after writing, or between tests."""
    with _CLIENTS_LOCK:
        for known in (_INFO, _LISTINGS, _CLIENTS):
            if url is None:
                known.clear()
                continue
            for key in [k for k in known if k[0] in (url, url.rpartition("/")[0])]:
                known.pop(key, None)


def _range_client(url: str, options: dict) -> http_ranges.RangeClient | None:
    """The standard-library client for a plain ``http(s)://`` file (reads, HEAD), if it can honour ``options``:
    one per URL (the most recent ``CLIENTS``), so its size and its bytes come over the same connection."""
    if not url.startswith(("http://", "https://")):
        return None
    key = _key(url, options)
    with _CLIENTS_LOCK:
        if key in _CLIENTS:
            _CLIENTS.move_to_end(key)
            return _CLIENTS[key]
    try:
        client: http_ranges.RangeClient | None = http_ranges.RangeClient(url, options)
    except http_ranges.Unsupported:
        client = None
    with _CLIENTS_LOCK:
        client = _CLIENTS.setdefault(key, client)
        while len(_CLIENTS) > CLIENTS:
            _CLIENTS.popitem(last=False)  # still used by the sources holding it; closed when they are
    return client


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="ckpttools-fetch")
        return _POOL


class RemoteSource:
    """One remote file: ranged reads through fsspec, with a small LRU of blocks for small reads."""

    def __init__(self, url: str, options: dict) -> None:
        self.name = url
        self._options = options
        self._opened: tuple[Any, str] | None = None  # fsspec's file system and path, opened when first needed
        self._ranges = _range_client(url, options)
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._cache_dir = cache_dir()
        self._lock = threading.Lock()
        self.requests = 0
        self.fetched = 0

    @property
    def size(self) -> int:
        return int(info(self.name, self._options)["size"])

    def _fetch(self, start: int, end: int | None) -> bytes:
        """Bytes ``start..end`` (``end`` None: to the end), from the cache directory when it has them."""
        directory = self._cache_dir
        version = cache.version_of(info(self.name, self._options)) if directory else None
        if version:
            cached = cache.get(directory, self.name, version, start, end)
            if cached is not None:
                return cached
        what = f"reading bytes {start}..{end}" if end is not None else "reading"
        data = bytes(call(self.name, what, lambda: self._get(start, end)))
        with self._lock:
            self.requests += 1
            self.fetched += len(data)
        if end is not None and len(data) > end - start:  # the server ignored the Range header: whole file
            data = data[start:end]
        if version:
            cache.put(directory, self.name, version, start, end, data)
        return data

    def _get(self, start: int, end: int | None) -> bytes:
        ranges = self._ranges
        if ranges is not None:
            try:
                return ranges.get(start, end)
            except http_ranges.Unsupported:  # (a redirect, an encoded body): fsspec from now on
                self._ranges = None
        return self._cat(start, end)

    def _cat(self, start: int, end: int | None) -> bytes:
        if self._opened is None:
            self._opened = open_fs(self.name, self._options)
        fs, path = self._opened
        try:
            return fs.cat_file(path, start=start, end=end)
        except Exception as exc:
            if getattr(exc, "status", None) == 416:  # Range Not Satisfiable: starts past the end of the file
                return b""
            raise

    def read_at(self, offset: int, size: int) -> bytes:
        if size <= 0:
            return b""
        if size >= DIRECT:
            return self._fetch(offset, offset + size)
        first, last = offset // BLOCK, (offset + size - 1) // BLOCK
        with self._lock:
            missing = [b for b in range(first, last + 1) if b not in self._blocks]
        if missing:  # one request for the whole missing run (the blocks of one read are adjacent)
            data = self._fetch(missing[0] * BLOCK, (missing[-1] + 1) * BLOCK)
            with self._lock:
                for i, block in enumerate(range(missing[0], missing[-1] + 1)):
                    self._blocks[block] = data[i * BLOCK:(i + 1) * BLOCK]
        with self._lock:
            parts = []
            for block in range(first, last + 1):
                self._blocks.move_to_end(block)
                parts.append(self._blocks[block])
            while len(self._blocks) > CACHED_BLOCKS:
                self._blocks.popitem(last=False)
        joined = b"".join(parts)
        start = offset - first * BLOCK
        return joined[start:start + size]

    def readinto_at(self, offset: int, buffer: memoryview) -> int:
        done = 0
        for chunk in self.iter_chunks(offset, len(buffer), PART):
            buffer[done:done + len(chunk)] = chunk
            done += len(chunk)
        return done

    def iter_chunks(self, offset: int, size: int, chunk_size: int) -> Iterator[bytes | memoryview]:
        """``size`` bytes from ``offset`` in order, in pieces of at most ``chunk_size`` (and ``SLICE``) bytes,
        fetched in ``PART``-sized ranges ``IN_FLIGHT`` at a time."""
        if size < STREAM:
            yield self.read_at(offset, size)
            return
        step = min(chunk_size, SLICE)
        ranges = deque((start, min(start + PART, offset + size)) for start in range(offset, offset + size, PART))
        pending: deque[tuple[int, Future]] = deque()
        try:
            while ranges or pending:
                while ranges and len(pending) < IN_FLIGHT:
                    start, end = ranges.popleft()
                    pending.append((end - start, _pool().submit(self._fetch, start, end)))
                wanted, future = pending.popleft()
                chunk = memoryview(future.result())
                for start in range(0, len(chunk), step):
                    yield chunk[start:start + step]
                if len(chunk) < wanted:  # the file ends here: the caller reports it too short
                    return
        finally:
            for _, future in pending:
                future.cancel()

    def read_all(self) -> bytes:
        return self._fetch(0, None)

    def close(self) -> None:
        self._blocks.clear()

    def __enter__(self) -> RemoteSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
