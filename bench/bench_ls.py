#!/usr/bin/env python
"""Benchmark ``ckpttools ls`` against TensorFlow's ``inspect_checkpoint`` tool.

It builds a few checkpoints with TensorFlow (once; they are reused on reruns),
then times both listers as separate processes, the way a user runs them, and
records each process's peak resident memory. This is a report, not a test:
it exits 0 unless ``--check`` is given and a target fails.

Run:  python bench/bench_ls.py [--quick] [--repeat N] [--fresh] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_WORKDIR = BENCH_DIR / "out"
# Bump when a builder changes so stale checkpoints from an older layout are rebuilt, not reused.
BUILD_VERSION = 1
ALL_CASES = ("small_cnn", "large_1gb", "many_10k", "many_20k", "sharded")
QUICK_CASES = ("small_cnn", "many_20k")
SPEED_TARGET = 10.0  # ours must be at least this many times faster than inspect_checkpoint
CASE_SPEED_TARGETS = {"many_20k": 30.0}  # per-entry cost dominates there: a stricter target
API_CASE, API_TARGET_MS = "many_20k", 100.0  # in-process open_checkpoint + iterate
MEMORY_TARGET_MB = 100.0  # peak RSS of `ckpttools ls` on the 1 GB checkpoint, in MB (10**6 bytes)
MEMORY_CASE = "large_1gb"
MANY_LAYERS = 100  # many_*: block{i}/layer{j}/kernel; 100 blocks -> 10,000 tensors, 200 -> 20,000
MANY_BLOCKS = {"many_10k": 100, "many_20k": 200}
MEDIUM_TENSORS = 400
ApiResult = tuple[float, int] | str  # (median seconds, tensors listed) or the error text


# --------------------------------------------------------------------------------------------
# Building checkpoints (runs in a child process: the timing process never imports TensorFlow)
# --------------------------------------------------------------------------------------------

def _quiet_tf():
    """Import TensorFlow with its C++ logging muted; builders are noisy otherwise."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def build_small_cnn(case_dir: Path) -> str:
    """A TF1 CNN (3 conv + 2 dense) trained one Adam step, so slots and beta powers exist."""
    tf = _quiet_tf()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        images = v1.placeholder(tf.float32, [None, 28, 28, 1])
        labels = v1.placeholder(tf.int64, [None])
        x = images
        for i, (k, cin, cout) in enumerate([(5, 1, 32), (5, 32, 64), (3, 64, 64)], start=1):
            with v1.variable_scope(f"conv{i}"):
                w = v1.get_variable("kernel", [k, k, cin, cout], initializer=v1.glorot_uniform_initializer())
                b = v1.get_variable("bias", [cout], initializer=v1.zeros_initializer())
                x = tf.nn.relu(tf.nn.conv2d(x, w, strides=1, padding="SAME") + b)
                if i < 3:
                    x = tf.nn.max_pool2d(x, 2, 2, "SAME")
        x = tf.reshape(x, [-1, 7 * 7 * 64])
        for name, units, act in [("dense1", 128, tf.nn.relu), ("logits", 10, None)]:
            with v1.variable_scope(name):
                init = v1.glorot_uniform_initializer()
                w = v1.get_variable("kernel", [x.shape[-1], units], initializer=init)
                b = v1.get_variable("bias", [units], initializer=v1.zeros_initializer())
                x = tf.matmul(x, w) + b
                x = act(x) if act else x
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=x))
        step = v1.train.get_or_create_global_step()
        train = v1.train.AdamOptimizer(1e-3).minimize(loss, global_step=step)
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            import numpy as np

            rng = np.random.default_rng(0)
            sess.run(train, {images: rng.random((8, 28, 28, 1), np.float32), labels: rng.integers(0, 10, 8)})
            return saver.save(sess, str(case_dir / "model.ckpt"), global_step=step)


def build_large_1gb(case_dir: Path) -> str:
    """8 float32 variables of 128 MiB each (1 GiB) plus small ones, via a TF1 Saver (plain names).

    Zeros initializers keep creation fast; the listers only read the index, so values do not matter.
    """
    tf = _quiet_tf()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        for i in range(8):
            with v1.variable_scope(f"big{i}"):
                v1.get_variable("kernel", [8192, 4096], tf.float32, initializer=v1.zeros_initializer())
                v1.get_variable("bias", [4096], tf.float32, initializer=v1.zeros_initializer())
        v1.train.get_or_create_global_step()
        saver = v1.train.Saver()
        with v1.Session() as sess:
            sess.run(v1.global_variables_initializer())
            return saver.save(sess, str(case_dir / "model.ckpt"), global_step=0)


