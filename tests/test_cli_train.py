"""``ckpttools train`` and ``ckpttools eval`` through click's runner: outputs, errors and exit codes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ckpttools.cli import main
from ckpttools.training import idx
from ckpttools.training.datasets import BUNDLED

TINY = ["--batch-size", "8", "--checkpoint-every", "100"]


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def error_line(result) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    pytest.importorskip("tensorflow")
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke("train", "--steps", "3", *TINY, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"step 3: test accuracy 0\.\d{4} \(loss \d+\.\d{4}\), \d+\.\d s; "
                        rf"checkpoint {re.escape(str(out))}/model\.ckpt-3\n", result.stdout)
    return out


def small_data(directory: Path, train_labels: np.ndarray | None = None) -> Path:
    """A copy of a slice of the bundled data, to break in different ways."""
    directory.mkdir()
    for split, prefix, n in (("train", "train", 40), ("test", "t10k", 20)):
        images, labels = idx.load_pair(BUNDLED, split)
        idx.write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images[:n])
        idx.write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels[:n].astype(np.uint8))
    if train_labels is not None:
        idx.write_idx(directory / "train-labels-idx1-ubyte.gz", train_labels)
    return directory


@pytest.mark.parametrize("command", ["train", "eval"])
def test_help_has_examples_and_exit_codes(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "Exit codes:" in result.output


@pytest.mark.tf
def test_train_json_and_run_directory(run_dir: Path, tmp_path: Path) -> None:
    result = invoke("train", "--model", "lenet5", "--classes", "0-2", "--steps", "2", *TINY, "--json",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["schema"] == "ckpttools.train/1" and record["step"] == 2 and record["interrupted"] is False
    assert record["checkpoint"] == str(tmp_path / "model.ckpt-2")
    assert record["config"]["classes"] == [0, 1, 2] and record["config"]["num_classes"] == 3
    assert 0 <= record["test"]["accuracy"] <= 1
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "checkpoint", "model.ckpt-3.data-00000-of-00001", "model.ckpt-3.index", "model.ckpt-3.meta", "run.json",
        "summaries"]


@pytest.mark.tf
def test_eval_json(run_dir: Path) -> None:
    result = invoke("eval", str(run_dir), "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["schema"] == "ckpttools.eval/1" and record["step"] == 3 and record["examples"] == 1000
    assert np.array(record["confusion_matrix"]).shape == (10, 10)
    assert np.trace(record["confusion_matrix"]) / 1000 == record["accuracy"]
    assert record["classes"][0] == {"label": 0, "name": "T-shirt/top", "examples": 100,
                                    "correct": record["confusion_matrix"][0][0],
                                    "accuracy": record["confusion_matrix"][0][0] / 100}


@pytest.mark.tf
def test_eval_table(run_dir: Path) -> None:
    result = invoke("eval", str(run_dir / "model.ckpt-3"))
    assert result.exit_code == 0, result.output
    first = result.stderr.splitlines()[-1]  # piped: the summary on stderr, the data on stdout
    assert re.fullmatch(rf"{re.escape(str(run_dir))}/model\.ckpt-3 \(step 3\), test split, 1,000 examples: "
                        r"accuracy 0\.\d{4}, loss \d+\.\d{4}", first)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[:3] for row in rows][9] == ["9", "Ankle boot", "100"] and len(rows) == 10
    assert all(sum(int(n) for n in row[5:]) == int(row[2]) for row in rows)  # each true class's predictions


@pytest.mark.tf
def test_resume_continues_with_the_runs_own_settings(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    assert invoke("train", "--steps", "2", *TINY, "--seed", "5", "--out", str(out)).exit_code == 0
    result = invoke("train", "--steps", "4", "--resume", "--json", "--out", str(out))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert (record["resumed_from"], record["step"], record["config"]["seed"]) == (2, 4, 5)


@pytest.mark.tf
@pytest.mark.parametrize("args, code, message", [
    (["--model", "cnn6"], 2, "Error: unknown model 'cnn6'; did you mean 'cnn5'? (models: "),
    (["--classes", "9-5"], 2, "Error: --classes: range '9-5' runs backwards (write 5-9)"),
    (["--optimizer", "adagrad"], 2, "Error: Invalid value for '--optimizer': 'adagrad' is not one of"),
    (["--per-class", "501"], 2, "Error: --per-class 501: class 0 has only 500 training examples; use --per-class "
                                "500 or less"),
])
def test_bad_settings(tmp_path: Path, args: list[str], code: int, message: str) -> None:
    result = invoke("train", *args, "--steps", "1", "--out", str(tmp_path / "run"))
    assert result.exit_code == code
    assert error_line(result).startswith(message)


@pytest.mark.tf
def test_missing_data_directory(tmp_path: Path) -> None:
    result = invoke("train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "run"))
    assert result.exit_code == 3
    assert error_line(result) == f"Error: {tmp_path / 'nope'}: no such data directory"


@pytest.mark.tf
def test_malformed_idx_file(tmp_path: Path) -> None:
    data = small_data(tmp_path / "data")
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x14")
    result = invoke("train", "--data", str(data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 4
    assert error_line(result) == f"Error: {data / 't10k-images-idx3-ubyte.gz'}: truncated header (8 bytes; 3 " \
                                 "dimensions need 16)"


@pytest.mark.tf
def test_image_and_label_counts_disagree(tmp_path: Path) -> None:
    data = small_data(tmp_path / "data", train_labels=np.zeros(39, np.uint8))
    result = invoke("train", "--data", str(data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 4
    assert error_line(result) == (f"Error: train split: train-images-idx3-ubyte.gz has 40 images but "
                                  f"train-labels-idx1-ubyte.gz has 39 labels (in {data})")


@pytest.mark.tf
def test_other_idx_data_trains(tmp_path: Path) -> None:
    data = small_data(tmp_path / "data")
    result = invoke("train", "--data", str(data), "--steps", "2", *TINY, "--json", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["data"] == str(data.resolve())


@pytest.mark.tf
def test_resume_with_other_settings_is_refused(run_dir: Path) -> None:
    result = invoke("train", "--model", "deep_mnist", "--resume", "--out", str(run_dir))
    assert result.exit_code == 2
    assert error_line(result) == (f"Error: --resume: {run_dir} was trained with other settings (model='cnn5' -> "
                                  f"'deep_mnist'); resume with the run's own settings, or start a new run with "
                                  f"another --out")


@pytest.mark.tf
def test_resume_without_a_run(tmp_path: Path) -> None:
    result = invoke("train", "--resume", "--out", str(tmp_path))
    assert result.exit_code == 3
    assert error_line(result) == f"Error: {tmp_path}: no run to resume (no run.json); start it without --resume"


@pytest.mark.tf
def test_a_run_directory_is_never_overwritten(run_dir: Path, tmp_path: Path) -> None:
    result = invoke("train", "--steps", "1", "--out", str(run_dir))
    assert result.exit_code == 5
    assert error_line(result).startswith(f"Error: {run_dir} already holds a run (model cnn5, last checkpoint at "
                                         f"step 3); pass --resume to continue it, --force to start a new one")
    out = tmp_path / "forced"
    assert invoke("train", "--steps", "1", *TINY, "--out", str(out)).exit_code == 0
    forced = invoke("train", "--steps", "2", *TINY, "--force", "--out", str(out))
    assert forced.exit_code == 0, forced.output
    moved = next(out.glob("replaced-*"))
    assert f"note: moved the previous run's files to {moved}" in forced.stderr
    assert (moved / "model.ckpt-1.index").is_file() and (out / "model.ckpt-2.index").is_file()


@pytest.mark.tf
def test_out_directory_not_writable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = invoke("train", "--steps", "1", "--out", str(tmp_path / "file" / "run"))
    assert result.exit_code == 5
    assert error_line(result) == (f"Error: {tmp_path / 'file' / 'run'}: cannot write a run here (Not a directory); "
                                  f"choose another --out")


@pytest.mark.tf
def test_eval_needs_a_run(tmp_path: Path) -> None:
    result = invoke("eval", str(tmp_path))
    assert result.exit_code == 3
    assert error_line(result) == (f"Error: {tmp_path}: no run.json in it or beside it; eval rebuilds the model "
                                  f"from the run.json that 'ckpttools train' writes")


def _default_sigint() -> None:
    """The child handles Ctrl-C like a foreground command, even when pytest runs as a background job."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.tf
