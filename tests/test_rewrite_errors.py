"""``ckpttools rewrite`` on bad input: one clear line, a documented exit code, nothing left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main
from ckpttools.formats import bundle_writer
from ckpttools.ops import rewrite as rewrite_module


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["rewrite", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def tf1(sample_dir: Path) -> str:
    return str(sample_dir / "tf1_cnn")


def one_error_line(stderr: str, *parts: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    for part in parts:
        assert part in lines[0], lines[0]
    assert "Traceback" not in stderr


def test_map_collision_is_a_usage_error(tf1: str, tmp_path: Path) -> None:
    code, _, err = run(tf1, "-o", str(tmp_path / "out"), "--map", r"re:conv_block\d=block")
    assert code == 2
    one_error_line(err, "both map to 'cnn/block/")
    assert list(tmp_path.iterdir()) == []


def test_unknown_cast_dtype(tf1: str, tmp_path: Path) -> None:
    code, _, err = run(tf1, "-o", str(tmp_path / "out"), "--cast", "float32=bfloat61")
    assert code == 2
    one_error_line(err, "unknown dtype 'bfloat61'")


def test_averaged_inputs_that_differ_name_the_first_difference(tf1: str, sample_dir: Path, tmp_path: Path) -> None:
    code, _, err = run(tf1, "--average", str(sample_dir / "sharded"), "-o", str(tmp_path / "out"))
    assert code == 4
    one_error_line(err, "sharded/model.ckpt-100: has no 'beta1_power'")
    assert list(tmp_path.iterdir()) == []


def test_missing_data_shard_is_named(sample_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(sample_dir / "sharded", source)
    (source / "model.ckpt-100.data-00001-of-00003").unlink()
    (tmp_path / "out").mkdir()
    code, _, err = run(str(source), "-o", str(tmp_path / "out" / "model.ckpt"))
    assert code == 4
    one_error_line(err, "model.ckpt-100.data-00001-of-00003: data file missing")
    assert list((tmp_path / "out").iterdir()) == []


def test_existing_output_is_kept_unless_force(tf1: str, tmp_path: Path) -> None:
    out = str(tmp_path / "model.ckpt")
    assert run(tf1, "-o", out, "--strip-optimizer")[0] == 0
    before = (tmp_path / "model.ckpt.index").read_bytes()
    code, _, err = run(tf1, "-o", out)
    assert code == 5
    one_error_line(err, "already exists", "--force")
    assert (tmp_path / "model.ckpt.index").read_bytes() == before
    assert run(tf1, "-o", out, "--force")[0] == 0
    assert (tmp_path / "model.ckpt.index").read_bytes() != before
    assert (tmp_path / "model.ckpt.meta").exists()  # nothing renamed or removed: the graph still matches
    assert run(tf1, "-o", out, "--force", "--scopes", "logits")[0] == 0
    assert not (tmp_path / "model.ckpt.meta").exists()  # the old graph no longer describes the output


def test_missing_or_read_only_output_directory(tf1: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(tf1, "-o", str(tmp_path / "nodir" / "model.ckpt"))
    assert code == 5
    one_error_line(err, "does not exist")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: answer as the directory's permissions say
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real(p, mode))
    try:
        code, _, err = run(tf1, "-o", str(locked / "model.ckpt"))
    finally:
        locked.chmod(0o755)
    assert code == 5
    one_error_line(err, "not writable")
    assert list(locked.iterdir()) == []


def test_a_directory_as_output_is_refused(tf1: str, tmp_path: Path) -> None:
    code, _, err = run(tf1, "-o", str(tmp_path))
    assert code == 5
    one_error_line(err, "is a directory", "model.ckpt")
    assert list(tmp_path.iterdir()) == []


def test_writing_onto_the_source_is_refused(tf1: str, sample_dir: Path) -> None:
    before = sorted(p.name for p in (sample_dir / "tf1_cnn").iterdir())
    code, _, err = run(tf1, "-o", str(sample_dir / "tf1_cnn" / "model.ckpt-20"), "--force")
    assert code == 5
    one_error_line(err, "is the source checkpoint")
    assert sorted(p.name for p in (sample_dir / "tf1_cnn").iterdir()) == before


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes are written."""

    def __init__(self, f, room: list[int]) -> None:
        self._f, self._room = f, room

    def write(self, data) -> int:
        self._room[0] -= len(data)
        if self._room[0] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._f.write(data)

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._f.close()


