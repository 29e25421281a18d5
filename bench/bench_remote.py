"""Benchmark: ckpttools on a checkpoint served over HTTP (127.0.0.1, Range requests) against downloading it.

Case ``large_1gb`` of bench_ls.py (1 GiB of float32 tensors in one shard), served by the Range-honouring
HTTP server of tests/remote_servers.py on a thread of this process, which counts the bytes it sends.

- ``ls``: ``ckpttools ls --all URL`` against "download the checkpoint (curl), then ``ckpttools ls`` it".
  Target: faster, fetching no more than the index + 64 KiB. (Importing fsspec's HTTP stack, aiohttp, costs
  ckpttools a fixed ~0.5-1.5 s per process; the download grows with the checkpoint.)
- ``extract``: ``ckpttools extract --all URL -o out.npz`` against ``curl`` downloading the same data
  shard to a file (the plain-download speed). Target: throughput at least 0.7 of curl's.

Every command is a child process; each round runs the competitors one after the other (interleaved), the
median of ``--repeat`` rounds is reported, with each child's peak RSS (``os.wait4``).

    python bench/bench_remote.py [--repeat 3] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from bench_ls import DEFAULT_WORKDIR, ensure_case, find_ckpttools, run_child  # noqa: E402
from remote_servers import RangeServer  # noqa: E402

CASE = "large_1gb"
LS_TARGET, EXTRACT_TARGET, LS_BYTES_SLACK = 1.0, 0.7, 64 << 10


def _download_then_ls(ckpttools: str, base: str, names: list[str], prefix_name: str, into: Path) -> list[str]:
    script = " && ".join([f"curl -sf -o {into / n} {base}/{n}" for n in names]
                         + [f"{ckpttools} ls --all {into / prefix_name} > /dev/null"])
    return ["sh", "-c", script]


def _measure(server: RangeServer, label: str, cmd: list[str]) -> dict:
    server.reset()
    run = run_child(cmd, capture=False)
    if run.returncode != 0:
        raise SystemExit(f"{label} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return {"seconds": run.seconds, "peak_mb": run.peak_kib * 1024 / 1e6, "bytes": server.bytes_served,
            "requests": len(server.requests)}


def _summary(label: str, runs: list[dict]) -> dict:
    return {"label": label, "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_mb": max(r["peak_mb"] for r in runs), "bytes": max(r["bytes"] for r in runs),
            "requests": max(r["requests"] for r in runs)}


def _row(result: dict) -> str:
    return (f"  {result['label']:<38} {result['seconds']:8.3f} s  {result['bytes'] / 1e6:10.3f} MB fetched "
            f"in {result['requests']:3d} requests  peak {result['peak_mb']:7.1f} MB")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH.parent), os.environ.get("PYTHONPATH")]))
    manifest = ensure_case(CASE, args.workdir.resolve(), fresh=False)
    prefix = Path(manifest["prefix"])
    names = [prefix.name + ".index"] + manifest["data_files"]
    index_size = (prefix.parent / names[0]).stat().st_size
    data = prefix.parent / manifest["data_files"][0]
    scratch = args.workdir.resolve() / "remote"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    ckpttools = find_ckpttools(None)
    server = RangeServer(str(prefix.parent)).start()
    url = f"{server.url}/{prefix.name}"
    tools = {
        "ckpttools ls --all URL": ["sh", "-c", f"{ckpttools} ls --all {url} > /dev/null"],
        "curl download, then ckpttools ls": _download_then_ls(ckpttools, server.url, names, prefix.name, scratch),
        "ckpttools extract --all URL -o x.npz": [ckpttools, "extract", "--all", "--force", url, "-o",
                                                 str(scratch / "x.npz")],
        "curl the data shard to a file": ["curl", "-sf", "-o", str(scratch / "shard.bin"), f"{server.url}/{data.name}"],
    }
    runs: dict[str, list[dict]] = {label: [] for label in tools}
    try:
        for label, cmd in tools.items():  # one untimed warm-up each (page cache, imports)
            _measure(server, label, cmd)
        for _ in range(args.repeat):  # interleaved rounds
            for label, cmd in tools.items():
                runs[label].append(_measure(server, label, cmd))
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    ours_ls, their_ls, ours_x, curl_x = (_summary(label, runs[label]) for label in tools)
    total = data.stat().st_size
    print(f"case {CASE}: index {index_size} B, data {total / 1e6:.1f} MB, served over HTTP on 127.0.0.1; "
          f"median of {args.repeat} interleaved rounds")
    for result in (ours_ls, their_ls, ours_x, curl_x):
        print(_row(result))
    ls_ratio = their_ls["seconds"] / ours_ls["seconds"]
    ls_ok = ls_ratio > LS_TARGET and ours_ls["bytes"] <= index_size + LS_BYTES_SLACK
    throughput = (total / ours_x["seconds"]) / (total / curl_x["seconds"])
    print(f"ls: {ls_ratio:.1f}x faster than download-then-list, fetching {ours_ls['bytes']} B vs "
          f"{their_ls['bytes']} B (target: faster, and <= index + 64 KiB): {'PASS' if ls_ok else 'FAIL'}")
    print(f"extract: {total / ours_x['seconds'] / 1e6:.0f} MB/s vs curl {total / curl_x['seconds'] / 1e6:.0f} MB/s "
          f"= {throughput:.2f} of a plain download (target >= {EXTRACT_TARGET}): "
          f"{'PASS' if throughput >= EXTRACT_TARGET else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
