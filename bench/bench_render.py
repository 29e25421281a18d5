#!/usr/bin/env python
"""Benchmark big tables drawn on a terminal against the same commands piped.

A terminal table laid out by rich measures every cell; piped output is tab-separated lines. Two
workloads: ``ckpttools graph FILE`` of a ~7,000-node meta graph (built once with TensorFlow by
bench_graph's builder, reused on reruns) and ``ckpttools ls FILE`` of a 5,000-variable .npz (numpy).
Each is timed in fresh processes, interleaved, median of N runs after one warm-up:

- piped: stdout a pipe;
- terminal: stdout and stderr a pseudo-terminal of 100 columns (``COLUMNS=100``);
- optionally ``--before DIR``: the terminal run of another checkout (e.g. the code before a change).

Reported: wall times, the terminal/piped ratio, peak RSS (``ru_maxrss`` from ``os.wait4``) and a
verdict per workload. Target: the terminal view costs at most 2x (graph) / 3x (ls: every row is
drawn) the piped one. A report, not a test: exits 0 unless ``--check`` is given and a target fails.

Run:  python bench/bench_render.py [--repeat N] [--layers N] [--before DIR] [--check]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import statistics
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from bench_graph import ensure_built  # same directory: the TensorFlow graph builder

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DEFAULT_LAYERS = 95  # about 7,000 nodes with Adam
TARGETS = {"graph": 2.0, "ls": 3.0}
COLUMNS = 100
LS_VARIABLES = 5000


def make_npz(path: Path) -> str:
    """5,000 small float32 variables under 50 scopes (numpy only; rebuilt when missing)."""
    if not path.exists():
        import numpy as np

        arrays = {f"model/block{i // 100}/layer{i % 100}/kernel": np.zeros((3, 3), np.float32)
                  for i in range(LS_VARIABLES)}
        np.savez(path, **arrays)
    return str(path)


def run_once(checkout: Path, argv: Sequence[str], terminal: bool) -> tuple[float, int, int, int]:
    """(seconds, peak KiB, exit code, bytes printed) of one ``ckpttools ARGV`` run."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "COLUMNS": str(COLUMNS), "LINES": "50"}
    cmd = [sys.executable, "-m", "ckpttools", *argv]
    if terminal:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, COLUMNS, 0, 0))
        out, err = slave, slave
    else:
        read_end, out = os.pipe()
        master, err = read_end, subprocess.DEVNULL
    received = [0]

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 1 << 16)
            except OSError:  # EIO: the terminal's other side closed
                return
            if not chunk:
                return
            received[0] += len(chunk)

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
    os.close(out)
    reader = threading.Thread(target=drain)
    reader.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=10)
    os.close(master)
    return seconds, usage.ru_maxrss, proc.returncode, received[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=DEFAULT_LAYERS, help="dense layers in the graph (default 95)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per case (default 3)")
    parser.add_argument("--before", type=Path, help="another checkout whose terminal runs are timed too")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target fails")
    args = parser.parse_args(argv)
    manifest = ensure_built((BENCH_DIR / "out").resolve(), args.layers, False)
    workloads = {"graph": ["graph", manifest["meta"]], "ls": ["ls", make_npz(BENCH_DIR / "out" / "ls_5000.npz")]}
    passed = True
    for workload, argv in workloads.items():
        cases = [("piped", ROOT, False), ("terminal", ROOT, True)]
        if args.before:
            cases.append((f"terminal, {args.before.name}", args.before.resolve(), True))
        results: dict[str, list[tuple[float, int, int, int]]] = {label: [] for label, _, _ in cases}
        for _label, checkout, terminal in cases:  # warm-up: file cache, .pyc
            run_once(checkout, argv, terminal)
        for _ in range(args.repeat):  # interleaved, so load from elsewhere hits every case alike
            for label, checkout, terminal in cases:
                results[label].append(run_once(checkout, argv, terminal))
        what = (f"{manifest['nodes']:,} nodes ({Path(manifest['meta']).name}, {manifest['bytes'] / 1e6:.1f} MB)"
                if workload == "graph" else f"{LS_VARIABLES:,} variables (.npz)")
        print(f"\nckpttools {workload} of {what}; terminal = pty of {COLUMNS} columns; "
              f"median of {args.repeat} interleaved runs after a warm-up")
        print(f"{'case':<28} {'median s':>9} {'runs s':>22} {'peak MB':>8} {'output':>10}")
        medians = {}
        for label, runs in results.items():
            times = [r[0] for r in runs]
            medians[label] = statistics.median(times)
            codes = {r[2] for r in runs}
            status = "" if codes == {0} else f"  exit {sorted(codes)}"
            print(f"{label:<28} {medians[label]:>9.3f} {' '.join(f'{t:.2f}' for t in times):>22} "
                  f"{max(r[1] for r in runs) / 1000:>8.0f} {runs[-1][3]:>9,}B{status}")
        ratio = medians["terminal"] / medians["piped"]
        print(f"ratio terminal / piped: {ratio:.2f}x")
        if args.before:
            before = medians[f"terminal, {args.before.name}"]
            print(f"ratio terminal before / after: {before / medians['terminal']:.1f}x")
        target = TARGETS[workload]
        ok = ratio <= target
        passed &= ok
        print(f"{'PASS' if ok else 'FAIL'}: {workload} on a terminal costs {ratio:.2f}x the piped output "
              f"(target <= {target:g}x)")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
