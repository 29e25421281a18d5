"""Real files that once gave wrong answers or crashes (issue 9), judged against TensorFlow's own reading.

The files are written by real TensorFlow/Keras in a subprocess (tests/real_file_fixtures.py), once per
session, with TensorFlow's view of them in truth.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fixture_scripts import run_fixture_script

import ckpttools
from ckpttools.cli import main
from ckpttools.resolve import resolve
from ckpttools.storage.atomic import HOST

TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.tf


@pytest.fixture(scope="session")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """truth.json of tests/real_file_fixtures.py, for files it wrote in a fresh directory."""
    root, _ = run_fixture_script(tmp_path_factory, "real_file_fixtures.py", timeout=600)
    return json.loads((root / "truth.json").read_text(encoding="utf-8"))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def same_value(ours: np.ndarray, tensorflow: object) -> bool:
    """Equal shape and elements; TF gives a scalar string as ``bytes`` (np.asarray would drop trailing NULs)."""
    if isinstance(tensorflow, bytes):
        return ours.shape == () and ours.item() == tensorflow
    return ours.shape == tensorflow.shape and ours.tolist() == tensorflow.tolist()


def tf_reader(prefix: str):
    import tensorflow as tf

    return tf.train.load_checkpoint(prefix)


# --- 1, 2: lookup tables: empty string tensors, two tensors under one attribute --------------------------


@pytest.mark.parametrize("label", ["tables_ckpt", "tables_saved_model", "text_ckpt", "text_saved_model"])
def test_every_table_tensor_has_its_own_name(real: dict, label: str) -> None:
    truth = real[label]
    with ckpttools.open_checkpoint(truth["path"]) as ckpt:
        names = [info.name for info in ckpt]
        assert len(names) == len(set(names)) == len(truth["tf"])
        assert {info.key: [info.dtype, list(info.shape)] for info in ckpt} == truth["tf"]
        reader = tf_reader(ckpt.prefix)
        for info in ckpt:
            assert info.name == ckpt.info(info.name).name  # each name reaches its own tensor
            assert same_value(ckpt.get(info.name), reader.get_tensor(info.key)), info.name
    assert any(n.endswith("/table-keys") for n in names) and any(n.endswith("/table-values") for n in names)


def test_empty_string_tensor_listed_with_zero_bytes(real: dict) -> None:
    code, out, _ = run("ls", "--all", "--json", real["tables_ckpt"]["path"])
    rows = {v["name"]: v for v in json.loads(out)["variables"]}
    assert code == 0
    assert rows["module/empty/table-keys"]["nbytes"] == 0 and rows["module/empty/table-keys"]["shape"] == [0]
    assert rows["module/vocab/table-values"]["nbytes"] > 0


@pytest.mark.parametrize("label", ["tables_ckpt", "tables_saved_model", "text_ckpt", "text_saved_model"])
def test_extract_tables_to_npz_equals_tensorflow(real: dict, label: str, tmp_path: Path) -> None:
    out = tmp_path / "tables.npz"
    code, _, err = run("extract", "--all", real[label]["path"], "-o", str(out))
    assert code == 0, err
    with ckpttools.open_checkpoint(real[label]["path"]) as ckpt, np.load(out, allow_pickle=False) as archive:
        reader = tf_reader(ckpt.prefix)
        tables = {info.name for info in ckpt if "table-" in info.name}
        stored = [key for key, (_, shape) in real[label]["tf"].items() if "/.ATTRIBUTES/table-" in key]
        assert len(tables) == len(stored) >= 2 and tables <= set(archive.files)
        assert any(real[label]["tf"][key][1] == [0] for key in stored)  # an empty table among them
        for name in archive.files:
            assert same_value(archive[name], reader.get_tensor(ckpt.info(name).key)), name


def test_diff_counts_both_table_tensors(real: dict, tmp_path: Path) -> None:
    out = tmp_path / "t.npz"
    assert run("extract", "--all", real["tables_ckpt"]["path"], "-o", str(out))[0] == 0
    code, stdout, _ = run("diff", "--all", "--json", real["tables_ckpt"]["path"], str(out))
    doc = json.loads(stdout)
    assert code == 0 and doc["equal"]
    assert len([v for v in doc["values"] if v["status"] == "identical"]) == len(real["tables_ckpt"]["tf"])


def test_colliding_names_fall_back_to_keys_never_hide_a_tensor(real: dict, monkeypatch) -> None:
    from ckpttools.formats import objgraph

    monkeypatch.setattr(objgraph, "_display_name", lambda key, *args: key.split("/.ATTRIBUTES/")[0])
    with ckpttools.open_checkpoint(real["tables_ckpt"]["path"]) as ckpt:
        assert len({info.name for info in ckpt}) == len(real["tables_ckpt"]["tf"])
        assert "module/empty/.ATTRIBUTES/table-keys" in {info.name for info in ckpt}
        assert any("shared by several tensors" in w for w in ckpt.warnings)


# --- 9: bounded error messages --------------------------------------------------------------------------


def test_truncated_pbtxt_error_is_one_short_line(real: dict) -> None:
    code, _, err = run("graph", real["truncated_pbtxt"]["path"])
    assert code == 4 and err.count("\n") == 1 and len(err) < 600
    assert "line 20" in err and "missing ending quote" in err and err.count("tensor_content") == 1


def test_any_error_is_one_bounded_line(tmp_path: Path) -> None:
    name = "x\n\x1b[31m" + "y" * 5000
    code, _, err = run("ls", str(tmp_path / name))
    assert code == 3 and err.count("\n") == 1 and len(err) < 1100 and "\x1b" not in err


# --- 3: ls --stats on string npz; names too long for a zip ----------------------------------------------


def test_ls_stats_on_npz_with_byte_and_unicode_strings(real: dict, tmp_path: Path) -> None:
    extracted = tmp_path / "all.npz"
    assert run("extract", "--all", real["tables_ckpt"]["path"], "-o", str(extracted))[0] == 0
    numpy_made = tmp_path / "strings.npz"
    np.savez(numpy_made, b=np.array([b"ab", b"c"]), u=np.array(["x", "yz"]), f=np.arange(3.0))
    for path, strings in ((extracted, 3), (numpy_made, 2)):  # 3: the object graph is a string too
        code, out, err = run("ls", "--all", "--stats", str(path))
        assert code == 0, err
        assert f"no numeric statistics for {strings} tensors" in err
        rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()}
        assert all(cells[5:9] == ["-"] * 4 for name, cells in rows.items() if cells[1] in ("string", "str64"))
    code, out, _ = run("ls", "--stats", "--json", str(numpy_made))
    stats = {v["name"]: v["stats"] for v in json.loads(out)["variables"]}
    assert stats["b"] is None and stats["u"] is None and stats["f"]["max"] == 2.0


def test_extract_refuses_a_name_over_64_kib(real: dict, tmp_path: Path) -> None:
    truth = real["long_name"]
    long_name = max(truth["tf"], key=len)
    assert len(long_name) >= 65536
    out = tmp_path / "w.npz"
    code, _, err = run("extract", truth["path"], "-o", str(out))
    assert code == 5 and "limit" in err and "--scopes" in err and len(err) < 600
    assert list(tmp_path.iterdir()) == []
    assert run("extract", truth["path"], "-o", str(out), "--scopes", "short")[0] == 0
    safetensors = tmp_path / "w.safetensors"
    assert run("extract", truth["path"], "-o", str(safetensors))[0] == 0
    from safetensors.numpy import load_file

    reader = tf_reader(truth["path"])
    assert {k: v.tolist() for k, v in load_file(str(safetensors)).items()} == {
        k: reader.get_tensor(k).tolist() for k in truth["tf"]}


# --- 3: function libraries holding convolutions ---------------------------------------------------------


@pytest.mark.parametrize("label", ["conv_function", "keras_conv_saved_model"])
def test_graph_functions_with_convolutions(real: dict, label: str) -> None:
    truth = real[label]
    assert any("Conv2D" in ops for ops in truth["functions"].values())
    code, out, err = run("graph", "--functions", "--json", truth["path"])
    assert code == 0, err
    listed = {f["name"]: sorted({node["op"] for node in f["nodes"]}) for f in json.loads(out)["functions"]}
    assert listed == truth["functions"]
    convs = [node for f in json.loads(out)["functions"] for node in f["nodes"] if node["op"] == "Conv2D"]
    assert convs and all(node["attrs"]["strides"] == [1, 1] for node in convs)
    code, out, err = run("graph", "--functions", truth["path"])
    assert code == 0 and "Conv2D" in out, err


# --- 4: Placeholder shapes of old graphs ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["path", "pb"])
def test_old_placeholder_shapes_are_what_tensorflow_imports(real: dict, kind: str) -> None:
    truth = real["old_placeholders"]
    code, out, _ = run("graph", "--summary", "--json", truth[kind])
    inputs = {p["name"]: p["shape"] for p in json.loads(out)["summary"]["placeholders"]}
    assert code == 0 and inputs == truth["shapes"]
    assert truth["shapes"]["anything"] is None and truth["shapes"]["images"] == [None, 32, 32, 1]
    code, out, _ = run("graph", "--op", "Placeholder", "--json", truth[kind])
    assert {n["name"]: n["attrs"]["shape"] for n in json.loads(out)["nodes"]} == truth["shapes"]
    code, out, _ = run("graph", "--summary", truth[kind])
    rows = {line.split("\t")[1]: line.split("\t")[3] for line in out.splitlines() if line.startswith("input\t")}
    assert rows == {"images": "[?, 32, 32, 1]", "labels": "[?]", "anything": "<unknown>", "rate": "[]"}


# --- 5: octal-escaped UTF-8 in checkpoint state files ---------------------------------------------------


def test_state_file_octal_escapes_decode_as_utf8(real: dict) -> None:
    truth = real["unicode_state"]
    state = (Path(truth["path"]) / "checkpoint").read_text(encoding="ascii")
    assert "\\346\\241\\214" in state  # escaped, as TensorFlow wrote it with protobuf 3
    resolved = resolve(truth["path"])
    assert resolved.prefix == truth["named"] == truth["prefix"]
    assert resolved.note == f"using {truth['prefix']} from {truth['path']}/checkpoint"


def test_state_file_from_windows_names_the_path_tensorflow_reads(real: dict) -> None:
    truth = real["windows_state"]
    resolved = resolve(truth["path"])
    named = truth["named"].rsplit("/", 1)[-1]  # TF joins a path it does not take as absolute to the directory
    assert named == "C:\\Users\\桌面\\modèle\\ckpt-1"
    assert resolved.prefix == truth["prefix"] and f"it names {named}, not found" in resolved.note


# --- 7: SavedModel paths --------------------------------------------------------------------------------


def scale_of(path: str) -> float:
    with ckpttools.open_checkpoint(path) as ckpt:
        return float(ckpt.get("scale"))


def test_saved_model_pb_and_hub_module_files_list_their_variables(real: dict) -> None:
    values = real["exports"]["values"]
    root = Path(real["exports"]["path"])
    for directory, expected in values.items():
        for target in (directory, f"{directory}/saved_model.pb"):
            assert scale_of(target) == expected["scale"], target
            assert resolve(target).prefix == expected["prefix"]
    hub = str(root / "hub_module")
    assert scale_of(f"{hub}/tfhub_module.pb") == values[hub]["scale"]
    assert "another name" in resolve(str(root / "moved")).note
    code, out, err = run("ls", f"{root / 'models' / 'resnet'}/saved_model.pb")
    assert code == 0 and out.startswith("scale\tfloat32"), err


def test_export_folder_takes_the_newest_timestamp(real: dict) -> None:
    root = Path(real["exports"]["path"])
    newest = str(root / "export" / "1600000500")
    resolved = resolve(str(root / "export"))
    assert resolved.prefix == real["exports"]["values"][newest]["prefix"]
    assert "newest of 3 numbered exports" in resolved.note and newest in resolved.note
    assert scale_of(str(root / "export")) == real["exports"]["values"][newest]["scale"]


@pytest.mark.parametrize("folder", ["models", "."])
def test_folder_of_several_saved_models_says_did_you_mean(real: dict, folder: str) -> None:
    root = Path(real["exports"]["path"]) / folder
    code, _, err = run("ls", str(root))
    assert code == 3 and "did you mean" in err and "resnet" in err and err.count("\n") == 1


# --- 6: parameter totals of compiled, fitted Keras models -----------------------------------------------


@pytest.mark.parametrize("label", ["tf_keras_metrics", "keras_metrics"])
def test_ls_and_graph_summary_count_what_keras_counts(real: dict, label: str) -> None:
    truth = real[label]
    for path in (truth["checkpoint"], truth["saved_model"]):
        code, out, _ = run("ls", "--json", path)
        assert code == 0 and json.loads(out)["totals"]["parameters"] == truth["count_params"], path
    summary = json.loads(run("graph", "--summary", "--json", truth["saved_model"])[1])["summary"]
    assert summary["parameters"] == summary["trainable_parameters"] == truth["count_params"]
    roles = {v["name"]: v["role"] for v in summary["variables"]}
    with ckpttools.open_checkpoint(truth["saved_model"]) as ckpt:
        listed = {info.name: info.role for info in ckpt if info.role != "metadata"}
    assert roles == listed  # same variables, same names, same roles as ls
    if label == "tf_keras_metrics":
        assert {role for name, role in roles.items() if "keras_api/metrics/" in name} == {"training"}
        assert len([name for name in roles if name.startswith("keras_api/metrics/")]) == 6
    assert all(role == "optimizer" for name, role in roles.items() if "learning_rate" in name)


# --- 8: names with empty components ---------------------------------------------------------------------


def test_names_with_empty_components_can_be_selected(real: dict, tmp_path: Path) -> None:
    truth = real["odd_names"]
    code, out, err = run("ls", truth["path"], "--scopes", "linear//weight")
    assert code == 0 and [line.split("\t")[:3] for line in out.splitlines()] == [["linear//weight", "float32", "[4]"]]
    code, out, _ = run("ls", truth["path"], "--scopes", "a//b//c", "--scopes", "linear/bias")
    assert code == 0 and sorted(line.split("\t")[0] for line in out.splitlines()) == ["a//b//c", "linear/bias"]
    out_file = tmp_path / "w.npz"
    assert run("extract", truth["path"], "-o", str(out_file), "--scopes", "linear//weight")[0] == 0
    reader = tf_reader(truth["path"])
    with np.load(out_file) as archive:
        assert archive.files == ["linear//weight"]
        assert archive["linear//weight"].tolist() == reader.get_tensor("linear//weight").tolist()
    with ckpttools.open_checkpoint(truth["path"]) as ckpt:
        assert {info.name: [info.dtype, list(info.shape)] for info in ckpt} == truth["tf"]


def test_rewrite_keeps_empty_components_in_keys(real: dict, tmp_path: Path) -> None:
    """An Estimator checkpoint from a public repository holds linear//weight; rewrite wrote it back as
    linear/weight, which its graph cannot restore. Keys no rule renames are written as they are; a rule
    keeps the empty components the name already had."""
    truth = real["odd_names"]
    source = tf_reader(truth["path"])
    cases = (([], lambda key: key), (["--map", "linear/=lin/"], lambda key: key.replace("linear/", "lin/")))
    for extra, expect in cases:
        out = tmp_path / ("mapped" if extra else "same") / "model.ckpt"
        out.parent.mkdir()
        code, _, err = run("rewrite", truth["path"], "-o", str(out), *extra)
        assert code == 0, err
        written = tf_reader(str(out))
        keys = set(source.get_variable_to_shape_map())
        assert set(written.get_variable_to_shape_map()) == {expect(key) for key in keys}
        for key in keys:
            assert written.get_tensor(expect(key)).tobytes() == source.get_tensor(key).tobytes()


# --- kill -9 during extract -----------------------------------------------------------------------------


def start_extract(source: str, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ckpttools", "extract", source, "-o", str(out), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_while_writing(child: subprocess.Popen, folder: Path, at_bytes: int) -> bool:
    """SIGKILL ``child`` once its partial file holds ``at_bytes``; True if it was still writing then."""
    import signal
    import time

    partial = folder / f".w.npz.ckpttools-partial-{HOST}-{child.pid}"
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= at_bytes):
        if child.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    child.send_signal(signal.SIGKILL)
    child.wait()
    return child.returncode == -signal.SIGKILL


def test_kill_9_leaves_no_output_and_the_next_run_cleans_up(real: dict, tmp_path: Path) -> None:
    import random

    source = real["big"]["path"]
    out = tmp_path / "w.npz"
    rng = random.Random(9)
    with ckpttools.open_checkpoint(source) as ckpt:
        total = sum(info.nbytes for info in ckpt)
    killed = 0
    for _ in range(2):
        child = start_extract(source, out)
        if kill_while_writing(child, tmp_path, int(rng.uniform(0, 0.9) * total)):
            killed += 1
            assert not out.exists()  # never a final output from a killed run
            leftovers = [p.name for p in tmp_path.iterdir()]  # its own; an earlier run's was removed
            assert leftovers == [f".w.npz.ckpttools-partial-{HOST}-{child.pid}"]
        else:  # it finished first: a complete output and nothing else
            assert child.returncode == 0 and [p.name for p in tmp_path.iterdir()] == ["w.npz"]
            out.unlink()
    assert killed >= 1
    child = start_extract(source, out)
    assert kill_while_writing(child, tmp_path, total // 2)
    out.write_bytes(b"an older output")  # --force replaces it, and removes the stale partial as well
    child = start_extract(source, out, "--force")
    _, err = child.communicate(timeout=120)
    assert child.returncode == 0 and b"left by an interrupted run" in err
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]
    with np.load(out) as archive, ckpttools.open_checkpoint(source) as ckpt:
        assert sorted(archive.files) == sorted(info.name for info in ckpt if info.role == "model")
        assert archive["layer0"].tobytes() == ckpt.get("layer0").tobytes()


def test_keras_3_export_saves_each_variable_twice_and_counts_once(real: dict) -> None:
    truth = real["keras_conv_saved_model"]
    assert len([key for key in truth["tf"] if key.endswith("VARIABLE_VALUE")]) == 8  # TF: 4 variables, twice
    code, out, _ = run("ls", "--all", "--json", truth["path"])
    doc = json.loads(out)
    assert code == 0 and doc["totals"]["parameters"] == truth["count_params"]
    roles = {v["name"]: v["role"] for v in doc["variables"]}
    assert sorted(name for name, role in roles.items() if role == "model") == [f"variables/{i}" for i in range(4)]
    assert sorted(name for name, role in roles.items() if role == "duplicate") == [
        f"_all_variables/{i}" for i in range(4)]
    reader = tf_reader(truth["path"] + "/variables/variables")
    with ckpttools.open_checkpoint(truth["path"]) as ckpt:
        by_original = {}
        for info in ckpt:
            if info.role in ("model", "duplicate"):
                by_original.setdefault(info.original_name, []).append(reader.get_tensor(info.key).tobytes())
        assert len(by_original) == 4 and all(len(set(copies)) == 1 for copies in by_original.values())
    summary = json.loads(run("graph", "--summary", "--json", truth["path"])[1])["summary"]
    assert summary["parameters"] == summary["trainable_parameters"] == truth["count_params"]
    assert {v["name"]: v["role"] for v in summary["variables"]} == {
        name: role for name, role in roles.items() if role != "metadata"}


def test_equal_variables_of_a_plain_module_are_not_copies(real: dict) -> None:
    """Equal values under TensorFlow's default name, or under one public name, do not make copies."""
    with ckpttools.open_checkpoint(real["equal_module"]["path"]) as ckpt:
        roles = {info.name: info.role for info in ckpt if info.role != "metadata"}
    assert roles == {"a": "model", "b": "model", "c": "model", "d": "model"}


