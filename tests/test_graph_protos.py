"""`graph` needs only protobuf: TensorFlow's graph messages come from descriptors shipped in the package,
not from tensorboard (which pulls grpcio, werkzeug, pillow, markdown into the base install)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ckpttools.graphs import protos

SAMPLE_META = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn" / "model.ckpt-20.meta"
NO_TENSORBOARD = """
import sys
sys.modules["tensorboard"] = None  # any import of tensorboard now fails
from ckpttools.cli import main
main(sys.argv[1:], prog_name="ckpttools")
"""


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_shipped_descriptors_are_tensorboards_compiled_protos() -> None:
    assert protos.DESCRIPTOR_FILE.read_bytes() == protos.file_descriptor_set(), (
        "regenerate with: python -m ckpttools.graphs.protos")


def tensorboard_node_count() -> int:
    """The sample graph's node count as tensorboard's own compiled MetaGraphDef reads it."""
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto import meta_graph_pb2

    return len(meta_graph_pb2.MetaGraphDef.FromString(SAMPLE_META.read_bytes()).graph_def.node)


def run_without_tensorboard(*args: str) -> str:
    result = subprocess.run([sys.executable, "-c", NO_TENSORBOARD, *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_graph_works_without_tensorboard() -> None:
    summary = run_without_tensorboard("graph", str(SAMPLE_META), "--summary")
    assert f"nodes\t{tensorboard_node_count()}\n" in summary


def test_tensorboard_event_file_without_tensorboard(tmp_path: Path) -> None:
    run_without_tensorboard("graph", str(SAMPLE_META), "--tensorboard", str(tmp_path))
    (event_file,) = tmp_path.glob("events.out.tfevents.*")
    expected = tensorboard_node_count()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(event_file))
    accumulator.Reload()
    assert len(accumulator.Graph().node) == expected
