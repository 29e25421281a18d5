"""Output scripts can trust: plain data when piped, a schema in every --json, clear errors and exit codes.

Expectations come from the reader's API (checked against TensorFlow in test_exact) and from numpy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main
from ckpttools.cli.text import plural
from ckpttools.ops.extract import write_weights

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "sample_checkpoints" / "tf1_cnn"
KERNEL = "cnn/conv_block2/conv/kernel"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def big_npz(tmp_path: Path) -> Path:
    """Variables with thousands of parameters: where thousands separators would show."""
    path = tmp_path / "big.npz"
    rng = np.random.default_rng(0)
    np.savez(path, **{"net/dense/kernel": rng.normal(size=(128, 1005)).astype(np.float32),
                      "net/dense/bias": np.zeros(1005, np.float32)})
    return path


def test_plural() -> None:
    assert plural(1, "variable") == "1 variable"
    assert plural(2, "variable") == "2 variables"
    assert plural(1204, "value") == "1,204 values"
    assert plural(1204, "value", grouped=False) == "1204 values"
    assert plural(0, "match", "matches") == "0 matches"


def test_piped_ls_has_no_thousands_separators_in_any_column(big_npz: Path) -> None:
    for args in ((), ("--stats",), ("--sort", "size")):
        code, out, _ = run("ls", str(big_npz), *args)
        assert code == 0
        for line in out.splitlines():
            numbers = line.split("\t")[3:]
            assert numbers and all("," not in field for field in numbers), line
            float(numbers[0]), float(numbers[1])  # parses as a number
    rows = [line.split("\t") for line in run("ls", str(big_npz))[1].splitlines()]
    assert sum(int(r[3]) for r in rows) == 128 * 1005 + 1005  # what `awk '{p+=$4}'` sums
    code, out, _ = run("ls", "--tree", str(big_npz))
    assert "129645 parameters" in out and "," not in out.split("\t", 1)[1].split("\n")[0]


def test_piped_stats_are_full_precision_numbers(big_npz: Path) -> None:
    _, out, _ = run("ls", "--stats", str(big_npz))
    kernel = next(line.split("\t") for line in out.splitlines() if line.startswith("net/dense/kernel"))
    value = np.load(big_npz)["net/dense/kernel"].astype(np.float64)
    assert float(kernel[5]) == pytest.approx(value.min(), rel=1e-5)
    assert float(kernel[7]) == pytest.approx(value.mean(), rel=1e-4, abs=1e-6)


def test_piped_diff_is_one_tab_separated_line_per_variable(tmp_path: Path) -> None:
    weights = ckpttools.extract(str(CNN))
    weights[KERNEL] = weights[KERNEL].copy()
    weights[KERNEL][0, 0, 0, 0] += np.float32(0.25)
    np.savez(tmp_path / "tuned.npz", **weights)
    code, out, err = run("diff", str(CNN), str(tmp_path / "tuned.npz"))
    assert code == 1
    rows = [line.split("\t") for line in out.splitlines()]
    assert sorted(row[0] for row in rows) == sorted(weights)  # one line per variable, nothing else
    assert all(len(row) == 6 for row in rows)
    changed = [row for row in rows if row[1] == "changed"]
    assert [row[0] for row in changed] == [KERNEL] and changed[0][2] == "1"
    assert float(changed[0][3]) == pytest.approx(0.25, rel=1e-6)
    assert "┃" not in out and "│" not in out
    assert err.splitlines()[-1] == f"{len(weights) - 1} identical, 1 changed: differ"


def test_diff_wording_singular_and_close(tmp_path: Path) -> None:
    from rich.console import Console

    from ckpttools.cli.diff import _print
    from ckpttools.ops.diff import diff

    weights = ckpttools.extract(str(CNN))
    weights[KERNEL] = weights[KERNEL] + np.float32(1e-3)
    np.savez(tmp_path / "near.npz", **weights)
    console = Console(width=200, record=True, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    result = diff(str(CNN), str(tmp_path / "near.npz"))
    _print(console, result.a, result.b, result)
    shown = console.export_text()
    assert "576 values differ" in shown
    code, _, err = run("diff", "--atol", "0.01", str(CNN), str(tmp_path / "near.npz"))
    assert code == 0
    assert err.splitlines()[-1] == f"{len(weights) - 1} identical, 1 close (within tolerance): equal"
    assert "changed or close" not in err
    one = dict(weights)
    one[KERNEL] = ckpttools.extract(str(CNN))[KERNEL].copy()
    one[KERNEL][0, 0, 0, 0] += 1
    np.savez(tmp_path / "one.npz", **one)
    result = diff(str(CNN), str(tmp_path / "one.npz"), scopes=["conv_block2"])
    console = Console(width=200, record=True, color_system=None, file=open(os.devnull, "w"))  # noqa: SIM115
    _print(console, result.a, result.b, result)
    assert "1 value differs" in console.export_text() and "1 values" not in console.export_text()


def test_json_names_schema_and_the_checkpoint_really_read(tmp_path: Path) -> None:
    with ckpttools.open_checkpoint(CNN) as ckpt:
        prefix = ckpt.prefix
    code, out, err = run("extract", str(CNN), "-o", str(tmp_path / "w.npz"), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "ckpttools.extract/1"
    assert doc["checkpoint"] == {"path": str(CNN), "prefix": prefix}
    code, out, _ = run("diff", "--json", str(CNN), str(tmp_path / "w.npz"))
    doc = json.loads(out)
    assert doc["schema"] == "ckpttools.diff/1" and doc["a"] == prefix and doc["a_path"] == str(CNN)
    assert doc["b"] == str(tmp_path / "w.npz")


def test_diff_and_extract_say_which_checkpoint_a_directory_gave(tmp_path: Path) -> None:
    with ckpttools.open_checkpoint(CNN) as ckpt:
        prefix = ckpt.prefix
    _, _, err = run("diff", str(CNN), str(CNN))
    assert f"note: A: using {prefix}" in err and f"note: B: using {prefix}" in err
    _, _, err = run("extract", str(CNN), "-o", str(tmp_path / "w.npz"))
    assert f"note: using {prefix}" in err


def test_notes_are_not_wrapped_when_stderr_is_piped(tmp_path: Path) -> None:
    deep = tmp_path / ("a-long-directory-name-" * 4) / "weights-with-a-long-name.npz"
    deep.parent.mkdir()
    code, _, err = run("extract", str(CNN), "-o", str(deep), "--scopes", "conv_block1")
    assert code == 0
    assert f"wrote 6 variables (448 bytes) to {deep}\n" in err


@pytest.mark.parametrize("name", ["out.txt", "weights", "w.npy"])
def test_extract_unknown_suffix_is_an_error_naming_the_formats(tmp_path: Path, name: str) -> None:
    code, out, err = run("extract", str(CNN), "-o", str(tmp_path / name))
    assert code == 2 and err.startswith("Error: ") and ".npz" in err and ".safetensors" in err
    assert str(tmp_path / name) in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []
    code, _, _ = run("extract", str(CNN), "-o", str(tmp_path / name), "--format", "safetensors")
    assert code == 0  # an explicit --format is obeyed whatever the name
    with pytest.raises(ckpttools.errors.ArgumentError, match="the name says npz"):
        write_weights(str(CNN), str(tmp_path / "x.npz"), fmt="safetensors")


def test_mistyped_command_gets_did_you_mean() -> None:
    code, _, err = run("lss", str(CNN))
    assert code == 2 and "Did you mean 'ls'?" in err
    code, _, err = run("extrat", str(CNN))
    assert code == 2 and "Did you mean 'extract'?" in err


def test_every_help_lists_exit_codes() -> None:
    import click

    code, out, _ = run("--help")
    assert "130 interrupted" in " ".join(out.split())
    for name in main.list_commands(click.Context(main)):
        code, out, _ = run(name, "--help")
        assert code == 0 and "Exit codes:" in out, name
        assert "130" in out, name


def test_tree_all_keeps_a_variables_own_line_and_tree_stats_is_refused() -> None:
    code, out, _ = run("ls", "--tree", "--all", str(CNN))
    assert code == 0
    with ckpttools.open_checkpoint(CNN) as ckpt:
        beta = ckpt.info("cnn/conv_block1/bn/beta")
    line = next(line for line in out.splitlines() if line.strip().startswith("beta "))
    assert f"{beta.dtype} [{beta.shape[0]}]  {beta.size}" in line and "2 slots" in line
    code, _, err = run("ls", "--tree", "--stats", str(CNN))
    assert code == 2 and "--tree and --stats" in err


# --- Ctrl-C: a real SIGINT to a real process ----------------------------------------------------------------

SLOW = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even under a background (&) run
from pathlib import Path
import ckpttools.checkpoint as checkpoint
import ckpttools.ops.extract as extract
started = Path(sys.argv[1])
real_get, real_stream, real_streams = (checkpoint.Checkpoint.get, checkpoint.Checkpoint.stream,
                                       checkpoint.Checkpoint.streams)

def slow_get(self, name):
    started.touch()
    time.sleep(0.5)
    return real_get(self, name)

def slowly(chunks):
    for chunk in chunks:
        started.touch()
        time.sleep(0.5)
        yield chunk

def slow_stream(self, name):
    chunks = real_stream(self, name)
    return None if chunks is None else slowly(chunks)

def slow_streams(self, names, *rest):
    for name, chunks in real_streams(self, names, *rest):
        yield name, None if chunks is None else slowly(chunks)

real_copy_range = extract.copy_range

def slow_copy_range(*args):
    started.touch()
    time.sleep(0.5)
    return real_copy_range(*args)

checkpoint.Checkpoint.get, checkpoint.Checkpoint.stream, checkpoint.Checkpoint.streams = (
    slow_get, slow_stream, slow_streams)
extract.copy_range = slow_copy_range
from ckpttools.cli import main
main(sys.argv[2:], prog_name="ckpttools")
"""


