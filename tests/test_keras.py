"""Keras files (.keras, .weights.h5, legacy .h5) read without TensorFlow or Keras, judged by Keras itself.

The files and the arrays Keras holds are written once per session by ``tests/keras_fixtures.py``
in a subprocess (Keras 3, and tf_keras for Keras 2's own legacy writer).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main
from ckpttools.info import MODEL, OPTIMIZER, TRAINING
from ckpttools.ops.diff import diff
from ckpttools.ops.listing import list_variables

h5py = pytest.importorskip("h5py")
pytestmark = pytest.mark.tf

BUILDER = Path(__file__).resolve().parent / "keras_fixtures.py"
READABLE = ("sequential.keras", "sequential.weights.h5", "sequential_legacy.h5", "functional.keras",
            "functional.weights.h5", "functional_legacy.h5", "functional_deflated.keras", "bf16.keras",
            "keras2_model.h5", "keras2_weights.h5", "keras2.keras", "keras2_rnn.keras", "keras2_rnn.h5",
            "keras213.keras", "keras214_windows.keras", "conv_rnn.keras", "conv_rnn.weights.h5",
            "keras2_wrappers.keras")  # fmt: skip


@pytest.fixture(scope="session")
def kf(tmp_path_factory: pytest.TempPathFactory) -> dict:
    pytest.importorskip("keras")
    prebuilt = os.environ.get("CKPTTOOLS_KERAS_FIXTURES")  # a directory keras_fixtures.py wrote, to iterate faster
    if prebuilt:
        return {**json.loads((Path(prebuilt) / "manifest.json").read_text()), "root": Path(prebuilt)}
    root = tmp_path_factory.mktemp("keras_files")
    result = subprocess.run([sys.executable, str(BUILDER), str(root)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        pytest.fail(f"building the Keras fixtures failed:\n{result.stderr[-5000:]}")
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["root"] = root
    return manifest


def entry(kf: dict, label: str) -> dict:
    if label not in kf:
        pytest.skip(f"{label} not built (tf_keras is not installed)")
    return kf[label]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# --- exact, judged by Keras ----------------------------------------------------------------------


@pytest.mark.parametrize("label", READABLE)
def test_every_array_is_what_keras_holds_bitwise(kf: dict, label: str) -> None:
    item = entry(kf, label)
    expected = np.load(item["expected"])
    with ckpttools.open_checkpoint(item["path"]) as ckpt:
        shown = {info.name: info for info in ckpt}
        names = {name: name for name in expected.files}
        if label.endswith(".weights.h5"):
            # Without a config beside them, what the file cannot tell keeps its number: the optimizer's
            # slots (the model's variable order is unknown) and a BatchNormalization(center=False),
            # whose three variables could be gamma or beta.
            assert all(re.fullmatch(r"adam(_1)?/\d+", n) for n, i in shown.items() if i.role == OPTIMIZER)
            shown = {name: info for name, info in shown.items() if info.role != OPTIMIZER}
            names = {name: name for name in names if not name.startswith("adam")}
            for i, weight in enumerate(("gamma", "moving_mean", "moving_variance")):
                if f"batch_normalization_1/{weight}" in names:
                    names[f"batch_normalization_1/{weight}"] = f"batch_normalization_1/{i}"
        if label in ("keras2.keras", "keras2_rnn.keras", "keras2_wrappers.keras"):  # and its compiled metrics' state
            metrics = {name for name, info in shown.items() if info.role == TRAINING}
            assert metrics == {"metrics/mean/total", "metrics/mean/count"}
            shown = {name: info for name, info in shown.items() if name not in metrics}
        assert set(shown) == set(names.values())
        for name, ours in names.items():
            want = expected[name]
            if item["dtypes"][name] == "bfloat16":
                want = want.view(ml_dtypes.bfloat16)
            got = ckpt.get(ours)
            assert shown[ours].dtype == item["dtypes"][name] == str(got.dtype), name
            assert got.shape == want.shape == shown[ours].shape, name
            assert got.tobytes() == want.tobytes(), name
            assert ckpt.info(shown[ours].key) == shown[ours]  # the HDF5 path is the key


def test_keys_are_hdf5_paths_and_optimizer_state_is_hidden(kf: dict) -> None:
    with ckpttools.open_checkpoint(kf["sequential.keras"]["path"]) as ckpt:
        kernel = ckpt.info("seq/dense/kernel")  # a Sequential builds its layers in its own name scope
        assert kernel.key == "layers/dense/vars/0" and kernel.role == MODEL
        slot = ckpt.info("adam/seq_dense_kernel_momentum")
        assert slot.role == OPTIMIZER and slot.slot_of == "seq/dense/kernel" and slot.key.startswith("optimizer/vars/")
    with ckpttools.open_checkpoint(kf["sequential.keras"]["path"]) as ckpt:
        listed = list_variables(ckpt)
    assert all(info.role == MODEL for info in listed.shown) and len(listed.hidden) == 16


def _h5_datasets(path: str) -> dict[str, np.ndarray]:
    """Every dataset h5py finds in a .weights.h5 file or a .keras file's weights member."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            found[name] = obj[()]
    if path.endswith(".keras"):
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as member:
            with h5py.File(member, "r") as f:
                f.visititems(visit)
    else:
        with h5py.File(path, "r") as f:
            f.visititems(visit)
    return found


