"""``ckpttools verify`` on checkpoints written by TensorFlow, intact and damaged in the usual ways.

Every damaged copy is also given to TensorFlow (one subprocess, tests/tf_read_judge.py): verify must call
a checkpoint intact exactly when TensorFlow reads all of it, and the variables it says are lost or fail
their checksum must be exactly those TensorFlow cannot read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ckpttools.cli import main
from ckpttools.formats.bundle import BundleReader
from ckpttools.ops import problems as P
from ckpttools.ops.verify import verify

JUDGE = Path(__file__).resolve().parent / "tf_read_judge.py"
LFS = ("version https://git-lfs.github.com/spec/v1\n"
       "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 34052\n")
pytestmark = pytest.mark.tf


def _copy_prefix(prefix: str, directory: Path) -> str:
    """Copy a V2 checkpoint's files into ``directory``; return the new prefix."""
    directory.mkdir(parents=True, exist_ok=True)
    base = os.path.basename(prefix)
    for name in os.listdir(os.path.dirname(prefix)):
        if name.startswith(base + ".index") or name.startswith(base + ".data-"):
            shutil.copy(os.path.join(os.path.dirname(prefix), name), directory / name)
    return str(directory / base)


def _tensor_range(prefix: str, key: str) -> tuple[str, int, int]:
    reader = BundleReader(prefix)
    try:
        for name, _, part in reader.stored_parts():
            if name == key:
                shards = reader.header.num_shards
                return f"{prefix}.data-{part.shard_id:05d}-of-{shards:05d}", part.offset, part.size
    finally:
        reader.close()
    raise KeyError(key)


