"""Checkpoints at URLs, against real servers on 127.0.0.1: a Range-honouring HTTP server (counting requests
and bytes, injecting faults) and moto's S3 server. Every value read remotely must equal the local read of
the same TensorFlow-written file (whose exactness against TensorFlow tests/test_exact.py checks)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ckpttools import open_checkpoint
from ckpttools.cli import main
from ckpttools.errors import EXIT_NOT_FOUND, EXIT_REMOTE, NotFoundError, RemoteError
from ckpttools.storage import remote, sources

pytest.importorskip("fsspec", reason="the URL tests need fsspec (pip install -e '.[test]')")
pytest.importorskip("aiohttp", reason="fsspec's HTTP backend needs aiohttp (pip install -e '.[test]')")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote_fixtures import SAMPLES, assert_same, rel_path  # noqa: E402
from remote_servers import RangeServer  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_remote")
# labels of tests/tf_fixtures.py read remotely (each a different format or layout)
LABELS = ("tf1_cnn", "sharded", "partitioned", "tf2_keras", "tf2_module_slots", "v1", "v1_sharded", "saved_model",
          "all_dtypes", "many_keys")


# --- HTTP ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
def test_http_reads_every_format_like_the_local_file(http: RangeServer, tf_ckpts, label: str) -> None:
    rel = rel_path(tf_ckpts, label)
    if label == "v1_sharded":  # a glob needs a listing: served as the directory holding the shards
        rel = os.path.dirname(rel)
    assert_same(f"{http.url}/tf/{rel}", tf_ckpts[label])


@pytest.mark.parametrize("name", ["cnn.npz", "keras.safetensors"])
def test_http_reads_weights_files(http: RangeServer, served_root: Path, name: str) -> None:
    assert_same(f"{http.url}/weights/{name}", str(served_root / "weights" / name))


@pytest.mark.parametrize("suffix", ["", ".index", ".data-00000-of-00001"])
def test_http_listing_fetches_only_the_index_and_the_object_graph(http: RangeServer, big_tf2: str,
                                                                   suffix: str) -> None:
    index_size = os.path.getsize(big_tf2 + ".index")
    data_size = os.path.getsize(big_tf2 + ".data-00000-of-00001")
    assert data_size > index_size + (1 << 20)  # listing the whole shard would break the bound below
    result = CliRunner().invoke(main, ["ls", "--all", f"{http.url}/big/ckpt-1{suffix}"])
    assert result.exit_code == 0, result.output
    assert "net/kernel" in result.output and "[1024, 1024]" in result.output
    assert len(http.requests) <= 4, http.requests
    assert http.bytes_served <= index_size + (64 << 10), http.requests


def test_http_directory_follows_the_state_file(http: RangeServer, tf_ckpts) -> None:
    directory = os.path.dirname(rel_path(tf_ckpts, "tf1_cnn"))
    with open_checkpoint(f"{http.url}/tf/{directory}/") as ckpt:
        assert ckpt.prefix == f"{http.url}/tf/{rel_path(tf_ckpts, 'tf1_cnn')}"
        assert "checkpoint" in ckpt.note
    with open_checkpoint(http.url.replace("://", "://alice:pw0rd@") + f"/tf/{directory}") as ckpt:
        assert "checkpoint" in ckpt.note and "pw0rd" not in ckpt.note  # notes are printed: no credentials


def test_http_cli_ls_extract_diff_stats_graph(http: RangeServer, tmp_path: Path) -> None:
    runner = CliRunner()
    url = f"{http.url}/samples/tf1_cnn"
    local = str(SAMPLES / "tf1_cnn")
    far = runner.invoke(main, ["ls", "--stats", "--json", url])
    near = runner.invoke(main, ["ls", "--stats", "--json", local])
    assert far.exit_code == 0 and near.exit_code == 0, far.output
    far_doc, near_doc = json.loads(far.stdout), json.loads(near.stdout)
    assert far_doc["variables"] == near_doc["variables"]
    out = tmp_path / "w.npz"
    result = runner.invoke(main, ["extract", "--all", url, "-o", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out, allow_pickle=False) as got, open_checkpoint(local) as ckpt:
        assert sorted(got.files) == sorted(v.name for v in ckpt)
        for info in ckpt:
            assert np.array_equal(got[info.name], ckpt.get(info.name)), info.name
    assert runner.invoke(main, ["diff", "--all", url, local]).exit_code == 0
    graph = runner.invoke(main, ["graph", "--summary", f"{url}/model.ckpt-20.meta"])
    assert graph.exit_code == 0, graph.output
    assert "nodes\t950" in graph.stdout


@pytest.mark.parametrize("label", ["many_keys", "big"])
def test_http_stats_equal_the_local_ones_to_the_last_bit(http: RangeServer, tf_ckpts, big_tf2: str,
                                                         label: str) -> None:
    """A URL streams a tensor in other pieces than a local file: the statistics must not depend on them."""
    local = big_tf2 if label == "big" else tf_ckpts[label]
    url = f"{http.url}/big/ckpt-1" if label == "big" else f"{http.url}/tf/{rel_path(tf_ckpts, label)}"
    far = CliRunner().invoke(main, ["ls", "--stats", "--all", "--json", url])
    near = CliRunner().invoke(main, ["ls", "--stats", "--all", "--json", local])
    assert far.exit_code == near.exit_code == 0, far.output
    assert json.loads(far.stdout)["variables"] == json.loads(near.stdout)["variables"]


@pytest.mark.parametrize("slash", ["", "/"])
def test_http_graph_of_a_directory_uses_its_checkpoints_meta(http: RangeServer, slash: str) -> None:
    """``dir/`` over HTTP answers with the server's HTML index: a directory, not a graph file to parse."""
    result = CliRunner().invoke(main, ["graph", "--summary", f"{http.url}/samples/tf1_cnn{slash}"])
    assert result.exit_code == 0, result.output
    assert "nodes\t950" in result.stdout
    assert f"note: using {http.url}/samples/tf1_cnn/model.ckpt-20.meta" in result.stderr


