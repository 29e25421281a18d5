"""The rewrite plan and its building blocks, on the shipped samples (written by TensorFlow); no TF needed."""

from __future__ import annotations

import numpy as np
import pytest

from ckpttools import open_checkpoint
from ckpttools.errors import InputMismatchError, NotFoundError, PatternError
from ckpttools.formats import messages, objgraph
from ckpttools.formats.objgraph import OBJECT_GRAPH_KEY
from ckpttools.formats.objgraph_edit import prune
from ckpttools.ops import average
from ckpttools.ops.rewrite_plan import RewriteOptions, build_plan, parse_casts


@pytest.fixture(scope="module")
def tf1(sample_dir):
    with open_checkpoint(sample_dir / "tf1_cnn") as ckpt:
        yield ckpt


@pytest.fixture(scope="module")
def tf2(sample_dir):
    with open_checkpoint(sample_dir / "tf2_keras") as ckpt:
        yield ckpt


def _out(plan) -> dict:
    return {entry.out_key: entry for entry in plan.entries}


def test_strip_optimizer_drops_slots_beta_powers_and_step(tf1) -> None:
    plan = build_plan(tf1, RewriteOptions(strip_optimizer=True))
    model = {info.name for info in tf1 if info.role == "model"} | {"cnn/logits/kernel/ExponentialMovingAverage"}
    assert set(_out(plan)) == model
    assert plan.dropped["global_step"].startswith("global_step")
    assert plan.dropped["beta1_power"].startswith("optimizer")
    kept = build_plan(tf1, RewriteOptions(strip_optimizer=True, keep_step=True))
    assert set(_out(kept)) == model | {"global_step"}
    assert plan.renamed_or_removed


def test_map_renames_with_transfer_rules_and_refuses_collisions(tf1) -> None:
    plan = build_plan(tf1, RewriteOptions(scopes=["conv_block1"], mapping=["cnn/=net/", "re:conv_block(\\d)=block\\1"]))
    assert "net/block1/conv/kernel" in _out(plan)
    assert _out(plan)["net/block1/conv/kernel"].key == "cnn/conv_block1/conv/kernel"
    assert plan.dropped["cnn/dense/bias"] == "not selected by --scopes"
    with pytest.raises(PatternError, match="both map to 'cnn/x'"):
        build_plan(tf1, RewriteOptions(mapping=["re:conv_block[12]/conv/kernel$=x"], scopes=["conv/kernel"]))


def test_exclude_and_unmatched_scopes(tf1) -> None:
    plan = build_plan(tf1, RewriteOptions(scopes=["cnn", "nosuch"], exclude=["re:Adam"]))
    assert not any("Adam" in key for key in _out(plan))
    assert "pattern 'nosuch' matched no variable" in plan.notes
    with pytest.raises(NotFoundError, match="no variable to write"):
        build_plan(tf1, RewriteOptions(scopes=["nosuch"]))


def test_cast_only_named_dtypes(tf1) -> None:
    plan = build_plan(tf1, RewriteOptions(cast=["float32=bfloat16"]))
    out = _out(plan)
    assert out["cnn/logits/kernel"].out_dtype == "bfloat16"
    assert out["global_step"].out_dtype == "int64"
    assert out["cnn/logits/kernel"].actions == ["cast float32->bfloat16"]
    assert parse_casts(["int64=int32"]) == {"int64": "int32"}
    for bad, message in (("float32=bfloat61", "unknown dtype 'bfloat61'"), ("float32", "expected FROM=TO"),
                         ("string=float32", "cannot be cast")):
        with pytest.raises(PatternError, match=message):
            parse_casts([bad])


def test_set_step(tf1, tf2) -> None:
    assert _out(build_plan(tf1, RewriteOptions(set_step=7)))["global_step"].set_value == 7
    plan = build_plan(tf2, RewriteOptions(set_step=9))
    assert _out(plan)["save_counter/.ATTRIBUTES/VARIABLE_VALUE"].set_value == 9