@pytest.mark.parametrize("label", ("loss_scale.keras", "loss_scale.weights.h5"))
def test_loss_scale_optimizer_wrapped_optimizer_is_listed(kf: dict, label: str) -> None:
    """Mixed precision's LossScaleOptimizer saves the optimizer it wraps under optimizer/inner_optimizer."""
    item = entry(kf, label)
    code, out, _ = run("ls", "--json", "--all", item["path"])
    assert code == 0
    listed = {v["key"]: v for v in json.loads(out)["variables"]}
    stored = _h5_datasets(item["path"])
    assert set(listed) == set(stored)  # nothing in the file goes unlisted
    inner = np.load(item["inner"])
    keys = sorted(k for k in listed if k.startswith("optimizer/inner_optimizer/vars/"))
    keys.sort(key=lambda k: int(k.rsplit("/", 1)[1]))
    assert len(keys) == len(inner.files)
    with ckpttools.open_checkpoint(item["path"]) as ckpt:
        for key, stored_name in zip(keys, sorted(inner.files)):
            keras_path = stored_name.split("|", 1)[1]
            info = ckpt.info(key)
            assert info.role == OPTIMIZER
            assert ckpt.get(info.name).tobytes() == inner[stored_name].tobytes(), keras_path
            if label.endswith(".keras"):  # Keras' paths: adam/iteration, loss_scale_optimizer/adam/<slot>
                assert info.name == keras_path
                assert (info.slot_of is not None) == keras_path.startswith("loss_scale_optimizer/")
            else:
                assert re.fullmatch(r"loss_scale_optimizer/adam(_\d+)?/\d+", info.name)


@pytest.mark.parametrize("label", ("loss_scale.keras", "loss_scale.weights.h5"))
def test_loss_scale_optimizer_own_variables_are_named_as_keras_names_them(kf: dict, label: str) -> None:
    """Its step counter and scale, stored before a copy of the wrapped optimizer's variables, as Keras loads them."""
    item = entry(kf, label)
    loaded = np.load(item["loaded"])  # the reloaded optimizer's variables: its own are loss_scale_optimizer/<name>
    own = [name for name in loaded.files if re.fullmatch(r"loss_scale_optimizer/\w+", name)]
    assert own == ["loss_scale_optimizer/iteration", "loss_scale_optimizer/learning_rate",
                   "loss_scale_optimizer/step_counter", "loss_scale_optimizer/dynamic_scale"]
    with ckpttools.open_checkpoint(item["path"]) as ckpt:
        for number, name in enumerate(own):
            info = ckpt.info(name)
            assert info.key == f"optimizer/vars/{number}" and info.role == OPTIMIZER
            assert info.dtype == str(loaded[name].dtype) and ckpt.get(name).tobytes() == loaded[name].tobytes()
        copies = [info for info in ckpt if info.key.startswith("optimizer/vars/") and info.name not in own]
        assert len(copies) == len(loaded.files) - len(own)  # the wrapped optimizer's, stored again
        for info in copies:  # named by their HDF5 path: the wrapped optimizer's group holds Keras' names
            number = int(info.key.rsplit("/", 1)[1])
            twin = ckpt.info(f"optimizer/inner_optimizer/vars/{number - len(own)}")
            assert info.name == info.key and info.slot_of == twin.slot_of
            assert ckpt.get(info.name).tobytes() == ckpt.get(twin.name).tobytes()


