"""Path resolution: every way a user may point at a checkpoint.

These tests exercise only the path logic, so placeholder files stand in for
checkpoint files; reading real checkpoints is covered in test_exact/test_cli.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from ckpttools.errors import NotACheckpointError, NotFoundError
from ckpttools.formats.sstable import MAGIC
from ckpttools.resolve import resolve

TABLE_TAIL = b"\x00" * 40 + MAGIC.to_bytes(8, "little")  # enough for the magic-number sniff


def make_v2(directory: Path, name: str, shards: int = 1) -> str:
    prefix = directory / name
    (directory / f"{name}.index").write_bytes(TABLE_TAIL)
    for k in range(shards):
        (directory / f"{name}.data-{k:05d}-of-{shards:05d}").write_bytes(b"")
    (directory / f"{name}.meta").write_bytes(b"")
    return str(prefix)


def test_prefix_and_each_of_its_files(tmp_path: Path) -> None:
    prefix = make_v2(tmp_path, "model.ckpt-20", shards=2)
    for given in (prefix, prefix + ".index", prefix + ".meta", prefix + ".data-00001-of-00002"):
        found = resolve(given)
        assert (found.format, found.prefix, found.note) == ("v2", prefix, None)


def test_directory_uses_state_file(tmp_path: Path) -> None:
    make_v2(tmp_path, "model.ckpt-10")
    newest = make_v2(tmp_path, "model.ckpt-20")
    older = make_v2(tmp_path, "model.ckpt-5")
    (tmp_path / "checkpoint").write_text(
        f'model_checkpoint_path: "model.ckpt-5"\nall_model_checkpoint_paths: "{newest}"\n'
    )
    found = resolve(str(tmp_path))
    assert found.prefix == older
    assert "checkpoint" in found.note


def test_state_file_with_foreign_absolute_path_falls_back_to_basename(tmp_path: Path) -> None:
    prefix = make_v2(tmp_path, "model.ckpt-300")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/home/someone/else/run7/model.ckpt-300"\n')
    found = resolve(str(tmp_path))
    assert found.prefix == prefix
    assert "/home/someone/else/run7/model.ckpt-300" in found.note


def test_state_file_naming_a_missing_checkpoint_is_named_in_the_error(tmp_path: Path) -> None:
    """Only a state file from another machine (a real pixel_link run directory): the error says what it names,
    not that there is no 'checkpoint' file."""
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/home/someone/run7/model.ckpt-0"\n')
    with pytest.raises(NotFoundError, match=r"checkpoint names /home/someone/run7/model.ckpt-0, which does not exist"):
        resolve(str(tmp_path))


def test_saved_model_directory_without_saved_model_pb_lists_its_variables(tmp_path: Path) -> None:
    """A SavedModel copied without its (large) saved_model.pb: its variables are still a checkpoint."""
    (tmp_path / "variables").mkdir()
    prefix = make_v2(tmp_path / "variables", "variables")
    found = resolve(str(tmp_path))
    assert (found.format, found.prefix, found.saved_model) == ("v2", prefix, True)
    assert "without a saved_model.pb" in found.note


def test_directory_without_state_file_takes_newest_step(tmp_path: Path) -> None:
    for step in (9, 100, 20):
        make_v2(tmp_path, f"model.ckpt-{step}")
    found = resolve(str(tmp_path))
    assert found.prefix == str(tmp_path / "model.ckpt-100")
    assert "newest" in found.note


def test_stale_state_file_falls_back_to_newest(tmp_path: Path) -> None:
    make_v2(tmp_path, "model.ckpt-7")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-999"\n')
    found = resolve(str(tmp_path))
    assert found.prefix == str(tmp_path / "model.ckpt-7")
    assert "model.ckpt-999" in found.note


def test_saved_model_directory(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"")
    (tmp_path / "variables").mkdir()
    prefix = make_v2(tmp_path / "variables", "variables")
    found = resolve(str(tmp_path))
    assert found.prefix == prefix and found.saved_model


def test_v1_file_and_v1_shards(tmp_path: Path) -> None:
    single = tmp_path / "one" / "model.ckpt-1000"
    single.parent.mkdir()
    single.write_bytes(TABLE_TAIL)
    found = resolve(str(single))
    assert (found.format, found.files) == ("v1", (str(single),))
    assert resolve(str(single.parent)).files == (str(single),)

    shards = [tmp_path / f"model.ckpt-7-{k:05d}-of-00002" for k in range(2)]
    for shard in shards:
        shard.write_bytes(TABLE_TAIL)
    found = resolve(str(tmp_path / "model.ckpt-7"))
    assert found.format == "v1" and found.files == tuple(str(s) for s in shards)
    assert resolve(str(tmp_path / "model.ckpt-7-?????-of-00002")).files == found.files


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such file"):
        resolve(str(tmp_path / "nope"))


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no checkpoint in this directory"):
        resolve(str(tmp_path))


def test_data_file_without_index(tmp_path: Path) -> None:
    data = tmp_path / "model.ckpt-1.data-00000-of-00001"
    data.write_bytes(b"")
    with pytest.raises(NotFoundError, match="index"):
        resolve(str(data))


def test_file_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(NotACheckpointError, match="not a TensorFlow checkpoint"):
        resolve(str(text))
    graph = tmp_path / "graph.pb"
    graph.write_bytes(os.urandom(64))
    with pytest.raises(NotACheckpointError, match="ckpttools graph"):
        resolve(str(graph))


HTML_PAGE = "\n\n<!DOCTYPE html>\n<html lang=\"en\">\n<head><title>Page not found · GitHub</title></head>\n"
LFS_POINTER = ("version https://git-lfs.github.com/spec/v1\n"
               "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 1234567\n")


@pytest.mark.parametrize(("content", "cause"), [(HTML_PAGE, "an HTML page ('Page not found"),
                                                (LFS_POINTER, "a Git LFS pointer"), ("", "an empty file")])
def test_a_failed_download_is_named_as_such(tmp_path: Path, content: str, cause: str) -> None:
    """A web page saved as frozen_inference_graph.pb (seen in a public repository), an LFS pointer, an
    empty file: ls and graph say what the file is instead of 'not a checkpoint' or a parse error."""
    from click.testing import CliRunner

    from ckpttools.cli import main

    path = tmp_path / "frozen_inference_graph.pb"
    path.write_text(content)
    with pytest.raises(NotACheckpointError, match=re.escape(f"it is {cause}")):
        resolve(str(path))
    for command in ("ls", "graph"):
        result = CliRunner().invoke(main, [command, str(path)])
        said = cause if content else "empty"
        assert result.exit_code == 4 and said in result.stderr and len(result.stderr.splitlines()) == 1