def build_many(case_dir: Path, blocks: int) -> str:
    """blocks * 100 small tensors written by one eager SaveV2 op (creating 10k graph variables is very slow)."""
    tf = _quiet_tf()
    names, tensors = [], []
    for i in range(blocks):
        for j in range(MANY_LAYERS):
            names.append(f"block{i}/layer{j}/kernel")
            tensors.append(tf.fill([4, 4], float(i * MANY_LAYERS + j)))
    prefix = str(case_dir / "model.ckpt-1")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    return prefix


def build_medium(case_dir: Path) -> str:
    """400 float32 tensors of 256 KiB (100 MiB) written by one eager SaveV2 op, stored as numbered (``layer0``,
    ``layer1``... ``layer399``): not in the order of their names (``layer0``, ``layer1``, ``layer10``...), as a
    model's layers are. For bench_remote.py's round-trip case."""
    tf = _quiet_tf()
    names = [f"layer{i}/kernel" for i in range(MEDIUM_TENSORS)]
    tensors = [tf.fill([256, 256], float(i)) for i in range(MEDIUM_TENSORS)]
    prefix = str(case_dir / "model.ckpt-1")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)
    return prefix


def build_sharded(case_dir: Path) -> str:
    """A Saver(sharded=True) checkpoint over 3 CPU devices, so there are 3 data shards."""
    tf = _quiet_tf()
    v1 = tf.compat.v1
    with tf.Graph().as_default():
        for k in range(3):
            with tf.device(f"/cpu:{k}"), v1.variable_scope(f"tower{k}"):
                for j in range(4):
                    init = v1.random_normal_initializer()
                    v1.get_variable(f"layer{j}/kernel", [256, 256], initializer=init)
                    v1.get_variable(f"layer{j}/bias", [256], initializer=v1.zeros_initializer())
        with tf.device("/cpu:0"):
            v1.train.get_or_create_global_step()
        saver = v1.train.Saver(sharded=True)
        config = v1.ConfigProto(device_count={"CPU": 3})
        with v1.Session(config=config) as sess:
            sess.run(v1.global_variables_initializer())
            return saver.save(sess, str(case_dir / "model.ckpt"), global_step=7)


BUILDERS: dict[str, Callable[[Path], str]] = {
    "small_cnn": build_small_cnn,
    "large_1gb": build_large_1gb,
    "many_10k": lambda case_dir: build_many(case_dir, MANY_BLOCKS["many_10k"]),
    "many_20k": lambda case_dir: build_many(case_dir, MANY_BLOCKS["many_20k"]),
    "sharded": build_sharded,
    "medium_400": build_medium,  # (bench_remote.py's; not listed by bench_ls)
}