def test_stored_member_is_read_in_place(kf: dict) -> None:
    from ckpttools.formats.keras_zip import KerasZipReader
    from ckpttools.storage.filerange import SourceFile

    reader = KerasZipReader(kf["functional.keras"]["path"])
    try:
        assert isinstance(reader._closers[-1], SourceFile)
    finally:
        reader.close()
    reader = KerasZipReader(kf["functional_deflated.keras"]["path"])
    try:
        assert not isinstance(reader._closers[-1], SourceFile)
    finally:
        reader.close()


NO_HEAVY_IMPORTS = """
import json, sys
from ckpttools.cli import main
for path in sys.argv[1:]:
    try:
        main(["ls", "--all", "--stats", path], prog_name="ckpttools")
    except SystemExit as exc:
        assert exc.code in (0, None), exc.code
    try:
        main(["graph", path], prog_name="ckpttools")
    except SystemExit as exc:
        assert exc.code in (0, None, 4), exc.code  # 4: a bare weights file has no model config
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))),
      file=sys.stderr)
"""


def test_ls_and_graph_import_neither_tensorflow_nor_keras(kf: dict) -> None:
    paths = [kf[label]["path"] for label in ("functional.keras", "functional_legacy.h5", "functional.weights.h5")]
    result = subprocess.run([sys.executable, "-c", NO_HEAVY_IMPORTS, *paths], capture_output=True, text=True,
                            check=True)
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert "my_scale/0" in result.stdout and "double" in result.stdout  # custom and Lambda layers listed


# --- the other commands -----------------------------------------------------------------------------


def test_ls_views(kf: dict) -> None:
    path = kf["functional.keras"]["path"]
    code, out, _ = run("ls", path, "--json", "--scopes", "head", "--stats")
    assert code == 0
    document = json.loads(out)
    assert document["schema"] == "ckpttools.ls/1"
    rows = {row["name"]: row for row in document["variables"]}
    assert set(rows) == {"head/dense_3/kernel", "head/dense_3/bias", "head/dense_4/kernel", "head/dense_4/bias"}
    expected = np.load(kf["functional.keras"]["expected"])["head/dense_3/kernel"]
    assert rows["head/dense_3/kernel"]["stats"]["max"] == pytest.approx(float(expected.max()))
    code, out, _ = run("ls", path, "--tree")
    assert code == 0 and "head" in out and "lstm_cell" in out


def test_extract_then_diff_equal(kf: dict, tmp_path: Path) -> None:
    path = kf["functional.keras"]["path"]
    for out in (tmp_path / "w.npz", tmp_path / "w.safetensors"):
        code, _, err = run("extract", path, "-o", out, "--all")
        assert code == 0, err
        code, _, err = run("diff", path, out, "--all", "--quiet")
        assert code == 0, err
    arrays = np.load(tmp_path / "w.npz")
    expected = np.load(kf["functional.keras"]["expected"])
    assert arrays["lstm/lstm_cell/kernel"].tobytes() == expected["lstm/lstm_cell/kernel"].tobytes()


def test_rnn_weights_are_named_alike_in_keras_and_legacy_h5(kf: dict) -> None:
    """tf_keras' .keras stores an RNN's cell and Bidirectional's copies without names; its .h5 stores names."""
    archive, legacy = entry(kf, "keras2_rnn.keras")["path"], entry(kf, "keras2_rnn.h5")["path"]
    code, out, err = run("diff", legacy, archive, "--all", "--json")
    document = json.loads(out)
    assert not document["only_in_a"] and document["only_in_b"] == ["metrics/mean/count", "metrics/mean/total"]
    expected = np.load(kf["keras2_rnn.keras"]["expected"]).files  # every name Keras gives, optimizer's too
    assert sorted(v["name"] for v in document["values"]) == sorted(expected)
    assert all(v["status"] == "identical" for v in document["values"])
    with ckpttools.open_checkpoint(archive) as ckpt:
        kernel = ckpt.info("bidirectional/backward_lstm_1/lstm_cell/kernel")
        assert kernel.key == "layers/bidirectional/backward_layer/cell/vars/0"
        assert "bidirectional/backward_lstm_1/lstm_cell/bias" not in {info.name for info in ckpt}  # use_bias=False
        assert ckpt.info("Adam/m/gru/gru_cell/recurrent_kernel").slot_of == "gru/gru_cell/recurrent_kernel"


