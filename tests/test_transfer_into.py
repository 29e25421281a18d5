"""``ckpttools transfer --into TEMPLATE`` and ``--graph META``: any model starts from a checkpoint.

TensorFlow judges: a Keras 3 model restores OUT with ``assert_existing_objects_matched()`` and holds the
TF1 source's values where the plan says restored and its own fresh values elsewhere; a TF1 graph's
Saver restores what ``--graph`` saved."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from test_exact import as_array, assert_identical

import ckpttools
from ckpttools.cli import main
from ckpttools.transfer import into
from ckpttools.transfer.into import output_prefix, target_names

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
SOURCE = str(SAMPLES / "tf1_cnn")
MAP = """# TF1 sample CNN -> Keras layer names
cnn/conv_block1/conv=sequential/c1
cnn/conv_block1/bn=sequential/bn1
cnn/conv_block2/conv=sequential/c2
cnn/logits=sequential/logits
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def keras_model(keras: Any) -> Any:
    """Layers shaped like the sample CNN's conv_block1/2 and logits, plus a new 1x1 'expand' conv."""
    layers = keras.layers
    return keras.Sequential([
        keras.Input((28, 28, 1)), layers.Conv2D(8, 3, padding="same", name="c1"), layers.BatchNormalization(name="bn1"),
        layers.Conv2D(8, 3, padding="same", name="c2"), layers.Conv2D(16, 1, name="expand"),
        layers.GlobalAveragePooling2D(), layers.Dense(10, name="logits"),
    ])  # fmt: skip


