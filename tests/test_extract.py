"""`ckpttools extract` and `ckpttools.extract`: values, formats, streaming, atomic writes."""

from __future__ import annotations

import errno
import json
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main
from ckpttools.ops import extract as extract_module
from ckpttools.ops.extract import extract, write_weights

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
CNN = SAMPLES / "tf1_cnn"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def model_names(path: Path | str) -> list[str]:
    with ckpttools.open_checkpoint(path) as ckpt:
        return [v.name for v in ckpt if v.role == "model"]


@pytest.mark.tf
def test_npz_values_equal_tensorflow_reading(tmp_path: Path) -> None:
    import tensorflow as tf

    out = tmp_path / "weights.npz"
    code, _, err = run("extract", str(CNN), "-o", str(out))
    assert code == 0, err
    with ckpttools.open_checkpoint(CNN) as ckpt:
        reader = tf.train.load_checkpoint(ckpt.prefix)
    with np.load(out, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted(model_names(CNN))
        for name in archive.files:
            np.testing.assert_array_equal(archive[name], reader.get_tensor(name))
            assert archive[name].dtype == reader.get_tensor(name).dtype


def test_api_dict_and_scopes() -> None:
    weights = extract(str(CNN), scopes=["conv_block[1-3]"])
    assert weights and all(any(f"conv_block{k}/" in name for k in (1, 2, 3)) for name in weights)
    with ckpttools.open_checkpoint(CNN) as ckpt:
        for name, value in weights.items():
            np.testing.assert_array_equal(value, ckpt.get(name))


def test_all_includes_optimizer_state(tmp_path: Path) -> None:
    out = tmp_path / "all.npz"
    report = write_weights(str(CNN), str(out), include_all=True)
    with np.load(out) as archive, ckpttools.open_checkpoint(CNN) as ckpt:
        assert sorted(archive.files) == sorted(v.name for v in ckpt)
        assert any(name.endswith("/Adam_1") for name in archive.files)
    assert report.nbytes == sum(v.nbytes for v in report.written)


def test_compressed_npz_is_smaller_and_equal(tmp_path: Path) -> None:
    plain, packed = tmp_path / "plain.npz", tmp_path / "packed.npz"
    write_weights(str(CNN), str(plain))
    write_weights(str(CNN), str(packed), compress=True)
    with zipfile.ZipFile(packed) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    with np.load(plain) as a, np.load(packed) as b:
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])