def _full_copies(room: list[int]):
    """``copy_range`` failing with ENOSPC once ``room`` bytes are copied (unchanged tensors go through it)."""
    real = bundle_writer.copy_range

    def copy(src: int, src_offset: int, dst: int, dst_offset: int, size: int) -> None:
        room[0] -= size
        if room[0] < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(src, src_offset, dst, dst_offset, size)

    return copy


@pytest.mark.parametrize("options", [[], ["--cast", "float32=float16"]])  # copied by the kernel; written
def test_disk_full_mid_write_leaves_nothing(tf1: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            options: list[str]) -> None:
    room = [5000]
    monkeypatch.setattr(bundle_writer, "open", lambda *a, **k: _FullDisk(open(*a, **k), room), raising=False)
    monkeypatch.setattr(bundle_writer, "copy_range", _full_copies(room))
    code, _, err = run(tf1, "-o", str(tmp_path / "model.ckpt"), *options)
    assert code == 5
    one_error_line(err, "model.ckpt")
    assert "space" in err.lower() or "disk full" in err.lower()
    assert list(tmp_path.iterdir()) == []


def _damaged_copy(sample_dir: Path, tmp_path: Path, truncate: bool) -> Path:
    """tf1_cnn with the model variable stored last damaged: its last byte flipped, or cut off."""
    source = tmp_path / "src"
    shutil.copytree(sample_dir / "tf1_cnn", source)
    with ckpttools.open_checkpoint(str(source)) as ckpt:
        stored = max((ckpt.stored_ranges()[v.key] for v in ckpt if v.role == "model"), key=lambda r: r.offset)
    data = Path(stored.path)
    raw = data.read_bytes()
    end = stored.offset + stored.size
    data.write_bytes(raw[: end - 1] if truncate else raw[: end - 1] + bytes([raw[end - 1] ^ 1]) + raw[end:])
    (tmp_path / "out").mkdir()
    return source