def test_keras2_wrapped_layers_are_named_as_reloaded_keras_names_them(kf: dict) -> None:
    """tf_keras stores TimeDistributed's layer and a ConvLSTM's cell a level below the names Keras gives them."""
    item = entry(kf, "keras2_wrappers.keras")
    loaded = np.load(item["loaded"])
    assert {"time_distributed/kernel", "time_distributed_1/kernel", "conv_lstm1d/recurrent_kernel",
            "conv_lstm2d/bias"} <= set(loaded.files)
    with ckpttools.open_checkpoint(item["path"]) as ckpt:
        shown = {info.name: info for info in ckpt if info.role == MODEL}
        assert set(shown) == set(loaded.files)
        for name in loaded.files:
            assert ckpt.get(name).tobytes() == loaded[name].tobytes(), name
        assert shown["conv_lstm1d/kernel"].key == "layers/conv_lstm1d/cell/vars/0"
        assert shown["time_distributed/bias"].key == "layers/time_distributed/layer/vars/1"
        assert "time_distributed_1/bias" not in shown and "conv_lstm1d_1/bias" not in shown  # use_bias=False
        assert ckpt.info("Adam/v/conv_lstm1d/recurrent_kernel").slot_of == "conv_lstm1d/recurrent_kernel"


@pytest.mark.parametrize("label", ("functional.keras", "conv_rnn.keras"))
def test_keras3_file_without_name_attributes(kf: dict, tmp_path: Path, label: str) -> None:
    """Keras 3 files of 3.3 (as real ones show) have no ``name`` attribute on their ``vars`` groups.

    Derived from a file Keras 3 writes today by dropping those attributes: the names come from the
    config (the LSTM's cell, the nested model, TimeDistributed's layer, the optimizer's configured name)
    and stay Keras' own.
    """
    source = Path(kf[label]["path"])
    weights = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(source) as src:
        weights.write_bytes(src.read("model.weights.h5"))
        config = src.read("config.json")
    with h5py.File(weights, "r+") as f:
        groups = [f] + [obj for obj in _all_objects(f) if isinstance(obj, h5py.Group)]
        for group in groups:
            group.attrs.pop("name", None)
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(old, "w") as dst:
        dst.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        dst.writestr("config.json", config)
        dst.write(weights, "model.weights.h5")
    expected = np.load(kf[label]["expected"])
    with ckpttools.open_checkpoint(old) as ckpt, ckpttools.open_checkpoint(source) as new:
        assert [(i.name, i.key) for i in ckpt] == [(i.name, i.key) for i in new]
        assert set(expected.files) == {info.name for info in ckpt}
        for name in expected.files:
            assert ckpt.get(name).tobytes() == expected[name].tobytes(), name


def _all_objects(group: h5py.Group) -> list:
    found: list = []
    group.visititems(lambda _, obj: found.append(obj))
    return found


def test_diff_keras_against_tf_checkpoint_with_map(kf: dict) -> None:
    keras_file, prefix = kf["sequential.keras"]["path"], kf["tf_sequential"]["path"]
    # tf.train.Checkpoint(model=seq) names layers by their position among the model's operations
    maps = ["--map", "seq/=model/_functional/_operations/", "--map", "dense=1", "--map", "batch_normalization=3",
            "--map", "dense_1=4", "--map", "dense_2=5", "--map", "re:/kernel$=/_kernel"]
    code, out, err = run("diff", keras_file, prefix, *maps, "--json")
    document = json.loads(out)
    assert code == 0 and document["equal"], document
    assert len(document["values"]) == 9 and not document["only_in_a"] and not document["only_in_b"]
    code, out, err = run("diff", keras_file, prefix, *maps[:-2], "--quiet")  # kernels left unmatched
    assert code == 1
    code, _, err = run("diff", keras_file, prefix, "--map", "dense=x", "--map", "dense_1=x")
    assert code == 2 and "same name" in err


def test_transfer_from_a_keras_file(kf: dict, tmp_path: Path) -> None:
    source = kf["conv.keras"]["path"]
    out = tmp_path / "run"
    code, _, err = run("transfer", "--from", source, "--map", "re:^conv_block1/=cnn/conv_block1/conv/",
                       "--model", "cnn5", "--classes", "0-1", "--per-class", "2", "--init-only", "--out", out)
    assert code == 0, err
    result = diff(source, str(out), mapping=["re:^conv_block1/=cnn/conv_block1/conv/"])
    assert sorted(v.name for v in result.values) == ["cnn/conv_block1/conv/bias", "cnn/conv_block1/conv/kernel"]
    assert all(v.status == "identical" for v in result.values) and not result.only_in_a


