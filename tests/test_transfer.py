"""`ckpttools transfer` and `ckpttools.warm_start`: exact restores, freezing, plans and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main
from ckpttools.ops.diff import diff

pytestmark = pytest.mark.tf
SAMPLE = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn"
FAST = ["--model", "cnn5", "--batch-size", "16", "--checkpoint-every", "1000", "--summary-every", "1000"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cnn5 trained briefly on classes 0-5 of the bundled data: a 6-way head, so 5-way targets differ."""
    out = tmp_path_factory.mktemp("pre") / "run"
    code, _, err = run("train", *FAST, "--classes", "0-5", "--steps", "20", "--out", str(out))
    assert code == 0, err
    return out


# --- the Python API in a user-built graph ------------------------------------------------------


def build_like_sample(tf, extra: bool = True) -> dict:
    """Variables shaped like the sample CNN's (batch norm included), plus one the source lacks."""
    variables = {}
    with ckpttools.open_checkpoint(SAMPLE) as ckpt:
        for info in ckpt:
            if info.role == "model":
                trainable = "moving_" not in info.name
                variables[info.name] = tf.compat.v1.get_variable(
                    info.name, info.shape, tf.as_dtype(info.dtype), trainable=trainable,
                    initializer=tf.compat.v1.random_normal_initializer(seed=1))
    if extra:
        variables["cnn/new_head/kernel"] = tf.compat.v1.get_variable("cnn/new_head/kernel", [16, 3])
    return variables


def test_warm_start_restores_bitwise_including_moving_averages() -> None:
    tf = pytest.importorskip("tensorflow")
    from ckpttools.tfcore.warm_start import warm_start

    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = build_like_sample(tf)
        start = warm_start(str(SAMPLE), scopes=["cnn"])
        session.run(tf.compat.v1.global_variables_initializer())
        fresh_head = session.run(variables["cnn/new_head/kernel"])
        restored = start.restore(session)
        values = session.run(variables)
    with ckpttools.open_checkpoint(SAMPLE) as ckpt:
        assert sorted(restored) == sorted(v.name for v in ckpt if v.role == "model")
        assert any("moving_mean" in name for name in restored)  # non-trainable state comes along
        for name in restored:
            assert values[name].tobytes() == ckpt.get(name).tobytes(), name
    assert [e.target.name for e in start.plan.new] == ["cnn/new_head/kernel"]
    np.testing.assert_array_equal(values["cnn/new_head/kernel"], fresh_head)  # new: not taken from the source


def test_same_values_as_tensorflows_own_warm_start() -> None:
    tf = pytest.importorskip("tensorflow")
    from ckpttools.tfcore.warm_start import warm_start

    scopes = ["conv_block1", "conv_block3"]
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = build_like_sample(tf, extra=False)
        start = warm_start(str(SAMPLE), scopes=scopes)
        session.run(tf.compat.v1.global_variables_initializer())
        start.restore(session)
        ours = session.run(variables)
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = build_like_sample(tf, extra=False)
        prefix = ckpttools.open_checkpoint(SAMPLE).prefix
        mapping = {f"cnn/{scope}/": f"cnn/{scope}/" for scope in scopes}
        tf.compat.v1.train.init_from_checkpoint(prefix, mapping)
        session.run(tf.compat.v1.global_variables_initializer())
        theirs = session.run(variables)
    selected = [name for name in ours if "/conv_block1/" in name or "/conv_block3/" in name]
    assert selected
    for name in selected:
        assert ours[name].tobytes() == theirs[name].tobytes(), name


# --- the command ------------------------------------------------------------------------------------


def test_freeze_keeps_restored_layers_bitwise_unchanged(pretrained: Path, tmp_path: Path) -> None:
    out = tmp_path / "ft"
    code, stdout, err = run("transfer", "--from", str(pretrained), "--scopes", "conv_block[1-3]", "--freeze",
                            *FAST, "--classes", "5-9", "--per-class", "10", "--steps", "8", "--out", str(out))
    assert code == 0, err
    assert "cnn/conv_block1/conv/kernel\trestored\tcnn/conv_block1/conv/kernel" in stdout
    assert run("diff", "--scopes", "conv_block[1-3]", str(pretrained), str(out))[0] == 0
    assert not diff(str(pretrained), str(out), scopes=["conv_block4"]).equal  # the rest did train
    record = json.loads((out / "transfer.json").read_text())
    assert record["options"]["scopes"] == ["conv_block[1-3]"] and record["plan"]["counts"]["restored"] == 6


