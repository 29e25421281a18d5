"""`train` and `transfer` as users meet them: failures leave nothing behind, a finished run says so,
TensorFlow's log noise stays hidden, flags are named as typed, freeze/lr-mult rules are checked and shown."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ckpttools.cli import main
from ckpttools.training.runconfig import RunConfig

pytestmark = pytest.mark.tf

SAMPLE = str(Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn")
TINY = ["--batch-size", "8", "--checkpoint-every", "100"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def last_error(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("finished") / "run"
    result = invoke("train", "--steps", "4", *TINY, "--histogram-every", "2", "--out", str(out))
    assert result.exit_code == 0, result.output
    return out


# --- a failed train leaves no directory --------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["--data", "{tmp}/no-such-data"],
    ["--classes", "10-12"],
    ["--per-class", "501"],
    ["--validation", "1.5"],
    ["--resume"],
], ids=["data", "classes", "per-class", "validation", "resume"])
def test_failed_train_leaves_no_run_directory(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "runs" / "new"
    result = invoke("train", *[a.replace("{tmp}", str(tmp_path)) for a in args], "--steps", "1", "--out", str(out))
    assert result.exit_code in (2, 3), result.output
    assert last_error(result).startswith("Error: ")
    assert not out.exists() and not out.parent.exists()


# --- resume of a finished run ----------------------------------------------------------------------------


def test_resume_of_a_finished_run_says_so_and_writes_nothing(finished_run: Path) -> None:
    before = {path: path.stat().st_size for path in finished_run.rglob("*") if path.is_file()}
    result = invoke("train", "--resume", "--out", str(finished_run))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == f"note: {finished_run} is already at step 4; give --steps to go further (e.g. --steps 8)\n"
    after = {path: path.stat().st_size for path in finished_run.rglob("*") if path.is_file()}
    assert after == before  # no evaluation, no duplicate scalars, no new checkpoint


def test_resume_hides_tensorflows_deprecation_warnings(finished_run: Path, tmp_path: Path) -> None:
    """A fresh process, so TensorFlow's warn-once notices have not been spent by other tests."""
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(finished_run), str(copy)], check=True)
    result = subprocess.run([sys.executable, "-m", "ckpttools", "train", "--resume", "--steps", "5", "--out",
                             str(copy)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr and "deprecated" not in result.stderr, result.stderr
    assert re.fullmatch(r"epoch 1/1: step 5/5 .*\n", result.stderr), result.stderr


# --- histograms ----------------------------------------------------------------------------------------------


def test_histograms_every_n_steps(finished_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(finished_run / "summaries" / "train"), size_guidance={"histograms": 0})
    accumulator.Reload()
    tags = accumulator.Tags()["histograms"]
    assert tags
    assert sorted({event.step for event in accumulator.Histograms(tags[0])}) == [2, 4]


def test_default_run_has_more_than_one_histogram_point() -> None:
    config = RunConfig()
    total = config.total_steps(5000)  # the bundled subset's training images
    points = {step for step in range(1, total + 1) if step % config.histogram_every == 0} | {total}
    assert len(points) > 1


# --- flags as typed ----------------------------------------------------------------------------------------------


def test_errors_name_the_flags_users_type(tmp_path: Path) -> None:
    result = invoke("train", "--lr", "0", "--out", str(tmp_path / "run"))
    assert result.exit_code == 2
    assert last_error(result) == "Error: --lr must be positive; received 0.0"


@pytest.mark.parametrize("command, default", [("train", "runs/MODEL"), ("transfer", "runs/transfer-MODEL")])
def test_default_out_in_help_is_the_one_used(command: str, default: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    help_text = " ".join(invoke(command, "--help").stdout.split())
    assert f"run directory [default: {default}]" in help_text
    monkeypatch.chdir(tmp_path)
    result = invoke(command, "--model", "lenet5", "--resume")
    assert result.exit_code in (2, 3)
    assert last_error(result).startswith(f"Error: {default.replace('MODEL', 'lenet5')}: ")


# --- freeze and lr-mult ------------------------------------------------------------------------------------------


def dry_run(*args: str):
    return invoke("transfer", "--from", SAMPLE, "--scopes", "conv_block[1-2]/conv", "--dry-run", *args)


@pytest.mark.parametrize("flag, value, message", [
    ("--freeze", "conv_blok1", "Error: --freeze 'conv_blok1' matches no trainable variable of the model; "
                               "did you mean 'conv_block1'?"),
    ("--lr-mult", "dense2=0.1", "Error: --lr-mult 'dense2' matches no trainable variable of the model; "
                                "did you mean 'dense'?"),
])
def test_freeze_or_lr_mult_matching_nothing_is_an_error(flag: str, value: str, message: str) -> None:
    result = dry_run(flag, value)
    assert result.exit_code == 2
    assert last_error(result).startswith(message)


def test_plan_shows_frozen_and_learning_rate_factor() -> None:
    result = dry_run("--freeze", "conv_block1", "--lr-mult", "conv_block2=0.1", "--json")
    assert result.exit_code == 0, result.output
    variables = {v["target"]: v for v in json.loads(result.stdout)["plan"]["variables"]}
    expected = {"cnn/conv_block1/conv/kernel": (True, 1.0), "cnn/conv_block2/conv/kernel": (False, 0.1),
                "cnn/conv_block3/conv/kernel": (False, 1.0), "cnn/output/bias": (False, 1.0)}
    for name, (frozen, factor) in expected.items():
        assert (variables[name]["frozen"], variables[name]["lr_factor"]) == (frozen, factor), name
    lines = dry_run("--freeze", "conv_block1", "--lr-mult", "conv_block2=0.1").stdout.splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in lines}
    assert rows["cnn/conv_block1/conv/kernel"][4] == "frozen"
    assert rows["cnn/conv_block2/conv/bias"][4] == "lr x0.1"
    assert rows["cnn/dense/kernel"][4] == ""


def test_freeze_alone_freezes_what_is_restored() -> None:
    result = dry_run("--freeze", "--json")
    variables = json.loads(result.stdout)["plan"]["variables"]
    assert {v["target"] for v in variables if v["frozen"]} == {v["target"] for v in variables
                                                                 if v["status"] == "restored" and v["trainable"]}


# --- warm_start that restores nothing ----------------------------------------------------------------------------


def test_warm_start_that_restores_nothing_warns_with_the_closest_names() -> None:
    import tensorflow as tf

    import ckpttools
    from ckpttools.tfcore.warm_start import RestoredNothingWarning

    with tf.Graph().as_default():
        tf.compat.v1.get_variable("my_net/conv_block1/conv/kernel", [3, 3, 1, 8])
        with pytest.warns(RestoredNothingWarning) as caught:
            start = ckpttools.warm_start(SAMPLE, scopes=["conv_block1/conv/kernel"])
    assert start.plan.restored == []
    assert str(caught[0].message) == (
        f"warm_start from {SAMPLE}/model.ckpt-20 restores nothing: no selected source variable has the name of a "
        "graph variable; closest: 'cnn/conv_block1/conv/kernel' ~ 'my_net/conv_block1/conv/kernel' "
        "(rename with mapping=['OLD=NEW'])")


def test_sync_with_lr_mult_is_refused_before_any_task_starts(tmp_path: Path) -> None:
    """One synchronous optimizer per run: the clash is a usage error up front, not a task failure (exit 8)
    after every task has loaded TensorFlow."""
    out = tmp_path / "ft"
    result = CliRunner().invoke(main, ["transfer", "--from", "sample_checkpoints/tf1_cnn", "--cluster", "local",
                                       "--sync", "--lr-mult", "conv_block1=0.1", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "--sync cannot be combined with --lr-mult" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not out.exists()
