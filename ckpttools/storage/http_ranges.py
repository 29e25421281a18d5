"""GETs and HEADs of ``http(s)://`` files with the standard library: remote reads and sizes over HTTP.

fsspec's HTTP file system runs aiohttp on one event-loop thread, which receives each response in 64-256 KiB
pieces, joins them into one buffer and hands it to the waiting thread: on loopback that took 1.5 CPU-seconds
per GB, and that one thread was the limit of a remote ``extract``. ``http.client`` reading ``n`` bytes
receives them straight into one new ``bytes`` object on the calling thread: 0.6 CPU-seconds per GB, on
four threads at once.

Reads (ranged or whole) and sizes (one HEAD) come here, so a plain HTTP file never imports aiohttp (0.2 s of
start-up); directory listings stay on fsspec. The settings fsspec would use are honoured (``headers``,
``auth``, ``client_kwargs`` headers/auth/timeout, credentials in the URL); any other option, and any response
this module does not expect (a redirect, an encoded body, a HEAD without Content-Length), raises
``Unsupported``, and the caller asks fsspec instead.
"""

from __future__ import annotations

import base64
import http.client
import re
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

DEFAULT_TIMEOUT = 300.0  # seconds, as aiohttp's default (there for a whole request, here for each socket wait)
_FSSPEC_ONLY = frozenset({"simple_links", "same_scheme", "block_size", "cache_type", "cache_options", "size_policy",
                          "use_listings_cache", "listings_expiry_time", "skip_instance_cache"})
_PLAIN_URL = re.compile(r"^https?://[!#-;=?-\[\]_a-z~]+$", re.IGNORECASE)  # nothing that would need quoting
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


_T = TypeVar("_T")


class Unsupported(Exception):
    """This URL, option or response is read through fsspec instead."""


class HTTPStatusError(Exception):
    """The server answered with an error status (``status``)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class IncompleteBody(ConnectionError):
    """The connection ended before the body its Content-Length announced."""


# each thread's kept-alive connections, one per server ((https, host, port)), shared by the clients of every
# URL on that server: the files of one checkpoint (state file, index, data shards) cost one TCP (and TLS)
# handshake per thread, not one each
_THREAD = threading.local()


class RangeClient:
    """Requests for one URL (ranged or whole GETs, HEAD), on the calling thread's kept-alive connection to
    its server."""

    def __init__(self, url: str, options: dict) -> None:
        if not _PLAIN_URL.match(url):
            raise Unsupported(url)
        self._url = url
        parts = urlsplit(url)
        self._https = parts.scheme.lower() == "https"
        try:
            self._host, self._port = parts.hostname or "", parts.port
        except ValueError:  # not a port number (``host:8000.index``): fsspec says what is wrong
            raise Unsupported(url) from None
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._headers, self._timeout = _settings(options)
        if parts.username is not None and "Authorization" not in self._headers:  # as aiohttp does
            self._headers["Authorization"] = _basic(unquote(parts.username), unquote(parts.password or ""))
        self._server = (self._https, self._host.lower(), self._port)

    def get(self, start: int, end: int | None = None) -> bytes:
        """Bytes ``start..end`` (``end`` None: to the end of the file; fewer where the file ends; b"" when
        ``start`` is past it), received straight into one ``bytes`` object."""
        if end is None:
            headers = {**self._headers, "Range": f"bytes={start}-"} if start else self._headers
        else:
            headers = {**self._headers, "Range": f"bytes={start}-{end - 1}"}
        return self._request("GET", headers, lambda response: self._body(response, start, end))

    def head(self) -> dict:
        """What fsspec's ``info`` gives for the URL, from one HEAD request: size, type, ETag, Last-Modified,
        mimetype. Unsupported when the answer does not say (no Content-Length, a redirect, HEAD refused)."""
        return self._request("HEAD", self._headers, self._info)

    def _request(self, method: str, headers: dict[str, str], answer: Callable[[http.client.HTTPResponse], _T]) -> _T:
        for attempt in range(2):
            conn, reused = self._connection()
            try:
                conn.request(method, self._target, headers=headers)
                response = conn.getresponse()
            except _STALE:
                self._drop()
                if reused and attempt == 0:  # a kept-alive connection the server had closed: once more, afresh
                    continue
                raise
            except BaseException:
                self._drop()
                raise
            try:
                return answer(response)
            except BaseException:
                self._drop()
                raise
        raise AssertionError("unreachable")

    def _info(self, response: http.client.HTTPResponse) -> dict:
        response.read()  # (a HEAD response has no body; this completes it so the connection is reused)
        status = response.status
        if status in (404, 410):
            raise FileNotFoundError(status)
        if status >= 400:  # some servers refuse HEAD only (405, or 403 for URLs signed for GET): fsspec tries GET
            raise Unsupported(f"HEAD: HTTP {status}")
        length = response.getheader("Content-Length")
        if status != 200 or length is None or not length.isdigit() or \
                response.getheader("Content-Encoding", "identity").lower() != "identity":
            raise Unsupported(f"HEAD: HTTP {status}, Content-Length {length}")
        found: dict[str, Any] = {"name": self._url, "size": int(length), "type": "file", "url": self._url,
                                 "mimetype": (response.getheader("Content-Type") or "").split(";")[0].strip()}
        for header in ("ETag", "Last-Modified"):
            value = response.getheader(header)
            if value:
                found[header] = value
        return found

    def _body(self, response: http.client.HTTPResponse, start: int, end: int | None) -> bytes:
        status = response.status
        if status == 416:  # Range Not Satisfiable: starts past the end of the file
            response.read()
            return b""
        _check_status(status)
        if status not in (200, 206) or response.getheader("Content-Encoding", "identity").lower() != "identity":
            raise Unsupported(f"HTTP {status}, {response.getheader('Content-Encoding')}")
        skip = start if status == 200 else 0  # 200: the server ignored the Range header and sends the whole file
        while skip:
            skipped = len(response.read(min(skip, 1 << 20)))
            if not skipped:
                return b""
            skip -= skipped
        if end is None:
            try:
                return response.read()
            except http.client.IncompleteRead as exc:
                raise IncompleteBody(f"the connection closed after {len(exc.partial):,} of the "
                                     f"{len(exc.partial) + (exc.expected or 0):,} bytes announced") from None
        data = response.read(end - start)
        if len(data) < end - start and response.length:  # (a range ending past the file's end is announced
            raise IncompleteBody(f"the connection closed after {len(data):,} of the "  # shorter: not an error)
                                 f"{len(data) + response.length:,} bytes announced")
        if not response.isclosed():  # more than asked for (the whole file): this connection cannot be reused
            self._drop()
        return data

    def connection(self) -> http.client.HTTPConnection | None:
        """This thread's connection to the server, if it has one."""
        return _connections().get(self._server)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = self.connection()
        if conn is not None:
            conn.timeout = self._timeout  # (another URL's client may have opened it with another timeout)
            if conn.sock is not None:
                conn.sock.settimeout(self._timeout)
            return conn, conn.sock is not None
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        _connections()[self._server] = conn
        return conn, False

    def _drop(self) -> None:
        conn = _connections().pop(self._server, None)
        if conn is not None:
            conn.close()