def build_case(name: str, workdir: Path) -> None:
    """Build one case, verify it with tf.train.list_variables, and write its manifest last.

    The manifest is the "done" marker: a half-built case (interrupted run) has none and is rebuilt.
    """
    case_dir = workdir / name
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    prefix = BUILDERS[name](case_dir)
    tf = _quiet_tf()
    listed = tf.train.list_variables(prefix)
    shards = sorted(p.name for p in case_dir.glob(Path(prefix).name + ".data-*"))
    if name in MANY_BLOCKS and len(listed) < MANY_BLOCKS[name] * MANY_LAYERS:
        raise SystemExit(f"{name}: TF lists only {len(listed)} tensors")
    if name == "sharded" and len(shards) < 3:
        raise SystemExit(f"sharded: only {len(shards)} data shards: {shards}")
    manifest = {"version": BUILD_VERSION, "prefix": prefix, "tensors": len(listed), "data_files": shards}
    (case_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def ensure_case(name: str, workdir: Path, fresh: bool) -> dict:
    """Return the case's manifest, building it in a TensorFlow child process when missing or stale."""
    manifest_path = workdir / name / "manifest.json"
    if not fresh and manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("version") == BUILD_VERSION and Path(manifest["prefix"] + ".index").exists():
            return manifest
    print(f"building {name} in {workdir / name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build", name, "--workdir", str(workdir)], check=True)
    print(f"  built {name} in {time.perf_counter() - started:.1f}s", file=sys.stderr, flush=True)
    return json.loads(manifest_path.read_text())


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One child process: wall time, peak RSS and what it printed (when captured)."""

    seconds: float
    peak_kib: int
    returncode: int
    stdout: str | None
    stderr: str
    cpu_seconds: float = 0.0  # user + system time of the child: less sensitive to a busy machine than wall time


def run_child(cmd: Sequence[str], capture: bool) -> Run:
    """Run cmd once; peak RSS comes from os.wait4 on that very pid.

    We never call Popen.wait()/communicate(): they would reap the child first and its rusage would be lost.
    stderr goes to a temp file so a chatty child can never block on a full pipe.
    """
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=err)
        out = proc.stdout.read() if proc.stdout is not None else None
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # tell Popen the child is reaped
        if proc.stdout is not None:
            proc.stdout.close()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    text = out.decode("utf-8", "replace") if out is not None else None
    return Run(seconds, usage.ru_maxrss, proc.returncode, text, stderr, usage.ru_utime + usage.ru_stime)


@dataclass
class Tool:
    """A lister under test: its command line and how to read the names it printed."""

    label: str
    argv: Callable[[str], list[str]]
    names: Callable[[str], list[str]]
    capture_timed: bool  # ours is piped as a user would; inspect_checkpoint goes to /dev/null
    runs: list[Run] = field(default_factory=list)


# inspect_checkpoint's line per tensor (reader.debug_string()); it ends with "# Total number of params: N".
TF_LINE = re.compile(r"^(?P<name>.*) \((?P<dtype>DT_\w+)\) \[(?P<shape>[\d,]*)\]$")


def ours_names(stdout: str) -> list[str]:
    """Piped `ckpttools ls` prints one tab-separated row per variable, no header: `name dtype [shape] ...`.

    Returned as "name [shape]" so the sanity check compares shapes too, not only names.
    """
    rows = [line.split("\t") for line in stdout.splitlines() if line.strip()]
    return [f"{row[0]} [{row[2].strip('[]').replace(' ', '')}]" if len(row) > 2 else row[0] for row in rows]


def tf_names(stdout: str) -> list[str]:
    """inspect_checkpoint's tensors as "name [shape]"; blank and `# Total ...` lines are not tensors."""
    return [f"{m['name']} [{m['shape']}]" for m in map(TF_LINE.match, stdout.splitlines()) if m]


def make_tools(ckpttools_exe: str, python: str, ours_flags: Sequence[str]) -> list[Tool]:
    """The two listers, built fresh for each case so their run lists start empty."""
    return [
        Tool("ckpttools", lambda p: [ckpttools_exe, "ls", *ours_flags, p], ours_names, True),
        Tool("inspect_checkpoint",
             lambda p: [python, "-m", "tensorflow.python.tools.inspect_checkpoint", f"--file_name={p}"],
             tf_names, False),
    ]


@dataclass
class CaseResult:
    """Everything reported for one case."""

    name: str
    tensors: int
    disk_bytes: int
    ours: Tool
    tf: Tool
    problems: list[str]

    @property
    def ours_median(self) -> float:
        return statistics.median(r.seconds for r in self.ours.runs)

    @property
    def tf_median(self) -> float:
        return statistics.median(r.seconds for r in self.tf.runs)

    @property
    def ratio(self) -> float:
        return self.tf_median / self.ours_median

    @staticmethod
    def peak_mb(tool: Tool) -> float:
        """Largest RSS over all of a tool's runs (KiB from the kernel -> MB of 10**6 bytes)."""
        return max(r.peak_kib for r in tool.runs) * 1024 / 1e6


