"""Images/s of one process against a local parameter-server cluster (1 and 2 workers), asynchronous and --sync.

This machine has 2 cores, so a cluster cannot be faster than one process: the point is the overhead of
TensorFlow's distributed runtime (gRPC, variables on parameter servers), printed as a ratio to one
process. Throughput is read from the chief's TensorBoard scalars (wall time of each logged step), from
``--warmup`` steps on, so start-up does not count. Configurations are interleaved, ``--repeats`` times.

    python bench/bench_distributed.py [--steps 300] [--repeats 2] [--model cnn5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out" / "distributed"
BATCH = 64

CONFIGS = [  # (label, extra args, trainers whose batches one global step averages)
    ("1 process", [], 1),
    ("cluster: 1 worker, 1 ps", ["--cluster", "local", "--workers", "1", "--ps", "1"], 1),
    ("cluster: 2 workers, 1 ps", ["--cluster", "local", "--workers", "2", "--ps", "1"], 1),
    ("cluster: 1 worker, 1 ps, --sync", ["--cluster", "local", "--workers", "1", "--ps", "1", "--sync"], 1),
    ("cluster: 2 workers, 1 ps, --sync", ["--cluster", "local", "--workers", "2", "--ps", "1", "--sync"], 2),
]


# Runs a command and prints, last on stderr, the peak RSS (KiB) of the largest process below it. Our own
# RUSAGE_CHILDREN cannot say that per run: it keeps the largest of every run so far.
PEAK_OF = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)")


def run(label: str, args: list[str], steps: int, model: str, index: int) -> tuple[Path, float, float]:
    """Train once; return the run directory, wall seconds and the peak RSS (MB) of the largest process."""
    run_dir = OUT / f"run-{index}"
    shutil.rmtree(run_dir, ignore_errors=True)
    began = time.perf_counter()
    command = [sys.executable, "-c", PEAK_OF, sys.executable, "-m", "ckpttools", "train", "--model", model,
               "--steps", str(steps), "--summary-every", "10", "--checkpoint-every", str(steps),
               "--batch-size", str(BATCH), "--out", str(run_dir), *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        sys.exit(f"{label}: failed ({result.returncode}): {result.stderr[-1500:]}")
    return run_dir, seconds, int(result.stderr.splitlines()[-1]) / 1024


def throughput(run_dir: Path, warmup: int, batches_per_step: int) -> float:
    """Images/s between the first logged step past ``warmup`` and the last, from the chief's events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "summaries" / "train"), size_guidance={"scalars": 0})
    events.Reload()
    points = [(s.step, s.wall_time) for s in events.Scalars("loss") if s.step >= warmup]
    (first_step, first_time), (last_step, last_time) = points[0], points[-1]
    return (last_step - first_step) * BATCH * batches_per_step / (last_time - first_time)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--model", default="cnn5")
    options = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    rates: dict[str, list[float]] = {label: [] for label, _, _ in CONFIGS}
    peaks: dict[str, float] = {}
    for round_ in range(options.repeats):
        for index, (label, args, batches) in enumerate(CONFIGS):
            run_dir, seconds, peak = run(label, args, options.steps, options.model, index)
            rate = throughput(run_dir, options.warmup, batches)
            rates[label].append(rate)
            peaks[label] = max(peaks.get(label, 0.0), peak)
            print(f"round {round_ + 1}: {label:<34} {rate:8,.0f} images/s  ({seconds:.1f} s in all)", flush=True)
    base = statistics.median(rates[CONFIGS[0][0]])
    print(f"\n{options.model}, batch {BATCH}, {options.steps} steps, median of {options.repeats} interleaved rounds; "
          f"{sys.platform}, 2 cores shared by every task")
    print(f"{'configuration':<34} {'images/s':>9} {'vs 1 process':>13} {'peak RSS (largest process)':>28}")
    for label, _, _ in CONFIGS:
        median = statistics.median(rates[label])
        print(f"{label:<34} {median:>9,.0f} {median / base:>12.2f}x {peaks[label]:>24,.0f} MB")
    (OUT / "results.json").write_text(json.dumps({"rates": rates, "peaks_mb": peaks}, indent=2) + "\n")


if __name__ == "__main__":
    main()
