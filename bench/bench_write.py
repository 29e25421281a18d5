"""Benchmark: ``ckpttools.write_checkpoint`` of a 1 GiB dict against ``dd bs=4M`` copying as many bytes.

The writer's arrays are built in memory before its clock starts (its child process times the
``write_checkpoint`` call itself: encode, crc32c, write). ``dd bs=4M`` copies a 1 GiB file that is in
the page cache (written once, untimed): a user-space copy of the same number of bytes. For reference,
``raw write`` is a Python child writing the very same arrays with ``file.write`` and nothing else (no
checksum, no index): the floor for any writer in Python. Runs alternate (ours, dd, raw, ours...),
each into a fresh file after an untimed ``sync``; medians of ``--repeat`` runs are compared. Peak RSS
of each child comes from ``os.wait4``; the writers' includes the 1 GiB of arrays they are given.

Target: at least half of dd's speed; peak memory under the arrays + 100 MB (no copy of the data).

    python bench/bench_write.py [--repeat 3] [--gib 1] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ls import DEFAULT_WORKDIR, run_child  # noqa: E402

TENSOR_MIB = 64
WRITE = """
import json, sys, time
import numpy as np
import ckpttools
count = int(sys.argv[2])
tensors = {f"layer_{i:03d}/kernel": np.full((int(sys.argv[3]) << 20) // 4, i, np.float32) for i in range(count)}
started = time.perf_counter()
ckpttools.write_checkpoint(sys.argv[1], tensors, state_file=False)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""
RAW = """
import json, sys, time
import numpy as np
count = int(sys.argv[2])
tensors = {f"layer_{i:03d}/kernel": np.full((int(sys.argv[3]) << 20) // 4, i, np.float32) for i in range(count)}
started = time.perf_counter()
with open(sys.argv[1], "wb") as f:
    for array in tensors.values():
        f.write(memoryview(array.view(np.uint8)))
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _timed(cmd: list[str], label: str, internal: bool) -> tuple[float, int]:
    run = run_child(cmd, capture=internal)
    if run.returncode != 0:
        raise SystemExit(f"{label} failed:\n{run.stderr[-2000:]}")
    return (json.loads(run.stdout)["seconds"] if internal else run.seconds), run.peak_kib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    work = args.workdir / "write"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    count = max(1, round(args.gib * 1024 / TENSOR_MIB))
    nbytes = count * TENSOR_MIB << 20
    source = args.workdir / "write-source.bin"
    if not source.is_file() or source.stat().st_size != nbytes:
        run_child(["dd", "if=/dev/zero", f"of={source}", "bs=4M", f"count={nbytes >> 22}", "status=none"], False)
    run_child(["cat", str(source)], capture=False)  # into the page cache
    commands = {
        "write_checkpoint": ([sys.executable, "-c", WRITE, str(work / "model.ckpt"), str(count), str(TENSOR_MIB)],
                             True),
        "dd bs=4M": (["dd", f"if={source}", f"of={work / 'dd.bin'}", "bs=4M", "status=none"], False),
        "raw write": ([sys.executable, "-c", RAW, str(work / "raw.bin"), str(count), str(TENSOR_MIB)], True),
    }
    results: dict[str, list[tuple[float, int]]] = {label: [] for label in commands}
    for _ in range(args.repeat):
        for label, (cmd, internal) in commands.items():
            for path in work.iterdir():
                path.unlink()
            os.sync()
            results[label].append(_timed(cmd, label, internal))
    print(f"{nbytes / 2**30:.2f} GiB in {count} float32 tensors of {TENSOR_MIB} MiB, median of {args.repeat}")
    seconds = {label: statistics.median(s for s, _ in runs) for label, runs in results.items()}
    peaks = {label: max(k for _, k in runs) * 1024 / 1e6 for label, runs in results.items()}
    for label in commands:
        print(f"{label:17s} {seconds[label]:7.3f} s  {nbytes / seconds[label] / 1e9:6.2f} GB/s  "
              f"peak {peaks[label]:7.1f} MB")
    ratio = seconds["dd bs=4M"] / seconds["write_checkpoint"]
    limit_mb = nbytes / 1e6 + 100
    speed = "PASS" if ratio >= 0.5 else "FAIL"
    memory = "PASS" if peaks["write_checkpoint"] <= limit_mb else "FAIL"
    print(f"speed: {ratio:.2f}x dd (target >= 0.5x): {speed}; "
          f"{seconds['raw write'] / seconds['write_checkpoint']:.2f}x a raw Python write")
    print(f"memory: {peaks['write_checkpoint']:.0f} MB peak (target <= arrays + 100 MB = {limit_mb:.0f} MB): {memory}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if speed == memory == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