@pytest.mark.parametrize(("truncate", "message"), [(False, "checksum mismatch in '"), (True, "file too short")])
@pytest.mark.parametrize("options", [[], ["--map", "cnn/=net/"], ["--strip-optimizer"]])
def test_a_corrupt_source_is_not_copied(sample_dir: Path, tmp_path: Path, truncate: bool, message: str,
                                        options: list[str]) -> None:
    source = _damaged_copy(sample_dir, tmp_path, truncate)
    code, _, err = run(str(source), "-o", str(tmp_path / "out" / "model.ckpt"), *options)
    assert code == 4
    one_error_line(err, "model.ckpt-20.data-00000-of-00001", message)
    assert list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_mid_write_leaves_nothing(tf1: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = rewrite_module._write_entry

    def interrupted(*args) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        real(*args)

    monkeypatch.setattr(rewrite_module, "_write_entry", interrupted)
    code, _, err = run(tf1, "-o", str(tmp_path / "model.ckpt"))
    assert code == 130
    one_error_line(err, "interrupted; nothing was written")
    assert list(tmp_path.iterdir()) == []


def test_dry_run_and_json_write_nothing(tf1: str, tmp_path: Path) -> None:
    code, out, _ = run(tf1, "-o", str(tmp_path / "m"), "--strip-optimizer", "--map", "cnn/=net/", "--dry-run", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["schema"] == "ckpttools.rewrite/1" and document["dry_run"] is True
    names = {v["out_key"] for v in document["plan"]["variables"]}
    assert "net/logits/kernel" in names and not any("Adam" in name for name in names)
    assert {d["reason"] for d in document["plan"]["dropped"]} >= {"optimizer state (--strip-optimizer)"}
    assert list(tmp_path.iterdir()) == []
    code, out, err = run(tf1, "--scopes", "logits", "--dry-run")  # piped: tab-separated plan lines
    assert code == 0 and "cnn/logits/kernel\tcnn/logits/kernel\tfloat32\t[16, 10]\tcopied" in out
    assert "plan: 7 variables (7 copied)" in err


def test_api_mirrors_the_command(tf1: str, tmp_path: Path) -> None:
    report = ckpttools.rewrite(tf1, str(tmp_path / "m"), scopes=["logits"], cast=["float32=float16"])
    assert report.to_dict()["schema"] == "ckpttools.rewrite/1"
    with ckpttools.open_checkpoint(str(tmp_path / "m")) as ckpt:
        assert ckpt.info("cnn/logits/kernel").dtype == "float16"
    assert (tmp_path / "checkpoint").read_text().startswith('model_checkpoint_path: "m"')


REWRITE_PROBE = """
import json, sys
from ckpttools.cli import main
source, out, roots, *options = sys.argv[1:]
try:
    main(["rewrite", source, "-o", out, *options], prog_name="ckpttools")
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in roots.split(","))))
"""


def imported_by_rewrite(tf1: str, out: Path, roots: str, *options: str) -> list[str]:
    """The modules under ``roots`` (comma-separated) that a ``rewrite`` in a fresh process imports."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", REWRITE_PROBE, tf1, str(out), roots, *options],
                            capture_output=True, text=True, check=True)
    assert (out.parent / f"{out.name}.index").exists()
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_rewriting_imports_no_tensorflow(tf1: str, tmp_path: Path) -> None:
    options = ["--strip-optimizer", "--cast", "float32=bfloat16", "--average", tf1]
    assert imported_by_rewrite(tf1, tmp_path / "m", "tensorflow,keras,tensorboard", *options) == []


def test_a_rewrite_that_only_copies_starts_without_numpy(tf1: str, tmp_path: Path) -> None:
    """numpy's import (0.1 s of CPU) would be a tenth of the 20,000-tensor rename's budget; copying needs none."""
    assert imported_by_rewrite(tf1, tmp_path / "m", "numpy", "--strip-optimizer", "--map", "cnn/=net/") == []


def test_map_file_and_max_shard_size(tf1: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.txt"
    rules.write_text("# rename the network\ncnn/=net/\n\nre:conv_block(\\d)=block\\1\n")
    (tmp_path / "out").mkdir()
    out = str(tmp_path / "out" / "m")
    code, _, err = run(tf1, "-o", out, "--map-file", str(rules), "--strip-optimizer", "--max-shard-size", "4kB")
    assert code == 0, err
    shards = sorted(p.name for p in (tmp_path / "out").glob("m.data-*"))
    assert len(shards) > 2 and shards[0].endswith(f"-of-{len(shards):05d}")
    with ckpttools.open_checkpoint(out) as ours, ckpttools.open_checkpoint(tf1) as source:
        assert "net/block1/conv/kernel" in ours
        assert ours.get("net/block1/conv/kernel").tobytes() == source.get("cnn/conv_block1/conv/kernel").tobytes()
    rules.write_text("cnn/=net/\nbroken\n")
    code, _, err = run(tf1, "-o", out + "2", "--map-file", str(rules))
    assert code == 2
    one_error_line(err, "rules.txt:2")


def test_set_step_adds_a_global_step_where_there_is_none(tf1: str, tmp_path: Path) -> None:
    weights = tmp_path / "w.npz"
    ckpttools.write_weights(tf1, str(weights), scopes=["logits"])
    report = ckpttools.rewrite(str(weights), str(tmp_path / "m"), set_step=5)
    assert "global_step added (the source has none)" in report.plan.notes
    with ckpttools.open_checkpoint(str(tmp_path / "m")) as ckpt:
        assert ckpt.get("global_step").tolist() == 5 and ckpt.info("global_step").dtype == "int64"
        assert len(ckpt) == 3


def test_tf2_rename_is_refused_with_exit_2(sample_dir: Path, tmp_path: Path) -> None:
    code, _, err = run(str(sample_dir / "tf2_keras"), "-o", str(tmp_path / "m"), "--map", "model/=net/")
    assert code == 2
    one_error_line(err, "cannot rename a TF2 object-based checkpoint")
    assert list(tmp_path.iterdir()) == []


def test_a_rewrite_without_operations_is_byte_identical_to_tensorflows_files(tf1: str, tmp_path: Path) -> None:
    source = Path(tf1) / "model.ckpt-20"
    report = ckpttools.rewrite(tf1, str(tmp_path / "model.ckpt-20"))
    assert report.meta == str(tmp_path / "model.ckpt-20.meta")
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        assert (tmp_path / f"model.ckpt-20{suffix}").read_bytes() == Path(f"{source}{suffix}").read_bytes(), suffix
