"""One fuzz case: how it is made, run and judged; and the child process that runs a range of them.

Seeds (fuzz_campaign.prepare_seeds) are real TensorFlow-written files (the shipped samples and
tests/tf_fixtures.py checkpoints), plus npz/safetensors files extracted from them. Case ``i`` of
campaign seed ``s`` is fully determined by ``(s, i)``: a seed, one of its files and a mutation (see
fuzz_mutators, fuzz_file_mutators). Each case runs the reader the file belongs to
(``open_checkpoint`` + every ``get``; ``load_graph``; directory resolution) and is classified:

- ``read fine``: no error; every value equals the uncorrupted reading (or is one the mutation
  legitimately changed: a new checksum or a format without checksums);
- ``clean error``: a ``CkptError`` whose message names the file;
- ``foreign exception``: anything else (and a ``CkptError`` that names no file), or a crashed child;
- ``hang``: the case ran past the time limit;
- ``memory over bound``: an allocation failed under the child's address-space limit
  (interpreter baseline + 4x the seed's bytes + 64 MiB);
- ``silent wrong``: a tensor read without error whose value differs from the uncorrupted one.

Run a child directly:  python tests/fuzz_engine.py SEEDS_DIR --start 0 --count 100 [--replay]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_file_mutators as files  # noqa: E402
import fuzz_mutators as mut  # noqa: E402

MEMORY_SLACK = 64 << 20


class CaseTimeout(BaseException):
    """Raised by SIGALRM inside a case (a BaseException, so no `except Exception` swallows it)."""


# --- cases ----------------------------------------------------------------------------------------------


@dataclass
class Case:
    index: int
    seed: dict
    file: dict
    changes: dict[str, bytes]  # relative path -> new bytes
    mutation: mut.Mutation

    @property
    def what(self) -> str:
        return f"{self.file['path']}: {self.mutation.what}"


def make_case(index: int, campaign: int, seeds: list[dict], pristine: dict[str, bytes]) -> Case:
    rng = random.Random(f"{campaign}:{index}")
    seed = seeds[index % len(seeds)]
    spec = rng.choice(seed["files"])
    data = pristine[spec["path"]]
    kind = spec["kind"]
    changes: dict[str, bytes] = {}
    structural = rng.random() < 0.55
    if kind == "table_v2" and structural:
        mutation = mut.mutate_table(data, rng, value_legit=False)
    elif kind == "table_v1" and structural:
        mutation = mut.mutate_table(data, rng, value_legit=True)
    elif kind == "graph" and structural:
        new, what = mut.mutate_proto(data, rng)
        mutation = mut.Mutation(new, what)
    elif kind == "npz" and structural:
        mutation = files.mutate_npy_member(data, rng) if rng.random() < 0.5 else files.mutate_zip_header(data, rng)
    elif kind == "safetensors" and structural:
        mutation = files.mutate_safetensors_header(data, rng)
    elif kind == "state":
        mutation = files.mutate_state(data, rng)
    elif kind == "data" and structural and rng.random() < 0.5:
        mutation, changes = _mutate_object_graph(seed, spec, pristine, rng) or (mut.byte_mutation(data, rng), {})
    else:
        donors = [pristine[f["path"]] for f in seed["files"] if f is not spec]
        mutation = mut.byte_mutation(data, rng, donors)
    changes[spec["path"]] = mutation.data
    return Case(index, seed, spec, changes, mutation)


def _mutate_object_graph(seed: dict, spec: dict, pristine: dict[str, bytes], rng: random.Random):
    """Rewrite the TF2 object graph (a string tensor) with a mutated proto, with valid checksums."""
    from ckpttools.formats import messages
    from ckpttools.formats.crc import crc32c, mask
    from ckpttools.formats.objgraph import OBJECT_GRAPH_KEY

    index_spec = next((f for f in seed["files"] if f["kind"] == "table_v2"), None)
    if index_spec is None:
        return None
    entries = mut.read_table(pristine[index_spec["path"]])
    key = OBJECT_GRAPH_KEY.encode()
    found = [i for i, (k, _) in enumerate(entries) if k == key]
    if not found:
        return None
    entry_bytes = entries[found[0]][1]
    entry = messages.parse_bundle_entry(entry_bytes)
    if f".data-{entry.shard_id:05d}-of-" not in spec["path"]:
        return None
    data = pristine[spec["path"]]
    raw = data[entry.offset : entry.offset + entry.size]
    length, pos = mut._rv(raw, 0)
    proto = raw[pos + 4 : pos + 4 + length]
    new_proto, what = mut.mutate_proto(proto, rng)
    length_bytes = len(new_proto).to_bytes(4 if len(new_proto) <= 0xFFFFFFFF else 8, "little")
    length_crc = crc32c(length_bytes)
    crc_bytes = mask(length_crc).to_bytes(4, "little")
    body = mut.varint(len(new_proto)) + crc_bytes + new_proto
    crc = mask(crc32c(new_proto, crc32c(crc_bytes, length_crc)))
    kept = b"".join(entry_bytes[s:e] for s, n, _, _, e in (mut.proto_spans(entry_bytes) or []) if n not in (4, 5, 6))
    new_entry = kept + mut._field(4, 0, mut.varint(len(data))) + mut._field(5, 0, mut.varint(len(body)))
    new_entry += mut._field(6, 5, crc.to_bytes(4, "little"))
    entries[found[0]] = (key, new_entry)
    mutation = mut.Mutation(data + body, f"object graph: {what}", legit={OBJECT_GRAPH_KEY})
    return mutation, {index_spec["path"]: mut.build_table(entries, rng)}


# --- running one case -----------------------------------------------------------------------------------


@dataclass
class Result:
    outcome: str
    detail: str = ""


@dataclass
class Baseline:
    prefix: str
    values: dict[str, tuple[str, tuple, object]] = field(default_factory=dict)  # key -> (dtype, shape, value)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # safetensors: key -> absolute byte range


def read_all(target: str) -> tuple[str, dict[str, tuple[str, tuple, object]], list[str]]:
    """Open a checkpoint and read every tensor: ``(prefix, {key: (dtype, shape, value)}, errors)``."""
    from ckpttools import open_checkpoint
    from ckpttools.errors import CkptError

    values, errors = {}, []
    with open_checkpoint(target) as ckpt:
        for info in ckpt:
            try:
                values[info.key] = (info.dtype, tuple(info.shape), ckpt.get(info.name))
            except CkptError as exc:
                errors.append(str(exc))
        return ckpt.prefix, values, errors


def _same(a, b) -> bool:
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.hasobject:
        return a.reshape(-1).tolist() == b.reshape(-1).tolist()
    return a.tobytes() == b.tobytes()


def run_case(case: Case, workdir: Path, baselines: dict[str, Baseline]) -> Result:
    """Run the reader of the case's file on the mutated files; classify what happened."""
    from ckpttools.errors import CkptError

    runner, target = case.file["runner"], str(workdir / case.file["target"])
    try:
        if runner in ("graph", "saved_model"):
            from ckpttools.graphs.load import load_graph

            try:
                load_graph(target)
            except CkptError as exc:
                if runner == "graph":
                    return _clean(exc, workdir)
            if runner == "graph":
                return Result("read fine")
        prefix, values, errors = read_all(target)
    except CkptError as exc:
        return _clean(exc, workdir)
    except CaseTimeout:
        return Result("hang", case.what)
    except MemoryError:
        return Result("memory over bound", case.what)
    except Exception as exc:  # noqa: BLE001 - this is what the fuzzer is looking for
        return Result("foreign exception", f"{type(exc).__name__}: {str(exc)[:120]} at {_where(exc)} | {case.what}")
    for message in errors:
        if str(workdir) not in message:
            return Result("foreign exception", f"CkptError naming no file: {message[:160]} | {case.what}")
    wrong = _wrong_values(case, prefix, values, baselines[case.seed["label"]])
    if wrong:
        return Result("silent wrong", f"{wrong} | {case.what}")
    return Result("clean error" if errors else "read fine", errors[0][:160] if errors else "")


