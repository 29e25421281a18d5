#!/usr/bin/env python
"""Benchmark ``ckpttools ls model.keras`` against ``keras.saving.load_model`` on a ~100 MB ``.keras`` file.

Both run as fresh processes, the way a user runs them, interleaved round by round (so a busy machine
slows both alike); each one's wall time and peak resident memory come from ``/usr/bin/time``. Targets:
``ckpttools ls`` under 0.3 s (median) and at least 10x faster than loading the model with Keras.
The file is built once with Keras (in a child process) and reused on reruns.

Run:  python bench/bench_keras.py [--repeat N] [--fresh] [--check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
OUT = BENCH_DIR / "out" / "keras"
TIME_LIMIT_S = 0.3
SPEED_TARGET = 10.0
# Dense layers of 1280 x 1280 float32 (6.5 MB each) plus a conv stem: ~100 MB of weights, Adam-free
# so the file is the weights alone, as a model published for inference would be.
BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
inputs = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(64, 3, padding="same")(inputs)
x = keras.layers.BatchNormalization()(x)
x = keras.layers.GlobalAveragePooling2D()(x)
x = keras.layers.Dense(1280)(x)
for _ in range(15):
    x = keras.layers.Dense(1280, activation="relu")(x)
outputs = keras.layers.Dense(10)(x)
keras.Model(inputs, outputs).save(sys.argv[1])
"""
LOAD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
model = keras.saving.load_model(sys.argv[1])
print(len(model.weights), file=sys.stderr)
"""


def timed(command: list[str]) -> tuple[float, float, float]:
    """Run ``command``; return (wall seconds, CPU seconds, peak RSS in MB) as /usr/bin/time measures them."""
    result = subprocess.run(["/usr/bin/time", "-f", "BENCH %e %U %S %M", *command], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    line = [x for x in result.stderr.splitlines() if x.startswith("BENCH ")][-1]
    _, seconds, user, system, kilobytes = line.split()
    return float(seconds), float(user) + float(system), int(kilobytes) / 1000.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds (median of them; default 3)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the .keras file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    model = OUT / "big.keras"
    if args.fresh or not model.exists():
        subprocess.run([sys.executable, "-c", BUILD, str(model)], check=True)
    size_mb = model.stat().st_size / 1e6
    ours = [sys.executable, "-m", "ckpttools", "ls", str(model)]
    theirs = [sys.executable, "-c", LOAD, str(model)]
    env_note = "PYTHONPATH=" + os.environ.get("PYTHONPATH", "")
    print(f"file: {model} ({size_mb:.1f} MB); {env_note}")
    timed(ours)  # warm the page cache for both, so neither pays for the first read
    runs: dict[str, list[tuple[float, float, float]]] = {"ckpttools ls": [], "keras load_model": []}
    for round_number in range(1, args.repeat + 1):
        for label, command in (("ckpttools ls", ours), ("keras load_model", theirs)):
            runs[label].append(timed(command))
            seconds, cpu, peak = runs[label][-1]
            print(f"round {round_number}: {label:<17} {seconds:6.2f} s  (cpu {cpu:5.2f} s)  peak {peak:7.1f} MB")
    ours_s = statistics.median(s for s, _, _ in runs["ckpttools ls"])
    theirs_s = statistics.median(s for s, _, _ in runs["keras load_model"])
    ours_cpu = statistics.median(c for _, c, _ in runs["ckpttools ls"])
    ratio = theirs_s / ours_s if ours_s > 0 else float("inf")
    peak_ours = max(m for _, _, m in runs["ckpttools ls"])
    peak_theirs = max(m for _, _, m in runs["keras load_model"])
    fast = ours_s < TIME_LIMIT_S
    faster = ratio >= SPEED_TARGET
    print(f"median: ckpttools ls {ours_s:.2f} s (peak {peak_ours:.1f} MB), "
          f"keras load_model {theirs_s:.2f} s (peak {peak_theirs:.1f} MB)")
    print(f"ratio: {ratio:.1f}x faster (target >= {SPEED_TARGET:.0f}x): {'PASS' if faster else 'FAIL'}")
    print(f"time: {ours_s:.2f} s (target < {TIME_LIMIT_S} s): {'PASS' if fast else 'FAIL'}")
    print(f"cpu time of ckpttools ls: {ours_cpu:.2f} s (median; wall time above it is waiting for a busy CPU: "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 1 if args.check and not (fast and faster) else 0


if __name__ == "__main__":
    sys.exit(main())
