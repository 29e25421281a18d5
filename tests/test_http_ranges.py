"""Ranged reads of http(s):// URLs through the standard library (storage/http_ranges.py), against the counting
Range server on 127.0.0.1: the same bytes as the file, fsspec's settings sent, fsspec used for what this path
does not handle, and faults reported as one line naming the URL, with nothing written."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ckpttools.cli import main
from ckpttools.errors import EXIT_REMOTE, RemoteError
from ckpttools.storage import http_ranges, remote, sources

pytest.importorskip("fsspec", reason="the URL tests need fsspec (pip install -e '.[test]')")
pytest.importorskip("aiohttp", reason="fsspec's HTTP backend needs aiohttp (pip install -e '.[test]')")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote_servers import RangeServer  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_remote")
SHARD = "big/ckpt-1.data-00000-of-00001"


def _stream(url: str, offset: int, size: int, options: dict | None = None) -> tuple[bytes, remote.RemoteSource]:
    with sources.open_source(url, options or {}) as source:
        assert isinstance(source, remote.RemoteSource)
        return b"".join(bytes(piece) for piece in source.iter_chunks(offset, size, 8 << 20)), source


def test_stream_reads_the_files_bytes_in_ranged_gets(http: RangeServer, served_root: Path) -> None:
    expected = (served_root / SHARD).read_bytes()
    offset, size = 1000, len(expected) - 3000
    got, source = _stream(f"{http.url}/{SHARD}", offset, size)
    assert source._ranges is not None  # the standard-library path
    assert got == expected[offset:offset + size]
    gets = [r for r in http.requests if r[0] == "GET"]
    assert len(gets) == -(-size // remote.PART) and sum(n for _, _, n in gets) == size, http.requests


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning")
def test_storage_option_headers_auth_and_url_credentials_are_sent(http: RangeServer, served_root: Path) -> None:
    import aiohttp

    options = {"headers": {"X-Request": "request"},
               "client_kwargs": {"headers": {"X-Session": "session"}, "auth": aiohttp.BasicAuth("bob", "pw")}}
    url = f"{http.url}/{SHARD}"
    got, source = _stream(url, 0, 2 << 20, options)
    assert source._ranges is not None and got == (served_root / SHARD).read_bytes()[:2 << 20]
    sent = http.headers_seen[-1]
    assert sent["X-Request"] == "request" and sent["X-Session"] == "session"
    assert sent["Authorization"] == _basic("bob", "pw")
    http.reset()
    _stream(url.replace("://", "://alice:s%33cret@"), 0, 2 << 20)
    assert http.headers_seen[-1]["Authorization"] == _basic("alice", "s3cret")


def test_options_it_cannot_honour_go_through_fsspec(http: RangeServer, served_root: Path) -> None:
    got, source = _stream(f"{http.url}/{SHARD}", 5, 2 << 20, {"client_kwargs": {"trust_env": False}})
    assert source._ranges is None
    assert got == (served_root / SHARD).read_bytes()[5:5 + (2 << 20)]


def test_a_redirect_is_followed_through_fsspec(http: RangeServer, served_root: Path) -> None:
    http.faults["ckpt-1.data-00000-of-00001"] = "redirect"
    got, source = _stream(f"{http.url}/{SHARD}", 7, 3 << 20)
    assert source._ranges is None  # given up after the first redirect
    assert got == (served_root / SHARD).read_bytes()[7:7 + (3 << 20)]


def test_a_server_ignoring_range_still_gives_the_right_bytes(http: RangeServer, served_root: Path) -> None:
    http.faults["*"] = "norange"
    expected = (served_root / SHARD).read_bytes()
    got, source = _stream(f"{http.url}/{SHARD}", 12345, len(expected) - 12345)
    assert source._ranges is not None and got == expected[12345:]


def test_past_the_end_is_empty(http: RangeServer, served_root: Path) -> None:
    size = (served_root / SHARD).stat().st_size
    client = http_ranges.RangeClient(f"{http.url}/{SHARD}", {})
    assert client.get(size + 10, size + 20) == b""
    assert client.get(size - 5, size + 20) == (served_root / SHARD).read_bytes()[-5:]


def test_a_kept_alive_connection_the_server_closed_is_retried_once(served_root: Path) -> None:
    server = RangeServer(str(served_root), keep_alive=True).start()
    try:
        client = http_ranges.RangeClient(f"{server.url}/{SHARD}", {})
        expected = (served_root / SHARD).read_bytes()
        assert client.get(0, 100) == expected[:100]
        conn = client.connection()
        assert client.get(100, 200) == expected[100:200] and client.connection() is conn  # kept alive
        conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server had closed it meanwhile
        assert client.get(200, 300) == expected[200:300]
        assert client.connection() is not conn  # on a new connection
    finally:
        server.stop()


@pytest.mark.parametrize("path", ["weights/cnn.npz", "samples/tf1_cnn/model.ckpt-20"])
def test_a_checkpoints_files_come_over_one_connection(served_root: Path, path: str) -> None:
    """The HEAD for a file's size and the GETs for its bytes share the URL's client, and the clients of every
    file on the server (index, data shard) share the thread's kept-alive connection to it."""
    server = RangeServer(str(served_root), keep_alive=True).start()
    try:
        result = CliRunner().invoke(main, ["ls", "--stats", f"{server.url}/{path}"])
        assert result.exit_code == 0, result.output
        assert {method for method, _, _ in server.requests} == {"HEAD", "GET"}, server.requests
        assert len({url for _, url, _ in server.requests}) == (1 if path.endswith(".npz") else 2), server.requests
        assert server.connections == 1, server.requests
        server.reset()
        remote.forget()  # new clients: the connection stays
        assert CliRunner().invoke(main, ["ls", "--stats", f"{server.url}/{path}"]).exit_code == 0
        assert server.requests and server.connections == 0
    finally:
        server.stop()


