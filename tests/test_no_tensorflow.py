"""Inspection never imports TensorFlow: checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"

LIST_WITH_API = """
import json, sys
import ckpttools
with ckpttools.open_checkpoint(sys.argv[1]) as ckpt:
    names = [v.name for v in ckpt]
    ckpt.get(names[-1])
print(json.dumps({"count": len(names), "heavy": sorted(m for m in sys.modules
      if m.split(".")[0] in ("tensorflow", "keras", "tensorboard", "google.protobuf", "jax", "torch"))}))
"""

LIST_WITH_CLI = """
import json, sys
from ckpttools.cli import main
try:
    main(["ls", "--all", "--stats", sys.argv[1]], prog_name="ckpttools")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tensorboard"))),
      file=sys.stderr)
"""


def _run(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)


def test_api_listing_and_reading_imports_no_tensorflow() -> None:
    for sample in ("tf1_cnn", "tf2_keras", "sharded"):
        result = json.loads(_run(LIST_WITH_API, str(SAMPLES / sample)).stdout)
        assert result["count"] > 0
        assert result["heavy"] == []


def test_cli_listing_imports_no_tensorflow() -> None:
    result = _run(LIST_WITH_CLI, str(SAMPLES / "tf1_cnn"))
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert "cnn/conv_block1/conv/kernel" in result.stdout
