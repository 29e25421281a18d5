"""`ckpttools ls` through click's CliRunner (and once as a real subprocess).

Expectations come from the reader's API, which test_exact checks against
TensorFlow itself; here we check that the CLI shows exactly that.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ckpttools
from ckpttools.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
CNN = SAMPLES / "tf1_cnn"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def ls_json(*args: str) -> dict:
    code, out, err = run("ls", "--json", *args)
    assert code == 0, err
    return json.loads(out)


def plain_rows(out: str) -> list[list[str]]:
    return [line.split("\t") for line in out.splitlines()]


@pytest.fixture
def cnn_copy(tmp_path: Path) -> Path:
    """A private copy of the CNN sample that a test may damage."""
    return Path(shutil.copytree(CNN, tmp_path / "cnn"))


def test_plain_listing_shows_model_variables_only() -> None:
    code, out, err = run("ls", str(CNN))
    assert code == 0
    rows = plain_rows(out)
    with ckpttools.open_checkpoint(CNN) as ckpt:
        model = [v for v in ckpt if v.role == "model"]
        hidden = [v for v in ckpt if v.role != "model"]
    assert [row[0] for row in rows] == [v.name for v in model]
    for row, info in zip(rows, model):
        assert row[1:] == [info.dtype, "[" + ", ".join(map(str, info.shape)) + "]", str(info.size), str(info.nbytes)]
    assert any(name.endswith("/Adam") for name in (v.name for v in hidden))
    assert f"{len(hidden)} non-model variables hidden" in err
    assert f"total: {len(model)} variables, {sum(v.size for v in model):,} parameters" in err
    assert "using" in err and "model.ckpt-" in err  # says which checkpoint the directory resolved to


def test_all_shows_optimizer_state_and_parameters_exclude_it() -> None:
    doc = ls_json("--all", str(CNN))
    roles = {v["role"] for v in doc["variables"]}
    assert {"model", "optimizer", "training"} <= roles
    slots = [v for v in doc["variables"] if v["name"].endswith("/Adam_1")]
    assert slots and all(v["slot_of"] and v["slot_of"] + "/Adam_1" == v["name"] for v in slots)
    assert doc["totals"]["parameters"] == sum(v["size"] for v in doc["variables"] if v["role"] == "model")
    assert doc["hidden"]["variables"] == 0


def test_json_document_schema_and_totals() -> None:
    doc = ls_json(str(CNN))
    assert doc["schema"] == "ckpttools.ls/1"
    assert doc["checkpoint"]["format"] == "v2"
    assert "model.ckpt-" in doc["checkpoint"]["prefix"]
    variables = doc["variables"]
    assert doc["totals"] == {
        "variables": len(variables),
        "parameters": sum(v["size"] for v in variables),
        "nbytes": sum(v["nbytes"] for v in variables),
    }
    for v in variables:
        assert v["size"] == int(np.prod(v["shape"]))
        assert v["key"] == v["name"]
    assert doc["hidden"]["variables"] == sum(doc["hidden"]["roles"].values()) > 0


def test_scopes_select_numeric_ranges_at_any_depth() -> None:
    doc = ls_json("--scopes", "conv_block[1-3]", str(CNN))
    names = [v["name"] for v in doc["variables"]]
    assert names and all(any(f"/conv_block{k}/" in n for k in (1, 2, 3)) for n in names)
    everything = ls_json(str(CNN))["variables"]
    expected = [v["name"] for v in everything if any(f"conv_block{k}/" in v["name"] for k in (1, 2, 3))]
    assert names == expected


def test_unmatched_pattern_is_reported() -> None:
    code, out, err = run("ls", "--scopes", "no_such_scope", str(CNN))
    assert code == 0 and out == ""
    assert "pattern 'no_such_scope' matched no variable" in err


def test_sort_by_size() -> None:
    sizes = [v["nbytes"] for v in ls_json("--sort", "size", str(CNN))["variables"]]
    assert sizes == sorted(sizes, reverse=True)


def test_tree_totals_add_up() -> None:
    doc = ls_json("--tree", str(CNN))
    tree = doc["tree"]
    assert tree["parameters"] == doc["totals"]["parameters"]

    def check(node: dict) -> None:
        if node["children"]:
            assert node["parameters"] == sum(child["parameters"] for child in node["children"])
            for child in node["children"]:
                check(child)

    check(tree)
    code, out, _ = run("ls", "--tree", str(CNN))
    assert code == 0 and "conv_block1" in out and f"{tree['parameters']} parameters" in out


def test_stats_match_numpy() -> None:
    doc = ls_json("--stats", str(CNN))
    with ckpttools.open_checkpoint(CNN) as ckpt:
        for v in doc["variables"]:
            value = ckpt.get(v["name"]).astype(np.float64)
            assert v["stats"]["min"] == value.min() and v["stats"]["max"] == value.max()
            assert v["stats"]["mean"] == pytest.approx(value.mean(), rel=1e-9, abs=1e-12)
            assert v["stats"]["std"] == pytest.approx(value.std(), rel=1e-9, abs=1e-12)
            assert v["stats"]["nan"] == 0 and v["stats"]["inf"] == 0


def test_stats_plain_has_extra_columns() -> None:
    code, out, _ = run("ls", "--stats", str(CNN))
    assert code == 0
    assert {len(row) for row in plain_rows(out)} == {11}


def test_sharded_sample_lists_every_shard() -> None:
    doc = ls_json("--all", str(SAMPLES / "sharded"))
    with ckpttools.open_checkpoint(SAMPLES / "sharded") as ckpt:
        shards = {shard for v in ckpt for shard in v.shards}
        assert len(ckpt.data_files()) >= 3 and shards == set(range(len(ckpt.data_files())))
    assert len(doc["variables"]) == len(ckpt)


def test_tf2_sample_shows_layer_paths() -> None:
    doc = ls_json("--all", str(SAMPLES / "tf2_keras"))
    model = [v for v in doc["variables"] if v["role"] == "model"]
    assert model and not any(v["name"].startswith("optimizer/") for v in model)
    assert any(v["key"].startswith("optimizer/_trainable_variables/") for v in model)
    slots = [v for v in doc["variables"] if v["slot_of"]]
    names = {v["name"] for v in doc["variables"]}
    assert slots and all(v["slot_of"] in names for v in slots)


# --- bad input ---------------------------------------------------------------


def error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_missing_path(tmp_path: Path) -> None:
    code, _, err = run("ls", str(tmp_path / "nothing"))
    assert code == 3
    assert str(tmp_path / "nothing") in error_line(err)


def test_directory_without_checkpoint(tmp_path: Path) -> None:
    code, _, err = run("ls", str(tmp_path))
    assert code == 3 and "no checkpoint" in error_line(err)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world" * 20)
    code, _, err = run("ls", str(junk))
    assert code == 4 and "not a TensorFlow checkpoint" in error_line(err)


def index_of(directory: Path) -> Path:
    return sorted(directory.glob("*.index"))[-1]


@pytest.mark.parametrize("keep", [0, 10, 47, -1])
def test_truncated_index(cnn_copy: Path, keep: int) -> None:
    index = index_of(cnn_copy)
    data = index.read_bytes()
    index.write_bytes(data[: keep if keep >= 0 else len(data) - 1])
    code, _, err = run("ls", str(index))
    assert code == 4
    assert str(index) in error_line(err)


def test_corrupted_index_byte(cnn_copy: Path) -> None:
    index = index_of(cnn_copy)
    data = bytearray(index.read_bytes())
    data[len(data) // 3] ^= 0xFF
    index.write_bytes(bytes(data))
    code, _, err = run("ls", str(index))
    assert code == 4 and "corrupt" in error_line(err)


def test_absurd_length_fields_fail_fast(cnn_copy: Path) -> None:
    """Every single-byte corruption of the index fails cleanly or lists; none hangs or crashes."""
    index = index_of(cnn_copy)
    original = index.read_bytes()
    for position in range(0, len(original), max(1, len(original) // 200)):
        damaged = bytearray(original)
        damaged[position] = 0xFF
        index.write_bytes(bytes(damaged))
        code, _, err = run("ls", str(index))
        assert code in (0, 4), (position, err)
        if code:
            error_line(err)


def test_checksum_mismatch_names_file_and_variable(cnn_copy: Path) -> None:
    index = index_of(cnn_copy)
    with ckpttools.open_checkpoint(index) as ckpt:
        biggest = max(ckpt, key=lambda v: v.nbytes)
        data_file = Path(ckpt.data_files()[biggest.shards[0]])
        offset = ckpt._reader._entries[biggest.key].offset  # noqa: SLF001 - test reaches for the byte to damage
    data = bytearray(data_file.read_bytes())
    data[offset + 3] ^= 0x01
    data_file.write_bytes(bytes(data))
    code, _, _ = run("ls", str(index))
    assert code == 0  # listing needs only the index
    code, _, err = run("ls", "--stats", "--all", str(index))
    line = error_line(err)
    assert code == 4 and "checksum mismatch" in line and str(data_file) in line and biggest.key in line


def test_missing_data_shard_lists_with_a_note(cnn_copy: Path) -> None:
    index = index_of(cnn_copy)
    for data_file in cnn_copy.glob(index.name.replace(".index", ".data-*")):
        data_file.unlink()
    code, out, err = run("ls", str(index))
    assert code == 0 and out
    assert "data file missing" in err
    code, _, err = run("ls", "--stats", str(index))
    assert code == 4 and "cannot read data shard" in error_line(err)


def test_short_data_shard(cnn_copy: Path) -> None:
    index = index_of(cnn_copy)
    data_file = next(cnn_copy.glob(index.name.replace(".index", ".data-*")))
    data_file.write_bytes(data_file.read_bytes()[:100])
    code, _, err = run("ls", "--stats", "--all", str(index))
    assert code == 4 and "too short" in error_line(err)


def test_bad_pattern_is_a_usage_error() -> None:
    code, _, err = run("ls", "--scopes", "conv[1-", str(CNN))
    assert code == 2 and "conv[1-" in error_line(err)


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--debug", "ls", str(tmp_path / "nothing")])
    assert isinstance(result.exception, ckpttools.CkptError)


def test_real_subprocess_json() -> None:
    done = subprocess.run([sys.executable, "-m", "ckpttools", "ls", "--json", str(CNN)], capture_output=True,
                          text=True, check=True)
    assert json.loads(done.stdout)["totals"]["variables"] > 0
    missing = subprocess.run([sys.executable, "-m", "ckpttools", "ls", "/no/such/ckpt"], capture_output=True,
                             text=True)
    assert missing.returncode == 3
    assert missing.stderr.strip() == "Error: /no/such/ckpt: no such file, directory or checkpoint prefix"
    assert "Traceback" not in missing.stderr


def test_version_and_help() -> None:
    code, out, _ = run("--version")
    assert code == 0 and ckpttools.__version__ in out
    code, out, _ = run("ls", "--help")
    assert code == 0 and "Examples:" in out and "--scopes" in out


@pytest.mark.parametrize(("sample", "expect_column"), [("tf2_keras", True), ("tf1_cnn", False)])
def test_terminal_table_shows_tf2_variable_names(sample: str, expect_column: bool) -> None:
    """On a terminal, TF2 object paths come with the variables' own names (Keras: sequential/conv/kernel)."""
    from rich.console import Console

    from ckpttools.cli.rich_render import RichOutput
    from ckpttools.ops.listing import list_variables

    console = Console(record=True, width=200, force_terminal=True)
    with ckpttools.open_checkpoint(SAMPLES / sample) as ckpt:
        listing = list_variables(ckpt)
        RichOutput(console, Console(stderr=True)).table(ckpt, listing, None)
        text = console.export_text()
        assert ("variable name" in text) == expect_column
        for info in listing.shown:
            assert info.name in text
            if expect_column:
                assert info.original_name and info.original_name in text


def test_ls_pauses_the_cyclic_collector_only_while_it_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ls runs with the collector off (its listing builds no cycles) and turns it back on, also after a failure."""
    import gc

    from ckpttools.cli import render

    seen = []
    original = render.PlainOutput.table
    monkeypatch.setattr(render.PlainOutput, "table", lambda *a: (seen.append(gc.isenabled()), original(*a)))
    assert run("ls", str(CNN))[0] == 0
    assert seen == [False] and gc.isenabled()
    assert run("ls", str(tmp_path / "missing"))[0] == 3
    assert gc.isenabled()
