"""Running the reader fuzz campaign: seed files, and child processes restarted after a crash or hang.

``prepare_seeds`` copies TensorFlow-written checkpoints (and npz/safetensors extracted from them) into
a seeds directory; ``run_campaign`` runs cases of tests/fuzz_engine.py in one child process at a time
and tallies the outcomes. Used by tests/test_fuzz.py and bench/fuzz.py.
"""

from __future__ import annotations

import codecs
import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ENGINE = Path(__file__).resolve().parent / "fuzz_engine.py"
SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
OUTCOMES = ("read fine", "clean error", "foreign exception", "hang", "memory over bound", "silent wrong")
BAD = OUTCOMES[2:]


# --- seeds ----------------------------------------------------------------------------------------------


def prepare_seeds(out: Path, tf_paths: dict[str, str] | None) -> Path:
    """Copy the seed checkpoints into ``out`` and write ``out/seeds.json``; returns ``out``."""
    from ckpttools import write_weights

    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    seeds: list[dict] = []

    def copy_prefix(label: str, prefix: str, extra: tuple[str, ...] = ()) -> str:
        src = Path(prefix)
        dst = out / label
        dst.mkdir()
        for path in src.parent.iterdir():
            if path.name == src.name or path.name.startswith(src.name + ".") or path.name in extra:
                shutil.copy(path, dst / path.name)
        return f"{label}/{src.name}"

    def v2(label: str, prefix: str, with_meta: bool = False, with_state: bool = False) -> None:
        target = copy_prefix(label, prefix, ("checkpoint",) if with_state else ())
        files = [{"path": target + ".index", "kind": "table_v2", "runner": "ckpt", "target": target}]
        for shard in sorted((out / label).glob(Path(target).name + ".data-*")):
            files.append({"path": f"{label}/{shard.name}", "kind": "data", "runner": "ckpt", "target": target})
        if with_meta:
            files.append({"path": target + ".meta", "kind": "graph", "runner": "graph", "target": target + ".meta"})
        if with_state:
            files.append({"path": f"{label}/checkpoint", "kind": "state", "runner": "ckpt", "target": label})
        seeds.append({"label": label, "target": target, "files": files})

    v2("v2_cnn", str(SAMPLES / "tf1_cnn" / "model.ckpt-20"), with_meta=True, with_state=True)
    v2("v2_tf2", str(SAMPLES / "tf2_keras" / "ckpt-1"), with_state=True)
    v2("v2_sharded", str(SAMPLES / "sharded" / "model.ckpt-100"))
    if tf_paths:
        v2("v2_dtypes", tf_paths["all_dtypes"])
        v2("v2_partitioned", tf_paths["partitioned"])
        target = copy_prefix("v1", tf_paths["v1"])
        seeds.append({"label": "v1", "target": target, "files": [
            {"path": target, "kind": "table_v1", "runner": "ckpt", "target": target},
            {"path": target + ".meta", "kind": "graph", "runner": "graph", "target": target + ".meta"},
        ]})  # fmt: skip
        shutil.copytree(tf_paths["saved_model"], out / "saved_model")
        files = [{"path": "saved_model/saved_model.pb", "kind": "graph", "runner": "saved_model",
                  "target": "saved_model"}]
        for path in sorted((out / "saved_model" / "variables").iterdir()):
            kind = "table_v2" if path.name.endswith(".index") else "data"
            files.append({"path": f"saved_model/variables/{path.name}", "kind": kind, "runner": "ckpt",
                          "target": "saved_model"})
        seeds.append({"label": "saved_model", "target": "saved_model", "files": files})
    weights_from = tf_paths["all_dtypes"] if tf_paths else str(SAMPLES / "tf1_cnn" / "model.ckpt-20")
    for name, source, kwargs in (
        ("weights.npz", weights_from, {"include_all": True}),
        ("deflated.npz", str(SAMPLES / "tf2_keras"), {"compress": True}),
        ("weights.safetensors", str(SAMPLES / "tf1_cnn"), {"include_all": True}),
    ):
        (out / "weights").mkdir(exist_ok=True)
        target = f"weights/{name}"
        write_weights(source, str(out / target), **kwargs)
        kind = "safetensors" if name.endswith(".safetensors") else "npz"
        seeds.append({"label": name, "target": target,
                      "files": [{"path": target, "kind": kind, "runner": "ckpt", "target": target}]})
    (out / "seeds.json").write_text(json.dumps(seeds, indent=1))
    return out


# --- the parent: run a campaign in children, restarting them after a crash or hang -------------------------


@dataclass
class Tally:
    counts: Counter = field(default_factory=Counter)
    by_kind: Counter = field(default_factory=Counter)  # (file kind, outcome) -> cases
    examples: dict[str, list[str]] = field(default_factory=dict)
    slowest: tuple[float, int] = (0.0, -1)
    limit: str = ""

    def add(self, index: int, outcome: str, detail: str, seconds: float = 0.0, kind: str = "?") -> None:
        self.counts[outcome] += 1
        self.by_kind[kind, outcome] += 1
        if outcome in BAD and len(self.examples.setdefault(outcome, [])) < 20:
            self.examples[outcome].append(f"case {index}: {detail}")
        self.slowest = max(self.slowest, (seconds, index))


def run_campaign(seeds_dir: Path, count: int, campaign: int = 0, start: int = 0, time_limit: float = 2.0,
                 batch: int = 5000, progress=None) -> Tally:
    """Run cases ``start .. start+count`` in child processes of ``batch`` cases each (one at a time)."""
    tally = Tally()
    index, end = start, start + count
    while index < end:
        n = min(batch, end - index)
        cmd = [sys.executable, str(ENGINE), str(seeds_dir), "--start", str(index), "--count", str(n),
               "--campaign", str(campaign), "--time-limit", str(time_limit)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        next_index = index
        deadline = time.monotonic() + 120  # startup: imports and baselines
        buffer = ""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                raw = os.read(proc.stdout.fileno(), 1 << 16)
                if not raw:
                    break
                buffer += decoder.decode(raw)
                *lines, buffer = buffer.split("\n")
                for line in lines:
                    if line.startswith("# limit"):
                        tally.limit = line[2:]
                        continue
                    if line.startswith("#") or not line:
                        continue
                    i, outcome, seconds, kind, detail = line.split("\t", 4)
                    tally.add(int(i), outcome, detail, float(seconds), kind)
                    next_index = int(i) + 1
                    if progress:
                        progress(tally, next_index - start)
                deadline = time.monotonic() + time_limit * 3 + 10
            elif time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                tally.add(next_index, "hang", "child stopped answering (killed)")
                next_index += 1
                break
        proc.wait()
        stderr = proc.stderr.read()
        if proc.returncode not in (0, -9) and next_index < index + n:
            tally.add(next_index, "foreign exception", f"child died ({proc.returncode}): {stderr[-300:]}")
            next_index += 1
        if next_index == index:
            raise RuntimeError(f"fuzz child made no progress: {stderr[-2000:]}")
        index = next_index
    return tally
