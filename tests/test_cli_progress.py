"""Progress by bytes: extract, ls --stats and diff advance chunk by chunk, inside a tensor, to the exact total.

The shard reader's chunk size is made tiny (and odd, so float32 elements straddle chunks) to see many
chunks on the small TF-written sample; values must not change, not even in the last bit of a mean.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

import ckpttools
from ckpttools.formats.bundle import BundleReader
from ckpttools.ops import diff as diff_module
from ckpttools.ops.extract import write_weights
from ckpttools.ops.stats import tensor_stats, variable_stats
from ckpttools.storage import filecopy

CNN = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn"


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    size = 38  # not a multiple of 4: elements straddle chunks
    for name in ("stream", "streams"):
        method = getattr(BundleReader, name)
        monkeypatch.setattr(BundleReader, name, functools.partialmethod(method, chunk_size=size))
    monkeypatch.setattr(filecopy, "_CHUNK", size)  # and the copies inside the kernel (.safetensors)
    return size


def test_stats_streamed_in_odd_chunks_equal_the_whole_array(tiny_chunks: int) -> None:
    with ckpttools.open_checkpoint(CNN) as ckpt:
        for info in ckpt:
            steps: list[int] = []
            streamed = variable_stats(ckpt, info, steps.append)
            whole = tensor_stats(ckpt.get(info.name))
            assert sum(steps) == info.nbytes, info.name
            if info.nbytes > tiny_chunks:
                assert len(steps) > 1, info.name  # the bar moves inside the tensor
            assert streamed is not None and whole is not None
            assert (streamed.nan, streamed.inf) == (whole.nan, whole.inf)
            for got, want in ((streamed.min, whole.min), (streamed.max, whole.max)):
                assert got == want, info.name
            # the same sums in the same order, whatever the chunks: equal to the last bit
            assert (streamed.mean, streamed.std) == (whole.mean, whole.std), info.name


@pytest.mark.parametrize("name", ["w.npz", "w.safetensors"])
def test_extract_progress_advances_per_chunk_to_the_total(tiny_chunks: int, tmp_path: Path, name: str) -> None:
    steps: list[int] = []
    report = write_weights(str(CNN), str(tmp_path / name), progress=steps.append)
    assert sum(steps) == report.nbytes
    assert len(steps) > 2 * len(report.written)
    with ckpttools.open_checkpoint(tmp_path / name) as out, ckpttools.open_checkpoint(CNN) as ckpt:
        for info in report.written:
            np.testing.assert_array_equal(out.get(info.name), ckpt.get(info.name))


def test_diff_progress_advances_per_chunk_to_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(diff_module, "_CHUNK", 16)
    steps: list[int] = []
    with ckpttools.open_checkpoint(CNN) as left, ckpttools.open_checkpoint(CNN) as right:
        total = diff_module.bytes_to_compare(left, right)
        result = diff_module.compare(left, right, progress=steps.append)
    assert result.equal and sum(steps) == total
    assert len(steps) > 2 * len(result.values)