@pytest.mark.parametrize("args", [
    ("extract", str(CNN), "-o", "{out}/w.npz"),
    ("extract", str(CNN), "-o", "{out}/w.safetensors"),
    ("ls", "--stats", str(CNN)),
    ("diff", str(CNN), str(CNN)),
])
def test_ctrl_c_exits_130_and_leaves_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    started = tmp_path / "started"
    argv = [arg.format(out=out) for arg in args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", SLOW, str(started), *argv], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not started.exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    assert started.exists(), child.communicate()
    child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 130, stderr
    assert "Aborted!" not in stderr and "Traceback" not in stderr and "Interrupted." in stderr
    assert list(out.iterdir()) == []  # no output, no temporary file


def test_piped_eval_is_tab_separated_with_the_summary_on_stderr(capsys: pytest.CaptureFixture) -> None:
    from types import SimpleNamespace

    from ckpttools.cli.trainview import write_eval

    confusion = np.array([[1500, 20], [0, 0]])
    per_class = [SimpleNamespace(label=0, name="T-shirt/top", examples=1520, correct=1500, accuracy=1500 / 1520),
                 SimpleNamespace(label=1, name="Trouser", examples=0, correct=0, accuracy=0.0)]
    result = SimpleNamespace(checkpoint="runs/x/model.ckpt-1", step=1, split="test", examples=1520,
                             accuracy=1500 / 1520, loss=0.25, per_class=per_class, confusion=confusion,
                             class_names=["T-shirt/top", "Trouser"])
    write_eval(result)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["0\tT-shirt/top\t1520\t1500\t0.9868\t1500\t20", "1\tTrouser\t0\t0\t-\t0\t0"]
    assert err == "runs/x/model.ckpt-1 (step 1), test split, 1,520 examples: accuracy 0.9868, loss 0.2500\n"
