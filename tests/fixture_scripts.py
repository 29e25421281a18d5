"""Run a fixture-writing script (``python tests/SCRIPT OUTDIR``, TensorFlow in a child process) for a fixture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_fixture_script(tmp_path_factory: pytest.TempPathFactory, script: str, timeout: int) -> tuple[Path, str]:
    """Run ``tests/script`` on a fresh directory; return the directory and what the script printed.

    Skips without TensorFlow; fails the fixture (with the script's error) when the script fails or hangs.
    """
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp(Path(script).stem)
    try:
        result = subprocess.run([sys.executable, str(TESTS / script), str(root)], capture_output=True, text=True,
                                timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{script} took over {timeout}s")
    if result.returncode != 0:
        pytest.fail(f"{script} failed:\n{result.stderr[-5000:]}")
    return root, result.stdout