def test_safetensors_loads_with_the_safetensors_library(tmp_path: Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    out = tmp_path / "weights.safetensors"
    code, _, err = run("extract", str(CNN), "-o", str(out))
    assert code == 0, err
    loaded = safetensors_numpy.load_file(str(out))
    with ckpttools.open_checkpoint(CNN) as ckpt:
        assert sorted(loaded) == sorted(model_names(CNN))
        for name, value in loaded.items():
            np.testing.assert_array_equal(value, ckpt.get(name))


@pytest.mark.tf
def test_bfloat16_and_strings(tf_ckpts, tmp_path: Path) -> None:
    """safetensors keeps bfloat16; npz widens it exactly; strings survive npz without pickle."""
    source = tf_ckpts["all_dtypes"]
    with ckpttools.open_checkpoint(source) as ckpt:
        bf16 = [v for v in ckpt if v.dtype == "bfloat16"]
        strings = [v for v in ckpt if v.dtype == "string"]
        assert bf16 and strings
        st = write_weights(source, str(tmp_path / "w.safetensors"), include_all=True)
        npz = write_weights(source, str(tmp_path / "w.npz"), include_all=True)
        with ckpttools.open_checkpoint(tmp_path / "w.safetensors") as back:
            for info in bf16:
                assert back.info(info.name).dtype == "bfloat16"
                assert back.get(info.name).view(np.uint16).tolist() == ckpt.get(info.name).view(np.uint16).tolist()
        assert {v.name for v in strings} <= set(st.skipped)
        with np.load(tmp_path / "w.npz", allow_pickle=False) as archive:
            for info in bf16:
                assert archive[info.name].dtype == np.float32
                narrowed = archive[info.name].astype(ml_dtypes.bfloat16).view(np.uint16)
                np.testing.assert_array_equal(narrowed, ckpt.get(info.name).view(np.uint16))  # bitwise, NaN too
                assert info.name in npz.converted
            for info in strings:
                if info.name in npz.skipped:
                    continue
                assert archive[info.name].tolist() == ckpt.get(info.name).tolist()


def test_npz_and_safetensors_list_like_checkpoints(tmp_path: Path) -> None:
    for name in ("w.npz", "w.safetensors"):
        write_weights(str(CNN), str(tmp_path / name))
        doc = json.loads(run("ls", "--json", str(tmp_path / name))[1])
        original = json.loads(run("ls", "--json", str(CNN))[1])
        strip = lambda v: (v["name"], v["dtype"], v["shape"], v["size"], v["nbytes"])  # noqa: E731
        assert [strip(v) for v in doc["variables"]] == [strip(v) for v in original["variables"]]


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    out.write_bytes(b"precious")
    code, _, err = run("extract", str(CNN), "-o", str(out))
    assert code == 5 and "already exists" in err and "--force" in err
    assert out.read_bytes() == b"precious"
    code, _, _ = run("extract", str(CNN), "-o", str(out), "--force")
    assert code == 0 and zipfile.is_zipfile(out)


def test_missing_output_directory(tmp_path: Path) -> None:
    code, _, err = run("extract", str(CNN), "-o", str(tmp_path / "no" / "dir" / "w.npz"))
    assert code == 5 and err.strip().startswith("Error: ") and "does not exist" in err


def test_no_variable_selected(tmp_path: Path) -> None:
    code, _, err = run("extract", str(CNN), "-o", str(tmp_path / "w.npz"), "--scopes", "nothing_here")
    assert code == 3 and "no variables matching nothing_here" in err
    assert list(tmp_path.iterdir()) == []


def fail_on_third_read(monkeypatch: pytest.MonkeyPatch, error: BaseException) -> None:
    """Make the third tensor read (copied, streamed or whole) raise ``error``: some tensors are written by then."""
    calls = {"n": 0}

    def counting(method):
        def wrapper(*args):
            calls["n"] += 1
            if calls["n"] == 3:
                raise error
            return method(*args)

        return wrapper

    def counting_streams(method):
        def wrapper(*args):
            for pair in method(*args):
                counting(lambda: None)()
                yield pair

        return wrapper

    monkeypatch.setattr(ckpttools.Checkpoint, "get", counting(ckpttools.Checkpoint.get))
    monkeypatch.setattr(ckpttools.Checkpoint, "streams", counting_streams(ckpttools.Checkpoint.streams))
    monkeypatch.setattr(extract_module, "copy_range", counting(extract_module.copy_range))  # .safetensors copies


@pytest.mark.parametrize("fmt", ["w.npz", "w.safetensors"])
def test_disk_full_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """A writer failing with ENOSPC mid-way: clean error, no partial or temporary file."""
    fail_on_third_read(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    code, _, err = run("extract", str(CNN), "-o", str(tmp_path / fmt))
    assert code == 5 and "disk full" in err
    assert list(tmp_path.iterdir()) == []


def test_interrupt_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_on_third_read(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        write_weights(str(CNN), str(tmp_path / "w.npz"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["w.npz", "w.safetensors"])
def test_checksum_failure_while_streaming_leaves_nothing(tmp_path: Path, fmt: str) -> None:
    """Bytes are copied through before the tensor's crc32c is known: a mismatch must discard the output."""
    import shutil

    damaged = Path(shutil.copytree(CNN, tmp_path / "cnn"))
    with ckpttools.open_checkpoint(damaged) as ckpt:
        last = max((v for v in ckpt if v.role == "model"), key=lambda v: v.nbytes)
        data_file = Path(ckpt.data_files()[0])
        offset = ckpt._reader._entries[last.key].offset  # noqa: SLF001 - the byte to damage
    data = bytearray(data_file.read_bytes())
    data[offset + last.nbytes - 1] ^= 0x40  # the tensor's last byte: found only after the rest was written
    data_file.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    code, _, err = run("extract", str(damaged), "-o", str(out / fmt))
    assert code == 4 and "checksum mismatch" in err and last.key in err
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("name", ["w.npz", "w.safetensors"])
def test_small_tensors_are_not_read_ahead_on_a_thread_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           name: str) -> None:
    """A thread per small tensor cost more than it saved (20,000 tensors: 20,000 threads, 4 s against 0.8 s
    without); tensors above WORTH_A_THREAD still get one."""
    import threading

    from ckpttools.storage import prefetch

    started: list[str] = []
    real_start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda self: (started.append(self.name), real_start(self))[1])
    monkeypatch.setattr(extract_module.Checkpoint, "stored_ranges", lambda self: {})  # (streamed, not copied)
    write_weights(str(CNN), str(tmp_path / name), include_all=True)
    assert not [thread for thread in started if thread.startswith("ckpttools-prefetch")]
    monkeypatch.setattr(prefetch, "WORTH_A_THREAD", 100)
    report = write_weights(str(CNN), str(tmp_path / name), include_all=True, force=True)
    big = [info for info in report.written if info.nbytes > 100]
    assert big and len([thread for thread in started if thread.startswith("ckpttools-prefetch")]) == len(big)


def test_streamed_and_decoded_paths_agree(tmp_path: Path) -> None:
    with ckpttools.open_checkpoint(CNN) as ckpt:
        for info in ckpt:
            stream = ckpt.stream(info.name)
            assert stream is not None, info.name  # every tensor of this sample can be copied through
            assert b"".join(stream) == ckpt.get(info.name).tobytes(), info.name


def test_pickled_npz_is_refused_never_unpickled(tmp_path: Path) -> None:
    evil = tmp_path / "evil.npz"
    np.savez(evil, ok=np.zeros(3), bad=np.array([{"x": 1}], dtype=object))
    for args in (("ls", str(evil)), ("extract", str(evil), "-o", str(tmp_path / "out.npz"))):
        code, _, err = run(*args)
        assert code == 4 and "pickled" in err and "refused" in err
    assert not (tmp_path / "out.npz").exists()


def test_corrupt_safetensors_header(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes((10**12).to_bytes(8, "little") + b"{}")
    code, _, err = run("ls", str(bad))
    assert code == 4 and str(bad) in err
    bad.write_bytes((5).to_bytes(8, "little") + b"{oops")
    code, _, err = run("ls", str(bad))
    assert code == 4 and "not JSON" in err


def test_json_report(tmp_path: Path) -> None:
    code, out, _ = run("extract", str(CNN), "-o", str(tmp_path / "w.npz"), "--json")
    report = json.loads(out)
    assert code == 0 and report["variables"] == len(model_names(CNN)) and report["format"] == "npz"


def test_output_gets_normal_permissions(tmp_path: Path) -> None:
    import os

    out = tmp_path / "w.npz"
    write_weights(str(CNN), str(out))
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.tf
def test_a_variable_free_saved_model_says_why_there_is_nothing(tf_ckpts, tmp_path: Path) -> None:
    """A SavedModel with no variables (TensorFlow still writes variables.index, holding only its object graph):
    ls lists nothing; extract and rewrite find nothing to do and say the weights are constants of the graph."""
    source = tf_ckpts["saved_model_no_variables"]
    listed = CliRunner().invoke(main, ["ls", "--json", source])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["totals"]["variables"] == 0
    for args in (["extract", source, "-o", str(tmp_path / "w.npz")], ["rewrite", source, "-o", str(tmp_path / "r")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 3 and "this SavedModel has no variables" in result.stderr, result.stderr
        assert "'ckpttools graph'" in result.stderr and "the options leave" not in result.stderr
    assert not list(tmp_path.iterdir())
