"""Seeded fuzzing of every reader: on any input, a clean ckpttools error or correct values.

Seeds are TensorFlow-written checkpoints (V2 plain, partitioned, sharded, all dtypes with strings; V1;
TF2 object graph; SavedModel; .meta graphs; `checkpoint` state files) and npz/safetensors files
extracted from them. tests/fuzz_engine.py makes each case with tests/fuzz_mutators.py and
tests/fuzz_file_mutators.py (byte flips, truncation, splicing, and structure-aware changes: protobuf
fields and wire types, extreme varints, sizes, offsets, shapes, dtypes, shard counts, block handles,
zip/npy headers, safetensors JSON) and runs it in a child with a time and an address-space limit.
bench/fuzz.py runs the same campaign at length.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_campaign  # noqa: E402
import fuzz_engine  # noqa: E402

CASES = 3000
CAMPAIGN = 20261202  # fixed: the same cases on every run


@pytest.fixture(scope="module")
def fuzz_seeds(tf_ckpts, tmp_path_factory) -> Path:
    return fuzz_campaign.prepare_seeds(tmp_path_factory.mktemp("fuzz") / "seeds", tf_ckpts.paths)


@pytest.mark.tf
def test_every_reader_survives_corrupt_input(fuzz_seeds: Path) -> None:
    tally = fuzz_campaign.run_campaign(fuzz_seeds, CASES, campaign=CAMPAIGN, batch=CASES)
    assert sum(tally.counts.values()) == CASES
    bad = {outcome: tally.examples[outcome] for outcome in fuzz_campaign.BAD if tally.counts[outcome]}
    assert not bad, f"{dict(tally.counts)}\n" + "\n".join(f"{o}: {e}" for o, ex in bad.items() for e in ex)
    # the cases reach both sides of every reader: some read fine, some are refused (a broken
    # `checkpoint` state file is never an error: the newest checkpoint is used instead)
    for kind in ("table_v2", "data", "table_v1", "graph", "npz", "safetensors", "state"):
        assert tally.by_kind[kind, "clean error"] > 0 or kind == "state", kind
        assert tally.by_kind[kind, "read fine"] > 0, kind


@pytest.mark.tf
def test_the_oracle_flags_a_reader_that_returns_unchecked_values(fuzz_seeds: Path, monkeypatch, tmp_path) -> None:
    """A reader that skipped its checksum would be caught: the same cases, run in-process against a
    reader returning altered values, come out as silent wrong values."""
    import json
    import shutil

    from ckpttools.formats import bundle

    seeds = json.loads((fuzz_seeds / "seeds.json").read_text())
    pristine = {f["path"]: (fuzz_seeds / f["path"]).read_bytes() for s in seeds for f in s["files"]}
    shutil.copytree(fuzz_seeds, tmp_path, dirs_exist_ok=True)
    baselines = {}
    for seed in seeds:
        prefix, values, _ = fuzz_engine.read_all(str(tmp_path / seed["target"]))
        baselines[seed["label"]] = fuzz_engine.Baseline(prefix, values)
    real = bundle.BundleReader._read_entry
    monkeypatch.setattr(bundle.BundleReader, "_read_entry",
                        lambda self, *args: _altered(real(self, *args)))  # fmt: skip
    outcomes = []
    for index in range(60):
        case = fuzz_engine.make_case(index, CAMPAIGN, seeds, pristine)
        if case.file["kind"] not in ("table_v2", "data"):
            continue
        for path, data in case.changes.items():
            (tmp_path / path).write_bytes(data)
        outcomes.append(fuzz_engine.run_case(case, tmp_path, baselines).outcome)
        for path in case.changes:
            (tmp_path / path).write_bytes(pristine[path])
    assert "silent wrong" in outcomes and "read fine" not in outcomes


def _altered(value):
    import numpy as np

    if value.dtype.hasobject or value.size == 0:
        return value
    out = value.copy()
    out.reshape(-1).view(np.uint8)[0] ^= 1
    return out


@pytest.mark.parametrize("raised, outcome", [
    (MemoryError(), "memory over bound"),
    (fuzz_engine.CaseTimeout(), "hang"),
    (TypeError("unsupported operand"), "foreign exception"),
    (None, "foreign exception"),  # a CkptError that does not name the file
    ("named", "clean error"),
], ids=["memory", "hang", "foreign", "unnamed-error", "named-error"])  # fmt: skip
def test_outcomes_are_classified(tmp_path, monkeypatch, raised, outcome) -> None:
    """The classifier itself, on sample-only seeds (no TensorFlow needed): a reader that fails in
    each bad way is reported as such, never as a clean error."""
    import json

    from ckpttools.errors import CorruptFileError

    seeds_dir = fuzz_campaign.prepare_seeds(tmp_path / "seeds", None)
    seeds = json.loads((seeds_dir / "seeds.json").read_text())
    pristine = {f["path"]: (seeds_dir / f["path"]).read_bytes() for s in seeds for f in s["files"]}
    case = fuzz_engine.make_case(0, CAMPAIGN, seeds, pristine)
    error = {None: CorruptFileError("bad bytes somewhere"),
             "named": CorruptFileError(f"{seeds_dir / case.file['path']}: bad bytes")}.get(raised, raised)

    def failing_read(target):
        raise error

    monkeypatch.setattr(fuzz_engine, "read_all", failing_read)
    monkeypatch.setattr(case, "file", {**case.file, "runner": "ckpt"})
    assert fuzz_engine.run_case(case, seeds_dir, {}).outcome == outcome
