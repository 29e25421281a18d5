"""Fixtures for the URL tests (tests/test_remote*.py), shared by the session: the servers are started once.

``served_root`` is one tree holding everything the servers serve: ``tf/`` (tests/tf_fixtures.py), ``big/``
(a TF2 checkpoint with a 4 MiB shard), ``samples/`` (sample_checkpoints) and ``weights/`` (npz, safetensors).
``http`` is the Range-honouring server of tests/remote_servers.py on 127.0.0.1, ``s3`` moto's S3 server on
127.0.0.1 with bucket ``ckpts`` holding the same tree. Modules use ``fresh_remote`` on every test.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from fixture_scripts import run_fixture_script
from remote_servers import RangeServer, S3Server

from ckpttools import open_checkpoint
from ckpttools.storage import remote

TESTS = Path(__file__).resolve().parent
SAMPLES = TESTS.parent / "sample_checkpoints"


@pytest.fixture(scope="session")
def remote_tf2(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The prefixes written by tests/tf_remote_fixtures.py (a TF subprocess): [medium, big], in one folder."""
    _, printed = run_fixture_script(tmp_path_factory, "tf_remote_fixtures.py", timeout=300)
    return printed.strip().splitlines()[-2:]


@pytest.fixture(scope="session")
def big_tf2(remote_tf2: list[str]) -> str:
    """The prefix of a TF2 checkpoint with a 4 MiB data shard, served as ``big/ckpt-1``."""
    return remote_tf2[1]


@pytest.fixture(scope="session")
def medium_tf2(remote_tf2: list[str]) -> str:
    """The prefix of a TF2 checkpoint of 24 tensors of 64 KiB (and three others) stored in an order that is not
    their names', served as ``big/medium-1``."""
    return remote_tf2[0]


@pytest.fixture(scope="session")
def served_root(tmp_path_factory: pytest.TempPathFactory, tf_ckpts, big_tf2: str) -> Path:
    """One tree holding everything the servers serve: tf/ (tf_fixtures), big/, samples/, weights files."""
    root = tmp_path_factory.mktemp("served")
    (root / "tf").symlink_to(tf_ckpts.root)
    (root / "big").symlink_to(Path(big_tf2).parent)
    (root / "samples").symlink_to(SAMPLES)
    weights = root / "weights"
    weights.mkdir()
    from ckpttools.ops.extract import write_weights

    write_weights(str(SAMPLES / "tf1_cnn"), str(weights / "cnn.npz"), include_all=True)
    write_weights(str(SAMPLES / "tf2_keras"), str(weights / "keras.safetensors"))
    return root


@pytest.fixture(scope="session")
def http(served_root: Path):
    try:
        server = RangeServer(str(served_root)).start()
    except OSError as exc:
        pytest.skip(f"cannot start an HTTP server on 127.0.0.1 ({exc})")
    yield server
    server.stop()


@pytest.fixture
def fresh_remote(request):
    """Each test starts with no cached metadata, no faults and no counted requests."""
    remote.forget()
    if "http" in request.fixturenames:
        request.getfixturevalue("http").reset()
    yield
    remote.forget()


def rel_path(tf_ckpts, label: str) -> str:
    return os.path.relpath(tf_ckpts[label], tf_ckpts.root)


def assert_same(url: str, local: str, storage_options: dict | None = None) -> None:
    """Same names, shapes, dtypes and bitwise-equal values, remote vs local."""
    with open_checkpoint(url, storage_options) as far, open_checkpoint(local) as near:
        assert far.format == near.format
        assert [(v.name, v.key, v.dtype, v.shape) for v in far] == [(v.name, v.key, v.dtype, v.shape) for v in near]
        assert far.variables, url
        for info in near:
            try:
                expected = near.get(info.name)
            except Exception as exc:  # noqa: BLE001 - a dtype we cannot decode must fail the same way remotely
                with pytest.raises(type(exc)):
                    far.get(info.name)
                continue
            got = far.get(info.name)
            assert got.dtype == expected.dtype and got.shape == expected.shape, info.name
            if expected.dtype.hasobject:
                assert got.tolist() == expected.tolist(), info.name
            else:  # bitwise: NaN payloads and -0.0 included
                assert got.tobytes() == expected.tobytes(), info.name


@pytest.fixture(scope="session")
def s3(served_root: Path):
    """moto's S3 server on 127.0.0.1 with bucket 'ckpts' holding the served tree; yields its endpoint."""
    pytest.importorskip("moto.server", reason="the S3 tests need moto[server]")
    pytest.importorskip("s3fs", reason="the S3 tests need s3fs")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        server = S3Server().start()
    except Exception as exc:  # noqa: BLE001 - any failure to start means: skip, saying why
        pytest.skip(f"cannot start moto's S3 server on 127.0.0.1 ({exc})")
    endpoint = server.url
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
                                            "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=endpoint,
                      AWS_DEFAULT_REGION="us-east-1")
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    fs.mkdir("ckpts")
    for directory, _, names in os.walk(served_root, followlinks=True):
        for name in names:
            path = Path(directory, name)
            fs.put_file(str(path), f"ckpts/{path.relative_to(served_root).as_posix()}")
    yield endpoint
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
