"""``ckpttools doctor`` on mismatched pairs written by TensorFlow/Keras, judged by TensorFlow's own restore.

The acid test: the suggested map, applied to the source names, must make TensorFlow's Saver restore
every target variable whose shape allows (values compared with the checkpoint's), and
``transfer --dry-run --strict`` accept the plan; what cannot match is reported, not guessed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ckpttools.checkpoint import open_checkpoint
from ckpttools.cli import main
from ckpttools.errors import NotFoundError
from ckpttools.graphs.saver import SliceInfo
from ckpttools.ops.doctor import MISSING, RENAMED, SHAPE, doctor
from ckpttools.ops.doctor_targets import Wanted, fold_partitions, load_target
from ckpttools.ops.naming import Named, infer_rules
from ckpttools.transfer.plan import TargetVariable, make_plan
from ckpttools.transfer.rename import Renamer, read_map_file

FIXTURES = Path(__file__).resolve().parent / "tf_doctor_fixtures.py"
SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"


@pytest.fixture(scope="module")
def tf_server(tmp_path_factory):
    """One TensorFlow process: it writes the pairs, then judges restores (tests/tf_doctor_fixtures.py serve)."""
    root = tmp_path_factory.mktemp("doctor")
    log = (root / "stderr.txt").open("w+")
    server = subprocess.Popen([sys.executable, str(FIXTURES), "serve", str(root)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            log.seek(0)
            pytest.fail(f"building the doctor fixtures failed:\n{log.read()[-3000:]}")
        yield server, json.loads((root / "manifest.json").read_text())
    finally:
        server.stdin.close()
        server.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def pairs(tf_server) -> dict[str, str]:
    return tf_server[1]


def _tf_restore(tf_server, spec: dict) -> dict:
    """TensorFlow restores each case's mapped variables and compares the values."""
    server, _ = tf_server
    server.stdin.write(json.dumps(spec) + "\n")
    server.stdin.flush()
    return json.loads(server.stdout.readline())


def _restore_spec(report, meta: str) -> dict:
    """Checkpoint key -> graph variable for every renamed or matched row, as the suggested map gives them."""
    renamer = Renamer(report.suggested_map)
    with open_checkpoint(report.source) as ckpt:
        mapping = {}
        for row in report.rows:
            if row.status in (RENAMED, "matched"):
                assert renamer(row.source) == row.target
                mapping[ckpt.info(row.source).key] = row.target
    return {"meta": meta, "checkpoint": report.source, "mapping": mapping}


@pytest.mark.tf
def test_suggested_maps_make_tensorflow_restore(pairs, tf_server) -> None:
    layout = doctor(pairs["slim"], pairs["layout_meta"])
    assert {row.target: row.status for row in layout.rows} == {
        **{f"cnn/{scope}/{leaf}": RENAMED for scope in ("conv_block1/conv", "conv_block2/conv", "dense")
           for leaf in ("kernel", "bias")},
        "cnn/logits/kernel": SHAPE, "cnn/logits/bias": SHAPE,
    }
    head = {row.target: row for row in layout.with_status(SHAPE)}["cnn/logits/kernel"]
    assert head.source == "Net/logits/weights" and head.source_shape == (16, 10) and head.target_shape == (16, 5)
    assert "new number of outputs (10 -> 5" in head.detail
    assert layout.suggested_exclude == ["Net/logits/biases", "Net/logits/weights"] and not layout.ok
    assert layout.ignored_source == {"optimizer": 18, "training": 1}  # Adam slots, beta powers, global_step

    keras = doctor(pairs["keras"], pairs["tf1_layers_meta"])  # TF2 object paths -> tf.compat.v1.layers names
    assert keras.ok and len(keras.with_status(RENAMED)) == 6 and not keras.unused

    logged = doctor(pairs["slim"], error_log=pairs["restore_error"])
    assert [(row.target, row.source) for row in logged.rows] == [("cnn/conv_block1/conv/bias", "Net/conv1/biases")]

    verdict = _tf_restore(tf_server, {"layout": _restore_spec(layout, pairs["layout_meta"]),
                                      "keras": _restore_spec(keras, pairs["tf1_layers_meta"]),
                                      "from_log": _restore_spec(logged, pairs["layout_meta"])})
    assert verdict == {"layout": {"restored": 6, "error": None}, "keras": {"restored": 6, "error": None},
                       "from_log": {"restored": 1, "error": None}}


