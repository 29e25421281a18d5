"""Shared fixtures: checkpoints written by real TensorFlow (built once per session) and the samples.

TensorFlow checkpoints are built in a subprocess (``python tests/tf_fixtures.py OUTDIR``) so that
TensorFlow's import time and global state stay out of this process unless a test asks for TF.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
FIXTURE_SCRIPT = TESTS / "tf_fixtures.py"
SAMPLES = TESTS.parent / "sample_checkpoints"
BUILD_TIMEOUT = 600
pytest_plugins = ["remote_fixtures"]  # the URL tests' servers (started only by the tests that use them)


def have_tensorflow() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "tf: needs TensorFlow (skipped when it is not installed)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``tf``-marked tests, rather than fail them, where TensorFlow is not installed."""
    if have_tensorflow():
        return
    skip = pytest.mark.skip(reason="tensorflow is not installed")
    for item in items:
        if "tf" in item.keywords:
            item.add_marker(skip)


@dataclass(frozen=True)
class TFCheckpoints:
    """Where the TF-written checkpoints are: ``paths[label]`` is what tf.train.load_checkpoint takes
    (a prefix, a V1 file or ``?????`` pattern, or a SavedModel directory)."""

    root: Path
    paths: dict[str, str]

    def __getitem__(self, label: str) -> str:
        return self.paths[label]


@pytest.fixture(scope="session")
def tf_ckpts(tmp_path_factory: pytest.TempPathFactory) -> TFCheckpoints:
    """Every checkpoint of tests/tf_fixtures.py, written once per session by a TF subprocess."""
    if not have_tensorflow():
        pytest.skip("tensorflow is not installed")
    root = tmp_path_factory.mktemp("tf_ckpts")
    try:
        result = subprocess.run(
            [sys.executable, str(FIXTURE_SCRIPT), str(root)],
            capture_output=True, text=True, timeout=BUILD_TIMEOUT,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the TensorFlow fixtures took over {BUILD_TIMEOUT}s")
    if result.returncode != 0:
        pytest.fail(f"building the TensorFlow fixtures failed:\n{result.stderr[-5000:]}")
    return TFCheckpoints(root, json.loads((root / "manifest.json").read_text()))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The shipped sample checkpoints (regenerate with python sample_checkpoints/make_samples.py)."""
    return SAMPLES
