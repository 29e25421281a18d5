"""`ckpttools diff`: what differs, and exit codes scripts can rely on (0 equal, 1 differ)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main
from ckpttools.ops.diff import compare_values, diff
from ckpttools.ops.extract import extract, write_weights

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
CNN = SAMPLES / "tf1_cnn"
KERNEL = "cnn/conv_block2/conv/kernel"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def weights() -> dict[str, np.ndarray]:
    return extract(str(CNN))


def save(path: Path, arrays: dict[str, np.ndarray]) -> str:
    np.savez(path, **arrays)
    return str(path)


def test_checkpoint_equals_itself_and_its_extraction(tmp_path: Path) -> None:
    assert run("diff", str(CNN), str(CNN))[0] == 0
    write_weights(str(CNN), str(tmp_path / "w.npz"))
    code, out, err = run("diff", str(CNN), str(tmp_path / "w.npz"))
    assert code == 0 and err.endswith(": equal\n")  # piped: the data on stdout, the summary on stderr
    write_weights(str(CNN), str(tmp_path / "w.safetensors"), include_all=True)
    assert run("diff", "--all", str(CNN), str(tmp_path / "w.safetensors"))[0] == 0


def test_value_change_is_reported_with_its_size(tmp_path: Path, weights: dict) -> None:
    weights[KERNEL] = weights[KERNEL].copy()
    weights[KERNEL][0, 0, 0, :3] += np.float32(0.5)
    changed = save(tmp_path / "changed.npz", weights)
    code, out, _ = run("diff", "--json", str(CNN), changed)
    doc = json.loads(out)
    assert code == 1 and doc["equal"] is False
    entry = next(v for v in doc["values"] if v["name"] == KERNEL)
    assert entry["status"] == "changed" and entry["mismatched"] == 3
    assert entry["max_abs"] == pytest.approx(0.5, abs=1e-6)
    assert all(v["status"] == "identical" for v in doc["values"] if v["name"] != KERNEL)
    # the frozen-layers check: restricting to untouched scopes says equal
    assert run("diff", "--scopes", "conv_block1", str(CNN), changed)[0] == 0
    # tolerance turns it into "close"
    code, out, _ = run("diff", "--json", "--atol", "0.6", str(CNN), changed)
    assert code == 0 and next(v for v in json.loads(out)["values"] if v["name"] == KERNEL)["status"] == "close"


def test_missing_renamed_and_reshaped(tmp_path: Path, weights: dict) -> None:
    dense = weights.pop("cnn/dense/kernel")
    weights["cnn/dense/kernel_renamed"] = dense
    weights["cnn/logits/bias"] = np.zeros(11, np.float32)
    weights["cnn/logits/kernel"] = weights["cnn/logits/kernel"].astype(np.float64)
    code, out, _ = run("diff", "--json", str(CNN), save(tmp_path / "b.npz", weights))
    doc = json.loads(out)
    assert code == 1
    assert doc["only_in_a"] == ["cnn/dense/kernel"] and doc["only_in_b"] == ["cnn/dense/kernel_renamed"]
    assert doc["shape_changed"] == [{"name": "cnn/logits/bias", "a": [10], "b": [11]}]
    assert doc["dtype_changed"] == [{"name": "cnn/logits/kernel", "a": "float32", "b": "float64"}]
    code, out, err = run("diff", str(CNN), str(tmp_path / "b.npz"))
    assert "cnn/dense/kernel\tonly_in_a" in out and "A [10] vs B [11]" in out and err.endswith(": differ\n")


def test_quiet_prints_nothing(tmp_path: Path, weights: dict) -> None:
    weights[KERNEL] = weights[KERNEL] * 2
    code, out, _ = run("diff", "-q", str(CNN), save(tmp_path / "b.npz", weights))
    assert (code, out) == (1, "")


def test_nan_handling() -> None:
    nan = np.float32("nan")
    assert compare_values("x", np.array([1, nan]), np.array([1, nan])).status == "identical"
    one_sided = compare_values("x", np.array([1, nan]), np.array([1, 2]), atol=10)
    assert one_sided.status == "changed" and one_sided.max_abs == np.inf


def test_api_returns_structured_result() -> None:
    result = diff(str(CNN), str(CNN), include_all=True)
    with ckpttools.open_checkpoint(CNN) as ckpt:
        assert result.equal and len(result.values) == len(ckpt)


def test_missing_input_is_not_a_difference(tmp_path: Path) -> None:
    code, _, err = run("diff", str(CNN), str(tmp_path / "nope"))
    assert code == 3 and err.startswith("Error: ")
