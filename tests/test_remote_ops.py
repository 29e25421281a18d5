"""verify, doctor, rewrite and the Keras readers on URLs, against the real servers of tests/remote_fixtures.py
(HTTP with Range requests, moto's S3): reports equal to the local ones, bytes and requests counted, faults
as one line naming the URL (no credentials), nothing partial written; and the backends that are not
installed (gs://, hf://) named with the extra to install."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ckpttools import open_checkpoint
from ckpttools.cli import main
from ckpttools.errors import (
    EXIT_BAD_DATA,
    EXIT_MISSING_DEPENDENCY,
    EXIT_OUTPUT,
    EXIT_REMOTE,
    MissingDependencyError,
    RemoteError,
)
from ckpttools.ops.verify import verify
from ckpttools.storage import sources

pytest.importorskip("fsspec", reason="the URL tests need fsspec (pip install -e '.[test]')")
pytest.importorskip("aiohttp", reason="fsspec's HTTP backend needs aiohttp (pip install -e '.[test]')")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from remote_fixtures import SAMPLES, assert_same, rel_path  # noqa: E402
from remote_servers import RangeServer  # noqa: E402

pytestmark = pytest.mark.usefixtures("fresh_remote")
KERAS = ("small_cnn.keras", "small_cnn.weights.h5", "small_cnn_legacy.h5")
VERIFIED = ("tf1_cnn", "sharded", "tf2_keras", "v1", "saved_model", "all_dtypes")


def _run(*args: str):
    return CliRunner().invoke(main, list(args))


def _json_here(result, far: str, near: str) -> dict:
    """A --json report with the remote location written as the local one, to compare the two."""
    assert result.exit_code in (0, EXIT_BAD_DATA, 1), result.output
    return json.loads(result.stdout.replace(far, near))


def _same_report(command: str, url: str, local: str, *extra: str) -> dict:
    """Run ``command`` on the URL and on the local copy: the JSON reports must be the same."""
    far = _run(command, "--json", *extra, url)
    near = _run(command, "--json", *extra, local)
    assert far.exit_code == near.exit_code, far.output
    far_url_root, local_root = url.rsplit("/", 1)[0], local.rsplit("/", 1)[0]
    assert _json_here(far, far_url_root, local_root) == json.loads(near.stdout)
    return json.loads(near.stdout)


# --- verify ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label", VERIFIED)
def test_http_verify_reports_like_the_local_file(http: RangeServer, tf_ckpts, label: str) -> None:
    report = _same_report("verify", f"{http.url}/tf/{rel_path(tf_ckpts, label)}", tf_ckpts[label])
    assert report["intact"] and report["checkpoints"][0]["tensors_checked"] > 0


@pytest.mark.parametrize("name", ["weights/cnn.npz", "weights/keras.safetensors",
                                  *(f"samples/keras/{name}" for name in KERAS)])
def test_http_verify_weights_files(http: RangeServer, served_root: Path, name: str) -> None:
    report = _same_report("verify", f"{http.url}/{name}", str(served_root / name))
    assert report["intact"], report


def test_s3_verify_directory_all_checkpoints(s3: str, tf_ckpts) -> None:
    """Every checkpoint the state file lists; its absolute local paths (a TF1 Saver's) are found by name."""
    local = os.path.dirname(tf_ckpts["tf1_cnn"])
    url = f"s3://ckpts/tf/{os.path.dirname(rel_path(tf_ckpts, 'tf1_cnn'))}"
    named = [line.split('"')[1] for line in Path(local, "checkpoint").read_text().splitlines()]
    assert all(os.path.isabs(path) for path in named)
    far = _run("verify", "--all", "--json", url)
    near = _run("verify", "--all", "--json", local)
    assert far.exit_code == near.exit_code == 0, far.output
    far_doc, near_doc = _json_here(far, url, local), json.loads(near.stdout)
    assert far_doc["checkpoints"] == near_doc["checkpoints"] and len(far_doc["checkpoints"]) == 2
    warned = far_doc.pop("problems")  # at a URL, a local path in the state file is "from another machine"
    assert sorted(p["what"].split()[1].rstrip(",") for p in warned) == sorted(set(named))
    assert near_doc.pop("problems") == []
    assert {p["severity"] for p in warned} == {"warning"}
    assert far_doc == near_doc


def test_http_verify_streams_each_byte_once(http: RangeServer, big_tf2: str) -> None:
    index_size = os.path.getsize(big_tf2 + ".index")
    data_size = os.path.getsize(big_tf2 + ".data-00000-of-00001")
    result = _run("verify", f"{http.url}/big/ckpt-1")
    assert result.exit_code == 0, result.output
    assert "intact" in result.stdout
    assert http.bytes_served <= index_size + data_size + (64 << 10), http.requests
    assert len(http.requests) <= 12, http.requests  # the index, the object graph, the shard in 4 MiB ranges


@pytest.fixture
def damaged(served_root: Path, big_tf2: str):
    """A copy of the big checkpoint under weights/damaged/, for a test to damage; removed afterwards."""
    directory = served_root / "weights" / "damaged"
    directory.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(big_tf2 + suffix, directory / f"ckpt-1{suffix}")
    yield directory
    shutil.rmtree(directory)


def test_http_verify_finds_a_flipped_byte_like_locally(http: RangeServer, damaged: Path) -> None:
    shard = damaged / "ckpt-1.data-00000-of-00001"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40  # inside the 4 MiB kernel
    shard.write_bytes(bytes(data))
    report = _same_report("verify", f"{http.url}/weights/damaged/ckpt-1", str(damaged / "ckpt-1"))
    problems = report["checkpoints"][0]["problems"]
    assert not report["intact"]
    assert [(p["cause"], p["variable"]) for p in problems] == [("checksum", "net/kernel/.ATTRIBUTES/VARIABLE_VALUE")]


def test_http_verify_finds_a_short_shard_like_locally(http: RangeServer, damaged: Path) -> None:
    shard = damaged / "ckpt-1.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[: 3 << 20])
    report = _same_report("verify", f"{http.url}/weights/damaged/ckpt-1", str(damaged / "ckpt-1"))
    assert [p["cause"] for p in report["checkpoints"][0]["problems"]] == ["truncated"]


@pytest.mark.parametrize(("fault", "words"), [("403", "HTTP 403"), ("truncate", "ckpt-1.data-00000-of-00001")])
def test_http_verify_fault_is_one_line_without_credentials(http: RangeServer, fault: str, words: str) -> None:
    http.faults["ckpt-1.data-00000-of-00001"] = fault
    result = _run("verify", http.url.replace("://", "://alice:s3cret@") + "/big/ckpt-1")
    assert result.exit_code == EXIT_REMOTE, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and words in lines[0], result.stderr
    assert "/big/ckpt-1.data-00000-of-00001" in lines[0] and "s3cret" not in result.stderr


def test_http_verify_timeout_is_a_remote_error(http: RangeServer) -> None:
    import aiohttp

    http.faults["ckpt-1.data-00000-of-00001"] = "slow"
    http.slow_seconds = 3
    with sources.using({"client_kwargs": {"timeout": aiohttp.ClientTimeout(total=0.5)}}):
        with pytest.raises(RemoteError, match=r"ckpt-1\.data-00000-of-00001.*timed out"):
            verify(f"{http.url}/big/ckpt-1")


# --- doctor ----------------------------------------------------------------------------------------------


def test_http_doctor_source_and_target_urls(http: RangeServer) -> None:
    base = f"{http.url}/samples/tf1_cnn/model.ckpt-20"
    local = str(SAMPLES / "tf1_cnn" / "model.ckpt-20")
    for source, target in ((base, local + ".meta"), (local, base + ".meta"), (base, f"{http.url}/samples/tf2_keras")):
        far = _run("doctor", "--json", source, "--against", target)
        near = _run("doctor", "--json", source.replace(f"{http.url}/samples", str(SAMPLES)), "--against",
                    target.replace(f"{http.url}/samples", str(SAMPLES)))
        assert far.exit_code == near.exit_code, far.output
        assert _json_here(far, f"{http.url}/samples", str(SAMPLES)) == json.loads(near.stdout)
    assert json.loads(_run("doctor", "--json", base, "--against", base + ".meta").stdout)["ok"]


# --- Keras files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [(), ("--quick",)])
def test_http_verify_of_a_keras_file_reads_its_zip_directory_once(http: RangeServer, monkeypatch: pytest.MonkeyPatch,
                                                                  options: tuple[str, ...]) -> None:
    """verify opens the archive once for both the check that it opens and the member scan; the Keras reader
    (config, weights) opens it once more: two reads of the central directory in all, whatever the mode."""
    import zipfile

    opened: list[object] = []

    class CountingZipFile(zipfile.ZipFile):
        def __init__(self, file: object, *args: object, **kwargs: object) -> None:
            opened.append(file)
            super().__init__(file, *args, **kwargs)

    monkeypatch.setattr(zipfile, "ZipFile", CountingZipFile)
    result = _run("verify", *options, f"{http.url}/samples/keras/small_cnn.keras")
    assert result.exit_code == 0, result.output
    assert "intact" in result.stdout
    assert len(opened) == 2, opened


@pytest.mark.parametrize("name", KERAS)
def test_http_and_s3_read_keras_files_like_the_local_file(http: RangeServer, s3: str, name: str) -> None:
    local = str(SAMPLES / "keras" / name)
    assert_same(f"{http.url}/samples/keras/{name}", local)
    assert_same(f"s3://ckpts/samples/keras/{name}", local)


def test_http_keras_listing_reads_only_the_directory_and_the_weights_metadata(http: RangeServer,
                                                                              served_root: Path) -> None:
    """A .keras holding 4 MiB of assets before its weights: listing must not fetch them (nor the values)."""
    import zipfile

    padded = served_root / "weights" / "padded.keras"
    with zipfile.ZipFile(SAMPLES / "keras" / "small_cnn.keras") as source, zipfile.ZipFile(padded, "w") as out:
        for info in source.infolist():
            if info.filename == "model.weights.h5":
                out.writestr("assets/blob.bin", os.urandom(4 << 20))
            out.writestr(info, source.read(info))
    result = _run("ls", "--all", f"{http.url}/weights/padded.keras")
    assert result.exit_code == 0 and "logits/kernel" in result.stdout, result.output
    assert http.bytes_served <= 256 << 10 and len(http.requests) <= 8, http.requests
    assert_same(f"{http.url}/weights/padded.keras", str(padded))


def test_http_damaged_keras_member_is_refused_before_any_value(http: RangeServer, served_root: Path) -> None:
    data = bytearray((SAMPLES / "keras" / "small_cnn.keras").read_bytes())
    data[len(data) // 2] ^= 0x01  # inside model.weights.h5, stored in place
    (served_root / "weights" / "damaged.keras").write_bytes(bytes(data))
    result = _run("verify", f"{http.url}/weights/damaged.keras")
    assert result.exit_code == EXIT_BAD_DATA and "NOT intact" in result.stdout, result.output


# --- rewrite ---------------------------------------------------------------------------------------------


def test_http_rewrite_to_a_local_prefix_writes_what_the_local_source_gives(http: RangeServer, tmp_path: Path) -> None:
    options = ["--strip-optimizer", "--cast", "float32=bfloat16"]
    (tmp_path / "far").mkdir()
    far = _run("rewrite", f"{http.url}/samples/tf1_cnn", "-o", str(tmp_path / "far" / "model.ckpt"), *options)
    (tmp_path / "near").mkdir()
    near = _run("rewrite", str(SAMPLES / "tf1_cnn"), "-o", str(tmp_path / "near" / "model.ckpt"), *options)
    assert far.exit_code == near.exit_code == 0, far.output
    for suffix in (".index", ".data-00000-of-00001"):  # the writer is deterministic: the same bytes
        assert (tmp_path / "far" / f"model.ckpt{suffix}").read_bytes() == \
            (tmp_path / "near" / f"model.ckpt{suffix}").read_bytes()


@pytest.mark.parametrize("where", ["http", "s3"])
def test_rewrite_from_a_url_copies_the_meta_graph_like_the_local_source(request, where: str, tmp_path: Path) -> None:
    """The source's .meta goes with the output when no variable is renamed or removed, from a URL too."""
    base = f"{request.getfixturevalue('http').url}/samples" if where == "http" else \
        (request.getfixturevalue("s3") and "s3://ckpts/samples")
    out = tmp_path / "model.ckpt"
    kept = _run("rewrite", f"{base}/tf1_cnn", "-o", str(out), "--cast", "float32=bfloat16", "--json")
    assert kept.exit_code == 0, kept.output
    assert json.loads(kept.stdout)["meta"] == f"{out}.meta"
    assert (tmp_path / "model.ckpt.meta").read_bytes() == (SAMPLES / "tf1_cnn" / "model.ckpt-20.meta").read_bytes()
    dropped = _run("rewrite", f"{base}/tf1_cnn", "-o", str(out), "--strip-optimizer", "--force", "--json")
    assert dropped.exit_code == 0, dropped.output
    report = json.loads(dropped.stdout)
    assert report["meta"] is None and not (tmp_path / "model.ckpt.meta").exists()
    assert f"{base}/tf1_cnn/model.ckpt-20.meta not copied" in " ".join(report["notes"])


@pytest.mark.parametrize("where", ["http", "s3"])
def test_rewrite_average_last_of_a_url_directory_averages_like_the_local_one(request, tf_ckpts, where: str,
                                                                            tmp_path: Path) -> None:
    """--average-last finds the newest checkpoints of a URL directory (its state file, by file name, since the
    paths it names are the writing machine's), and averages them to the same values as locally."""
    directory = os.path.dirname(rel_path(tf_ckpts, "tf1_cnn"))
    base = f"{request.getfixturevalue('http').url}/tf" if where == "http" else \
        (request.getfixturevalue("s3") and "s3://ckpts/tf")
    (tmp_path / "far").mkdir()
    far = _run("rewrite", f"{base}/{directory}", "--average-last", "2", "-o", str(tmp_path / "far" / "m"))
    (tmp_path / "near").mkdir()
    near = _run("rewrite", os.path.dirname(tf_ckpts["tf1_cnn"]), "--average-last", "2",
                "-o", str(tmp_path / "near" / "m"))
    assert far.exit_code == near.exit_code == 0, far.output
    assert f"averaging 2 checkpoints: {base}/{directory}/model.ckpt-20, {base}/{directory}/model.ckpt-10" \
        in far.stderr
    assert_same(str(tmp_path / "far" / "m"), str(tmp_path / "near" / "m"))  # (tensors may lie in another order)


def test_http_transfer_graph_imports_a_meta_at_a_url(http: RangeServer, tmp_path: Path) -> None:
    """--graph META at a URL: TensorFlow imports a local copy; its Saver restores the source's values."""
    tf = pytest.importorskip("tensorflow")
    out = str(tmp_path / "model.ckpt")
    url = f"{http.url}/samples/tf1_cnn"
    result = _run("transfer", "--from", url, "--graph", f"{url}/model.ckpt-20.meta", "-o", out)
    assert result.exit_code == 0, result.output
    source = tf.train.load_checkpoint(str(SAMPLES / "tf1_cnn" / "model.ckpt-20"))
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        v1.train.import_meta_graph(out + ".meta").restore(session, out)
        values = {v.op.name: session.run(v) for v in v1.global_variables()}
    assert values["cnn/conv_block1/conv/kernel"].tobytes() == source.get_tensor("cnn/conv_block1/conv/kernel").tobytes()
    missing = _run("transfer", "--from", url, "--graph", f"{url}/nothing.meta", "-o", out, "--force")
    assert missing.exit_code == 3 and f"{url}/nothing.meta: no such meta graph file" in missing.stderr


def test_map_file_and_error_log_at_urls_are_read_like_local_files(http: RangeServer, served_root: Path,
                                                                   tmp_path: Path) -> None:
    side = served_root / "weights" / "side"
    side.mkdir(exist_ok=True)
    (side / "rules.map").write_text("# rename the scope\ncnn/=net/\n")
    (side / "restore_error.txt").write_text("Key cnn/logits/bias not found in checkpoint\n")
    url = f"{http.url}/weights/side"
    for map_file in (str(side / "rules.map"), f"{url}/rules.map"):
        plan = _run("rewrite", str(SAMPLES / "tf1_cnn"), "--map-file", map_file, "--dry-run", "--json")
        assert plan.exit_code == 0, plan.output
        assert "net/logits/bias" in {entry["out_key"] for entry in json.loads(plan.stdout)["plan"]["variables"]}
    far = _run("doctor", str(SAMPLES / "tf1_cnn"), "--error", f"{url}/restore_error.txt", "--json")
    near = _run("doctor", str(SAMPLES / "tf1_cnn"), "--error", str(side / "restore_error.txt"), "--json")
    assert far.exit_code == near.exit_code and far.stdout.replace(url, str(side)) == near.stdout
    missing = _run("rewrite", str(SAMPLES / "tf1_cnn"), "--map-file", f"{url}/none.map", "--dry-run")
    assert missing.exit_code == 3 and f"{url}/none.map: no such map file" in missing.stderr


def test_http_rewrite_failure_leaves_nothing(http: RangeServer, tmp_path: Path) -> None:
    http.faults["ckpt-1.data-00000-of-00001"] = "truncate"
    result = _run("rewrite", f"{http.url}/big/ckpt-1", "-o", str(tmp_path / "model.ckpt"))
    assert result.exit_code == EXIT_REMOTE and "ckpt-1.data-00000-of-00001" in result.stderr, result.output
    assert list(tmp_path.iterdir()) == []


def test_rewrite_to_a_url_is_refused_before_reading(http: RangeServer) -> None:
    result = _run("rewrite", f"{http.url}/samples/tf1_cnn", "-o", "s3://alice:s3cret@ckpts/out/model.ckpt")
    assert result.exit_code == EXIT_OUTPUT, result.output
    assert "write it locally, then upload" in result.stderr and "s3cret" not in result.stderr
    assert http.requests == []


# --- backends that are not installed ---------------------------------------------------------------------


@pytest.mark.parametrize(("url", "module", "extra"), [
    ("gs://bucket/run/model.ckpt-1", "gcsfs", "ckpttools[gcs]"), ("gcs://bucket/run", "gcsfs", "ckpttools[gcs]"),
    ("hf://datasets/org/name/model.ckpt", "huggingface_hub", "ckpttools[hf]"),
])
def test_missing_backend_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch, url: str, module: str,
                                                     extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails, installed or not
    with pytest.raises(MissingDependencyError, match=r"pip install '" + extra.replace("[", r"\[")):
        open_checkpoint(url)
    result = _run("ls", url.replace("://", "://user:s3cret@"))
    assert result.exit_code == EXIT_MISSING_DEPENDENCY and extra in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "s3cret" not in result.stderr


@pytest.mark.parametrize(("url", "backend"), [("gs://bucket/x", "gcsfs.GCSFileSystem"),
                                              ("hf://datasets/org/name/x", "huggingface_hub.HfFileSystem")])
def test_gs_and_hf_resolve_to_their_fsspec_backend(url: str, backend: str) -> None:
    """fsspec maps the scheme to the backend ckpttools names in its install hint (used when installed)."""
    from fsspec.registry import known_implementations

    assert known_implementations[url.split("://")[0]]["class"] == backend
    module = backend.split(".")[0]
    if module not in sys.modules and not _importable(module):
        pytest.skip(f"{module} is not installed: only the registry entry and the install hint are checked")
    import importlib

    from ckpttools.storage import remote

    registered = getattr(importlib.import_module(module), backend.split(".")[1])
    fs, path = remote.open_fs(url, {"token": "anon"} if module == "gcsfs" else {})
    assert isinstance(fs, registered) and path == url.split("://")[1]  # (gcsfs builds a subclass of its own)


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# --- streaming -------------------------------------------------------------------------------------------


def test_http_stream_is_parallel_parts_handed_over_in_slices(http: RangeServer, big_tf2: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Large reads: one ranged request per PART, the bytes handed over in views of at most SLICE, in order."""
    from ckpttools.storage import remote

    monkeypatch.setattr(remote, "PART", 1 << 20)
    shard = big_tf2 + ".data-00000-of-00001"
    expected = Path(shard).read_bytes()
    offset, size = 1000, len(expected) - 3000
    with sources.open_source(f"{http.url}/big/ckpt-1.data-00000-of-00001") as source:
        http.reset()
        pieces = list(source.iter_chunks(offset, size, 8 << 20))
    assert b"".join(pieces) == expected[offset:offset + size]
    assert max(len(piece) for piece in pieces) == remote.SLICE
    assert len(http.requests) == -(-size // remote.PART), http.requests
