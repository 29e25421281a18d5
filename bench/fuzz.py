#!/usr/bin/env python
"""Fuzz every ckpttools reader at length and count the outcomes.

The cases are those of tests/test_fuzz.py (tests/fuzz_campaign.py: seeded random mutators, byte-level
and structure-aware, over TensorFlow-written seeds), run in one child process at a time, in batches;
a child that crashes or stops answering is killed and restarted after the case it was on. Each case
has a time limit (SIGALRM in the child, and the parent kills a child silent for 3x that) and the
child an address-space limit (RLIMIT_AS: its size after start-up + 4x the largest seed + 64 MiB), so
a reader that tries to allocate what the file cannot hold fails with MemoryError and is counted.

Run:  python bench/fuzz.py [--cases 20000] [--campaign 1] [--time-limit 2] [--batch 5000] [--fresh]
Target (python bench/fuzz.py --cases 200000): 0 foreign exceptions, 0 hangs, 0 memory over bound,
0 silent wrong values. Exit status 0 unless --check is given and the target fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))

import fuzz_campaign  # noqa: E402

TF_BUILDERS = ("all_dtypes", "partitioned", "v1", "saved_model")
TARGET_CASES = 200_000


def ensure_seeds(workdir: Path, fresh: bool) -> Path:
    """TensorFlow-written seeds (built once in a child process, reused on reruns) copied into SEEDS."""
    tf_dir, seeds = workdir / "fuzz_tf", workdir / "fuzz_seeds"
    manifest = tf_dir / "manifest.json"
    if fresh or not manifest.exists():
        print(f"building TensorFlow seeds into {tf_dir} ...", file=sys.stderr)
        subprocess.run([sys.executable, str(ROOT / "tests" / "tf_fixtures.py"), str(tf_dir), *TF_BUILDERS],
                       check=True, capture_output=True)  # fmt: skip
    if fresh or not (seeds / "seeds.json").exists():
        fuzz_campaign.prepare_seeds(seeds, json.loads(manifest.read_text()))
    return seeds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--campaign", type=int, default=1, help="random seed of the campaign")
    parser.add_argument("--start", type=int, default=0, help="first case index (to resume or replay)")
    parser.add_argument("--time-limit", type=float, default=2.0, help="seconds per case")
    parser.add_argument("--batch", type=int, default=5000, help="cases per child process")
    parser.add_argument("--workdir", type=Path, default=BENCH / "out")
    parser.add_argument("--fresh", action="store_true", help="rebuild the seeds")
    parser.add_argument("--check", action="store_true", help="exit 1 unless the target is met")
    args = parser.parse_args(argv)

    seeds = ensure_seeds(args.workdir, args.fresh)
    labels = [seed["label"] for seed in json.loads((seeds / "seeds.json").read_text())]
    print(f"seeds: {', '.join(labels)}")
    began = time.monotonic()
    last = [began]

    def progress(tally: fuzz_campaign.Tally, done: int) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            counts = ", ".join(f"{k} {v}" for k, v in sorted(tally.counts.items()))
            print(f"  {done:,} cases ({counts})", file=sys.stderr, flush=True)

    tally = fuzz_campaign.run_campaign(seeds, args.cases, args.campaign, args.start, args.time_limit, args.batch,
                                     progress)
    elapsed = time.monotonic() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    total = sum(tally.counts.values())
    print(f"campaign {args.campaign}, cases {args.start:,}..{args.start + total - 1:,}: {total:,} cases in "
          f"{elapsed:.0f} s ({total / elapsed:.0f}/s), 1 worker, {args.time_limit:g} s per case, {tally.limit}")
    print(f"slowest case: {tally.slowest[1]} ({tally.slowest[0] * 1000:.0f} ms); "
          f"peak RSS of a child: {peak:.0f} MiB")
    print()
    kinds = sorted({kind for kind, _ in tally.by_kind})
    print(f"{'outcome':<20}{'total':>9}" + "".join(f"{kind:>12}" for kind in kinds))
    for outcome in fuzz_campaign.OUTCOMES:
        row = "".join(f"{tally.by_kind[kind, outcome]:>12,}" for kind in kinds)
        print(f"{outcome:<20}{tally.counts[outcome]:>9,}{row}")
    for outcome, examples in tally.examples.items():
        print(f"\n{outcome} (first {len(examples)}):")
        for example in examples:
            print(f"  {example[:300]}")
    bad = sum(tally.counts[outcome] for outcome in fuzz_campaign.BAD)
    ok = bad == 0 and total >= TARGET_CASES
    print(f"\ntarget >= {TARGET_CASES:,} cases, 0 foreign / hang / memory / silent wrong: "
          f"{'PASS' if ok else 'FAIL'}" + ("" if total >= TARGET_CASES else f" (ran {total:,} cases)"))
    print("replay a case: python tests/fuzz_engine.py bench/out/fuzz_seeds --campaign N --start I --count 1 --replay")
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
