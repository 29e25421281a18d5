#!/usr/bin/env python
"""Benchmark ``ckpttools graph --summary`` against loading the same meta graph with TensorFlow.

It builds (once, with TensorFlow, in a child process; reused on reruns) a large meta graph: many
small dense layers trained with Adam, exported by ``tf.compat.v1.train.Saver``. Then it times, each
in a fresh process as a user would run them:

- ours: ``ckpttools graph --summary FILE`` (stdout piped);
- TensorFlow: ``python -c "import tensorflow; tf.compat.v1.train.import_meta_graph(FILE)"``, with
  ``import_meta_graph`` alone also timed inside that process (TensorFlow's import excluded).

Reported: median wall time of N runs after one untimed warm-up, the ratio, and each process's peak
resident memory (``ru_maxrss`` from ``os.wait4``). Target: ours at least 10x faster. This is a report,
not a test: it exits 0 unless ``--check`` is given and the target fails.

Run:  python bench/bench_graph.py [--repeat N] [--layers N] [--fresh] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench_ls import Run, run_child  # same directory: the wait4-based child runner

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORKDIR = BENCH_DIR / "out"
CASE = "graph_dense_adam"
BUILD_VERSION = 1  # bump when the builder changes, so a stale graph is rebuilt
DEFAULT_LAYERS = 200  # about 50 nodes per layer with Adam: 10k+ nodes
SPEED_TARGET = 10.0

TF_LOAD = """
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf
graph = tf.Graph()
with graph.as_default():
    started = time.perf_counter()
    tf.compat.v1.train.import_meta_graph(sys.argv[1])
    seconds = time.perf_counter() - started