def test_truncated_body_is_one_line_and_leaves_no_output(http: RangeServer, tmp_path: Path) -> None:
    http.faults["ckpt-1.data-00000-of-00001"] = "truncate"
    out = tmp_path / "big.npz"
    url = http.url.replace("://", "://alice:s3cret@") + "/big/ckpt-1"
    result = CliRunner().invoke(main, ["extract", "--all", url, "-o", str(out)])
    assert result.exit_code == EXIT_REMOTE, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "/big/ckpt-1.data-00000-of-00001" in lines[0] and "connection closed after" in lines[0]
    assert "s3cret" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("fault", "words"), [("403", "HTTP 403, access denied"), ("500", "HTTP 500")])
def test_error_status_of_a_range_is_a_remote_error(http: RangeServer, fault: str, words: str) -> None:
    with sources.open_source(f"{http.url}/{SHARD}", {}) as source:
        source.size  # noqa: B018 - known before the fault, as when a checkpoint is already open
        http.faults["ckpt-1.data-00000-of-00001"] = fault
        with pytest.raises(RemoteError, match=f"ckpt-1.data-00000-of-00001.*{words}"):
            list(source.iter_chunks(0, 2 << 20, 8 << 20))


def test_missing_file_is_not_found(http: RangeServer) -> None:
    client = http_ranges.RangeClient(f"{http.url}/big/nothing-here", {})
    with pytest.raises(FileNotFoundError):
        client.get(0, 10)


def test_listing_a_checkpoint_at_an_http_url_never_imports_aiohttp(http: RangeServer) -> None:
    """Sizes come from one HEAD and the index from one GET, through the standard library: aiohttp (0.2 s of
    start-up) is not imported for a plain HTTP file."""
    code = ("import sys; from ckpttools.cli import main\n"
            "try: main(['ls', '--all', sys.argv[1]])\n"
            "except SystemExit as exit: assert not exit.code, exit.code\n"
            "print('aiohttp' in sys.modules, 'fsspec.implementations.http' in sys.modules)")
    url = f"{http.url}/samples/tf1_cnn/model.ckpt-20"
    result = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False False"
    assert {method for method, _, _ in http.requests} == {"HEAD", "GET"}


def test_a_server_refusing_head_is_asked_through_fsspec(http: RangeServer, served_root: Path) -> None:
    http.faults["*"] = "nohead"
    with sources.open_source(f"{http.url}/{SHARD}") as source:
        assert source.size == (served_root / SHARD).stat().st_size


def test_truncated_whole_file_read_is_one_line(http: RangeServer) -> None:
    http.faults["model.ckpt-20.index"] = "truncate"
    result = CliRunner().invoke(main, ["ls", f"{http.url}/samples/tf1_cnn/model.ckpt-20"])
    assert result.exit_code == EXIT_REMOTE and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "model.ckpt-20.index" in result.stderr and "Traceback" not in result.stderr