@pytest.mark.tf
def test_a_graph_wants_what_its_saver_restores(pairs, tf_server) -> None:
    """Partitions split on axis 1 and a variable left out of the Saver's var_list: TensorFlow restores both
    checkpoints into their graphs, so doctor must say they restore, wanting exactly the keys TF restored."""
    cases = {"partitioned": ("partitioned", "partitioned_meta"), "nosaver": ("partitioned", "partitioned_nosaver_meta"),
             "excluded": ("excluded", "excluded_meta")}
    reports = {case: doctor(pairs[source], pairs[meta]) for case, (source, meta) in cases.items()}
    verdict = _tf_restore(tf_server, {case: {"meta": pairs[meta], "checkpoint": pairs[source], "keys": {"d": "old_d"}}
                                      for case, (source, meta) in cases.items()})
    for case, report in reports.items():
        assert report.ok, (case, report.to_dict())
        assert verdict[case] == {"restored": [row.target for row in report.rows], "error": None}
    for case in ("partitioned", "nosaver"):
        rows = {row.target: row for row in reports[case].rows}
        assert rows["emb/w"].target_shape == (4, 6) and rows["emb/table"].target_shape == (10, 4)
        assert "partitioned in 2 parts" in rows["emb/w"].detail
    assert "its saver restores" in reports["partitioned"].notes[0]
    assert "'variables' collection" in reports["nosaver"].notes[0]
    excluded = reports["excluded"]
    assert [row.target for row in excluded.rows] == ["a", "b", "old_d"] and not excluded.with_status(MISSING)
    assert excluded.rows[-1].target_shape == (4,)  # the shape of d, the variable the saver restores old_d into
    assert excluded.notes[0].endswith("; not looked for, as it does not restore them: c")
    result = CliRunner().invoke(main, ["doctor", pairs["excluded"], "--against", pairs["excluded_meta"]])
    assert result.exit_code == 0 and ": restores" in result.output and "missing" not in result.output.split("\n")[0]


@pytest.mark.tf
def test_against_a_fresh_checkpoint_the_map_passes_a_strict_plan(pairs) -> None:
    report = doctor(pairs["slim"], pairs["layout_init"])
    graph = doctor(pairs["slim"], pairs["layout_meta"])
    assert report.suggested_map == graph.suggested_map
    assert [(r.target, r.status, r.source) for r in report.rows] == [(r.target, r.status, r.source) for r in graph.rows]
    with open_checkpoint(pairs["layout_init"]) as target, open_checkpoint(pairs["slim"]) as source:
        targets = [TargetVariable(i.name, tuple(i.shape), i.dtype) for i in target if i.role == "model"]
        plan = make_plan(source, targets, exclude=report.suggested_exclude, mapping=report.suggested_map,
                         on_missing="error", on_shape_mismatch="error", on_dtype_mismatch="error")
    assert len(plan.restored) == 6 and not plan.unmatched


@pytest.mark.tf
def test_registered_model_map_file_makes_transfer_strict_pass(pairs, tmp_path) -> None:
    runner = CliRunner()
    rules = tmp_path / "fix.map"
    result = runner.invoke(main, ["doctor", pairs["cnn5_slim"], "--against", "cnn5", "--write-map", str(rules)])
    assert result.exit_code == 0, result.output
    assert "restores with the suggested map" in result.output
    assert read_map_file(str(rules)) == [line for line in rules.read_text().splitlines()]
    command = ["transfer", "--from", pairs["cnn5_slim"], "--model", "cnn5", "--dry-run", "--strict"]
    assert runner.invoke(main, command).exit_code == 7  # without the map: TensorFlow's names do not line up
    strict = runner.invoke(main, command + ["--map-file", str(rules), "--json"])
    assert strict.exit_code == 0, strict.output
    plan = json.loads(strict.output)["plan"]
    assert plan["counts"]["restored"] == 14 and not plan["unmatched"]
    again = runner.invoke(main, ["doctor", pairs["cnn5_slim"], "--against", "cnn5", "--write-map", str(rules)])
    assert again.exit_code == 5 and "Error:" in again.output  # an existing map is kept without --force


