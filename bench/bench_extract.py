"""Benchmark: `ckpttools extract` (npz and safetensors) against `dd bs=4M` of the same bytes, same run.

Copying the data shard through user space (`dd bs=4M`, reading and writing every byte, as any tool that
checksums or converts them must) is the physical limit the targets are judged against. Each round runs
ours to .npz, ours to .safetensors and dd, one after the other (interleaved, so machine noise hits all
three alike); the report gives the median of ``--repeat`` rounds (default 3) after one untimed warm-up
each (warm page cache: this compares CPU work, not the disk), each speed as a ratio of dd's, and each
process's peak RSS (``os.wait4``). Before every run (untimed) the previous output is deleted and ``sync``
run, so nobody pays for another's write-back. For reference, run once each: TensorFlow's way
(``tf.train.load_checkpoint`` + ``numpy.savez``, skipped with ``--no-tf``) and GNU ``cp``, which copies
inside the kernel (``copy_file_range``) and never sees the bytes.

Targets (issue 10): npz at least 0.5 of dd's speed, safetensors at least 0.7, peak memory under the
largest tensor + 100 MB; faster than TensorFlow's way.

    python bench/bench_extract.py [--repeat 3] [--no-tf] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ls import DEFAULT_WORKDIR, byte_compile, ensure_case, find_ckpttools, run_child  # noqa: E402

CASE = "large_1gb"
TF_WAY = """
import sys, numpy as np, tensorflow as tf
reader = tf.train.load_checkpoint(sys.argv[1])
np.savez(sys.argv[2], **{name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()})
"""
LARGEST = """
import json, sys, ckpttools
with ckpttools.open_checkpoint(sys.argv[1]) as ckpt:
    print(json.dumps([max(v.nbytes for v in ckpt), sum(v.nbytes for v in ckpt)]))
"""


def prepare(output: Path) -> None:
    """Untimed: delete the previous output and flush dirty pages, so every run starts alike."""
    output.unlink(missing_ok=True)
    os.sync()


def timed(label: str, cmd: Sequence[str], output: Path):  # -> Run
    prepare(output)
    run = run_child(cmd, capture=False)
    if run.returncode != 0:
        raise SystemExit(f"{label} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return run


def interleaved(commands: dict[str, tuple[list[str], Path]], repeat: int) -> dict[str, dict]:
    """One warm-up each, then ``repeat`` rounds running every command once per round."""
    runs: dict[str, list] = {label: [] for label in commands}
    for label, (cmd, output) in commands.items():
        timed(label, cmd, output)
    for _ in range(repeat):
        for label, (cmd, output) in commands.items():
            runs[label].append(timed(label, cmd, output))
    return {label: {"label": label, "seconds": statistics.median(r.seconds for r in done),
                    "cpu": statistics.median(r.cpu_seconds for r in done),
                    "peak_mb": max(r.peak_kib for r in done) * 1024 / 1e6} for label, done in runs.items()}


def once(label: str, cmd: Sequence[str], output: Path) -> dict:
    run = timed(label, cmd, output)
    return {"label": label, "seconds": run.seconds, "cpu": run.cpu_seconds, "peak_mb": run.peak_kib * 1024 / 1e6}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-tf", action="store_true", help="skip TensorFlow's way (a minute on a busy machine)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    manifest = ensure_case(CASE, args.workdir, fresh=False)
    prefix = manifest["prefix"]
    out = args.workdir / "extract"
    out.mkdir(exist_ok=True)
    python, ckpttools = sys.executable, find_ckpttools(None)
    byte_compile(python)
    largest, total = json.loads(run_child([python, "-c", LARGEST, prefix], capture=True).stdout)
    data_file = str(Path(prefix).parent / manifest["data_files"][0])
    npz, st, copy = out / "ours.npz", out / "ours.safetensors", out / "copy.bin"
    results = interleaved({
        "ckpttools extract -o .npz": ([ckpttools, "extract", prefix, "-o", str(npz), "--all", "--force"], npz),
        "ckpttools extract -o .safetensors": ([ckpttools, "extract", prefix, "-o", str(st), "--all", "--force"], st),
        "dd bs=4M": (["dd", f"if={data_file}", f"of={copy}", "bs=4M", "status=none"], copy),
    }, args.repeat)
    references = [once("cp (in-kernel, reference)", ["cp", data_file, str(out / "copy2.bin")], out / "copy2.bin")]
    if not args.no_tf:
        references.append(once("TF: load_checkpoint + np.savez", [python, "-c", TF_WAY, prefix, str(out / "tf.npz")],
                               out / "tf.npz"))
    print(f"checkpoint {prefix}: {total / 1e9:.2f} GB in {manifest['tensors']} tensors, largest {largest / 1e6:.0f} MB;"
          f" warm page cache; median of {args.repeat} interleaved rounds (references: one run)\n")
    print(f"{'command':<36} {'wall':>8} {'MB/s':>8} {'vs dd':>6} {'cpu':>7} {'peak_MB':>8}")
    dd = results["dd bs=4M"]["seconds"]
    for r in [*results.values(), *references]:
        print(f"{r['label']:<36} {r['seconds']:>7.2f}s {total / 1e6 / r['seconds']:>8.0f} {dd / r['seconds']:>6.2f} "
              f"{r['cpu']:>6.2f}s {r['peak_mb']:>8.0f}")
    print("(cpu: user + system seconds of the process, median; on a busy machine it shows the work done "
          "when wall time mostly shows the waiting)")
    limit = largest / 1e6 + 100
    checks = [(f"npz at {dd / results['ckpttools extract -o .npz']['seconds']:.2f} of dd's speed (target >= 0.5)",
               dd / results["ckpttools extract -o .npz"]["seconds"] >= 0.5),
              (f"safetensors at {dd / results['ckpttools extract -o .safetensors']['seconds']:.2f} of dd's speed "
               f"(target >= 0.7)", dd / results["ckpttools extract -o .safetensors"]["seconds"] >= 0.7)]
    for label in ("ckpttools extract -o .npz", "ckpttools extract -o .safetensors"):
        peak = results[label]["peak_mb"]
        checks.append((f"{label}: peak {peak:.0f} MB under largest tensor + 100 MB = {limit:.0f} MB", peak < limit))
    if not args.no_tf:
        tf_way = references[1]["seconds"]
        ours = results["ckpttools extract -o .npz"]["seconds"]
        checks.append((f"npz faster than TensorFlow's way: {tf_way / ours:.2f}x", ours < tf_way))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
