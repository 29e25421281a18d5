"""The training core: run settings, run directories, models, checkpoints, summaries, resume, Ctrl-C.

Training tests are a few steps on the bundled data with tiny batches; checkpoints are read back with
both our reader and TensorFlow's.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import ckpttools
from ckpttools.errors import ConfigError, NotFoundError, OutputError
from ckpttools.training import rundir
from ckpttools.training.runconfig import RunConfig, load_run, save_run

TINY = RunConfig(model="cnn5", batch_size=8, steps=6, checkpoint_every=2, max_to_keep=2, summary_every=2,
                 histogram_every=3)
CNN5_VARIABLES = {
    **{f"cnn/conv_block{b}/conv/kernel": (3, 3, 1 if b == 1 else 8, 8) for b in range(1, 6)},
    **{f"cnn/conv_block{b}/conv/bias": (8,) for b in range(1, 6)},
    "cnn/dense/kernel": (8, 32), "cnn/dense/bias": (32,), "cnn/output/kernel": (32, 10), "cnn/output/bias": (10,),
}


# --- settings and run directories (no TensorFlow) ------------------------------------------------------------

def test_run_json_round_trip(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, classes=(5, 7), input_shape=(28, 28, 1), class_names=("a", "b"))
    save_run(tmp_path, config, {"tensorflow": "x"})
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["schema"] == "ckpttools.run/1" and record["versions"]["tensorflow"] == "x"
    assert record["versions"]["ckpttools"] == ckpttools.__version__
    assert load_run(tmp_path) == config and load_run(tmp_path).class_names == ("a", "b")


def test_differences_ignore_how_long_and_how_often() -> None:
    longer = dataclasses.replace(TINY, steps=100, checkpoint_every=50, max_to_keep=9)
    assert TINY.differences(longer) == []
    assert TINY.differences(dataclasses.replace(TINY, model="lenet5", seed=3)) == [
        "--model 'cnn5' -> 'lenet5'", "--seed 0 -> 3"]


@pytest.mark.parametrize("change, message", [
    ({"optimizer": "adagrad"}, "unknown optimizer 'adagrad' (choose from adam, sgd, momentum)"),
    ({"batch_size": 0}, "--batch-size must be positive; received 0"),
    ({"keep_prob": 0.0}, "--keep-prob must be in (0, 1]; received 0.0"),
])
def test_invalid_settings(change: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        RunConfig(**change)
    assert str(error.value) == message


def test_total_steps() -> None:
    assert RunConfig(epochs=2, batch_size=64).total_steps(5000) == 156
    assert RunConfig(epochs=2, steps=7).total_steps(5000) == 7


def test_out_dir_holding_a_run_is_refused_then_moved_aside_with_force(tmp_path: Path) -> None:
    save_run(tmp_path, TINY)
    (tmp_path / "model.ckpt-4.index").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(OutputError) as error:
        rundir.prepare_out_dir(tmp_path)
    assert str(error.value) == (
        f"{tmp_path} already holds a run (model cnn5, last checkpoint at step 4); pass --resume to continue it, "
        f"--force to start a new one (the old files are moved to {tmp_path}/replaced-<time>/), or choose another --out")
    moved = rundir.prepare_out_dir(tmp_path, force=True)
    assert sorted(p.name for p in moved.iterdir()) == ["model.ckpt-4.index", "run.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", moved.name]


def test_out_dir_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match=r"file/run: cannot write a run here \(Not a directory\); choose another"):
        rundir.prepare_out_dir(tmp_path / "file" / "run")
    with pytest.raises(OutputError, match=r"file: exists and is not a directory; choose another --out"):
        rundir.prepare_out_dir(tmp_path / "file")
    with pytest.raises(NotFoundError, match=r"no run to resume \(no run.json\); start it without --resume"):
        rundir.prepare_out_dir(tmp_path / "empty", resume=True)


# --- training (TensorFlow) -------------------------------------------------------------------------------------

tf_only = pytest.mark.tf


@pytest.fixture(scope="module")
def tfcore():
    pytest.importorskip("tensorflow")
    from ckpttools import tfcore

    return tfcore


@pytest.fixture(scope="module")
def run(tfcore, tmp_path_factory):
    """cnn5 trained for 6 steps: checkpoints every 2, the newest 2 kept."""
    out = tmp_path_factory.mktemp("run")
    steps = []
    result = tfcore.train(TINY, out, on_step=steps.append)
    return result, steps


def all_tensors(prefix: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


@tf_only
def test_checkpoint_files_and_relative_state_file(run) -> None:
    result, _ = run
    out = result.run_dir
    assert result.step == 6 and result.checkpoint == str(out / "model.ckpt-6") and not result.interrupted
    names = sorted(p.name for p in out.glob("model.ckpt-*"))
    assert names == [f"model.ckpt-{s}.{ext}" for s in (4, 6) for ext in ("data-00000-of-00001", "index", "meta")]
    assert (out / "checkpoint").read_text() == ('model_checkpoint_path: "model.ckpt-6"\n'
                                                'all_model_checkpoint_paths: "model.ckpt-4"\n'
                                                'all_model_checkpoint_paths: "model.ckpt-6"\n')
    assert load_run(out).model == "cnn5" and load_run(out).num_classes == 10


@tf_only
def test_our_reader_and_tensorflow_read_the_same_checkpoint(run) -> None:
    result, _ = run
    expected = all_tensors(result.checkpoint)
    with ckpttools.open_checkpoint(result.run_dir) as ckpt:
        assert ckpt.prefix == result.checkpoint
        assert {v.key for v in ckpt} == set(expected)
        for name, value in expected.items():
            np.testing.assert_array_equal(ckpt.get(name), value)
        model = {v.name: v.shape for v in ckpt if v.role == "model" and v.name.startswith("cnn/")}
    assert model == CNN5_VARIABLES
    assert int(expected["global_step"]) == 6 and int(expected["input/examples_seen"]) == 6 * 8
    assert "cnn/conv_block1/conv/kernel/Adam" in expected and "train/beta1_power" in expected


@tf_only
def test_progress_callback(run) -> None:
    result, steps = run
    assert [s.step for s in steps] == [1, 2, 3, 4, 5, 6] and {s.total_steps for s in steps} == {6}
    assert steps[-1].epoch == 1 and steps[-1].epoch_fraction == pytest.approx(48 / 5000)
    assert all(np.isfinite(s.loss) and 0 <= s.accuracy <= 1 and s.images_per_sec > 0 for s in steps)
    assert steps[0].learning_rate == pytest.approx(1e-3)


@tf_only
def test_summaries_for_tensorboard(run) -> None:
    import tensorflow as tf

    result, _ = run

    def read(split: str) -> tuple[dict[str, set[int]], bool]:
        tags: dict[str, set[int]] = {}
        graph = False
        for path in glob.glob(str(result.run_dir / "summaries" / split / "events.out.tfevents.*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                graph |= bool(event.graph_def)
                for value in event.summary.value:
                    tags.setdefault(value.tag, set()).add(event.step)
        return tags, graph

    train, graph = read("train")
    assert graph
    assert train["loss"] == train["accuracy"] == train["learning_rate"] == {2, 4, 6}
    assert train["weights/cnn/conv_block1/conv/kernel"] == {3, 6}
    assert train["activations/cnn/conv_block1/conv/LeakyRelu"] == {3, 6}
    assert {"inputs/image/0", "filters/image/0", "filters/image/7"} <= set(train)
    test, _ = read("test")
    assert test == {"accuracy": {2, 4, 6}, "loss": {2, 4, 6}}


@tf_only
def test_evaluate_matches_the_score_training_reported(tfcore, run) -> None:
    result, _ = run
    evaluated = tfcore.evaluate(result.run_dir)
    assert evaluated.step == 6 and evaluated.examples == 1000 and evaluated.split == "test"
    assert evaluated.accuracy == result.test.accuracy  # dropout off, same weights: same numbers
    assert evaluated.loss == pytest.approx(result.test.loss, abs=1e-6)
    assert evaluated.accuracy == np.trace(evaluated.confusion) / 1000
    assert [c.examples for c in evaluated.per_class] == [100] * 10
    assert evaluated.per_class[9].name == "Ankle boot"
    older = tfcore.evaluate(result.run_dir / "model.ckpt-4.index")
    assert older.step == 4 and older.checkpoint == str(result.run_dir / "model.ckpt-4")


@tf_only
def test_models_build_with_their_documented_variables(tfcore) -> None:
    from ckpttools.tfcore.graph import build_eval, model_variables

    expected = {
        "deep_mnist": {"deep_mnist/conv1/kernel": (5, 5, 1, 32), "deep_mnist/conv2/kernel": (5, 5, 32, 64),
                       "deep_mnist/fc1/kernel": (3136, 1024), "deep_mnist/logits/kernel": (1024, 4)},
        "lenet5": {"lenet5/conv1/kernel": (5, 5, 1, 6), "lenet5/conv2/kernel": (5, 5, 6, 16),
                   "lenet5/fc1/kernel": (400, 120), "lenet5/fc2/kernel": (120, 84), "lenet5/logits/kernel": (84, 4)},
        "slim_cnn": {"slim_cnn/conv1/weights": (5, 5, 1, 32), "slim_cnn/conv2/weights": (5, 5, 32, 64),
                     "slim_cnn/fc3/weights": (7, 7, 64, 1024), "slim_cnn/logits/weights": (1, 1, 1024, 4)},
        "cnn5": {"cnn/conv_block5/conv/kernel": (3, 3, 8, 8), "cnn/dense/kernel": (8, 32),
                 "cnn/output/kernel": (32, 4)},
    }
    config = RunConfig(num_classes=4, input_shape=(28, 28, 1))
    for name, kernels in expected.items():
        with tfcore.graph_session(0):
            spec = tfcore.get_model(name)
            ops = build_eval(spec, dataclasses.replace(config, model=name))
            shapes = {v.op.name: tuple(v.shape.as_list()) for v in model_variables(spec)}
            assert kernels.items() <= shapes.items(), name
            assert ops.logits.shape.as_list() == [None, 4]


@tf_only
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tfcore, tmp_path: Path) -> None:
    # deep_mnist: dropout, Adam slots and a decaying learning rate; 30 examples at batch 8 so epochs roll over.
    config = RunConfig(model="deep_mnist", per_class=3, batch_size=8, steps=7, decay_steps=2, decay_rate=0.5,
                       checkpoint_every=100)
    straight = tfcore.train(config, tmp_path / "straight")
    tfcore.train(dataclasses.replace(config, steps=3), tmp_path / "stopped")
    resumed = tfcore.train(config, tmp_path / "stopped", resume=True)
    assert resumed.resumed_from == 3 and resumed.step == 7
    expected, actual = all_tensors(straight.checkpoint), all_tensors(resumed.checkpoint)
    assert set(expected) == set(actual)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
    assert int(actual["input/examples_seen"]) == 56
    assert resumed.test == straight.test


@pytest.fixture
def sigint(request):
    """Run the test with SIGINT handled as ``request.param`` (however pytest itself was started), then put it back."""
    before = signal.signal(signal.SIGINT, request.param)
    yield request.param
    signal.signal(signal.SIGINT, before)


@tf_only
@pytest.mark.parametrize("sigint", [signal.default_int_handler], indirect=True)
def test_ctrl_c_saves_a_checkpoint_and_returns(tfcore, tmp_path: Path, sigint) -> None:
    def interrupt(info) -> None:
        if info.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    stopped = tfcore.train(dataclasses.replace(TINY, checkpoint_every=100), tmp_path, on_step=interrupt)
    assert stopped.interrupted and stopped.step == 2 and stopped.test is None
    assert stopped.checkpoint == str(tmp_path / "model.ckpt-2") and (tmp_path / "model.ckpt-2.index").is_file()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler put back
    finished = tfcore.train(TINY, tmp_path, resume=True)
    assert finished.resumed_from == 2 and finished.step == 6 and not finished.interrupted


@tf_only
@pytest.mark.parametrize("sigint", [signal.SIG_IGN], indirect=True)
def test_an_ignored_sigint_stays_ignored(tfcore, tmp_path: Path, sigint) -> None:
    """A background job of a shell ignores Ctrl-C; training must not start catching it."""
    seen = []

    def interrupt(info) -> None:
        seen.append(signal.getsignal(signal.SIGINT))
        os.kill(os.getpid(), signal.SIGINT)

    result = tfcore.train(TINY, tmp_path, on_step=interrupt)
    assert seen and all(handler is signal.SIG_IGN for handler in seen)
    assert not result.interrupted and result.step == 6


@tf_only
def test_resume_refuses_other_settings(tfcore, run) -> None:
    result, _ = run
    with pytest.raises(ConfigError) as error:
        tfcore.train(dataclasses.replace(TINY, model="lenet5", batch_size=4), result.run_dir, resume=True)
    assert str(error.value) == (f"--resume: {result.run_dir} was trained with other settings (--model 'cnn5' -> "
                                f"'lenet5'; --batch-size 8 -> 4); resume with the run's own settings, or start a new "
                                f"run with another --out")


@tf_only
def test_unknown_model_suggests_the_closest(tfcore, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^unknown model 'lenet'; did you mean 'lenet5'\? \(models: .*cnn5"):
        tfcore.train(dataclasses.replace(TINY, model="lenet"), tmp_path)
    assert not (tmp_path / "run.json").exists()


@tf_only
def test_class_subset_with_a_registered_model(tfcore, tmp_path: Path) -> None:
    from ckpttools.tfcore import layers

    @tfcore.register_model("tiny_test_net", scope="tiny")
    def tiny(images, ctx):
        x = layers.max_pool(layers.conv2d(images, 4, 3, ctx, name="conv"), 4)
        return layers.dense(ctx.dropout(x), ctx.num_classes, ctx, name="logits", activation=None)

    config = dataclasses.replace(TINY, model="tiny_test_net", classes=(5, 7, 9), validation=0.2, steps=3)
    result = tfcore.train(config, tmp_path)
    assert result.config.class_names == ("Sandal", "Sneaker", "Ankle boot") and result.config.num_classes == 3
    assert result.validation is not None and 0 <= result.validation.accuracy <= 1
    with ckpttools.open_checkpoint(tmp_path) as ckpt:
        assert ckpt.info("tiny/logits/kernel").shape == (196, 3)
    assert tfcore.evaluate(tmp_path, split="validation").examples == 300


@tf_only
def test_scripted_fine_tuning_with_warm_start_and_frozen_layers(tfcore, run, tmp_path: Path) -> None:
    """The README's example: start cnn5 on classes 5-9 from a run's conv blocks, blocks 1-3 frozen."""
    base, _ = run
    with ckpttools.open_checkpoint(base.checkpoint) as ckpt:
        conv = {v.name: ckpt.get(v.name) for v in ckpt if v.name.startswith("cnn/conv_block") and v.role == "model"}
    frozen = ("cnn/conv_block1/", "cnn/conv_block2/", "cnn/conv_block3/")
    hooks = tfcore.TrainHooks(warm_start=lambda session: tfcore.load_variables(session, conv),
                              trainable=lambda variables: [v for v in variables if not v.op.name.startswith(frozen)])
    config = dataclasses.replace(TINY, classes=(5, 6, 7, 8, 9), per_class=5, steps=3)
    tuned = tfcore.train(config, tmp_path, hooks=hooks)
    after = all_tensors(tuned.checkpoint)
    for name, value in conv.items():
        if name.startswith(frozen):
            np.testing.assert_array_equal(after[name], value, err_msg=name)  # bitwise unchanged
            assert f"{name}/Adam" not in after  # frozen: no optimizer slots
        else:
            assert not np.array_equal(after[name], value), name  # restored, then trained
    assert after["cnn/output/kernel"].shape == (32, 5)
    resumed = tfcore.train(dataclasses.replace(config, steps=4), tmp_path, resume=True, hooks=hooks)
    assert resumed.step == 4
    np.testing.assert_array_equal(all_tensors(resumed.checkpoint)["cnn/conv_block1/conv/kernel"],
                                  conv["cnn/conv_block1/conv/kernel"])


@tf_only
def test_load_variables_checks_shapes(tfcore) -> None:
    with tfcore.graph_session(0) as (_, session):
        variable = tfcore.tf.compat.v1.get_variable("v", [2, 3])
        session.run(variable.initializer)
        assert tfcore.load_variables(session, {"v": np.ones((2, 3)), "other": np.zeros(1)}) == ["v"]
        np.testing.assert_array_equal(session.run(variable), np.ones((2, 3)))
        with pytest.raises(ConfigError, match=r"cannot load v: the value has shape \[3, 2\], the variable \[2, 3\]"):
            tfcore.load_variables(session, {"v": np.ones((3, 2))})