def test_ctrl_c_saves_and_exits_130(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    out = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "ckpttools", "train", "--steps", "100000", *TINY,
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("summaries/train/events.*")):  # written once the loop (and its handler) runs
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.1)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    step = int(re.search(r"Interrupted at step (\d+): ", stderr)[1])
    assert stderr.strip().splitlines()[-1] == (f"Interrupted at step {step}: saved {out}/model.ckpt-{step}; "
                                               f"continue with: ckpttools train --out {out} --resume")
    assert stdout == "" and (out / f"model.ckpt-{step}.index").is_file()


BLOCK_TENSORFLOW = """
import json, sys
sys.modules["tensorflow"] = None  # as if it were not installed
from ckpttools.cli import main
try:
    main(sys.argv[1:], prog_name="ckpttools")
except SystemExit as exc:
    print(json.dumps({"code": exc.code, "tf": sorted(m for m in sys.modules if m.startswith("tensorflow."))}))
"""


def test_without_tensorflow_train_says_how_to_install_it(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, "train", "--out", str(tmp_path / "r")],
                            capture_output=True, text=True)
    assert json.loads(result.stdout) == {"code": 6, "tf": []}
    assert result.stderr.strip().splitlines()[-1] == (
        "Error: training and evaluation need TensorFlow (import of tensorflow halted; None in sys.modules); "
        "install it with: pip install 'ckpttools[tf]'")


def test_data_and_cli_modules_import_no_tensorflow() -> None:
    code = ("import sys, ckpttools.cli, ckpttools.training.idx, ckpttools.training.datasets, "
            "ckpttools.training.runconfig, ckpttools.training.rundir; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
