#!/usr/bin/env python
"""Benchmark ``ckpttools --help`` and bare ``ckpttools`` against ``ckpttools ls`` of the sample checkpoint.

Group help must not import the commands' modules, so it should cost no more than the quickest real
command. Each is a separate process, as a user runs it; the three alternate in every round (so machine
noise hits all alike), median of N rounds after one untimed warm-up, and each process's peak memory
comes from ``os.wait4``. A report, not a test: exit 0 unless ``--check`` and a target fails.

Run:  python bench/bench_cli_help.py [--repeat N] [--check]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from bench_ls import byte_compile, find_ckpttools, run_child

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_checkpoints" / "tf1_cnn"
TOLERANCE = 1.05  # "no slower": within 5% of ls's median, the noise of a shared machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9, help="timed rounds (default 9)")
    parser.add_argument("--ckpttools", default=None, help="ckpttools executable (default: beside this Python)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    args = parser.parse_args(argv)
    exe = find_ckpttools(args.ckpttools)
    byte_compile(sys.executable)
    commands = {
        "ckpttools ls sample": [exe, "ls", str(SAMPLE)],
        "ckpttools --help": [exe, "--help"],
        "ckpttools": [exe],
    }
    runs: dict[str, list] = {label: [] for label in commands}
    for label, cmd in commands.items():  # warm-up: page cache, and a sanity check of the output
        warm = run_child(cmd, capture=True)
        if label != "ckpttools" and (warm.returncode != 0 or not warm.stdout):
            raise SystemExit(f"{label} failed (exit {warm.returncode}): {warm.stderr.strip()[-300:]}")
    for _ in range(args.repeat):
        for label, cmd in commands.items():
            runs[label].append(run_child(cmd, capture=True))
    ls_median = statistics.median(r.seconds for r in runs["ckpttools ls sample"])
    print(f"median wall time of {args.repeat} interleaved rounds (after 1 warm-up); "
          f"peak = max RSS over runs (MB = 10^6 B)")
    print(f"{'command':<22} {'median':>8} {'vs ls':>6} {'peak_MB':>8}")
    ok = True
    for label, done in runs.items():
        median = statistics.median(r.seconds for r in done)
        peak = max(r.peak_kib for r in done) * 1024 / 1e6
        print(f"{label:<22} {median:>7.3f}s {median / ls_median:>5.2f}x {peak:>8.1f}")
    for label in ("ckpttools --help", "ckpttools"):
        median = statistics.median(r.seconds for r in runs[label])
        passed = median <= ls_median * TOLERANCE
        ok = ok and passed
        print(f"target: `{label}` no slower than `ckpttools ls` of the sample (within 5%): "
              f"{'PASS' if passed else 'FAIL'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
