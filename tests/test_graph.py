"""`ckpttools graph` through click's CliRunner, checked against what TensorFlow itself reads.

Graphs built by real TensorFlow (tests/tf_graph_fixtures.py, run once in a subprocess) come with
TensorFlow's own view of them (``import_meta_graph``, ``import_graph_def``, ``saved_model.loader``):
node names, ops, inputs, function library, conv attributes and signature defs. Tests without the
``tf`` marker use the shipped sample meta graph and a TF 0.12-layout meta graph in tests/data/graphs.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ckpttools.cli import main
from ckpttools.formats.crc import crc32c, mask
from ckpttools.formats.protowire import read_varint
from ckpttools.graphs import load_graph

TESTS = Path(__file__).resolve().parent
SAMPLE_META = TESTS.parent / "sample_checkpoints" / "tf1_cnn" / "model.ckpt-20.meta"
OLD_META = TESTS / "data" / "graphs" / "tf0_12_mlp.meta"
BUILD_TIMEOUT = 600
TF_LABELS = ("cnn", "loops", "old_style", "frozen_pb", "frozen_pbtxt", "saved_model", "saved_model_text")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["graph", *args])
    return result.exit_code, result.stdout, result.stderr


def graph_json(*args: str) -> dict:
    code, out, err = run("--json", *args)
    assert code == 0, err
    return json.loads(out)


def error_line(*args: str) -> tuple[int, str]:
    """Exit code and the single stderr line of a failing run."""
    code, out, err = run(*args)
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    return code, err.strip()


@pytest.fixture(scope="session")
def tf_graphs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every graph of tests/tf_graph_fixtures.py and TensorFlow's view of it, built once per session."""
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("tf_graphs")
    try:
        result = subprocess.run([sys.executable, str(TESTS / "tf_graph_fixtures.py"), str(root)],
                                capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the TensorFlow graphs took over {BUILD_TIMEOUT}s")
    if result.returncode != 0:
        pytest.fail(f"building the TensorFlow graphs failed:\n{result.stderr[-5000:]}")
    return json.loads((root / "truth.json").read_text())


def our_nodes(nodes: list[dict]) -> dict[str, list]:
    """Our JSON nodes in the shape of the truth: op, data inputs as tensor names, sorted control inputs."""
    out = {}
    for node in nodes:
        data = [name if ":" in name else name + ":0" for name in node["inputs"] if not name.startswith("^")]
        control = sorted(name[1:] for name in node["inputs"] if name.startswith("^"))
        out[node["name"]] = [node["op"], data, control]
    return out


# --- against TensorFlow ------------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.parametrize("label", TF_LABELS)
def test_nodes_ops_and_inputs_match_tensorflow(tf_graphs: dict, label: str) -> None:
    truth = tf_graphs["graphs"][label]
    doc = graph_json(truth["path"])
    assert doc["selection"]["total"] == len(truth["nodes"])
    assert our_nodes(doc["nodes"]) == truth["nodes"]


@pytest.mark.tf
@pytest.mark.parametrize("label", ["loops", "saved_model"])
def test_function_library_matches_tensorflow(tf_graphs: dict, label: str) -> None:
    truth = tf_graphs["graphs"][label]
    assert truth["functions"], "the fixture must have a function library"
    doc = graph_json(truth["path"], "--functions")
    assert {f["name"]: f["node_count"] for f in doc["functions"]} == truth["functions"]
    for function in doc["functions"]:
        assert len(function["nodes"]) == function["node_count"]
    if label == "loops":  # a while loop (cond + body), a cond (two branches) and a tf.function
        names = " ".join(truth["functions"])
        assert all(part in names for part in ("loop_cond", "loop_body", "branch_true", "branch_false", "scale"))


@pytest.mark.tf
@pytest.mark.parametrize("label", ["cnn", "frozen_pb"])
def test_conv_and_pool_attributes_match_tensorflow(tf_graphs: dict, label: str) -> None:
    truth = tf_graphs["graphs"][label]
    rows = {n["name"]: n["attrs"] for n in graph_json(truth["path"], "--op", "Conv2D", "--op", "DepthwiseConv2dNative",
                                                     "--op", "MaxPool", "--op", "AvgPool")["nodes"]}
    assert set(rows) == set(truth["conv"]) and len(rows) == 6
    for name, expected in truth["conv"].items():
        attrs = rows[name]
        assert expected["data_format"] == "NHWC" and attrs["data_format"] == "NHWC"
        assert attrs["strides"] == expected["strides"][1:3]
        assert attrs["padding"] == expected["padding"]
        kernel = expected["filter_shape"][:2] if "filter_shape" in expected else expected["ksize"][1:3]
        assert attrs["kernel"] == kernel
        dilations = expected.get("dilations", [1, 1, 1, 1])[1:3]
        assert attrs.get("dilations", [1, 1]) == dilations
    assert rows["cnn/dilated/Conv2D"]["dilations"] == [2, 2]
    assert rows["cnn/conv2/Conv2D"]["strides"] == [2, 2] and rows["cnn/conv2/Conv2D"]["padding"] == "VALID"


@pytest.mark.tf
@pytest.mark.parametrize("label", ["saved_model", "saved_model_text"])
def test_signature_defs_match_tensorflow(tf_graphs: dict, label: str) -> None:
    truth = tf_graphs["graphs"][label]
    doc = graph_json(truth["path"], "--summary")
    assert doc["source"]["format"] == "saved_model" and doc["source"]["tags"] == truth["tags"]
    ours = {
        s["key"]: {
            "method_name": s["method_name"],
            "inputs": {t["key"]: {"name": t["name"], "dtype": t["dtype"], "shape": t["shape"]} for t in s["inputs"]},
            "outputs": {t["key"]: {"name": t["name"], "dtype": t["dtype"], "shape": t["shape"]} for t in s["outputs"]},
        }
        for s in doc["summary"]["signatures"]
    }
    assert ours == truth["signatures"]
    assert set(ours["serving_default"]["inputs"]) == {"features", "ids"}
    inputs = {p["name"] for p in doc["summary"]["placeholders"]}
    assert inputs == {"serving_default_features", "serving_default_ids", "embed_x"}  # not saver_filename


@pytest.mark.tf
def test_cnn_summary(tf_graphs: dict) -> None:
    truth = tf_graphs["graphs"]["cnn"]
    summary = graph_json(truth["path"], "--summary")
    source, summary = summary["source"], summary["summary"]
    assert source["tensorflow_version"] == tf_graphs["tensorflow"]["version"]
    assert source["tensorflow_git_version"] == tf_graphs["tensorflow"]["git_version"]
    assert summary["node_count"] == len(truth["nodes"])
    model = {v["name"]: v for v in summary["variables"] if v["role"] == "model"}
    assert model["cnn/conv1/kernel"] == {"name": "cnn/conv1/kernel", "op": "VariableV2", "dtype": "float32",
                                         "shape": [5, 5, 3, 8], "parameters": 600, "trainable": True, "role": "model"}
    assert summary["parameters"] == 600 + 8 + 3 * 3 * 8 * 16 + 3 * 3 * 16 * 16 + 3 * 3 * 16 + 16 * 10 + 10
    assert summary["parameters"] == summary["trainable_parameters"]
    assert any(v["name"].endswith("/Adam_1") and v["role"] == "optimizer" for v in summary["variables"])
    assert [(p["name"], p["dtype"], p["shape"]) for p in summary["placeholders"]] == [
        ("images", "float32", [None, 32, 32, 3]), ("labels", "int64", [None])]
    assert summary["outputs"] == [{"name": "probabilities", "op": "Softmax"}]
    collections = {c["name"]: c["size"] for c in summary["collections"]}
    assert collections["summaries"] == 2 and collections["trainable_variables"] == 7
    assert summary["saver"]["max_to_keep"] == 3 and summary["saver"]["version"] == "V2"
    assert summary["ops"]["Conv2D"] == sum(1 for op, _, _ in truth["nodes"].values() if op == "Conv2D")


@pytest.mark.tf
def test_old_style_graph_with_variable_ops_and_v1_loops(tf_graphs: dict) -> None:
    summary = graph_json(tf_graphs["graphs"]["old_style"]["path"], "--summary")["summary"]
    assert [(v["name"], v["op"], v["shape"], v["trainable"]) for v in summary["variables"]] == [
        ("layer/weights", "Variable", [3, 3], True), ("layer/biases", "Variable", [3], True)]
    assert {"Enter", "Merge", "Switch", "NextIteration", "Exit", "LoopCond"} <= set(summary["ops"])
    assert summary["outputs"] == [{"name": "output", "op": "Identity"}]  # not the unused loop counter's Exit


@pytest.mark.tf
def test_tensorboard_event_file_reads_back_in_tensorflow(tf_graphs: dict, tmp_path: Path) -> None:
    sources = {label: tf_graphs["graphs"][label]["path"] for label in ("cnn", "frozen_pb")}
    files = {}
    for label, path in sources.items():
        (tmp_path / label).mkdir()
        code, _, err = run(path, "--tensorboard", str(tmp_path / label))
        assert code == 0, err
        [files[label]] = [str(p) for p in (tmp_path / label).iterdir()]
        assert Path(files[label]).name.startswith("events.out.tfevents.")
    result = subprocess.run([sys.executable, "-c", READ_EVENTS, json.dumps({"files": files, "sources": sources})],
                            capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["cnn"] == {"file_version": "brain.Event:2", "events": 3, "graph_equal": True, "meta_equal": True,
                             "tensorboard_nodes": len(tf_graphs["graphs"]["cnn"]["nodes"])}
    assert report["frozen_pb"] == {"file_version": "brain.Event:2", "events": 2, "graph_equal": True,
                                   "meta_equal": None,
                                   "tensorboard_nodes": len(tf_graphs["graphs"]["frozen_pb"]["nodes"])}


READ_EVENTS = """
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
args = json.loads(sys.argv[1])
report = {}
for label, path in args["files"].items():
    source = args["sources"][label]
    data = open(source, "rb").read()
    if source.endswith(".meta"):
        meta = tf.compat.v1.MetaGraphDef.FromString(data)
        graph = meta.graph_def
    else:
        meta, graph = None, tf.compat.v1.GraphDef.FromString(data)
    events = list(tf.compat.v1.train.summary_iterator(path))
    graphs = [tf.compat.v1.GraphDef.FromString(e.graph_def) for e in events if e.graph_def]
    metas = [tf.compat.v1.MetaGraphDef.FromString(e.meta_graph_def) for e in events if e.meta_graph_def]
    accumulator = EventAccumulator(os.path.dirname(path))
    accumulator.Reload()
    report[label] = {
        "file_version": events[0].file_version,
        "events": len(events),
        "graph_equal": graphs == [graph],
        "meta_equal": None if meta is None else metas == [meta],
        "tensorboard_nodes": len(accumulator.Graph().node),
    }
print(json.dumps(report))
"""


# --- views (sample meta graph, no TensorFlow needed) -----------------------------------------------------


def test_piped_output_is_one_tab_separated_line_per_node() -> None:
    code, out, err = run(str(SAMPLE_META))
    assert code == 0, err
    graph = load_graph(SAMPLE_META)
    rows = [line.split("\t") for line in out.splitlines()]
    assert [row[0] for row in rows] == [node.name for node in graph.graph_def.node]
    assert all(len(row) == 5 for row in rows)
    conv = next(row for row in rows if row[0] == "cnn/conv_block1/Conv2D")
    assert conv == ["cnn/conv_block1/Conv2D", "Conv2D", "images,cnn/conv_block1/Conv2D/ReadVariableOp", "",
                    "dtype=float32 kernel=3x3 strides=1x1 padding=SAME data_format=NHWC"]
    assert err == ""


def test_json_document() -> None:
    doc = graph_json(str(SAMPLE_META), "--limit", "3")
    assert doc["schema"] == "ckpttools.graph/1"
    assert doc["source"] == {
        "path": str(SAMPLE_META), "format": "meta_graph", "text": False, "tags": [],
        "tensorflow_version": "2.21.0", "tensorflow_git_version": "v2.21.0-rc1-5-ga481b10260d",
        "producer": 2474, "note": None,
    }
    assert doc["selection"] == {"scopes": [], "ops": [], "limit": 3, "matched": 950, "total": 950,
                                "unmatched_patterns": [], "unknown_ops": {}}
    assert [set(node) for node in doc["nodes"]] == [{"name", "op", "inputs", "device", "attrs"}] * 3


def test_scopes_op_and_limit_select_nodes_with_notes() -> None:
    code, out, err = run(str(SAMPLE_META), "--scopes", "cnn/conv_block[1-2]", "--op", "conv2d", "--op", "Relu")
    assert code == 0
    assert [line.split("\t")[0] for line in out.splitlines()] == [
        "cnn/conv_block1/Conv2D", "cnn/conv_block1/Relu", "cnn/conv_block2/Conv2D", "cnn/conv_block2/Relu"]
    assert "note: 4 of 950 nodes selected" in err
    code, out, err = run(str(SAMPLE_META), "--op", "Conv2D", "--limit", "2")
    assert len(out.splitlines()) == 2 and "showing the first 2 of 5 nodes (--limit 2)" in err
    code, out, err = run(str(SAMPLE_META), "--op", "Conv3D", "--scopes", "lstm")
    assert code == 0 and out == ""
    assert "no node has op 'Conv3D'; did you mean Conv2D?" in err
    assert "pattern 'lstm' matched no node" in err


def test_summary_of_sample_meta_graph() -> None:
    summary = graph_json(str(SAMPLE_META), "--summary")["summary"]
    assert summary["node_count"] == 950 and sum(summary["ops"].values()) == 950
    assert summary["parameters"] == 2794 and summary["trainable_parameters"] == 2762
    assert [p["name"] for p in summary["placeholders"]] == ["images", "labels"]
    assert summary["outputs"] == [{"name": "Mean", "op": "Mean"}]  # the loss; the rest feeds training
    assert {"name": "update_ops", "kind": "node_list", "size": 4} in summary["collections"]
    assert [f["name"] for f in summary["functions"]] == ["cond_false_683", "cond_true_682"]


def test_summary_restricted_by_scopes() -> None:
    summary = graph_json(str(SAMPLE_META), "--summary", "--scopes", "/cnn/conv_block1")["summary"]
    assert {v["name"] for v in summary["variables"] if v["role"] == "model"} == {
        f"cnn/conv_block1/{name}" for name in
        ("conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance")}
    assert summary["parameters"] == 72 + 5 * 8


def test_plain_summary_sections() -> None:
    code, out, _ = run(str(SAMPLE_META), "--summary")
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["graph", str(SAMPLE_META), "meta_graph", "binary"]
    assert ["tensorflow", "2.21.0", "v2.21.0-rc1-5-ga481b10260d"] in lines
    assert ["variable", "cnn/conv_block1/conv/kernel", "VarHandleOp", "float32", "[3, 3, 1, 8]", "72", "yes",
            "model"] in lines
    assert ["input", "images", "float32", "[?, 28, 28, 1]"] in lines
    assert ["parameters", "model=2794", "all=8481", "trainable=2762"] in lines


def test_tree_counts_and_depth() -> None:
    tree = graph_json(str(SAMPLE_META), "--tree")["tree"]
    assert tree["nodes"] == 950 and sum(tree["ops"].values()) == 950
    cnn = next(child for child in tree["children"] if child["name"] == "cnn")
    block = next(child for child in cnn["children"] if child["name"] == "conv_block1")
    assert block["path"] == "cnn/conv_block1"
    conv2d = next(child for child in block["children"] if child["name"] == "Conv2D")
    assert conv2d["ops"] == {"Conv2D": 1, "ReadVariableOp": 1}  # a node named like a scope belongs to it
    shallow = graph_json(str(SAMPLE_META), "--tree", "--depth", "1")["tree"]
    assert [c["nodes"] for c in shallow["children"]] == [c["nodes"] for c in tree["children"]]
    assert all(c["children"] == [] for c in shallow["children"])
    code, out, _ = run(str(SAMPLE_META), "--tree", "--depth", "2")
    assert out.splitlines()[0].split("\t")[:2] == ["/", "950"]
    assert any(line.startswith("cnn/conv_block1\t110\t") for line in out.splitlines())


def test_functions_view() -> None:
    code, out, _ = run(str(SAMPLE_META), "--functions")
    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["cond_true_682", "Read/ReadVariableOp", "ReadVariableOp"], ["cond_true_682", "Identity", "Identity"]]


def test_dot_output_is_balanced_and_names_every_node(tmp_path: Path) -> None:
    out_file = tmp_path / "cnn.dot"
    code, out, err = run(str(SAMPLE_META), "--dot", str(out_file))
    assert code == 0 and out == ""
    assert f"wrote {out_file}" in err and "dot -Tsvg" in err
    text = out_file.read_text()
    assert text.startswith('digraph "graph" {') and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    graph = load_graph(SAMPLE_META)
    declared = {line.strip().split(" [", 1)[0] for line in text.splitlines() if "[label=" in line}
    assert declared == {f'"{node.name}"' for node in graph.graph_def.node}
    assert '"images" -> "cnn/conv_block1/Conv2D";' in text
    assert 'subgraph "cluster_cnn/conv_block1" {' in text
    assert "style=dashed" in text  # control dependencies


def test_dot_depth_collapses_scopes(tmp_path: Path) -> None:
    out_file = tmp_path / "cnn.dot"
    doc = graph_json(str(SAMPLE_META), "--dot", str(out_file), "--depth", "2", "--scopes", "/cnn")
    [written] = doc["written"]
    assert written["kind"] == "dot" and written["path"] == str(out_file)
    text = out_file.read_text()
    assert text.count("{") == text.count("}")
    assert '"cnn/conv_block1" [label="conv_block1/ (110 nodes)", shape=box3d' in text
    assert '"cnn/conv_block1" -> "cnn/conv_block2";' in text
    assert "conv_block1/Conv2D" not in text
    assert written["boxes"] == text.count("[label=")


def test_tensorboard_event_file_framing(tmp_path: Path) -> None:
    code, _, err = run(str(SAMPLE_META), "--tensorboard", str(tmp_path))
    assert code == 0, err
    [event_file] = list(tmp_path.iterdir())
    data = event_file.read_bytes()
    records, pos = [], 0
    while pos < len(data):
        header = data[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", data[pos + 8 : pos + 12])[0] == mask(crc32c(header))
        payload = data[pos + 12 : pos + 12 + length]
        assert struct.unpack("<I", data[pos + 12 + length : pos + 16 + length])[0] == mask(crc32c(payload))
        records.append(payload)
        pos += 16 + length
    from tensorboard.compat.proto import event_pb2

    events = [event_pb2.Event.FromString(r) for r in records]
    assert events[0].file_version == "brain.Event:2"
    assert events[1].graph_def == load_graph(SAMPLE_META).graph_def.SerializeToString()
    assert events[2].meta_graph_def == load_graph(SAMPLE_META).meta_graph.SerializeToString()


# --- finding and reading files ------------------------------------------------------------------------


def test_checkpoint_directory_and_prefix_use_their_meta() -> None:
    for path in (SAMPLE_META.parent, SAMPLE_META.with_suffix(""), SAMPLE_META.with_suffix(".index")):
        code, out, err = run(str(path), "--limit", "1")
        assert code == 0 and out.startswith("images\tPlaceholder\t")
        assert f"note: using {SAMPLE_META}" in err.replace("\n", " ")


def test_old_tensorflow_0_12_text_meta_graph() -> None:
    doc = graph_json(str(OLD_META), "--summary")
    assert doc["source"]["format"] == "meta_graph" and doc["source"]["text"] is True
    assert doc["source"]["tensorflow_version"] == "0.12.1" and doc["source"]["producer"] == 21
    summary = doc["summary"]
    assert [(v["name"], v["op"], v["shape"], v["trainable"]) for v in summary["variables"]] == [
        ("hidden/weights", "Variable", [784, 32], True), ("hidden/biases", "Variable", [32], True),
        ("softmax/weights", "Variable", [32, 10], True), ("softmax/biases", "Variable", [10], True)]
    assert summary["parameters"] == 784 * 32 + 32 + 32 * 10 + 10
    assert summary["outputs"] == [{"name": "y", "op": "Softmax"}]
    assert summary["saver"]["version"] == "LEGACY"


def test_binary_kind_is_sniffed_not_taken_from_the_name(tmp_path: Path) -> None:
    meta_as_pb = tmp_path / "graph.pb"
    shutil.copy(SAMPLE_META, meta_as_pb)
    assert load_graph(meta_as_pb).format == "meta_graph"
    old_graph_def = tmp_path / "old.bin"  # a GraphDef with the deprecated top-level `version` field
    old_graph_def.write_bytes(load_graph(OLD_META).graph_def.SerializeToString())
    loaded = load_graph(old_graph_def)
    assert loaded.format == "graph_def" and len(loaded.graph_def.node) == 38


@pytest.mark.tf
def test_binary_saved_model_named_pbtxt_says_to_rename_it(tf_graphs: dict, tmp_path: Path) -> None:
    """TensorFlow parses saved_model.pbtxt as text and fails on a binary one: the error says what it is."""
    written = Path(tf_graphs["graphs"]["saved_model"]["path"])
    binary = (written / "saved_model.pb" if written.is_dir() else written).read_bytes()
    renamed = tmp_path / "renamed" / "saved_model.pbtxt"
    renamed.parent.mkdir()
    renamed.write_bytes(binary)
    code, line = error_line(str(renamed.parent))
    assert code == 4 and line.startswith(f"Error: {renamed}: binary protobuf, not the text TensorFlow expects")
    assert line.endswith("it is a SavedModel (saved_model.pb): rename it to saved_model.pb")
    damaged = tmp_path / "damaged.pbtxt"  # a binary file whose text-mode transfer dropped bytes
    damaged.write_bytes(binary[:-100])
    code, line = error_line(str(damaged))
    assert code == 4 and "read as binary it is damaged too (truncated or not a graph file: field 2 needs" in line


# --- bad input and outputs ------------------------------------------------------------------------------


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, Path]:
    data = SAMPLE_META.read_bytes()
    files = {
        "truncated.meta": data[: len(data) // 2],
        "garbage.pb": bytes(range(256)) * 4,
        "empty.pb": b"",
        "index_as.pb": (SAMPLE_META.with_suffix(".index")).read_bytes(),
        "broken.pbtxt": b'node {\n  name: "a"\n  op: "Const"\n  attr { key: "dtype" value { type: DT_NOPE } }\n}\n',
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in files}


def test_truncated_meta_is_one_error_line(bad_files: dict[str, Path]) -> None:
    path = bad_files["truncated.meta"]
    size = path.stat().st_size
    data = SAMPLE_META.read_bytes()
    _, pos = read_varint(data, 0)
    length, pos = read_varint(data, pos)
    start = pos + length  # after field 1, meta_info_def: field 2, graph_def, is cut
    _, pos = read_varint(data, start)
    length, pos = read_varint(data, pos)
    assert error_line(str(path)) == (
        4, f"Error: {path}: truncated or not a graph file: field 2 needs {pos + length - size} more bytes than "
           f"the file has (top-level field at byte {start} of {size})")


@pytest.mark.parametrize("name", ["garbage.pb", "empty.pb", "index_as.pb"])
def test_corrupt_binary_files_exit_4(bad_files: dict[str, Path], name: str) -> None:
    code, line = error_line(str(bad_files[name]))
    assert code == 4 and line.startswith(f"Error: {bad_files[name]}: ")


def test_pbtxt_syntax_error_names_line_and_column(bad_files: dict[str, Path]) -> None:
    path = bad_files["broken.pbtxt"]
    code, line = error_line(str(path))
    assert code == 4
    assert line.startswith(f"Error: {path}: line 4 column ")
    assert "DT_NOPE" in line and line.endswith("(parsing it as a text GraphDef (.pb/.pbtxt from tf.io.write_graph "
                                               "or a frozen graph))")


def test_missing_paths_exit_3(tmp_path: Path) -> None:
    assert error_line(str(tmp_path / "nope.meta")) == (3, f"Error: {tmp_path / 'nope.meta'}: no such file or directory")
    code, line = error_line(str(tmp_path))
    assert code == 3 and "no saved_model.pb and no checkpoint with a .meta graph" in line


def test_usage_errors_exit_2() -> None:
    code, _, err = run(str(SAMPLE_META), "--depth", "2")
    assert code == 2 and "--depth applies to --tree and --dot" in err
    code, line = error_line(str(SAMPLE_META), "--scopes", "conv[")
    assert code == 2 and line.startswith("Error: bad scope pattern 'conv['")


def test_dot_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out_file = tmp_path / "g.dot"
    out_file.write_text("keep me")
    assert error_line(str(SAMPLE_META), "--dot", str(out_file)) == (
        5, f"Error: {out_file}: already exists (use --force to overwrite)")
    assert out_file.read_text() == "keep me"
    code, _, _ = run(str(SAMPLE_META), "--dot", str(out_file), "--force")
    assert code == 0 and out_file.read_text().startswith("digraph")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.dot"]  # no temporary file left


def test_missing_output_directories(tmp_path: Path) -> None:
    """--dot needs its directory; --tensorboard creates its log directory, as TensorFlow's writer does."""
    missing = tmp_path / "missing"
    code, line = error_line(str(SAMPLE_META), "--dot", str(missing / "g.dot"))
    assert (code, line) == (5, f"Error: {missing / 'g.dot'}: directory {missing} does not exist")
    code, _, _ = run(str(SAMPLE_META), "--tensorboard", str(missing / "tb"))
    assert code == 0 and len(list((missing / "tb").glob("events.out.tfevents.*"))) == 1
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert error_line(str(SAMPLE_META), "--tensorboard", str(a_file)) == (5, f"Error: {a_file}: is not a directory")


def test_read_only_output_directory_exit_5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.access(locked, os.W_OK):  # root ignores permissions: make the directory look read-only instead
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real_access(p, mode))
    try:
        for option, target in (("--dot", locked / "g.dot"), ("--tensorboard", locked)):
            code, line = error_line(str(SAMPLE_META), option, str(target))
            assert code == 5 and "is not writable" in line
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_graph_summary_imports_no_tensorflow() -> None:
    code = (
        "import json, sys\n"
        "from ckpttools.cli import main\n"
        "try:\n"
        "    main(['graph', '--summary', sys.argv[1]], prog_name='ckpttools')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))),"
        " file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(SAMPLE_META)], capture_output=True, text=True, check=True)
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert "variable\tcnn/conv_block1/conv/kernel" in result.stdout


@pytest.mark.tf
def test_saved_model_slot_variables_named_as_the_checkpoint_names_them(tf_graphs: dict) -> None:
    """A Keras 2 SavedModel with a legacy optimizer: the object graph lists Adam's slots only through
    the optimizer's slot_variables; summary names them as TensorFlow's checkpoint keys do."""
    truth = tf_graphs["graphs"].get("keras_slots")
    if truth is None:
        pytest.skip("tf_keras is not installed")
    doc = graph_json(truth["path"], "--summary")
    names = sorted(v["name"] for v in doc["summary"]["variables"])
    suffix = "/.ATTRIBUTES/VARIABLE_VALUE"
    expected = sorted(key[: -len(suffix)] for key in truth["checkpoint_keys"] if key.endswith(suffix))
    assert names == expected
    assert sum(".OPTIMIZER_SLOT/optimizer/" in name for name in names) == 8  # m and v of 4 variables
    assert all(v["role"] == "optimizer" for v in doc["summary"]["variables"] if "OPTIMIZER_SLOT" in v["name"])


@pytest.mark.tf
def test_saved_model_side_files_are_named_for_what_they_are(tf_graphs: dict) -> None:
    """A SavedModel's fingerprint.pb (and Keras' keras_metadata.pb) are neither graphs nor checkpoints: ls and graph
    say so and point to the directory, instead of sending each other the file ('a graph: use ckpttools graph')."""
    directory = Path(tf_graphs["graphs"]["saved_model"]["path"])
    directory = directory if directory.is_dir() else directory.parent
    side = directory / "fingerprint.pb"
    assert side.is_file(), "TensorFlow writes fingerprint.pb beside saved_model.pb"
    for command in ("ls", "graph"):
        result = CliRunner().invoke(main, [command, str(side)])
        err = result.stderr
        assert result.exit_code == 4 and "the fingerprint of a SavedModel" in err, err
        assert "give its SavedModel directory" in err and "ckpttools graph" not in err and "corrupt" not in err
    assert run(str(directory))[0] == 0