@pytest.fixture(scope="module")
def cases(tf_ckpts, tmp_path_factory) -> dict[str, str]:
    """label -> path of each intact or damaged checkpoint (copies of the TF-written ones)."""
    root = tmp_path_factory.mktemp("verify")
    paths = {label: tf_ckpts[label] for label in ("tf1_cnn", "sharded", "v1", "all_dtypes", "partitioned",
                                                  "tf2_keras", "saved_model")}
    lfs = _copy_prefix(tf_ckpts["tf1_cnn"], root / "lfs")
    Path(lfs + ".data-00000-of-00001").write_text(LFS)
    paths["lfs"] = lfs
    lfs_index = _copy_prefix(tf_ckpts["tf2_keras"], root / "lfs_index")
    Path(lfs_index + ".index").write_text(LFS)
    paths["lfs_index"] = lfs_index
    lfs_tf2 = _copy_prefix(tf_ckpts["tf2_keras"], root / "lfs_tf2")
    Path(lfs_tf2 + ".data-00000-of-00001").write_text(LFS)
    paths["lfs_tf2"] = lfs_tf2
    html = _copy_prefix(tf_ckpts["tf1_cnn"], root / "html")
    Path(html + ".index").write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    paths["html"] = html
    short = _copy_prefix(tf_ckpts["sharded"], root / "short")
    shard, offset, size = _tensor_range(short, "tower1/weights")
    os.truncate(shard, offset + size // 2)
    paths["truncated"] = short
    missing = _copy_prefix(tf_ckpts["sharded"], root / "missing")
    os.remove(missing + ".data-00002-of-00003")
    paths["missing_shard"] = missing
    resaved = _copy_prefix(tf_ckpts["tf1_cnn"], root / "resaved")  # the sharded save's data files, same prefix
    os.remove(resaved + ".data-00000-of-00001")
    for k in range(3):
        shutil.copy(f"{tf_ckpts['sharded']}.data-{k:05d}-of-00003", f"{resaved}.data-{k:05d}-of-00003")
    paths["other_save_shards"] = resaved
    flipped = _copy_prefix(tf_ckpts["tf1_cnn"], root / "flipped")
    shard, offset, size = _tensor_range(flipped, "cnn/conv_block2/conv/kernel")
    with open(shard, "r+b") as f:
        f.seek(offset + size // 2)
        byte = f.read(1)
        f.seek(offset + size // 2)
        f.write(bytes([byte[0] ^ 0x40]))
    paths["flipped"] = flipped
    mixed = _copy_prefix(tf_ckpts["tf1_cnn"], root / "mixed")
    shutil.copy(tf_ckpts["tf1_cnn_step10"] + ".data-00000-of-00001", mixed + ".data-00000-of-00001")
    paths["mixed"] = mixed
    paths["data_as_prefix"] = tf_ckpts["tf1_cnn"] + ".data-00000-of-00001"
    v1_as_v2 = root / "v1_as_v2"
    v1_as_v2.mkdir()
    shutil.copy(tf_ckpts["v1"], v1_as_v2 / "model.ckpt-5.index")
    paths["v1_as_v2"] = str(v1_as_v2 / "model.ckpt-5")
    v2_as_v1 = root / "v2_as_v1"
    v2_as_v1.mkdir()
    shutil.copy(tf_ckpts["tf1_cnn"] + ".index", v2_as_v1 / "model.ckpt-20")
    paths["v2_as_v1"] = str(v2_as_v1 / "model.ckpt-20")
    other = root / "other_variables"
    shutil.copytree(tf_ckpts["saved_model"], other)
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(tf_ckpts["tf2_keras"] + suffix, other / "variables" / f"variables{suffix}")
    paths["other_variables"] = str(other)
    return paths


@pytest.fixture(scope="module")
def tf_verdict(cases) -> dict[str, dict]:
    """TensorFlow's reading of every case, in one subprocess."""
    readable = {label: os.path.join(path, "variables", "variables") if os.path.isdir(path) else path
                for label, path in cases.items()}  # tf.train.load_checkpoint wants a SavedModel's prefix
    result = subprocess.run([sys.executable, str(JUDGE), *readable.values()], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    by_path = json.loads(result.stdout)
    return {label: by_path[path] for label, path in readable.items()}


TF_CANNOT_SLICE = "Sliced checkpoints are not supported"  # get_tensor's own limit on partitioned V1 variables


def _tf_reads_all(verdict: dict) -> bool:
    return verdict["open"] is None and all(error == TF_CANNOT_SLICE for error in verdict["failed"].values())


@pytest.mark.parametrize("label", ["tf1_cnn", "sharded", "v1", "all_dtypes", "partitioned", "tf2_keras",
                                   "saved_model"])
def test_intact_checkpoints_are_intact_as_tensorflow_reads_them(cases, tf_verdict, label) -> None:
    assert _tf_reads_all(tf_verdict[label])
    report = verify(cases[label])
    assert report.intact, [p.what for p in report.all_problems()]
    checked = report.checkpoints[0]
    assert checked.checksums and checked.tensors > 0
    assert not [p for p in report.all_problems() if p.severity != P.NOTE]


def _only(report, cause: str):
    found = [p for p in report.all_problems() if p.severity == P.ERROR]
    assert [p.cause for p in found] == [cause], [(p.cause, p.what) for p in found]
    return found[0]


def test_lfs_pointer_data_file(cases, tf_verdict) -> None:
    assert not _tf_reads_all(tf_verdict["lfs"])
    problem = _only(verify(cases["lfs"]), P.LFS_POINTER)
    assert problem.file.endswith(".data-00000-of-00001") and "34,052-byte" in problem.what
    assert "git lfs pull" in problem.fix
    assert set(problem.variables) == set(tf_verdict["lfs"]["failed"])


@pytest.mark.parametrize(("label", "command", "pointer"), [
    ("lfs_index", ["ls"], ".index"),
    ("lfs_index", ["show", "dense/kernel"], ".index"),
    ("lfs", ["show", "cnn/conv_block1/conv/kernel"], ".data-00000-of-00001"),
    ("lfs", ["extract", "--all", "-o", "{tmp}/x.npz"], ".data-00000-of-00001"),
    ("lfs", ["diff", "{path}"], ".data-00000-of-00001"),
    ("lfs_tf2", ["extract", "--all", "-o", "{tmp}/x.safetensors"], ".data-00000-of-00001"),
    ("lfs", ["extract", "--all", "-o", "{tmp}/x.safetensors"], ".data-00000-of-00001"),
    ("lfs", ["rewrite", "-o", "{tmp}/model.ckpt"], ".data-00000-of-00001"),
])
def test_every_command_names_a_git_lfs_pointer(cases, tf_verdict, tmp_path, label, command, pointer) -> None:
    """Not only verify: reading through a pointer says what it is and how to get the file, in one line."""
    assert not _tf_reads_all(tf_verdict[label])
    path = cases[label]
    args = [command[0], path, *(a.format(tmp=tmp_path, path=path) for a in command[1:])]
    result = CliRunner().invoke(main, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 4 and len(lines) == 1, result.stderr
    assert f"{path}{pointer}" in lines[0] and "is a Git LFS pointer (" in lines[0] and "git lfs pull" in lines[0]
    assert "34,052-byte file that was never downloaded" in lines[0]


def test_ls_notes_a_data_shard_that_is_a_git_lfs_pointer(cases, tf_ckpts) -> None:
    """ls works from the index but says at once that no value can be read, and why; not for the intact copy."""
    result = CliRunner().invoke(main, ["ls", "--all", cases["lfs"]])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if ".data-00000-of-00001" in line]
    assert len(notes) == 1 and "is a Git LFS pointer (" in notes[0] and "git lfs pull" in notes[0], result.stderr
    assert "values cannot be read" in notes[0]
    intact = CliRunner().invoke(main, ["ls", "--all", tf_ckpts["tf1_cnn"]])
    assert intact.exit_code == 0 and ".data-" not in intact.stderr


@pytest.mark.parametrize("name", ["model.keras", "model.weights.h5", "model.h5", "weights.npz", "model.safetensors"])
def test_a_weights_file_that_is_a_pointer_or_a_page_says_so(tmp_path, name) -> None:
    """Keras, npz and safetensors files are the ones most often kept in Git LFS."""
    pointer = tmp_path / name
    pointer.write_text(LFS)
    result = CliRunner().invoke(main, ["ls", str(pointer)])
    assert result.exit_code == 4
    assert result.stderr.strip() == (f"Error: {pointer}: is a Git LFS pointer ({len(LFS)} bytes) to a 34,052-byte "
                                     "file that was never downloaded; fetch the real file: git lfs pull (or "
                                     "download it, not its pointer)")
    page = tmp_path / f"page_{name}"
    page.write_text("<!DOCTYPE html>\n<html><head><title>Sign in</title></head></html>\n")
    report = verify(str(page))
    assert [(p.cause, p.severity) for p in report.all_problems()] == [(P.HTML, P.ERROR)]


def test_html_index(cases, tf_verdict) -> None:
    assert tf_verdict["html"]["open"] is not None
    problem = _only(verify(cases["html"]), P.HTML)
    assert problem.file.endswith(".index") and "Sign in" in problem.what


def test_truncated_shard_names_exactly_the_variables_tensorflow_cannot_read(cases, tf_verdict) -> None:
    verdict = tf_verdict["truncated"]
    assert verdict["open"] is None and verdict["failed"]
    problem = _only(verify(cases["truncated"]), P.TRUNCATED)
    assert set(problem.variables) == set(verdict["failed"])
    assert "short of the" in problem.what


def test_missing_shard_names_exactly_the_variables_tensorflow_cannot_read(cases, tf_verdict) -> None:
    verdict = tf_verdict["missing_shard"]
    problem = _only(verify(cases["missing_shard"]), P.MISSING_SHARD)
    assert problem.file.endswith(".data-00002-of-00003")
    assert set(problem.variables) == set(verdict["failed"]) and verdict["failed"]


def test_missing_shard_beside_data_files_of_another_save_says_so(cases, tf_verdict) -> None:
    verdict = tf_verdict["other_save_shards"]
    problem = _only(verify(cases["other_save_shards"]), P.MISSING_SHARD)
    assert problem.file.endswith(".data-00000-of-00001")
    assert set(problem.variables) == set(verdict["failed"]) and verdict["failed"]
    assert "model.ckpt-20.data-00000-of-00003, model.ckpt-20.data-00001-of-00003" in problem.fix
    assert "came from another save (this index wants 1 shard)" in problem.fix
    assert "another save" not in _only(verify(cases["missing_shard"]), P.MISSING_SHARD).fix


def test_flipped_byte_is_a_checksum_error_on_that_variable_only(cases, tf_verdict) -> None:
    verdict = tf_verdict["flipped"]
    assert list(verdict["failed"]) == ["cnn/conv_block2/conv/kernel"]
    problem = _only(verify(cases["flipped"]), P.CHECKSUM)
    assert problem.variable == "cnn/conv_block2/conv/kernel"
    assert verify(cases["flipped"], quick=True).intact  # --quick reads no values


def test_index_and_data_from_different_steps(cases, tf_verdict) -> None:
    verdict = tf_verdict["mixed"]
    problem = _only(verify(cases["mixed"]), P.MIXED_SAVES)
    assert set(problem.variables) == set(verdict["failed"]) and len(verdict["failed"]) > 10


def test_data_file_given_as_prefix_is_named_and_still_verified(cases, tf_verdict) -> None:
    assert tf_verdict["data_as_prefix"]["open"] is not None  # TensorFlow refuses the .data file
    report = verify(cases["data_as_prefix"])
    assert report.intact
    warning = report.problems[0]
    assert warning.cause == P.WRONG_FILE and warning.fix.endswith(cases["tf1_cnn"])


def test_v1_and_v2_mixed_up(cases, tf_verdict) -> None:
    assert tf_verdict["v1_as_v2"]["open"] is not None
    assert tf_verdict["v2_as_v1"]["variables"] == 0  # TensorFlow opens the index as a V1 file and finds nothing
    assert _only(verify(cases["v1_as_v2"]), P.V1_AS_V2).file.endswith("model.ckpt-5.index")
    problem = _only(verify(cases["v2_as_v1"]), P.V2_AS_V1)
    assert problem.fix.startswith(f"name it {cases['v2_as_v1']}.index")


def test_saved_model_variables_from_another_model(cases, tf_verdict) -> None:
    assert tf_verdict["saved_model"]["saved_model_load"] is None
    assert tf_verdict["other_variables"]["saved_model_load"] is not None  # TensorFlow cannot load it either
    report = verify(cases["other_variables"])
    found = [p for p in report.all_problems() if p.severity == P.ERROR]
    assert found and {p.cause for p in found} == {P.SAVED_MODEL}
    assert all(p.file.endswith("saved_model.pb") and p.variable for p in found)


def test_state_file_naming_missing_checkpoints(tf_ckpts, tmp_path) -> None:
    run = tmp_path / "run"
    prefix = _copy_prefix(tf_ckpts["tf1_cnn"], run)
    (run / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-20"\n'
                                    'all_model_checkpoint_paths: "model.ckpt-10"\n'
                                    'all_model_checkpoint_paths: "model.ckpt-20"\n')
    latest = verify(run)
    assert latest.intact and [c.prefix for c in latest.checkpoints] == [prefix]
    assert [p.severity for p in latest.problems] == [P.WARNING]
    every = verify(run, all_checkpoints=True)
    assert not every.intact and "model.ckpt-10, which does not exist" in every.problems[0].what


def test_npz_crc_and_safetensors_has_none(cases, tmp_path) -> None:
    path = tmp_path / "w.npz"
    np.savez(path, a=np.arange(1000, dtype=np.float32))
    assert verify(path).intact
    with zipfile.ZipFile(path) as archive:
        start = archive.getinfo("a.npy").header_offset + 30 + len("a.npy") + 200
    data = bytearray(path.read_bytes())
    data[start] ^= 1
    path.write_bytes(bytes(data))
    assert _only(verify(path), P.CORRUPT_FILE).file == str(path)
    weights = tmp_path / "w.safetensors"
    assert CliRunner().invoke(main, ["extract", cases["tf1_cnn"], "-o", str(weights)]).exit_code == 0
    report = verify(weights)
    assert report.intact and [p.cause for p in report.all_problems()] == [P.NO_CHECKSUMS]


def test_cli_lines_json_and_exit_codes(cases) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["verify", cases["tf1_cnn"]])
    assert ok.exit_code == 0 and ok.output.strip().endswith("checksummed)")
    bad = runner.invoke(main, ["verify", cases["truncated"]])
    assert bad.exit_code == 4
    first = bad.output.splitlines()[0].split("\t")
    assert first[0] == "error" and first[1].endswith(".data-00001-of-00003") and "truncated" in first[3]
    document = json.loads(runner.invoke(main, ["verify", "--json", cases["lfs"]]).output)
    assert document["schema"] == "ckpttools.verify/1" and document["intact"] is False
    assert document["checkpoints"][0]["problems"][0]["cause"] == "lfs-pointer"
    missing = runner.invoke(main, ["verify", str(Path(cases["tf1_cnn"]).parent / "nothing-here")])
    assert missing.exit_code == 3 and missing.output.startswith("Error: ")


def test_state_file_with_windows_paths_gets_the_relative_name_as_the_fix(tmp_path) -> None:
    """A run trained on Windows: the state file names C:\\...\\model.ckpt-20. The checkpoint is found here under
    its own name, and the suggested fix is that name, on the line that needs it."""
    run = Path(shutil.copytree(Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn",
                               tmp_path / "run"))
    windows = "C:\\\\Users\\\\me\\\\train\\\\model.ckpt-20"  # as the text format escapes it
    for lines, field in ((f'model_checkpoint_path: "{windows}"', "model_checkpoint_path"),
                         (f'model_checkpoint_path: "model.ckpt-20"\nall_model_checkpoint_paths: "{windows}"',
                          "all_model_checkpoint_paths")):
        (run / "checkpoint").write_text(lines + "\n")
        report = verify(str(run))
        assert report.intact
        assert [p.fix for p in report.problems if p.cause == P.STATE_FILE] == \
            [f'write relative paths: {field}: "model.ckpt-20"']


def test_a_directory_without_a_checkpoint_says_why(tmp_path) -> None:
    """verify gives resolve's reason (here: a state file naming nothing), not a generic one."""
    (tmp_path / "checkpoint").write_text("# nothing here\n")
    result = CliRunner().invoke(main, ["verify", str(tmp_path)])
    assert result.exit_code == 3
    assert "names no model_checkpoint_path, and no *.index here" in result.stderr, result.stderr