def _raw_run(case: Case, workdir: Path) -> None:
    from ckpttools.errors import CkptError
    from ckpttools.graphs.load import load_graph

    target = str(workdir / case.file["target"])
    try:
        if case.file["runner"] != "ckpt":
            load_graph(target)
        if case.file["runner"] != "graph":
            read_all(target)
    except CkptError as exc:
        print(f"# {type(exc).__name__}: {exc}", flush=True)


def _where(exc: BaseException) -> str:
    """The innermost ckpttools frame of a traceback, ``module.py:line``."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/ckpttools/" in f.filename]
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def _clean(exc: Exception, workdir: Path) -> Result:
    message = str(exc)
    if str(workdir) not in message:
        return Result("foreign exception", f"CkptError naming no file: {message[:200]}")
    if "\n" in message:
        return Result("foreign exception", f"CkptError message on several lines: {message[:200]!r}")
    return Result("clean error", message[:200])


def _wrong_values(case: Case, prefix: str, values: dict, baseline: Baseline) -> str | None:
    """The key of a value read without error that differs from the uncorrupted reading, if any."""
    if prefix != baseline.prefix or "*" in case.mutation.legit:
        return None
    for key, (dtype, shape, value) in values.items():
        if key in case.mutation.legit or key not in baseline.values:
            continue
        base_dtype, base_shape, base_value = baseline.values[key]
        if (dtype, shape) != (base_dtype, base_shape) or _same(value, base_value):
            continue
        if case.file["kind"] == "safetensors" and not _untouched(baseline.spans.get(key), case.mutation):
            continue  # safetensors has no checksums: changed bytes are the file's new values
        return key
    return None


def _untouched(span: tuple[int, int] | None, mutation: mut.Mutation) -> bool:
    if span is None:
        return False
    return not any(start < span[1] and span[0] < end for start, end in mutation.touched)


def _safetensors_spans(path: Path) -> dict[str, tuple[int, int]]:
    length = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + length])
    spans = {name: (0, 8 + length) for name in header}
    for name, entry in header.items():
        if name != "__metadata__":
            begin, end = entry["data_offsets"]
            spans[name] = (8 + length + begin, 8 + length + end)
    return {name: (0, span[1]) if span[0] == span[1] else span for name, span in spans.items()}


# --- the child: run a range of cases --------------------------------------------------------------------


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def child_main(seeds_dir: Path, start: int, count: int, campaign: int, time_limit: float, replay: bool) -> int:
    seeds = json.loads((seeds_dir / "seeds.json").read_text())
    pristine = {f["path"]: (seeds_dir / f["path"]).read_bytes() for s in seeds for f in s["files"]}
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else None
    workdir = Path(tempfile.mkdtemp(prefix="ckpt-fuzz-", dir=base))
    try:
        shutil.copytree(seeds_dir, workdir, dirs_exist_ok=True)
        baselines = {}
        for seed in seeds:
            prefix, values, errors = read_all(str(workdir / seed["target"]))
            assert not errors, errors
            baseline = Baseline(prefix, values)
            if seed["target"].endswith(".safetensors"):
                baseline.spans = _safetensors_spans(workdir / seed["target"])
            baselines[seed["label"]] = baseline
            if any(f["runner"] != "ckpt" for f in seed["files"]):
                from ckpttools.graphs.load import load_graph  # warm the imports before the limit is set

                for f in seed["files"]:
                    if f["runner"] != "ckpt":
                        load_graph(str(workdir / f["target"]))
        largest = max(sum(len(pristine[f["path"]]) for f in s["files"]) for s in seeds)
        bound = _vm_size() + 4 * largest + MEMORY_SLACK
        if not replay:
            resource.setrlimit(resource.RLIMIT_AS, (bound, bound))
        print(f"# limit {bound >> 20} MiB", flush=True)

        def on_alarm(signum, frame):
            raise CaseTimeout()

        signal.signal(signal.SIGALRM, on_alarm)
        for index in range(start, start + count):
            case = make_case(index, campaign, seeds, pristine)
            for path, data in case.changes.items():
                (workdir / path).write_bytes(data)
            began = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, time_limit)
            try:
                if replay:  # the reader's own exception, with its traceback
                    print(f"# case {index}: {case.what}", flush=True)
                    _raw_run(case, workdir)
                result = run_case(case, workdir, baselines)
            except CaseTimeout:
                result = Result("hang", case.what)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            elapsed = time.perf_counter() - began
            for path in case.changes:
                (workdir / path).write_bytes(pristine[path])
            line = f"{index}\t{result.outcome}\t{elapsed:.4f}\t{case.file['kind']}\t{result.detail}"
            print(line.replace("\n", " "), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seeds_dir", type=Path)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--campaign", type=int, default=0)
    parser.add_argument("--time-limit", type=float, default=2.0)
    parser.add_argument("--replay", action="store_true", help="no memory limit, let exceptions through")
    args = parser.parse_args(argv)
    return child_main(args.seeds_dir, args.start, args.count, args.campaign, args.time_limit, args.replay)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
