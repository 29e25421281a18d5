"""Benchmark: ckpttools on a checkpoint served over HTTP and S3 (127.0.0.1) against downloading it.

Case ``large_1gb`` of bench_ls.py (1 GiB of float32 tensors in one shard), served by the servers of
tests/remote_servers.py on threads of this process, which count the bytes they send: the Range-honouring
HTTP server, and moto's S3 server (bucket ``bench``, filled by s3fs; curl signs its requests with
``--aws-sigv4``, ckpttools finds the endpoint and keys in ``AWS_*`` variables, as boto does).

- ``ls``: ``ckpttools ls --all URL`` against "download the checkpoint (curl), then ``ckpttools ls`` it".
  Target: faster, fetching no more than the index + 64 KiB. (Over S3, importing s3fs and botocore costs
  ckpttools a fixed ~0.5 s per process; plain HTTP files are read with the standard library.)
- ``extract``: ``ckpttools extract --all URL -o out.npz`` against ``curl`` downloading the same data
  shard to a file (the plain-download speed). Target: throughput at least 0.7 of curl's. The same with
  ``-o out.safetensors`` in the same rounds, with a ratio line of its own (reported; the target is npz's,
  the default format). Over HTTP only:
  moto reads the whole object for every ranged GET (its ``FakeKey.value``), so each 4 MiB range of the
  1 GB shard would cost moto a 1 GB read and the ratio would measure moto, not the client. The S3 client
  path is the same byte-source code with s3fs below it; the tests check its values against moto.

- round trips (HTTP): case ``medium_400`` (400 tensors of 256 KiB, stored in an order that is not their
  names') from a server that answers every GET after ``--latency-ms`` (default 20, a bucket's round trip):
  ``extract -o x.npz`` against curl of the data shard under the same delay; requests counted. Reported.

Every command is a child process; each round runs the competitors one after the other (interleaved), the
median of ``--repeat`` rounds is reported, with each child's CPU time and peak RSS (``os.wait4``). Before
every run (untimed) the command's previous outputs are deleted and ``sync`` run, as in bench_extract.py, so
every command writes a new file on a flushed page cache. (Otherwise curl, which truncates its previous
download and refills the pages it has just freed, is timed against an atomic writer whose new temporary
file needs fresh pages: on a VM that hands freed memory back to its host, that alone moved the ratio from
0.78 to 0.52 in one run.)

    python bench/bench_remote.py [--repeat 3] [--scheme http --scheme s3] [--latency-ms 20] [--workdir bench/out]
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests"))
from bench_extract import prepare  # noqa: E402
from bench_ls import DEFAULT_WORKDIR, byte_compile, ensure_case, find_ckpttools, run_child  # noqa: E402
from remote_servers import Counted, RangeServer, S3Server  # noqa: E402

CASE = "large_1gb"
ROUND_TRIP_CASE = "medium_400"  # 400 tensors of 256 KiB, stored not in name order (bench_ls.build_medium)
LS_TARGET, EXTRACT_TARGET, LS_BYTES_SLACK = 1.0, 0.7, 64 << 10
SCHEMES = ("http", "s3")
EXTRACT_FORMATS = ("npz", "safetensors")  # npz (the default) carries the target
BUCKET = "bench"


def _download_then_ls(ckpttools: str, curl: list[str], base: str, names: list[str], prefix_name: str,
                      into: Path) -> list[str]:
    fetches = [shlex.join([*curl, "-o", str(into / n), f"{base}/{n}"]) for n in names]
    return ["sh", "-c", " && ".join(fetches + [f"{ckpttools} ls --all {into / prefix_name} > /dev/null"])]


def _measure(server: Counted, label: str, cmd: list[str], outputs: list[Path], faults: dict[str, str]) -> dict:
    for output in outputs:
        prepare(output)
    server.reset()
    server.faults.update(faults)
    run = run_child(cmd, capture=False)
    if run.returncode != 0:
        raise SystemExit(f"{label} failed ({run.returncode}):\n{run.stderr[-2000:]}")
    return {"seconds": run.seconds, "cpu": run.cpu_seconds, "peak_mb": run.peak_kib * 1024 / 1e6,
            "bytes": server.bytes_served, "requests": len(server.requests)}


def _interleaved(server: Counted, tools: dict[str, tuple[list[str], list[Path]]], repeat: int,
                 faults: dict[str, str] | None = None) -> list[dict]:
    """Each command's summary over ``repeat`` interleaved rounds, after one untimed warm-up each (page cache,
    imports); ``faults`` are set on the server for every run."""
    runs: dict[str, list[dict]] = {label: [] for label in tools}
    for label, (cmd, outputs) in tools.items():
        _measure(server, label, cmd, outputs, faults or {})
    for _ in range(repeat):
        for label, (cmd, outputs) in tools.items():
            runs[label].append(_measure(server, label, cmd, outputs, faults or {}))
    return [_summary(label, runs[label]) for label in tools]


def _summary(label: str, runs: list[dict]) -> dict:
    return {"label": label, "seconds": statistics.median(r["seconds"] for r in runs),
            "cpu": statistics.median(r["cpu"] for r in runs), "peak_mb": max(r["peak_mb"] for r in runs),
            "bytes": max(r["bytes"] for r in runs), "requests": max(r["requests"] for r in runs)}


def _row(result: dict, peak: bool) -> str:
    """One command's line; ``peak`` False when children inherit this process's memory in their peak RSS (the
    high-water mark survives exec): moto holds the uploaded checkpoint here, several GB."""
    shown = f"{result['peak_mb']:7.1f} MB" if peak else "    n/a"
    return (f"  {result['label']:<46} {result['seconds']:8.3f} s (cpu {result['cpu']:6.2f} s)  "
            f"{result['bytes'] / 1e6:10.3f} MB fetched in {result['requests']:3d} requests  peak {shown}")


def _serve(scheme: str, directory: Path, names: list[str]) -> tuple[Counted, str, list[str]]:
    """A started server holding ``names`` of ``directory``; its base URL for ckpttools, and curl's arguments
    (base URL last)."""
    if scheme == "http":
        server = RangeServer(str(directory)).start()
        return server, server.url, ["curl", "-sf", server.url]
    server = S3Server().start()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=server.url,
                      AWS_DEFAULT_REGION="us-east-1")
    import s3fs

    fs = s3fs.S3FileSystem(endpoint_url=server.url, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    for name in names:
        fs.put_file(str(directory / name), f"{BUCKET}/{name}")
    signed = ["curl", "-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "testing:testing"]
    return server, f"s3://{BUCKET}", [*signed, f"{server.url}/{BUCKET}"]


def _run_scheme(scheme: str, manifest: dict, scratch: Path, repeat: int) -> None:
    prefix = Path(manifest["prefix"])
    names = [prefix.name + ".index"] + manifest["data_files"]
    index_size = (prefix.parent / names[0]).stat().st_size
    data = prefix.parent / manifest["data_files"][0]
    ckpttools = find_ckpttools(None)
    byte_compile(sys.executable)
    server, base, curl = _serve(scheme, prefix.parent, names)
    url = f"{base}/{prefix.name}"
    *curl_args, curl_base = curl
    tools = {  # label: (command, the files it writes)
        "ckpttools ls --all URL": (["sh", "-c", f"{ckpttools} ls --all {url} > /dev/null"], []),
        "curl download, then ckpttools ls": (_download_then_ls(ckpttools, curl_args, curl_base, names, prefix.name,
                                                               scratch), [scratch / n for n in names]),
    }
    if scheme == "http":  # see the module's docstring for S3
        for fmt in EXTRACT_FORMATS:
            out = scratch / f"x.{fmt}"
            tools[f"ckpttools extract --all URL -o x.{fmt}"] = ([ckpttools, "extract", "--all", url, "-o", str(out)],
                                                               [out])
        shard = scratch / "shard.bin"
        tools["curl the data shard to a file"] = ([*curl_args, "-o", str(shard), f"{curl_base}/{data.name}"], [shard])
    try:
        results = _interleaved(server, tools, repeat)
    finally:
        server.stop()
    ours_ls, their_ls = results[:2]
    total = data.stat().st_size
    print(f"case {CASE} over {scheme.upper()} on 127.0.0.1: index {index_size} B, data {total / 1e6:.1f} MB; "
          f"median of {repeat} interleaved rounds")
    for result in results:
        print(_row(result, peak=scheme == "http"))
    ls_ratio = their_ls["seconds"] / ours_ls["seconds"]
    ls_ok = ls_ratio > LS_TARGET and ours_ls["bytes"] <= index_size + LS_BYTES_SLACK
    print(f"{scheme} ls: {ls_ratio:.1f}x faster than download-then-list, fetching {ours_ls['bytes']} B vs "
          f"{their_ls['bytes']} B (target: faster, and <= index + 64 KiB): {'PASS' if ls_ok else 'FAIL'}")
    if len(results) < 4:
        print(f"{scheme} extract: not measured (moto reads the whole object for every ranged GET)")
        return
    *extracts, curl_x = results[2:]
    for fmt, ours_x in zip(EXTRACT_FORMATS, extracts):
        throughput = (total / ours_x["seconds"]) / (total / curl_x["seconds"])
        verdict = ("PASS" if throughput >= EXTRACT_TARGET else "FAIL") if fmt == "npz" else "reported"
        print(f"{scheme} extract to .{fmt}: {total / ours_x['seconds'] / 1e6:.0f} MB/s vs curl "
              f"{total / curl_x['seconds'] / 1e6:.0f} MB/s = {throughput:.2f} of a plain download "
              f"(target >= {EXTRACT_TARGET} for npz): {verdict}")


def _run_round_trips(manifest: dict, scratch: Path, repeat: int, latency_ms: float) -> None:
    """``extract`` of many medium tensors from an HTTP server that answers every GET after ``latency_ms`` (a
    bucket's round trip), against curl of the same data shard under the same delay."""
    prefix = Path(manifest["prefix"])
    data = prefix.parent / manifest["data_files"][0]
    server = RangeServer(str(prefix.parent)).start()
    server.slow_seconds = latency_ms / 1000
    out, shard = scratch / "x.npz", scratch / "shard.bin"
    tools = {
        "ckpttools extract --all URL -o x.npz": ([find_ckpttools(None), "extract", "--all",
                                                  f"{server.url}/{prefix.name}", "-o", str(out)], [out]),
        "curl the data shard to a file": (["curl", "-sf", "-o", str(shard), f"{server.url}/{data.name}"], [shard]),
    }
    try:
        ours, curl = _interleaved(server, tools, repeat, faults={"*": "slow"})
    finally:
        server.stop()
    total = data.stat().st_size
    print(f"case {ROUND_TRIP_CASE} over HTTP on 127.0.0.1, every GET answered after {latency_ms:g} ms: "
          f"{manifest['tensors']} tensors, data {total / 1e6:.1f} MB; median of {repeat} interleaved rounds")
    for result in (ours, curl):
        print(_row(result, peak=True))
    print(f"http extract with {latency_ms:g} ms round trips: {manifest['tensors']} tensors in {ours['requests']} "
          f"requests, {total / ours['seconds'] / 1e6:.0f} MB/s vs curl {total / curl['seconds'] / 1e6:.0f} MB/s = "
          f"{curl['seconds'] / ours['seconds']:.2f} of a plain download (reported)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scheme", action="append", choices=SCHEMES, help="http and/or s3 (default: both)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--latency-ms", type=float, default=20.0,
                        help="the round-trip case's delay before each GET is answered (0: skip the case)")
    args = parser.parse_args(argv)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BENCH.parent), os.environ.get("PYTHONPATH")]))
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    manifest = ensure_case(CASE, args.workdir.resolve(), fresh=False)
    scratch = args.workdir.resolve() / "remote"
    for scheme in args.scheme or SCHEMES:
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            _run_scheme(scheme, manifest, scratch, args.repeat)
            if scheme == "http" and args.latency_ms > 0:
                _run_round_trips(ensure_case(ROUND_TRIP_CASE, args.workdir.resolve(), fresh=False), scratch,
                                 args.repeat, args.latency_ms)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