@pytest.mark.tf
def test_shape_mismatch_from_a_tensorflow_error(pairs) -> None:
    result = CliRunner().invoke(main, ["doctor", pairs["keras"], "--error", pairs["shape_error"], "--json"])
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["schema"] == "ckpttools.doctor/1" and document["ok"] is False
    [row] = document["variables"]
    assert row["status"] == SHAPE and row["source_shape"] == [12, 3] and row["target_shape"] == [12, 5]
    with open_checkpoint(pairs["keras"]) as ckpt:
        assert ckpt.info(row["source"]).original_name.endswith("logits/kernel")


def test_nothing_in_common_and_no_variables(tmp_path) -> None:
    result = CliRunner().invoke(main, ["doctor", str(SAMPLES / "tf2_keras"), "--against", str(SAMPLES / "tf1_cnn")])
    assert result.exit_code == 1 and "nothing in common" in result.output
    graph = tmp_path / "empty.pbtxt"
    graph.write_text('node { name: "x" op: "Const" }\n')
    with pytest.raises(NotFoundError, match="no variables"):
        load_target(str(graph))
    missing = CliRunner().invoke(main, ["doctor", str(SAMPLES / "tf1_cnn"), "--against", str(tmp_path / "nope/x")])
    assert missing.exit_code == 3 and missing.output.startswith("Error: ")
    usage = CliRunner().invoke(main, ["doctor", str(SAMPLES / "tf1_cnn")])
    assert usage.exit_code == 2


def test_a_graph_target_matches_its_own_checkpoint() -> None:
    report = doctor(str(SAMPLES / "tf1_cnn"), str(SAMPLES / "tf1_cnn" / "model.ckpt-20.meta"))
    assert report.ok and report.suggested_map == [] and len(report.rows) == 22
    assert report.target_kind == "graph"
    with open_checkpoint(str(SAMPLES / "tf1_cnn")) as ckpt:
        keys = sum(1 for info in ckpt if info.role != "metadata")
    assert report.notes == [f"what the graph restores: the {keys} keys its saver restores (save/restore_all)"]


def test_equal_candidates_are_reported_not_guessed() -> None:
    sources = [Named(f"m/_ops/{i}/kernel", (3, 3)) for i in (5, 6)]
    targets = [Named("dense_1/kernel", (3, 3)), Named("dense_2/kernel", (3, 3))]
    inference = infer_rules(sources, targets)
    assert inference.rules == [] and {s for s, _ in inference.ambiguous} == {s.name for s in sources}
    hinted = [Named(s.name, s.shape, hint) for s, hint in zip(sources, ("seq/dense_1/kernel", "seq/dense_2/kernel"))]
    assert infer_rules(hinted, targets).mapped == {"m/_ops/5/kernel": "dense_1/kernel",
                                                   "m/_ops/6/kernel": "dense_2/kernel"}


def test_prefix_added_and_removed_as_anchored_rules() -> None:
    inner = [Named("a/w", (2,)), Named("b/w", (3,))]
    outer = [Named("tower_0/a/w", (2,)), Named("tower_0/b/w", (3,))]
    assert infer_rules(outer, inner).rules == ["re:^tower_0/="]
    assert infer_rules(inner, outer).rules == ["re:^=tower_0/"]


def test_partitioned_graph_variables_fold_into_one() -> None:
    parts = [Wanted("emb/part_1", (3, 3)), Wanted("emb/part_0", (4, 3)), Wanted("dense/kernel", (3, 2))]
    folded = {w.name: w for w in fold_partitions(parts)}
    assert folded["emb"].shape == (7, 3) and folded["emb"].parts == 2 and "dense/kernel" in folded
    columns = {w.name: w.shape for w in fold_partitions([Wanted("w/part_0", (4, 4)), Wanted("w/part_1", (4, 3))])}
    assert columns == {"w": (4, 7)}  # joined on the axis where the parts differ


def test_save_slice_info_names_and_shapes_the_folded_variable() -> None:
    halves = [Wanted("emb/w/part_0", (4, 3)), Wanted("emb/w/part_1", (4, 3)), Wanted("x/part_0", (2,))]
    slices = {"emb/w/part_0": SliceInfo("emb/w", (4, 6)), "emb/w/part_1": SliceInfo("emb/w", (4, 6)), "x/part_0": None}
    folded = {w.name: w for w in fold_partitions(halves, slices)}
    assert folded["emb/w"].shape == (4, 6) and folded["emb/w"].parts == 2
    assert folded["x/part_0"].shape == (2,) and folded["x/part_0"].parts == 0  # a whole variable, so named
    assert fold_partitions(halves[:2])[0].shape == (8, 3)  # without it: the partitioners' default axis, a guess
