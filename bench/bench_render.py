#!/usr/bin/env python
"""Benchmark ``ckpttools graph FILE`` drawn on a terminal against the same command piped.

A terminal table is laid out by rich, which measures every cell; piped output is tab-separated
lines. On a ~7,000-node meta graph (built once with TensorFlow by bench_graph's builder, reused on
reruns) it times, each in a fresh process, interleaved, median of N runs after one warm-up:

- piped: ``ckpttools graph FILE`` with stdout a pipe;
- terminal: the same with stdout and stderr a pseudo-terminal of 100 columns (``COLUMNS=100``);
- optionally ``--before DIR``: the terminal run of another checkout (e.g. the code before a change).

Reported: wall times, the terminal/piped ratio, peak RSS (``ru_maxrss`` from ``os.wait4``) and a
verdict. Target: the terminal view costs at most 2x the piped one. A report, not a test: exits 0
unless ``--check`` is given and the target fails.

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
TARGET = 2.0
COLUMNS = 100


def run_once(checkout: Path, meta: str, terminal: bool) -> tuple[float, int, int, int]:
    """(seconds, peak KiB, exit code, bytes printed) of one ``ckpttools graph META`` run."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "COLUMNS": str(COLUMNS), "LINES": "50"}
    cmd = [sys.executable, "-m", "ckpttools", "graph", meta]
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
    parser.add_argument("--before", type=Path, help="another checkout whose terminal run is timed too")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target fails")
    args = parser.parse_args(argv)
    manifest = ensure_built((BENCH_DIR / "out").resolve(), args.layers, False)
    meta = manifest["meta"]
    cases = [("piped", ROOT, False), ("terminal", ROOT, True)]
    if args.before:
        cases.append((f"terminal, {args.before.name}", args.before.resolve(), True))
    results: dict[str, list[tuple[float, int, int, int]]] = {label: [] for label, _, _ in cases}
    for _label, checkout, terminal in cases:  # warm-up: file cache, .pyc
        run_once(checkout, meta, terminal)
    for _ in range(args.repeat):  # interleaved, so load from elsewhere hits every case alike
        for label, checkout, terminal in cases:
            results[label].append(run_once(checkout, meta, terminal))
    print(f"ckpttools graph on {manifest['nodes']:,} nodes ({Path(meta).name}, {manifest['bytes'] / 1e6:.1f} MB); "
          f"terminal = pty of {COLUMNS} columns; median of {args.repeat} interleaved runs after a warm-up")
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
    passed = ratio <= TARGET
    print(f"{'PASS' if passed else 'FAIL'}: the terminal view costs {ratio:.2f}x the piped one (target <= {TARGET:g}x)")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
