"""Temporary output files: named after the output and the writing pid, removed once their process is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from ckpttools.cli import main
from ckpttools.errors import OutputError
from ckpttools.storage.atomic import HOST, atomic_path, partial_path, remove_stale_partials

CNN = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn"


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_partial_path_names_output_host_and_pid(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    assert partial_path(str(out)) == str(tmp_path / f".w.npz.ckpttools-partial-{HOST}-{os.getpid()}")
    assert partial_path(str(out), 2).endswith(f"-{os.getpid()}-2")


def test_stale_partials_removed_live_and_foreign_kept(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    gone = dead_pid()
    prefix = f".w.npz.ckpttools-partial-{HOST}"
    stale = [tmp_path / f"{prefix}-{gone}", tmp_path / f"{prefix}-{gone}-1"]
    live = tmp_path / f".w.npz.ckpttools-partial-{HOST}-{os.getppid()}"  # our parent runs
    mine = Path(partial_path(str(out)))
    other_output = tmp_path / f".v.npz.ckpttools-partial-{HOST}-{gone}"
    unrelated = tmp_path / f".w.npz.ckpttools-partial-{HOST}-{gone}.bak"
    other_host = tmp_path / f".w.npz.ckpttools-partial-{HOST}x-{gone}"  # its pids mean nothing here
    for path in (*stale, live, mine, other_output, unrelated, other_host):
        path.write_bytes(b"x")
    assert sorted(remove_stale_partials(str(out))) == sorted(str(p) for p in stale)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in (live, mine, other_output, unrelated, other_host))
    assert remove_stale_partials(str(tmp_path / "missing-dir" / "w.npz")) == []


def test_atomic_path_writes_under_the_partial_name(tmp_path: Path) -> None:
    out = tmp_path / "w.txt"
    with atomic_path(str(out)) as tmp:
        assert tmp == partial_path(str(out))
        Path(tmp).write_text("done")
        assert not out.exists()
    assert out.read_text() == "done" and sorted(p.name for p in tmp_path.iterdir()) == ["w.txt"]


def test_atomic_path_takes_a_second_name_when_the_first_is_busy(tmp_path: Path) -> None:
    out = tmp_path / "w.txt"
    Path(partial_path(str(out))).write_text("another write of this process")
    with atomic_path(str(out)) as tmp:
        assert tmp == partial_path(str(out), 1)
        Path(tmp).write_text("done")
    assert out.read_text() == "done"


def test_failed_write_removes_its_partial_and_keeps_output(tmp_path: Path) -> None:
    out = tmp_path / "w.txt"
    out.write_text("precious")
    with pytest.raises(OutputError):
        with atomic_path(str(out)):
            pass
    with pytest.raises(RuntimeError):
        with atomic_path(str(out), force=True) as tmp:
            Path(tmp).write_text("half")
            raise RuntimeError("stop")
    assert out.read_text() == "precious" and sorted(p.name for p in tmp_path.iterdir()) == ["w.txt"]


@pytest.mark.parametrize("force", [False, True])
def test_extract_removes_stale_partials_and_says_so(tmp_path: Path, force: bool) -> None:
    out = tmp_path / "w.npz"
    stale = tmp_path / f".w.npz.ckpttools-partial-{HOST}-{dead_pid()}"
    stale.write_bytes(b"\0" * 1000)
    if force:
        out.write_bytes(b"old")
    args = ["extract", str(CNN), "-o", str(out)] + (["--force"] if force else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.stderr
    said = "".join(result.stderr.split())  # rich wraps long paths
    assert f"removed{stale}" in said and "interruptedrun" in said
    assert zipfile.is_zipfile(out) and sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_extract_json_lists_removed_partials(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    stale = tmp_path / f".w.npz.ckpttools-partial-{HOST}-{dead_pid()}"
    stale.write_bytes(b"x")
    result = CliRunner().invoke(main, ["extract", str(CNN), "-o", str(out), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["removed_partials"] == [str(stale)]