def _connections() -> dict[tuple[bool, str, int | None], http.client.HTTPConnection]:
    found = getattr(_THREAD, "connections", None)
    if found is None:
        found = _THREAD.connections = {}
    return found


def _check_status(status: int) -> None:
    if status in (404, 410):
        raise FileNotFoundError(status)
    if status >= 400:
        raise HTTPStatusError(status)


def _settings(options: dict) -> tuple[dict[str, str], float]:
    """The request headers and socket timeout fsspec's HTTP file system would use with ``options``."""
    client = options.get("client_kwargs") or {}
    if not isinstance(client, dict):
        raise Unsupported("client_kwargs")
    unknown = (set(options) - _FSSPEC_ONLY - {"headers", "auth", "client_kwargs"}) | \
        (set(client) - {"headers", "auth", "timeout"})
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    headers: dict[str, str] = {}
    for given in (client.get("headers"), options.get("headers")):  # the request's own over the session's
        if given is not None and not isinstance(given, dict):
            raise Unsupported("headers")
        headers.update({str(k): str(v) for k, v in (given or {}).items()})
    for auth in (client.get("auth"), options.get("auth")):
        if auth is not None:
            headers["Authorization"] = _encoded(auth)
    return headers, _timeout(client.get("timeout"))


def _encoded(auth: Any) -> str:
    encode = getattr(auth, "encode", None)  # aiohttp.BasicAuth
    if not callable(encode):
        raise Unsupported("auth")
    return str(encode())


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode("latin1")).decode("ascii")


def _timeout(timeout: Any) -> float:
    """A socket timeout from aiohttp's ``ClientTimeout`` (its shortest limit) or a number of seconds."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, (int, float)):
        return float(timeout)
    limits = [getattr(timeout, name, None) for name in ("total", "connect", "sock_connect", "sock_read")]
    given = [float(limit) for limit in limits if isinstance(limit, (int, float)) and limit > 0]
    return min(given) if given else DEFAULT_TIMEOUT
