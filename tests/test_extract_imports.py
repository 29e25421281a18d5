"""`extract` of float32 checkpoints never imports ml_dtypes: its import alone (0.5 s on a quiet machine,
2 s on a busy one) cost more than copying a 1 GB checkpoint; only bfloat16/float8 tensors need it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn"
PROBE = """
import json, sys
from ckpttools.cli import main
try:
    main(sys.argv[1:], prog_name="ckpttools")
except SystemExit as exit:
    assert not exit.code, exit.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "ml_dtypes")), file=sys.stderr)
"""


@pytest.mark.parametrize("suffix", ["npz", "safetensors"])
def test_extract_of_float32_weights_does_not_import_ml_dtypes(suffix: str, tmp_path: Path) -> None:
    out = tmp_path / f"w.{suffix}"
    result = subprocess.run([sys.executable, "-c", PROBE, "extract", str(SAMPLE), "-o", str(out), "--all"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stderr.strip().splitlines()[-1]) == []
    assert out.stat().st_size > 0