@pytest.fixture(scope="module")
def tf() -> Any:
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def keras_template(tf: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A freshly initialised Keras 3 model's tf.train.Checkpoint, and a --map-file for the sample CNN."""
    import keras

    root = tmp_path_factory.mktemp("into")
    prefix = tf.train.Checkpoint(model=keras_model(keras)).save(str(root / "template" / "ckpt"))
    (root / "names.map").write_text(MAP)
    return prefix, root / "names.map"


@pytest.mark.tf
def test_keras_model_restores_the_tf1_values(tf: Any, keras_template: tuple[str, Path], tmp_path: Path) -> None:
    import keras

    template, map_file = keras_template
    out = str(tmp_path / "warm" / "ckpt-0")
    os.mkdir(tmp_path / "warm")
    code, stdout, err = run("transfer", "--from", SOURCE, "--into", template, "--map-file", str(map_file),
                            "--scopes", "conv_block[12]", "--scopes", "logits", "-o", out, "--json")
    assert code == 0, err
    document = json.loads(stdout)
    assert document["schema"] == "ckpttools.transfer/1"
    assert document["plan"]["counts"] == {"restored": 10, "new": 3, "skipped-shape": 0, "skipped-dtype": 0}
    assert document["output"]["prefix"] == out and os.path.isfile(out + ".index")

    model = keras_model(keras)
    tf.train.Checkpoint(model=model).restore(out).assert_existing_objects_matched()
    source = tf.train.load_checkpoint(ckpttools.open_checkpoint(SOURCE).prefix)
    fresh, written = tf.train.load_checkpoint(template), tf.train.load_checkpoint(out)
    for layer, scope in (("c1", "conv_block1/conv"), ("c2", "conv_block2/conv"), ("logits", "logits")):
        kernel, bias = model.get_layer(layer).get_weights()
        assert_identical(kernel, source.get_tensor(f"cnn/{scope}/kernel"), layer)
        assert_identical(bias, source.get_tensor(f"cnn/{scope}/bias"), layer)
    gamma, beta, mean, variance = model.get_layer("bn1").get_weights()
    assert_identical(variance, source.get_tensor("cnn/conv_block1/bn/moving_variance"), "bn1")
    assert_identical(gamma, source.get_tensor("cnn/conv_block1/bn/gamma"), "bn1")
    kernel, bias = model.get_layer("expand").get_weights()  # not in the source: the template's fresh values
    key = "model/_functional/_operations/4/_kernel/.ATTRIBUTES/VARIABLE_VALUE"
    assert_identical(kernel, fresh.get_tensor(key), "expand")
    assert written.get_variable_to_shape_map() == fresh.get_variable_to_shape_map()
    assert written.get_variable_to_dtype_map() == fresh.get_variable_to_dtype_map()
    graph_key = "_CHECKPOINTABLE_OBJECT_GRAPH"
    assert as_array(written.get_tensor(graph_key)).tolist() == as_array(fresh.get_tensor(graph_key)).tolist()


@pytest.mark.tf
def test_partitioned_template_keeps_its_slices(tf: Any, tf_ckpts: Any, tmp_path: Path) -> None:
    """A TF1 template with partitioned variables: OUT keeps its slices, TF reassembles SOURCE's values."""
    template = ckpttools.open_checkpoint(tf_ckpts["partitioned"])
    values = {info.name: (template.get(info.name) * 2 + 1).astype(template.get(info.name).dtype)
              for info in template if info.name != "plain"}
    source = str(tmp_path / "src.ckpt")
    ckpttools.write_checkpoint(source, values, state_file=False)
    out = str(tmp_path / "out.ckpt")
    code, _, err = run("transfer", "--from", source, "--into", tf_ckpts["partitioned"], "--strict", "-o", out)
    assert code == 0, err
    written = ckpttools.open_checkpoint(out)
    reader = tf.train.load_checkpoint(out)
    for info in template:
        assert written.info(info.name).slices == info.slices
        want = values.get(info.name, template.get(info.name))
        assert_identical(as_array(reader.get_tensor(info.key)), want, info.name)


@pytest.mark.tf
def test_graph_meta_is_warm_started_and_saved(tf: Any, tmp_path: Path) -> None:
    v1 = tf.compat.v1
    meta = str(tmp_path / "new.meta")
    with tf.Graph().as_default():
        with v1.variable_scope("cnn/conv_block1/conv"):
            v1.get_variable("kernel", (3, 3, 1, 8), initializer=v1.ones_initializer())
            v1.get_variable("bias", (8,), initializer=v1.zeros_initializer())
        v1.get_variable("cnn/logits/kernel", (16, 5), initializer=v1.ones_initializer())  # new head: 5 classes
        v1.train.get_or_create_global_step()
        v1.train.Saver()
        v1.train.export_meta_graph(meta)
    out = str(tmp_path / "warm" / "model.ckpt")
    os.mkdir(tmp_path / "warm")
    code, stdout, err = run("transfer", "--from", SOURCE, "--graph", meta, "--scopes", "conv_block1/conv",
                            "--scopes", "logits", "-o", out)
    assert code == 0, err
    assert "skipped-shape" in stdout and "restored" in stdout
    assert sorted(os.listdir(tmp_path / "warm")) == ["checkpoint", "model.ckpt.data-00000-of-00001",
                                                     "model.ckpt.index", "model.ckpt.meta"]
    source = tf.train.load_checkpoint(ckpttools.open_checkpoint(SOURCE).prefix)
    with tf.Graph().as_default(), v1.Session() as session:
        saver = v1.train.import_meta_graph(out + ".meta")
        saver.restore(session, out)
        values = {v.op.name: session.run(v) for v in v1.global_variables()}
    assert_identical(values["cnn/conv_block1/conv/kernel"], source.get_tensor("cnn/conv_block1/conv/kernel"), "k")
    assert_identical(values["cnn/logits/kernel"], np.ones((16, 5), np.float32), "head")
    assert values["global_step"] == 0
    code, _, err = run("transfer", "--from", SOURCE, "--graph", meta, "-o", out)
    assert code == 5 and "already exists" in err


# --- refusals and plans, without TensorFlow ---------------------------------------------------


TEMPLATE = str(SAMPLES / "tf2_keras")


def test_dry_run_plan_json(tmp_path: Path) -> None:
    code, stdout, err = run("transfer", "--from", SOURCE, "--into", TEMPLATE, "--dry-run", "--json")
    assert code == 0, err
    document = json.loads(stdout)
    assert "output" not in document and document["plan"]["counts"]["restored"] == 0
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, code, message", [
    (["--strict"], 7, "selected source variables have no target"),
    (["--steps", "5"], 2, "--steps: training options"),
    (["--freeze"], 2, "--freeze: training options"),
    (["--graph", "x.meta"], 2, "give one"),
    (["--map-file", "nope.map"], 3, "nope.map: no such map file"),
])  # fmt: skip
def test_refusals(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    got, _, err = run("transfer", "--from", SOURCE, "--into", TEMPLATE, "-o", str(tmp_path / "o"), *args)
    assert (got, err.count("Error"), message in err) == (code, 1, True), err
    assert os.listdir(tmp_path) == []


def test_output_rules(tmp_path: Path) -> None:
    code, _, err = run("transfer", "--from", SOURCE, "--into", TEMPLATE)
    assert code == 2 and "needs -o/--out" in err
    template = ckpttools.open_checkpoint(TEMPLATE).prefix
    code, _, err = run("transfer", "--from", SOURCE, "--into", TEMPLATE, "-o", template, "--force")
    assert code == 5 and "is the template checkpoint itself" in err
    out = str(tmp_path / "o")
    assert run("transfer", "--from", SOURCE, "--into", TEMPLATE, "-o", out)[0] == 0
    code, _, err = run("transfer", "--from", SOURCE, "--into", TEMPLATE, "-o", out)
    assert code == 5 and "already exists" in err
    assert run("transfer", "--from", SOURCE, "--into", TEMPLATE, "-o", out, "--force")[0] == 0
    with ckpttools.open_checkpoint(out) as written, ckpttools.open_checkpoint(TEMPLATE) as fresh:
        assert [i.key for i in written] == [i.key for i in fresh]
        for info in fresh:
            assert_identical(written.get(info.key), fresh.get(info.key), info.key)


def test_output_prefix_forms(tmp_path: Path) -> None:
    assert output_prefix(str(tmp_path)) == str(tmp_path / "model.ckpt")
    assert output_prefix("warm/") == os.path.join("warm/", "model.ckpt")
    assert output_prefix("warm/ckpt-1.index") == "warm/ckpt-1"
    assert output_prefix("warm/ckpt-1") == "warm/ckpt-1"


def test_missing_source_data_is_named(tmp_path: Path) -> None:
    prefix = str(tmp_path / "src")
    with ckpttools.open_checkpoint(TEMPLATE) as template:
        name, info = next((n, i) for n, i in target_names(template).items() if i.role == "model")
        ckpttools.write_checkpoint(prefix, {name: np.zeros(info.shape, info.dtype)})
    os.remove(prefix + ".data-00000-of-00001")
    code, _, err = run("transfer", "--from", prefix, "--into", TEMPLATE, "-o", str(tmp_path / "o"))
    assert code == 4 and "src.data-00000-of-00001: data file missing" in err


def test_ctrl_c_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy, calls = into._copy, []

    def interrupted(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        copy(*args, **kwargs)

    monkeypatch.setattr(into, "_copy", interrupted)
    code, _, err = run("transfer", "--from", SOURCE, "--into", TEMPLATE, "-o", str(tmp_path / "o"))
    assert code == 130 and "Interrupted: nothing was written" in err
    assert os.listdir(tmp_path) == []