def test_use_ema_promotes_shadows(tf1) -> None:
    plan = build_plan(tf1, RewriteOptions(use_ema=True, strip_optimizer=True))
    kernel = _out(plan)["cnn/logits/kernel"]
    assert kernel.read_key == "cnn/logits/kernel/ExponentialMovingAverage"
    assert kernel.actions == ["moving average"]
    assert "cnn/logits/kernel/ExponentialMovingAverage" not in _out(plan)
    assert "promoted" in plan.dropped["cnn/logits/kernel/ExponentialMovingAverage"]
    with pytest.raises(NotFoundError, match="no ExponentialMovingAverage shadows"):
        build_plan(tf1, RewriteOptions(use_ema=True, exclude=["re:ExponentialMovingAverage"]))


def test_tf2_rename_is_refused(tf2) -> None:
    with pytest.raises(PatternError, match="cannot rename a TF2"):
        build_plan(tf2, RewriteOptions(mapping=["model/=net/"]))


def test_tf2_strip_optimizer_edits_the_object_graph(tf2) -> None:
    plan = build_plan(tf2, RewriteOptions(strip_optimizer=True))
    nodes = messages.parse_object_graph(plan.object_graph)
    keys = {key for node in nodes for _, _, key in node.attributes}
    written = {entry.out_key for entry in plan.entries} - {OBJECT_GRAPH_KEY}
    assert keys == written  # the graph refers to exactly the keys written
    assert len(written) == 9  # 8 model variables (some keyed under optimizer/...) and save_counter
    assert not objgraph.optimizer_nodes(nodes)
    # every remaining child reference points at an existing node
    assert all(child < len(nodes) for node in nodes for child, _ in node.children)


def test_prune_keeping_everything_is_byte_identical(tf2) -> None:
    graph = bytes(tf2.get(OBJECT_GRAPH_KEY).reshape(-1)[0])
    out, keys = prune(graph, lambda key: True)
    assert out == graph
    assert keys == {info.key for info in tf2} - {OBJECT_GRAPH_KEY}


def test_average_mean_is_numpy_float64_mean() -> None:
    rng = np.random.default_rng(0)
    values = [rng.normal(size=(5, 7)).astype(np.float32) for _ in range(3)]
    expected = np.mean(np.stack(values).astype(np.float64), axis=0).astype(np.float32)
    assert average.mean(values, "float32").tobytes() == expected.tobytes()
    # chunked, with inputs split at different places
    raw = [v.tobytes() for v in values]
    a, b, c = raw
    streams = [[a[:40], a[40:]], [b[:12], b[12:102], b[102:]], [c]]
    got = b"".join(average.mean_chunks(streams, "float32", "float32"))
    assert got == expected.tobytes()


def test_check_same_names_the_first_difference(tf1, sample_dir) -> None:
    with open_checkpoint(sample_dir / "sharded") as other:
        with pytest.raises(InputMismatchError, match="has no 'beta1_power'|has 'spread'"):
            average.check_same(tf1, [other])
    average.check_same(tf1, [tf1])


def test_newest_checkpoints_reads_the_state_file(tmp_path, sample_dir) -> None:
    with pytest.raises(NotFoundError, match="needs 3 checkpoints, found 1"):
        average.newest_checkpoints(str(sample_dir / "tf1_cnn"), 3)
    for step in (1, 2, 3):
        (tmp_path / f"m.ckpt-{step}.index").write_bytes(b"")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "m.ckpt-3"\nall_model_checkpoint_paths: '
                                         '"/elsewhere/m.ckpt-2"\nall_model_checkpoint_paths: "m.ckpt-3"\n')
    assert average.newest_checkpoints(str(tmp_path), 2) == [str(tmp_path / "m.ckpt-3"), str(tmp_path / "m.ckpt-2")]
    (tmp_path / "checkpoint").unlink()
    assert average.newest_checkpoints(str(tmp_path), 3)[0] == str(tmp_path / "m.ckpt-3")


def test_plan_table_fits_80_columns_and_breaks_names_at_slashes(tf1, monkeypatch, capsys) -> None:
    import sys

    from ckpttools.cli.rewrite_view import print_plan

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    print_plan(build_plan(tf1, RewriteOptions(mapping=["cnn/=network/"], strip_optimizer=True)))
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in capsys.readouterr().out.splitlines()]  # no colours
    assert max(len(line) for line in lines) <= 80
    assert any("network/conv_block1/conv/kernel" in line for line in lines)
    assert any("  cnn/conv_block1/conv/kernel" in line for line in lines)  # the source, under its new name