print(json.dumps({"import_meta_graph": seconds, "nodes": len(graph.get_operations())}))
"""


# --- building (TensorFlow child process) ------------------------------------------------------------------


def build(case_dir: Path, layers: int) -> None:
    """``layers`` dense layers of 16 units with relu, softmax loss, Adam, a Saver; export the meta graph only."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    v1 = tf.compat.v1
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    meta = case_dir / "model.meta"
    with tf.Graph().as_default() as graph:
        x = v1.placeholder(tf.float32, (None, 16), name="inputs")
        labels = v1.placeholder(tf.int64, (None,), name="labels")
        for i in range(layers):
            with v1.variable_scope(f"block{i // 10}/dense{i % 10}"):
                kernel = v1.get_variable("kernel", (16, 16), initializer=v1.glorot_uniform_initializer())
                bias = v1.get_variable("bias", (16,), initializer=v1.zeros_initializer())
                x = tf.nn.relu(tf.matmul(x, kernel) + bias)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x))
        v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=v1.train.get_or_create_global_step())
        v1.train.Saver().export_meta_graph(str(meta))
        nodes = len(graph.get_operations())
    manifest = {"version": BUILD_VERSION, "layers": layers, "meta": str(meta), "nodes": nodes,
                "bytes": meta.stat().st_size}
    (case_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def ensure_built(workdir: Path, layers: int, fresh: bool) -> dict:
    """The case's manifest, building it in a child process when missing or stale."""
    manifest_path = workdir / CASE / "manifest.json"
    if not fresh and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") == BUILD_VERSION and manifest.get("layers") == layers \
                and Path(manifest["meta"]).exists():
            return manifest
    print(f"building {CASE} ({layers} dense layers + Adam) in {workdir / CASE} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build", "--layers", str(layers), "--workdir", str(workdir)],
                   check=True)
    print(f"  built in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return json.loads(manifest_path.read_text())


# --- measuring --------------------------------------------------------------------------------------------


def ours_nodes(stdout: str) -> int | None:
    """The `nodes<TAB>N` line of piped `ckpttools graph --summary`."""
    for line in stdout.splitlines():
        fields = line.split("\t")
        if fields[0] == "nodes" and len(fields) == 2:
            return int(fields[1])
    return None


def time_api(meta: str, repeat: int) -> float | str:
    """Median in-process time of load_graph + summarize (imports excluded), or the error text."""
    try:
        from ckpttools.graphs import load_graph, summarize

        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            summarize(load_graph(meta))
            times.append(time.perf_counter() - started)
    except Exception as exc:  # a report, not a test: show what broke, go on
        return f"{type(exc).__name__}: {exc}"
    return statistics.median(times)


def measure(exe: str, python: str, meta: str, expected_nodes: int, repeat: int) -> dict:
    """Warm up both (checking their outputs), then alternate timed runs so drift hits both equally."""
    ours_cmd = [exe, "graph", "--summary", meta]
    tf_cmd = [python, "-c", TF_LOAD, meta]
    problems = []
    warm_ours, warm_tf = run_child(ours_cmd, capture=True), run_child(tf_cmd, capture=True)
    for label, run in (("ckpttools", warm_ours), ("tensorflow", warm_tf)):
        if run.returncode != 0:
            problems.append(f"{label} exited {run.returncode}: {' | '.join(run.stderr.strip().splitlines()[-3:])}")
    if not problems:
        counted = ours_nodes(warm_ours.stdout or "")
        tf_nodes = json.loads((warm_tf.stdout or "{}").strip().splitlines()[-1])["nodes"]
        if not counted == tf_nodes == expected_nodes:
            problems.append(f"node counts differ: ckpttools {counted}, import_meta_graph {tf_nodes}, "
                            f"builder {expected_nodes}")
    ours: list[Run] = []
    theirs: list[Run] = []
    inner: list[float] = []
    for _ in range(repeat):
        ours.append(run_child(ours_cmd, capture=True))
        run = run_child(tf_cmd, capture=True)
        theirs.append(run)
        if run.returncode == 0:
            inner.append(json.loads(run.stdout.strip().splitlines()[-1])["import_meta_graph"])
    return {"ours": ours, "tf": theirs, "inner": inner, "problems": problems}


# --- reporting --------------------------------------------------------------------------------------------


def peak_mb(runs: Sequence[Run]) -> float:
    return max(r.peak_kib for r in runs) * 1024 / 1e6


def report(manifest: dict, result: dict, api: float | str, repeat: int) -> bool:
    """Print the table and the verdict; True when the target is met and the outputs were sane."""
    ours = statistics.median(r.seconds for r in result["ours"])
    theirs = statistics.median(r.seconds for r in result["tf"])
    inner = statistics.median(result["inner"]) if result["inner"] else float("nan")
    ratio = theirs / ours
    print(f"\n{CASE}: {manifest['nodes']:,} nodes ({manifest['layers']} dense layers + Adam + Saver), "
          f".meta {manifest['bytes'] / 1e6:.1f} MB")
    print(f"median wall time of {repeat} runs after 1 warm-up, each a fresh process; "
          "peak = max RSS over runs (MB = 10^6 B)\n")
    rows = [
        ("ckpttools graph --summary FILE", f"{ours:.3f} s", f"{peak_mb(result['ours']):.0f}"),
        ("python: import tensorflow + import_meta_graph", f"{theirs:.3f} s", f"{peak_mb(result['tf']):.0f}"),
        ("  of which import_meta_graph alone", f"{inner:.3f} s", ""),
    ]
    print(f"{'command':<48} {'wall':>9}  {'peak_MB':>7}")
    print("-" * 67)
    for label, seconds, peak in rows:
        print(f"{label:<48} {seconds:>9}  {peak:>7}")
    print("-" * 67)
    print(f"{'ratio (TensorFlow / ckpttools)':<48} {ratio:>8.1f}x")
    print(f"{'ratio vs import_meta_graph alone':<48} {inner / ours:>8.1f}x")
    if isinstance(api, str):
        print(f"\nin-process load_graph + summarize: FAILED: {api}")
    else:
        print(f"\nin-process load_graph + summarize (imports excluded): {api * 1000:.0f} ms")
    for problem in result["problems"]:
        print(f"PROBLEM: {problem}")
    passed = ratio >= SPEED_TARGET and not result["problems"]
    print(f"\n{'PASS' if passed else 'FAIL'}: ckpttools graph --summary is {ratio:.1f}x faster than importing "
          f"TensorFlow and running import_meta_graph (target >= {SPEED_TARGET:g}x)")
    return passed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where the graph is built (bench/out)")
    parser.add_argument("--layers", type=int, default=DEFAULT_LAYERS, help="dense layers in the graph (default 200)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command (default 5)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the graph even if present")
    parser.add_argument("--check", action="store_true", help="exit 1 when the target fails")
    parser.add_argument("--python", default=sys.executable, help="interpreter that imports TensorFlow")
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.layers < 1:
        parser.error("--repeat and --layers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    if args.build:
        build(workdir / CASE, args.layers)
        return 0
    manifest = ensure_built(workdir, args.layers, args.fresh)
    exe = str(Path(sys.executable).parent / "ckpttools")
    if not Path(exe).exists():
        exe = shutil.which("ckpttools") or sys.exit("ckpttools executable not found")
    print(f"timing {CASE} ...", file=sys.stderr, flush=True)
    result = measure(exe, args.python, manifest["meta"], manifest["nodes"], args.repeat)
    passed = report(manifest, result, time_api(manifest["meta"], args.repeat), args.repeat)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