def check_outputs(case: str, ours: Run, tf: Run, tools: list[Tool], expected: int) -> list[str]:
    """Sanity: both exit 0, ours lists exactly the names and shapes inspect_checkpoint lists."""
    problems = []
    for tool, run in zip(tools, (ours, tf), strict=True):
        if run.returncode != 0:
            tail = run.stderr.strip().splitlines()[-3:]
            problems.append(f"{tool.label} exited {run.returncode}: {' | '.join(tail)}")
    if problems:
        return problems
    mine, theirs = tools[0].names(ours.stdout or ""), tools[1].names(tf.stdout or "")
    if len(mine) != len(theirs):
        problems.append(f"ckpttools printed {len(mine)} lines, "
                        f"inspect_checkpoint found {len(theirs)} tensors")
    missing, extra = sorted(set(theirs) - set(mine)), sorted(set(mine) - set(theirs))
    if missing:
        problems.append(f"{len(missing)} name/shape pairs missing from ckpttools, e.g. {missing[:3]}")
    if extra:
        problems.append(f"{len(extra)} name/shape pairs only in ckpttools, e.g. {extra[:3]}")
    if case in MANY_BLOCKS and len(mine) < MANY_BLOCKS[case] * MANY_LAYERS:
        problems.append(f"{case}: ckpttools printed only {len(mine)} lines (< {MANY_BLOCKS[case] * MANY_LAYERS:,})")
    if len(theirs) != expected:
        problems.append(f"inspect_checkpoint found {len(theirs)} tensors, build manifest says {expected}")
    return problems


def bench_case(name: str, manifest: dict, tools: list[Tool], repeat: int) -> CaseResult:
    """One untimed warm-up per tool (fills the page cache, captures output for the sanity check),
    then `repeat` timed runs alternating ours/theirs so drift hits both equally."""
    prefix = manifest["prefix"]
    warm = [run_child(tool.argv(prefix), capture=True) for tool in tools]
    problems = check_outputs(name, warm[0], warm[1], tools, manifest["tensors"])
    for _ in range(repeat):
        for tool in tools:
            run = run_child(tool.argv(prefix), capture=tool.capture_timed)
            if run.returncode != 0 and not any(p.startswith(tool.label) for p in problems):
                problems.append(f"{tool.label} exited {run.returncode} in a timed run")
            tool.runs.append(run)
    # The checkpoint proper (.index + .data-*); the .meta graph is not something either tool reads.
    files = [Path(prefix + ".index"), *Path(prefix).parent.glob(Path(prefix).name + ".data-*")]
    disk = sum(p.stat().st_size for p in files)
    return CaseResult(name, manifest["tensors"], disk, tools[0], tools[1], problems)