def test_lr_mult_sets_per_layer_learning_rates(pretrained: Path, tmp_path: Path) -> None:
    """Factor 0 keeps a layer still; a small factor moves it less than the full rate would (with Adam,
    which a gradient-scaling multiplier could not achieve: Adam divides by the gradient's own scale)."""
    common = ["--from", str(pretrained), "--scopes", "cnn", "--exclude", "output", *FAST, "--classes", "5-9",
              "--per-class", "10", "--steps", "6"]
    runs = {}
    for label, rules in (("full", []), ("slow", ["--lr-mult", "conv_block2=0.01", "--lr-mult", "conv_block1=0"])):
        out = tmp_path / label
        code, _, err = run("transfer", *common, *rules, "--out", str(out))
        assert code == 0, err
        runs[label] = out
    assert diff(str(pretrained), str(runs["slow"]), scopes=["conv_block1"]).equal
    moved = {label: diff(str(pretrained), str(out), scopes=["conv_block2/conv/kernel"]).values[0].max_abs
             for label, out in runs.items()}
    assert 0 < moved["slow"] < moved["full"] / 10, moved
    with ckpttools.open_checkpoint(runs["slow"]) as ckpt:  # not frozen: it has optimizer slots
        assert "cnn/conv_block1/conv/kernel/Adam" in ckpt


def test_init_only_writes_a_warm_started_step_zero_run(pretrained: Path, tmp_path: Path) -> None:
    out = tmp_path / "init"
    code, _, err = run("transfer", "--from", str(pretrained), "--scopes", "conv_block[1-3]", "--init-only",
                       *FAST, "--classes", "5-9", "--out", str(out))
    assert code == 0, err
    assert {p.name for p in out.iterdir()} >= {"model.ckpt-0.index", "model.ckpt-0.meta", "checkpoint", "run.json",
                                               "transfer.json"}
    assert diff(str(pretrained), str(out / "model.ckpt-0"), scopes=["conv_block[1-3]"]).equal


def test_resume_continues_with_the_recorded_options(pretrained: Path, tmp_path: Path) -> None:
    out = tmp_path / "resume"
    base = ["--from", str(pretrained), "--scopes", "conv_block1", "--freeze", *FAST, "--classes", "5-9",
            "--per-class", "10", "--out", str(out)]
    assert run("transfer", *base, "--steps", "4")[0] == 0
    code, _, err = run("transfer", "--out", str(out), "--resume", "--steps", "8")
    assert code == 0, err
    with ckpttools.open_checkpoint(out) as ckpt:
        assert ckpt.prefix.endswith("model.ckpt-8")
    assert diff(str(pretrained), str(out), scopes=["conv_block1"]).equal


def test_dry_run_json_and_nothing_written(pretrained: Path, tmp_path: Path) -> None:
    out = tmp_path / "dry"
    code, stdout, _ = run("transfer", "--from", str(pretrained), "--scopes", "cnn", "--dry-run", "--json",
                          *FAST, "--classes", "5-9", "--out", str(out))
    assert code == 0
    plan = json.loads(stdout)["plan"]
    by_target = {v["target"]: v for v in plan["variables"]}
    head = by_target["cnn/output/kernel"]
    assert head["status"] == "skipped-shape" and head["source_shape"][1] == 6 and head["target_shape"][1] == 5
    assert by_target["cnn/conv_block1/conv/kernel"]["status"] == "restored"
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--from", "{missing}", "--scopes", "conv_block1"], 3, "no such file"),
        (["--from", "{pre}", "--scopes", "nothing_like_this"], 3, "no variables matching nothing_like_this"),
        (["--from", "{pre}", "--scopes", "cnn", "--strict"], 7, "shape mismatch"),
        (["--from", "{pre}", "--map", r"re:conv_block\d=conv_block"], 2, "--map sends both"),
        (["--from", "{pre}", "--num-classes", "3"], 2, "num_classes=3"),
        (["--scopes", "cnn"], 2, "--from SOURCE is required"),
    ],
)
def test_bad_input_fails_cleanly_and_writes_nothing(pretrained: Path, tmp_path: Path, args: list, code: int,
                                                    message: str) -> None:
    out = tmp_path / "out"
    args = [a.format(pre=pretrained, missing=tmp_path / "missing") for a in args]
    got, _, err = run("transfer", *args, *FAST, "--classes", "5-9", "--steps", "2", "--out", str(out))
    assert got == code, err
    assert message in err and err.strip().splitlines()[-1].startswith("Error")
    assert not out.exists()


def test_near_miss_names_get_a_suggestion(tmp_path: Path) -> None:
    """A checkpoint whose scopes are spelled differently: the plan says which name was probably meant."""
    weights = ckpttools.extract(str(SAMPLE), scopes=["conv_block1/conv"])
    renamed = {name.replace("conv_block1", "conv_blok1"): value for name, value in weights.items()}
    np.savez(tmp_path / "w.npz", **renamed)
    code, stdout, err = run("transfer", "--from", str(tmp_path / "w.npz"), "--dry-run", *FAST, "--classes", "5-9",
                            "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "did you mean cnn/conv_block1/conv/kernel?" in stdout