def test_graph_of_a_keras_file(kf: dict) -> None:
    code, out, err = run("graph", kf["functional.keras"]["path"], "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == "ckpttools.graph/1" and document["source"]["format"] == "keras"
    layers = document["layers"]
    names = [layer["name"] for layer in layers]
    assert names.index("image") < names.index("conv2d") < names.index("concatenate") < names.index("logits")
    by_name = {layer["name"]: layer for layer in layers}
    assert by_name["conv2d"]["class_name"] == "Conv2D" and by_name["conv2d"]["inbound"] == ["image"]
    assert by_name["concatenate"]["inbound"] == ["global_average_pooling2d", "lstm"]
    assert by_name["conv2d"]["output_shape"] == [None, 8, 8, 4]
    assert by_name["conv2d"]["parameters"] == 3 * 3 * 3 * 4 + 4
    assert by_name["head"]["parameters"] == 10 * 8 + 8 + 8 * 4 + 4
    assert by_name["my_scale"]["parameters"] == 4 and by_name["double"]["class_name"] == "Lambda"
    assert document["summary"]["parameters"] == sum(layer["parameters"] for layer in layers if layer["depth"] == 0)
    assert by_name["dense_3"]["depth"] == 1 and by_name["head"]["output_shape"] == [None, 4]
    assert "not imported" in by_name["my_scale"]["note"] and "never evaluated" in by_name["double"]["note"]


def test_graph_of_legacy_h5_and_piped_table(kf: dict) -> None:
    code, out, err = run("graph", kf["sequential_legacy.h5"]["path"])
    assert code == 0, err
    rows = [line.split("\t") for line in out.splitlines()]
    assert [row[0] for row in rows] == ["input_layer", "dense", "dropout", "batch_normalization", "dense_1", "dense_2"]
    assert rows[1][1] == "Dense" and rows[1][2] == "(None, 5)" and rows[1][3] == str(6 * 5 + 5)
    assert rows[4][4] == "batch_normalization"
    code, _, err = run("graph", kf["sequential.weights.h5"]["path"])
    assert code == 4 and "no model config" in err
    code, _, err = run("graph", kf["sequential.keras"]["path"], "--tree")
    assert code == 2 and "--tree applies to TensorFlow graphs" in err


# --- bad input: one line, a documented exit code, nothing executed -------------------------------------


def _error(*args: str) -> tuple[int, str]:
    code, out, err = run(*args)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return code, err


def test_truncated_zip(kf: dict, tmp_path: Path) -> None:
    data = Path(kf["functional.keras"]["path"]).read_bytes()
    bad = tmp_path / "cut.keras"
    bad.write_bytes(data[: len(data) // 2])
    code, err = _error("ls", bad)
    assert code == 4 and "cut.keras" in err and "zip" in err


def test_zip_without_weights(kf: dict, tmp_path: Path) -> None:
    bad = tmp_path / "noweights.keras"
    with zipfile.ZipFile(kf["functional.keras"]["path"]) as src, zipfile.ZipFile(bad, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
    code, err = _error("ls", bad)
    assert code == 4 and "no model.weights.h5" in err


class _Plant:
    """Unpickling this creates the file it names: proof that a pickle was (or was not) executed."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_npz_weights_are_refused_without_unpickling(kf: dict, tmp_path: Path) -> None:
    """Keras 3's weights_format="npz" pickles each layer's weights: refused with the reason, never unpickled,
    also when a second member of the same name (the known .keras tampering trick) carries a payload."""
    source = entry(kf, "npz_weights.keras")["path"]
    code, err = _error("ls", source)
    assert code == 4 and "model.weights.npz" in err and "never unpickles" in err and "twice" not in err
    marker = tmp_path / "unpickled"
    tampered = tmp_path / "tampered.keras"
    shutil.copy(source, tampered)
    with warnings.catch_warnings(), zipfile.ZipFile(tampered, "a") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        archive.writestr("model.weights.npz", pickle.dumps(_Plant(str(marker))))
    for command in (["ls"], ["show", "--scopes", "*"], ["extract", "-o", str(tmp_path / "w.npz")]):
        code, err = _error(command[0], str(tampered), *command[1:])
        assert code == 4 and "twice" in err, (command, err)
    code, doc = _verify_json(tampered)
    assert code == 4 and "twice" in doc["checkpoints"][0]["problems"][-1]["what"]
    assert not marker.exists()


def test_hdf5_that_is_not_keras(tmp_path: Path) -> None:
    bad = tmp_path / "data.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((2, 2))
    code, err = _error("ls", bad)
    assert code == 4 and "not Keras weights" in err


def test_corrupted_dataset(kf: dict, tmp_path: Path) -> None:
    bad = tmp_path / "broken.weights.h5"
    bad.write_bytes(Path(kf["sequential.weights.h5"]["path"]).read_bytes())
    with h5py.File(bad, "r") as f:
        offset = f["layers/dense/vars/0"].id.get_offset()
    bad.write_bytes(bad.read_bytes()[:offset])  # the dataset's bytes are gone
    code, err = _error("ls", "--stats", bad)
    assert code == 4 and "broken.weights.h5" in err and "truncated" in err
    with h5py.File(kf["sequential.weights.h5"]["path"], "r") as f:
        header = h5py.h5o.get_info(f["layers/dense/vars/0"].id).addr
    raw = bytearray(Path(kf["sequential.weights.h5"]["path"]).read_bytes())
    raw[header : header + 64] = b"\xff" * 64  # the dataset's object header is garbage
    bad.write_bytes(bytes(raw))
    code, err = _error("ls", "--stats", bad)
    assert code == 4 and "broken.weights.h5" in err and "damaged HDF5" in err


def test_config_that_does_not_match_the_weights(kf: dict, tmp_path: Path) -> None:
    bad = tmp_path / "mismatch.keras"
    with zipfile.ZipFile(kf["sequential.keras"]["path"]) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                data = data.replace(b'"units": 5', b'"units": 7')
            dst.writestr(item, data)
    code, err = _error("ls", bad)
    assert code == 4 and "units=7" in err and "dense" in err


def test_graph_table_fits_80_columns_on_a_terminal(kf: dict, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    from ckpttools.cli.keras_graph import show_keras

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    show_keras(kf["functional.keras"]["path"], (), None, False)
    out = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # without the terminal's styling codes
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "(None, 8, 8, 4)" in out and "never evaluated" in out and "15 layers, 611 parameters" in out


def _verify_json(path: Path | str) -> tuple[int, dict]:
    code, out, err = run("verify", "--json", path)
    assert "Traceback" not in err
    return code, json.loads(out)


def test_verify_checks_the_keras_archive_crc_and_reads_every_weight(kf: dict, tmp_path: Path) -> None:
    """verify of a .keras file checks the zip's CRC-32 of every member (stored and deflated archives);
    a flipped byte inside the weights is found; the report names the format."""
    for label in ("functional.keras", "functional_deflated.keras"):
        code, doc = _verify_json(kf[label]["path"])
        report = doc["checkpoints"][0]
        assert code == 0 and report["format"] == "keras" and report["checksums_checked"]
        assert report["tensors_checked"] == len(ckpttools.open_checkpoint(kf[label]["path"]).variables)
        assert report["bytes_checked"] >= Path(kf[label]["path"]).stat().st_size // 2
    source = Path(kf["functional.keras"]["path"])
    with h5py.File(zipfile.ZipFile(source).open("model.weights.h5"), "r") as weights:
        dataset = weights["layers/dense/vars/0"]
        inner = dataset.id.get_offset() + dataset.nbytes // 2
    with zipfile.ZipFile(source) as archive:
        member = archive.getinfo("model.weights.h5")
    raw = bytearray(source.read_bytes())
    start = member.header_offset + 30 + len(member.filename.encode()) + len(member.extra)
    raw[start + inner] ^= 0x40
    bad = tmp_path / "flipped.keras"
    bad.write_bytes(bytes(raw))
    code, doc = _verify_json(bad)
    assert code == 4 and not doc["intact"]
    assert any("CRC" in p["what"] or "checksum" in p["what"].lower() for p in doc["checkpoints"][0]["problems"])


def test_verify_of_keras_checks_the_weights_member_once(kf: dict, tmp_path: Path) -> None:
    """A .keras file whose recorded CRC-32 of model.weights.h5 is wrong (its bytes intact): one problem, found
    by reading the weights; the member scan does not read the largest member a second time."""
    source = Path(kf["functional.keras"]["path"])
    raw = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as archive:
        member = archive.getinfo("model.weights.h5")
    assert member.compress_type == zipfile.ZIP_STORED
    wrong = (member.CRC ^ 0x1).to_bytes(4, "little")
    raw[member.header_offset + 14: member.header_offset + 18] = wrong  # the local header's CRC-32
    name = member.filename.encode()
    central = next(i for i in range(len(raw) - 46) if raw[i:i + 4] == b"PK\x01\x02"
                   and raw[i + 46: i + 46 + len(name)] == name)
    raw[central + 16: central + 20] = wrong  # the central directory's copy
    bad = tmp_path / "wrong-crc.keras"
    bad.write_bytes(bytes(raw))
    code, doc = _verify_json(bad)
    problems = doc["checkpoints"][0]["problems"]
    assert code == 4 and not doc["intact"]
    assert len(problems) == 1 and problems[0]["cause"] == "checksum", problems


def test_verify_of_keras_hdf5_reads_every_weight_and_says_there_are_no_checksums(kf: dict, tmp_path: Path) -> None:
    path = kf["sequential.weights.h5"]["path"]
    code, doc = _verify_json(path)
    report = doc["checkpoints"][0]
    assert code == 0 and report["format"] == "keras_h5" and not report["checksums_checked"]
    assert [p["cause"] for p in report["problems"]] == ["no-checksums"] and "HDF5" in report["problems"][0]["what"]
    bad = tmp_path / "cut.weights.h5"
    with h5py.File(path, "r") as f:
        offset = f["layers/dense/vars/0"].id.get_offset()
    bad.write_bytes(Path(path).read_bytes()[: offset + 4])  # the dataset's bytes are cut short
    code, doc = _verify_json(bad)
    assert code == 4 and not doc["intact"]


def test_keras_2_0_sequential_config_as_a_bare_list(kf: dict, tmp_path: Path) -> None:
    """Keras up to 2.1 saved a Sequential's config as the bare list of its layers (a real CarND model.h5
    written by Keras 2.0.6 crashed ls): the same weights and layers as the file Keras 2 writes today."""
    source = entry(kf, "keras2_model.h5")["path"]
    old = tmp_path / "keras20.h5"
    shutil.copy(source, old)
    with h5py.File(old, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        nested = [layer for layer in config["config"]["layers"] if layer["class_name"] == "Sequential"]
        assert nested, "the fixture must hold a nested Sequential"
        for layer in nested:
            layer["config"] = layer["config"]["layers"]
        f.attrs["model_config"] = json.dumps(config).encode()
    for command in (["ls", "--json", "--all"], ["graph", "--json"]):
        code, out, err = run(command[0], old, *command[1:])
        assert code == 0, err
        code, expected, err = run(command[0], source, *command[1:])
        strip = lambda doc: {k: v for k, v in json.loads(doc).items() if k not in ("checkpoint", "source", "path")}  # noqa: E731
        assert strip(out) == strip(expected)


def test_an_hdf5_keras_file_named_dot_keras_is_read_as_hdf5(kf: dict, tmp_path: Path) -> None:
    """Keras 2 wrote HDF5 files under a .keras name (a real Keras 2.11 model.keras was called a damaged zip):
    listed, verified and read as the HDF5 file it is, with a note saying so."""
    source = entry(kf, "keras2_model.h5")["path"]
    named = tmp_path / "model.keras"
    shutil.copy(source, named)
    code, out, err = run("ls", "--json", "--all", str(named))
    assert code == 0, err
    doc = json.loads(out)
    expected = json.loads(run("ls", "--json", "--all", source)[1])
    listed = [(v["name"], v["shape"]) for v in doc["variables"]]
    assert listed == [(v["name"], v["shape"]) for v in expected["variables"]]
    assert "HDF5" in doc["checkpoint"]["note"]
    with ckpttools.open_checkpoint(str(named)) as ckpt, ckpttools.open_checkpoint(source) as original:
        assert ckpt.format == "keras_h5"
        for info in original:
            assert np.array_equal(ckpt.get(info.name), original.get(info.name))
    code, report = _verify_json(named)
    assert code == 0 and report["checkpoints"][0]["format"] == "keras_h5"
