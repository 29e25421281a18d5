"""Real servers on 127.0.0.1 for the URL tests and bench/bench_remote.py: an HTTP server honouring Range
requests (with injectable faults) and moto's S3 server, both counting the requests and bytes they serve.
Started by fixtures in tests/remote_fixtures.py."""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from functools import partial

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range GETs (206), HEAD with Content-Length, counting and faults.

    Faults by file name (``*``: every file): an HTTP status ("403"), ``slow``, ``truncate`` (half the body),
    ``norange`` (200 and the whole file), ``redirect`` (302 to the same path with ``?moved=1``)."""

    server: RangeServer

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def _fault(self) -> str | None:
        name = self.path.split("?")[0].rsplit("/", 1)[-1]
        return self.server.faults.get(name) or self.server.faults.get("*")

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.server.count(self.command, self.path, 0)
        fault = self._fault()
        if fault and fault.isdigit():
            self.send_error(int(fault))
            return
        if fault == "nohead":  # a server (or a URL signed for GET) that refuses HEAD
            self.send_error(403)
            return
        super().do_HEAD()

    def do_GET(self) -> None:  # noqa: N802
        with self.server.serving():  # a client may have all the bytes before they are counted: reset() waits
            self._get()

    def _get(self) -> None:
        fault = self._fault()
        if fault and fault.isdigit():
            self.server.count(self.command, self.path, 0)
            self.send_error(int(fault))
            return
        self.server.headers_seen.append(dict(self.headers))
        if fault == "slow":
            time.sleep(self.server.slow_seconds)
        if fault == "redirect" and "moved=1" not in self.path:
            self.server.count(self.command, self.path, 0)
            self.send_response(302)
            self.send_header("Location", self.path.split("?")[0] + "?moved=1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.translate_path(self.path)
        if os.path.isdir(path):
            self.server.count(self.command, self.path, 0)
            super().do_GET()
            return
        try:
            f = open(path, "rb")  # noqa: SIM115
        except OSError:
            self.server.count(self.command, self.path, 0)
            self.send_error(404)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            start, end = 0, size - 1
            match = None if fault == "norange" else _RANGE.match(self.headers.get("Range", ""))
            if match:
                if match.group(1):
                    start = int(match.group(1))
                    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
                else:
                    start = max(0, size - int(match.group(2)))
                if start >= size:
                    self.server.count(self.command, self.path, 0)
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.end_headers()
                    return
            length = end - start + 1
            self.send_response(206 if match else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{int(os.path.getmtime(path))}-{size}"')
            if match:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            send = length // 2 if fault == "truncate" else length
            f.seek(start)
            sent = 0
            while sent < send:
                chunk = f.read(min(1 << 20, send - sent))
                if not chunk:
                    break
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
            self.server.count(self.command, self.path, sent)
            if fault == "truncate":
                self.close_connection = True


class Counted:
    """``requests`` [(method, path, bytes sent)] served so far, their total, and ``reset()``."""

    def __init__(self) -> None:
        self._requests: list[tuple[str, str, int]] = []
        self.connections = 0  # TCP connections accepted (RangeServer)
        self.faults: dict[str, str] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._busy = 0

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Around serving one request, so ``reset`` can wait until it is counted."""
        with self._lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._lock:
                self._busy -= 1
                self._idle.notify_all()

    def count(self, method: str, path: str, nbytes: int) -> None:
        with self._lock:
            self._requests.append((method, path, nbytes))

    def reset(self) -> None:
        """Forget what was served (once the requests being served are counted) and the faults."""
        with self._lock:
            self._idle.wait_for(lambda: not self._busy, timeout=10)
            self._requests.clear()
            self.connections = 0
        self.faults.clear()

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """What was served, once the requests being served are counted (a client can hold every byte of a
        response before the server thread counts it)."""
        with self._lock:
            self._idle.wait_for(lambda: not self._busy, timeout=10)
            return list(self._requests)

    @property
    def bytes_served(self) -> int:
        return sum(n for _, _, n in self.requests)


class KeepAliveHandler(RangeHandler):
    protocol_version = "HTTP/1.1"  # connections stay open between requests (every response has a length)


class RangeServer(Counted, http.server.ThreadingHTTPServer):
    """``RangeServer(root, keep_alive=False)``; ``url``; ``requests`` [(method, path, bytes)]; ``connections``
    (accepted); ``faults`` {file name: fault}; ``headers_seen`` (of each GET). HTTP/1.0 (a connection per
    request) unless ``keep_alive``."""

    daemon_threads = True

    def __init__(self, root: str, keep_alive: bool = False) -> None:
        Counted.__init__(self)
        self.headers_seen: list[dict[str, str]] = []
        handler = KeepAliveHandler if keep_alive else RangeHandler
        http.server.ThreadingHTTPServer.__init__(self, ("127.0.0.1", 0), partial(handler, directory=root))
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.slow_seconds = 5.0
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    def reset(self) -> None:
        super().reset()
        self.headers_seen.clear()

    def process_request(self, request: object, client_address: object) -> None:
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)

    def start(self) -> RangeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class S3Server(Counted):
    """moto's S3 server (its WSGI app, as ``moto.server.ThreadedMotoServer`` runs it) on 127.0.0.1, counting
    what it sends. ``url`` is the endpoint; clients authenticate with any key (``testing``/``testing``)."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        super().__init__()
        app = DomainDispatcherApplication(create_backend_app)

        def counting(environ: dict, start_response):  # noqa: ANN202 - a WSGI app
            sent = 0
            try:
                for piece in app(environ, start_response):
                    sent += len(piece)
                    yield piece
            finally:
                self.count(environ["REQUEST_METHOD"], environ["PATH_INFO"], sent)

        self._server = make_server("127.0.0.1", 0, counting, threaded=True, request_handler=MotoRequestHandler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> S3Server:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