def test_http_graph_of_a_directory_whose_state_file_fails_says_why(http: RangeServer) -> None:
    http.faults["checkpoint"] = "403"
    result = CliRunner().invoke(main, ["graph", "--summary", f"{http.url}/samples/tf1_cnn/"])
    assert result.exit_code == EXIT_REMOTE, result.output
    assert result.stderr == f"Error: {http.url}/samples/tf1_cnn/checkpoint: reading failed (HTTP 403, access denied)\n"


@pytest.mark.parametrize("path", ["samples/tf1_cnn", "samples/tf1_cnn/model.ckpt-20",
                                  "samples/tf1_cnn/model.ckpt-20.index"])
def test_http_graph_note_names_the_meta_without_credentials(http: RangeServer, path: str) -> None:
    url = http.url.replace("://", "://alice:pw0rd@") + f"/{path}"
    result = CliRunner().invoke(main, ["graph", "--summary", url])
    assert result.exit_code == 0, result.output
    assert f"note: using {http.url}/samples/tf1_cnn/model.ckpt-20.meta" in result.stderr
    assert "pw0rd" not in result.stderr and "alice" not in result.stderr


def test_http_extract_streams_big_tensor_in_parallel_ranges(http: RangeServer, big_tf2: str, tmp_path: Path) -> None:
    out = tmp_path / "big.safetensors"
    result = CliRunner().invoke(main, ["extract", "--all", f"{http.url}/big/ckpt-1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    from safetensors.numpy import load_file

    got = load_file(str(out))
    with open_checkpoint(big_tf2) as ckpt:
        for info in ckpt:
            if info.dtype != "string":
                assert np.array_equal(got[info.name], ckpt.get(info.name)), info.name
    data_size = os.path.getsize(big_tf2 + ".data-00000-of-00001")
    assert http.bytes_served < os.path.getsize(big_tf2 + ".index") + 2 * data_size


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_http_extract_reads_a_run_of_tensors_as_one_stream(http: RangeServer, medium_tf2: str, tmp_path: Path,
                                                          fmt: str) -> None:
    """24 tensors of 64 KiB stored one after another (not in the order of their names): a few ranged requests
    for them all, not one each (a round trip per tensor on a bucket); a bfloat16 (widened for npz) and a
    string stored between them read apart. Values as TensorFlow reads them."""
    tf = pytest.importorskip("tensorflow")
    out = tmp_path / f"medium.{fmt}"
    result = CliRunner().invoke(main, ["extract", "--all", f"{http.url}/big/medium-1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    data_gets = [r for r in http.requests if r[0] == "GET" and r[1].endswith("medium-1.data-00000-of-00001")]
    assert len(data_gets) <= 5, data_gets  # 26 tensors: one request each before
    reader = tf.train.load_checkpoint(medium_tf2)
    if fmt == "npz":
        with np.load(out, allow_pickle=False) as got:
            values = {name: got[name] for name in got.files}
    else:
        from safetensors.numpy import load_file

        values = load_file(str(out))
    with open_checkpoint(medium_tf2) as ckpt:
        expected = {info.name: reader.get_tensor(info.key) for info in ckpt if info.dtype != "string"}
    assert set(expected) <= set(values) and len(expected) == 26
    for name, value in expected.items():
        if value.dtype.name == "bfloat16" and fmt == "npz":
            value = value.astype(np.float32)  # widened, exactly
        assert values[name].dtype == value.dtype and values[name].tobytes() == value.tobytes(), name


def test_http_stats_read_a_run_of_tensors_as_one_stream(http: RangeServer, medium_tf2: str) -> None:
    """ls --stats of 26 tensors: the same report as for the local file, in a few requests, not one per tensor."""
    url = f"{http.url}/big/medium-1"
    far = CliRunner().invoke(main, ["ls", "--stats", "--all", "--json", url])
    assert far.exit_code == 0, far.output
    data_gets = [r for r in http.requests if r[0] == "GET" and r[1].endswith("medium-1.data-00000-of-00001")]
    assert len(data_gets) <= 5, data_gets  # 28 before
    near = CliRunner().invoke(main, ["ls", "--stats", "--all", "--json", medium_tf2])
    assert json.loads(far.stdout.replace(http.url + "/big", os.path.dirname(medium_tf2))) == json.loads(near.stdout)


def test_http_diff_reads_runs_of_tensors_as_one_stream(http: RangeServer, medium_tf2: str) -> None:
    """diff of a URL and its local copy: every value compared and equal, the URL's in a few requests."""
    result = CliRunner().invoke(main, ["diff", "--all", "--json", f"{http.url}/big/medium-1", medium_tf2])
    assert result.exit_code == 0, result.output
    data_gets = [r for r in http.requests if r[0] == "GET" and r[1].endswith("medium-1.data-00000-of-00001")]
    assert len(data_gets) <= 5, data_gets  # 28 before
    report = json.loads(result.stdout)
    assert report["equal"] and len(report["values"]) >= 26, report


def test_http_rewrite_reads_runs_of_tensors_as_one_stream(http: RangeServer, medium_tf2: str, tmp_path: Path) -> None:
    """rewrite --cast from a URL: the tensors in a few requests, not one each; TensorFlow reads the cast values."""
    tf = pytest.importorskip("tensorflow")
    out = tmp_path / "model.ckpt"
    result = CliRunner().invoke(main, ["rewrite", f"{http.url}/big/medium-1", "-o", str(out), "--cast",
                                       "float32=float16"])
    assert result.exit_code == 0, result.output
    data_gets = [r for r in http.requests if r[0] == "GET" and r[1].endswith("medium-1.data-00000-of-00001")]
    assert len(data_gets) <= 5, data_gets  # 28 before
    source, written = tf.train.load_checkpoint(medium_tf2), tf.train.load_checkpoint(str(out))
    for i in range(26):
        key = f"net/layers/{i}/.ATTRIBUTES/VARIABLE_VALUE"
        if source.get_variable_to_dtype_map()[key] == tf.float32:
            expected = source.get_tensor(key).astype(np.float16)
            assert written.get_tensor(key).tobytes() == expected.tobytes(), key


def test_http_show_reads_runs_of_tensors_as_one_stream(http: RangeServer, medium_tf2: str) -> None:
    """show of ten tensors stored one after another, asked in that order: the local values, in one request."""
    names = [f"net/layers/{i}" for i in range(14, 24)]
    far = CliRunner().invoke(main, ["show", "--json", f"{http.url}/big/medium-1", *names])
    assert far.exit_code == 0, far.output
    data_gets = [r for r in http.requests if r[0] == "GET" and r[1].endswith("medium-1.data-00000-of-00001")]
    assert len(data_gets) <= 2, data_gets  # (the object graph, then the run): 11 before
    near = CliRunner().invoke(main, ["show", "--json", medium_tf2, *names])
    assert far.stdout.replace(http.url + "/big", os.path.dirname(medium_tf2)) == near.stdout


@pytest.mark.parametrize("damage", ["flip", "cut"])
def test_http_extract_of_a_damaged_run_fails_like_a_local_one(http: RangeServer, served_root: Path, medium_tf2: str,
                                                             tmp_path: Path, damage: str) -> None:
    """A byte changed in, or the shard cut inside, a tensor in the middle of a run read as one stream: the
    same one-line error as for the local copy, naming that tensor, and no output."""
    copy = served_root / "weights" / f"medium-{damage}"
    copy.mkdir(exist_ok=True)
    shutil.copy(medium_tf2 + ".index", copy / "medium-1.index")
    data = bytearray(Path(medium_tf2 + ".data-00000-of-00001").read_bytes())
    with open_checkpoint(medium_tf2) as ckpt:
        middle = ckpt.info("net/layers/15")
        offset = ckpt._reader._entries[middle.key].offset  # noqa: SLF001 - the byte to damage
    if damage == "flip":
        data[offset + 100] ^= 0x10
    else:
        del data[offset + 100:]
    (copy / "medium-1.data-00000-of-00001").write_bytes(bytes(data))
    far = CliRunner().invoke(main, ["extract", "--scopes", "net", f"{http.url}/weights/medium-{damage}/medium-1",
                                    "-o", str(tmp_path / "far.npz")])
    near = CliRunner().invoke(main, ["extract", "--scopes", "net", str(copy / "medium-1"), "-o",
                                     str(tmp_path / "near.npz")])
    assert far.exit_code == near.exit_code == 4, far.output
    assert far.stderr.replace(f"{http.url}/weights", str(served_root / "weights")) == near.stderr
    assert middle.key in far.stderr and ("checksum mismatch" if damage == "flip" else "file too short") in far.stderr
    assert list(tmp_path.iterdir()) == []


# --- faults ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "code", "words"), [
    ("403", EXIT_REMOTE, "HTTP 403"), ("500", EXIT_REMOTE, "HTTP 500"), ("404", EXIT_NOT_FOUND, "no such file"),
])
def test_http_errors_are_one_line_naming_the_url_without_credentials(http: RangeServer, fault: str, code: int,
                                                                    words: str) -> None:
    http.faults["model.ckpt-20.index"] = fault
    url = http.url.replace("://", "://alice:s3cret@") + "/samples/tf1_cnn/model.ckpt-20.index"
    result = CliRunner().invoke(main, ["ls", url])
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "s3cret" not in result.stderr and "alice" not in result.stderr
    assert "/samples/tf1_cnn/model.ckpt-20.index" in lines[0] and words in lines[0]


def test_http_truncated_body_leaves_no_output(http: RangeServer, tmp_path: Path) -> None:
    http.faults["ckpt-1.data-00000-of-00001"] = "truncate"
    out = tmp_path / "big.npz"
    result = CliRunner().invoke(main, ["extract", "--all", f"{http.url}/big/ckpt-1", "-o", str(out)])
    assert result.exit_code in (EXIT_REMOTE, 4), result.output
    assert "Error: " in result.stderr and "ckpt-1.data-00000-of-00001" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_http_timeout_is_a_remote_error(http: RangeServer) -> None:
    import aiohttp

    http.faults["ckpt-1.index"] = "slow"
    http.slow_seconds = 3
    options = {"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=0.5)}}
    with pytest.raises(RemoteError, match=r"ckpt-1\.index.*timed out"):
        open_checkpoint(f"{http.url}/big/ckpt-1.index", options)


@pytest.mark.parametrize(("option", "words"), [
    ("bogus_option=1", "unexpected keyword argument 'bogus_option'"),
    ('client_kwargs={"trust_env": false}', "Cannot connect to host"),  # read through fsspec: nothing listens
])
def test_http_failure_through_fsspec_is_a_remote_error_not_a_missing_file(http: RangeServer, option: str,
                                                                          words: str) -> None:
    """fsspec's HTTP info reports every failure as FileNotFoundError: only a 404 behind it means no file."""
    from remote_servers import free_port

    base = http.url if option.startswith("bogus") else f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["ls", "--storage-option", option, f"{base}/big/ckpt-1"])
    assert result.exit_code == EXIT_REMOTE, result.output
    assert result.stderr.startswith(f"Error: {base}/big/ckpt-1.index: reading its size failed (")
    assert words in result.stderr and len(result.stderr.splitlines()) == 1


def test_missing_url_is_not_found(http: RangeServer) -> None:
    with pytest.raises(NotFoundError, match="nothing-here"):
        open_checkpoint(f"{http.url}/samples/nothing-here")


# --- S3 (moto's server) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
def test_s3_reads_every_format_like_the_local_file(s3: str, tf_ckpts, label: str) -> None:
    assert_same(f"s3://ckpts/tf/{rel_path(tf_ckpts, label)}", tf_ckpts[label])


def test_s3_directory_without_state_file_takes_the_newest_step(s3: str, tf_ckpts) -> None:
    with open_checkpoint("s3://ckpts/tf/many_keys/v2") as ckpt:
        assert ckpt.prefix == "s3://ckpts/tf/many_keys/v2/model.ckpt-1"
    with open_checkpoint("s3://ckpts/tf/tf1_cnn/") as ckpt:  # via its state file
        assert ckpt.prefix.endswith("tf1_cnn/model.ckpt-20")


@pytest.mark.parametrize("where", ["http", "s3"])
def test_folder_of_numbered_exports_at_a_url_uses_the_newest(request, served_root: Path, tf_ckpts,
                                                             where: str) -> None:
    """TF Serving's layout (export/1, export/2): the newest numbered export, found from the folder's one
    listing, as locally."""
    exports = served_root / "weights" / "exports"
    for version in ("1", "2"):
        shutil.copytree(tf_ckpts["saved_model"], exports / version, dirs_exist_ok=True)
    if where == "http":
        base = f"{request.getfixturevalue('http').url}/weights/exports"
    else:
        fs = _s3fs(request.getfixturevalue("s3"))
        fs.put(str(exports), "ckpts/weights/", recursive=True)
        base = "s3://ckpts/weights/exports"
    far = CliRunner().invoke(main, ["ls", "--json", base])
    near = CliRunner().invoke(main, ["ls", "--json", str(exports)])
    assert far.exit_code == near.exit_code == 0, far.output
    note = json.loads(far.stdout)["checkpoint"]["note"]
    assert note == json.loads(near.stdout)["checkpoint"]["note"].replace(str(exports), base)
    assert note.startswith(f"using {base}/2 (the newest of 2 numbered exports)"), note
    assert json.loads(far.stdout)["variables"] == json.loads(near.stdout)["variables"]


def test_s3_cli_with_storage_option_endpoint(s3: str, tmp_path: Path) -> None:
    env_endpoint = os.environ.pop("AWS_ENDPOINT_URL")
    try:
        result = CliRunner().invoke(main, ["ls", "--storage-option", f"endpoint_url={s3}",
                                           "s3://ckpts/samples/tf2_keras"])
    finally:
        os.environ["AWS_ENDPOINT_URL"] = env_endpoint
    assert result.exit_code == 0, result.output
    assert "_kernel" in result.stdout


def test_redact_removes_credentials_and_signatures() -> None:
    text = "s3://k:secret@b/x and https://u:p@h/m.index?X-Amz-Signature=abc, then http://h/ok"
    assert sources.redact(text) == "s3://b/x and https://h/m.index, then http://h/ok"
    assert sources.redact("gs://b/m.index?generation=5&sig=x: gone") == "gs://b/m.index: gone"


def test_redact_keeps_the_glob_of_v1_shards() -> None:
    text = "s3://b/run/model.ckpt-7-?????-of-00003: no such file"
    assert sources.redact(text) == text


def test_v1_sharded_directory_note_names_the_shard_pattern_like_locally(http: RangeServer, tf_ckpts) -> None:
    """The state file names ``model.ckpt-7-?????-of-00003``: its ``?`` is a glob, not a query to hide."""
    directory = os.path.dirname(rel_path(tf_ckpts, "v1_sharded"))
    far = CliRunner().invoke(main, ["ls", "--json", f"{http.url}/tf/{directory}"])
    assert far.exit_code == 0, far.output
    note = json.loads(far.stdout)["checkpoint"]["note"]
    here = f"{http.url}/tf/{directory}"
    assert note == f"using {here}/model.ckpt-7-?????-of-00003 from {here}/checkpoint"


def test_storage_options_are_scoped() -> None:
    with sources.using({"anon": True}):
        assert sources.current_options() == {"anon": True}
    assert sources.current_options() == {}


def _s3fs(endpoint: str):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)


def test_s3_extract_uploads_when_complete_and_keeps_existing_objects(s3: str, tmp_path: Path) -> None:
    runner = CliRunner()
    target = "s3://ckpts/out/cnn.safetensors"
    result = runner.invoke(main, ["extract", str(SAMPLES / "tf1_cnn"), "-o", target])
    assert result.exit_code == 0, result.output
    local = tmp_path / "cnn.safetensors"
    _s3fs(s3).get_file(target.removeprefix("s3://"), str(local))
    from safetensors.numpy import load_file

    got = load_file(str(local))
    with open_checkpoint(str(SAMPLES / "tf1_cnn")) as ckpt:
        assert sorted(got) == sorted(info.name for info in ckpt if info.role == "model")
        for name, value in got.items():
            assert np.array_equal(value, ckpt.get(name)), name
    again = runner.invoke(main, ["extract", str(SAMPLES / "tf1_cnn"), "-o", target])
    assert again.exit_code == 5 and "already exists" in again.stderr
    assert runner.invoke(main, ["extract", "--force", str(SAMPLES / "tf1_cnn"), "-o", target]).exit_code == 0


def test_s3_extract_failure_leaves_no_object(s3: str, http: RangeServer) -> None:
    http.faults["ckpt-1.data-00000-of-00001"] = "truncate"
    target = "s3://ckpts/out/failed.npz"
    result = CliRunner().invoke(main, ["extract", "--all", f"{http.url}/big/ckpt-1", "-o", target])
    assert result.exit_code != 0 and "Error: " in result.stderr
    assert not _s3fs(s3).exists(target.removeprefix("s3://"))


def test_s3_listing_reads_only_the_index_and_object_graph(s3: str, big_tf2: str) -> None:
    with open_checkpoint("s3://ckpts/big/ckpt-1") as ckpt:
        sources_opened = list(ckpt._reader._files.values())
        assert {info.name for info in ckpt} >= {"net/kernel", "net/bias"}
        fetched = sum(source.fetched for source in sources_opened)
    assert fetched <= 64 << 10  # the object graph entry only, none of the 4 MiB kernel


def test_http_server_ignoring_range_still_reads_the_right_bytes(http: RangeServer) -> None:
    http.faults["*"] = "norange"
    assert_same(f"{http.url}/samples/tf2_keras", str(SAMPLES / "tf2_keras"))


def test_cache_dir_serves_repeated_reads_until_the_object_changes(http: RangeServer, served_root: Path,
                                                                  tmp_path: Path) -> None:
    mutable = served_root / "weights" / "mutable"
    shutil.copytree(SAMPLES / "tf1_cnn", mutable, dirs_exist_ok=True)
    url = f"{http.url}/weights/mutable/model.ckpt-20"
    args = ["ls", "--stats", "--cache-dir", str(tmp_path / "cache"), url]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert http.bytes_served > 0
    http.reset()
    remote.forget()
    second = CliRunner().invoke(main, args)
    assert second.stdout == first.stdout
    assert all(method == "HEAD" for method, _, _ in http.requests), http.requests  # versions only, no bytes
    os.utime(mutable / "model.ckpt-20.index", (1, 1))  # a new version of the index (new ETag)
    http.reset()
    remote.forget()
    third = CliRunner().invoke(main, args)
    assert third.stdout == first.stdout
    assert ("GET", "/weights/mutable/model.ckpt-20.index", os.path.getsize(mutable / "model.ckpt-20.index")) \
        in http.requests
    no_cache = CliRunner().invoke(main, ["ls", "--no-cache", url])
    assert no_cache.exit_code == 0 and sources.cache_dir() is None


def test_http_short_data_shard_is_reported_like_a_local_one(http: RangeServer, served_root: Path,
                                                            big_tf2: str) -> None:
    short = served_root / "weights" / "short"
    short.mkdir(exist_ok=True)
    shutil.copy(big_tf2 + ".index", short / "ckpt-1.index")
    with open(big_tf2 + ".data-00000-of-00001", "rb") as f:
        (short / "ckpt-1.data-00000-of-00001").write_bytes(f.read(3 << 20))  # cut inside the 4 MiB kernel
    result = CliRunner().invoke(main, ["ls", "--stats", "--all", f"{http.url}/weights/short/ckpt-1"])
    local = CliRunner().invoke(main, ["ls", "--stats", "--all", str(short / "ckpt-1")])
    assert result.exit_code == local.exit_code == 4, result.output
    assert "file too short for '" in result.stderr
    assert result.stderr.replace(f"{http.url}/weights", str(served_root / "weights")) == local.stderr