def time_api(prefix: str, repeat: int) -> ApiResult:
    """Median in-process time of open_checkpoint + iterating every TensorInfo (import excluded).

    Returns the error text instead when the API fails, so the rest of the report still prints.
    """
    try:
        import ckpttools

        times, count = [], 0
        for _ in range(repeat):
            started = time.perf_counter()
            with ckpttools.open_checkpoint(prefix) as ckpt:
                count = sum(1 for _ in ckpt)
            times.append(time.perf_counter() - started)
    except Exception as exc:  # a report, not a test: show what broke, go on
        return f"{type(exc).__name__}: {exc}"
    return statistics.median(times), count


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def human_size(n: int) -> str:
    """Binary units, short enough for a fixed column."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


HEADER = (f"{'case':<11} {'variables':>9}  {'size':>9}  {'ckpttools':>9}  {'inspect_checkpoint':>18}  "
          f"{'ratio':>6}  {'ours_peak_MB':>12}  {'tf_peak_MB':>10}  check")


def table_row(r: CaseResult) -> str:
    """One fixed-width line; times are medians in seconds, peaks are the max over all runs.

    `check` is FAIL when the sanity check found a problem (listed below the table): the timings of a
    run that crashed or printed the wrong names mean nothing.
    """
    return (f"{r.name:<11} {r.tensors:>9,}  {human_size(r.disk_bytes):>9}  {r.ours_median:>8.3f}s  "
            f"{r.tf_median:>17.3f}s  {r.ratio:>5.1f}x  {r.peak_mb(r.ours):>12.1f}  {r.peak_mb(r.tf):>10.1f}  "
            f"{'FAIL' if r.problems else 'ok'}")


def verdicts(results: list[CaseResult]) -> list[tuple[str, bool | None]]:
    """The targets: None means not measured in this run (e.g. --quick skips the 1 GB case)."""
    speed = all(r.ratio >= SPEED_TARGET and not r.problems for r in results)
    strict = {r.name: r.ratio >= CASE_SPEED_TARGETS[r.name] and not r.problems
              for r in results if r.name in CASE_SPEED_TARGETS}
    big = next((r for r in results if r.name == MEMORY_CASE), None)
    memory = None if big is None else (CaseResult.peak_mb(big.ours) < MEMORY_TARGET_MB and not big.problems)
    return [
        (f"target >={SPEED_TARGET:g}x faster on every case", speed),
        *((f"target >={CASE_SPEED_TARGETS[name]:g}x faster on {name}", passed) for name, passed in strict.items()),
        (f"ls of the 1 GB checkpoint under {MEMORY_TARGET_MB:g} MB peak", memory),
    ]


def report(results: list[CaseResult], api: ApiResult | None, repeat: int, ours_cmd: str) -> bool:
    """Print the table, notes and verdicts; return True when every measured target passed."""
    print(f"\nmedian wall time of {repeat} runs (after 1 warm-up); peak = max RSS over runs (MB = 10^6 B)")
    print(f"ours: {ours_cmd} PREFIX  |  "
          "tf: python -m tensorflow.python.tools.inspect_checkpoint --file_name=PREFIX")
    print(HEADER)
    print("-" * len(HEADER))
    for r in results:
        print(table_row(r))
    if isinstance(api, str):
        print(f"\nPython API, {API_CASE} in-process: FAILED: {api}")
    elif api is not None:
        seconds, count = api
        print(f"\nPython API, {API_CASE} in-process: open_checkpoint + iterate {count:,} tensors: "
              f"{seconds * 1000:.1f} ms (median)")
    for r in results:
        for problem in r.problems:
            print(f"PROBLEM {r.name}: {problem}")
    print()
    ok = True
    api_passed = None if api is None else (not isinstance(api, str) and api[0] * 1000 < API_TARGET_MS)
    for label, passed in [*verdicts(results), (f"target: {API_CASE} open_checkpoint + iterate under "
                                                f"{API_TARGET_MS:g} ms", api_passed)]:
        print(f"{label}: {'not measured' if passed is None else 'PASS' if passed else 'FAIL'}")
        ok = ok and passed is not False
    return ok


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options; --build is internal (the TensorFlow child process)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="where checkpoints are built and reused (default: bench/out, git-ignored)")
    parser.add_argument("--fresh", action="store_true", help="rebuild the checkpoints even if present")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per tool and case (default 5)")
    parser.add_argument("--quick", action="store_true", help="only small_cnn and many_20k, repeat 3")
    parser.add_argument("--cases", nargs="+", choices=ALL_CASES, help="run only these cases")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--ckpttools", default=None,
                        help="ckpttools executable (default: the one beside this Python)")
    parser.add_argument("--ours-flags", default="--all",
                        help="flags for `ckpttools ls` (default --all: list every tensor, as "
                             "inspect_checkpoint does, so the outputs can be compared)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for inspect_checkpoint")
    parser.add_argument("--build", choices=sorted(BUILDERS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 3 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def byte_compile(python: str) -> None:
    """Compile ckpttools' modules to bytecode first, as ``pip install`` leaves them.

    Without this, a PYTHONDONTWRITEBYTECODE environment (or a read-only checkout) makes every timed run
    of an editable install compile its sources again, while TensorFlow's installed modules are compiled
    once: the comparison would time our compiler, not our lister.
    """
    where = subprocess.run([python, "-c", "import ckpttools, os; print(os.path.dirname(ckpttools.__file__))"],
                           check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run([python, "-m", "compileall", "-q", where], check=True)


def find_ckpttools(explicit: str | None) -> str:
    """Prefer the console script next to this interpreter, so the venv's editable install is timed."""
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "ckpttools"
    if beside.exists():
        return str(beside)
    found = shutil.which("ckpttools")
    if not found:
        raise SystemExit("ckpttools executable not found; pass --ckpttools")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Build (or reuse) the checkpoints, benchmark each case, print the report."""
    args = parse_args(argv)
    workdir = args.workdir.resolve()
    if args.build:
        build_case(args.build, workdir)
        return 0
    cases = args.cases or (QUICK_CASES if args.quick else ALL_CASES)
    manifests = {name: ensure_case(name, workdir, args.fresh) for name in cases}
    exe = find_ckpttools(args.ckpttools)
    byte_compile(args.python)
    ours_flags = args.ours_flags.split()
    results = []
    for name in cases:
        print(f"timing {name} ...", file=sys.stderr, flush=True)
        tools = make_tools(exe, args.python, ours_flags)
        results.append(bench_case(name, manifests[name], tools, args.repeat))
    api = time_api(manifests[API_CASE]["prefix"], args.repeat) if API_CASE in manifests else None
    ok = report(results, api, args.repeat, " ".join(["ckpttools", "ls", *ours_flags]))
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