# --- Keras of TF 2.0-2.2: layer configs saved as text beside the weights ----------------------------------


def test_object_config_json_is_metadata_not_a_weight(real: dict) -> None:
    truth = real["object_config"]
    configs = sorted(key for key in truth["tf"] if key.endswith("/.ATTRIBUTES/OBJECT_CONFIG_JSON"))
    assert configs == ["/.ATTRIBUTES/OBJECT_CONFIG_JSON", "layer_with_weights_1/.ATTRIBUTES/OBJECT_CONFIG_JSON"]
    code, out, _ = run("ls", "--all", "--json", truth["path"])
    assert code == 0
    rows = {v["key"]: v for v in json.loads(out)["variables"]}
    assert set(rows) == set(truth["tf"])
    assert {rows[key]["name"] for key in configs} == {"OBJECT_CONFIG_JSON", "layer_with_weights_1/OBJECT_CONFIG_JSON"}
    assert all(rows[key]["role"] == "metadata" for key in configs)
    code, out, _ = run("ls", "--json", truth["path"])
    document = json.loads(out)
    assert {v["name"] for v in document["variables"]} == {"kernel", "layer_with_weights_1/kernel"}
    assert document["totals"]["parameters"] == 6 + 4  # the two kernels only
    with ckpttools.open_checkpoint(truth["path"]) as ckpt:
        reader = tf_reader(ckpt.prefix)
        for key in configs:
            assert same_value(ckpt.get(rows[key]["name"]), reader.get_tensor(key))


@pytest.mark.parametrize("options", [["--scopes", "layer_with_weights_1"], ["--cast", "float32=float16"]])
def test_rewrite_keeps_object_config_text_as_it_was(real: dict, tmp_path: Path, options: list[str]) -> None:
    """Only the object graph is rewritten to match what is kept; a layer's config text is copied as it is."""
    truth = real["object_config"]
    out = str(tmp_path / "cp.ckpt")
    code, _, err = run("rewrite", truth["path"], "-o", out, *options)
    assert code == 0, err
    source, written = tf_reader(truth["path"]), tf_reader(out)
    configs = [key for key in written.get_variable_to_shape_map() if key.endswith("/.ATTRIBUTES/OBJECT_CONFIG_JSON")]
    assert configs and all(written.get_tensor(key) == source.get_tensor(key) for key in configs)
    assert ("/.ATTRIBUTES/OBJECT_CONFIG_JSON" in configs) == (options[0] == "--cast")  # --scopes selects by name
