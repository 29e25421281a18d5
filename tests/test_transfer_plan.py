"""The transfer plan and --map rules: decided from names, shapes and dtypes, before anything runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import ckpttools
from ckpttools.errors import NotFoundError, PatternError, TransferError
from ckpttools.transfer import Renamer, TargetVariable, make_plan
from ckpttools.transfer.plan import NEW, RESTORED, SKIPPED_DTYPE, SKIPPED_SHAPE

CNN = Path(__file__).resolve().parent.parent / "sample_checkpoints" / "tf1_cnn"


@pytest.mark.parametrize(
    ("rules", "name", "expected"),
    [
        ((), "cnn/conv1/w", "cnn/conv1/w"),
        (("conv1=conv_block1",), "Net/conv1/w", "Net/conv_block1/w"),
        (("conv1=conv_block1",), "Net/conv10/w", "Net/conv10/w"),  # whole components only
        (("Net/=cnn/",), "Net/conv1/w", "cnn/conv1/w"),
        (("Net=cnn",), "MyNet/conv1/w", "MyNet/conv1/w"),
        ((r"re:^tower_0/(.*)=\1", "Net/=cnn/"), "tower_0/Net/conv1/w", "cnn/conv1/w"),
        ((r"re:block(\d)=conv_block\1",), "cnn/block3/k", "cnn/conv_block3/k"),
        (("a/b=c",), "x/a/b/w", "x/c/w"),
        (("head=",), "cnn/head/w", "cnn/w"),  # dropping a scope
    ],
)
def test_rename_rules(rules: tuple[str, ...], name: str, expected: str) -> None:
    assert Renamer(rules)(name) == expected


@pytest.mark.parametrize("rule", ["nothing", "=x", "re:(unclosed=x", r"re:a=\2"])
def test_bad_rules_are_usage_errors(rule: str) -> None:
    with pytest.raises(PatternError, match="--map"):
        Renamer([rule])


@pytest.fixture(scope="module")
def ckpt():
    with ckpttools.open_checkpoint(CNN) as opened:
        yield opened


def targets_like(ckpt, rename=lambda name: name, change=None) -> list[TargetVariable]:
    """The source's model variables as a target graph would hold them, optionally altered."""
    out = []
    for info in ckpt:
        if info.role == "model":
            target = TargetVariable(rename(info.name), info.shape, info.dtype)
            out.append(change(target) if change else target)
    return out


def test_restores_selected_and_leaves_the_rest_new(ckpt) -> None:
    plan = make_plan(ckpt, targets_like(ckpt), scopes=["conv_block[1-3]"])
    restored = {e.target.name for e in plan.restored}
    assert restored and all(any(f"conv_block{k}/" in n for k in (1, 2, 3)) for n in restored)
    assert {e.target.name for e in plan.new} == {t.name for t in targets_like(ckpt)} - restored
    assert all(e.source.name == e.target.name for e in plan.restored)
    assert plan.unmatched == []


def test_optimizer_state_only_when_asked(ckpt) -> None:
    slots = [TargetVariable(i.name, i.shape, i.dtype, trainable=False) for i in ckpt if i.name.endswith("/Adam")]
    plan = make_plan(ckpt, targets_like(ckpt) + slots)
    assert {e.target.name for e in plan.new} == {s.name for s in slots}
    plan = make_plan(ckpt, targets_like(ckpt) + slots, with_optimizer_state=True)
    assert {s.name for s in slots} <= {e.target.name for e in plan.restored}


def test_mapping_onto_renamed_targets(ckpt) -> None:
    targets = targets_like(ckpt, rename=lambda n: n.replace("cnn/", "Net/", 1))
    assert make_plan(ckpt, targets).restored == []
    plan = make_plan(ckpt, targets, mapping=["cnn/=Net/"])
    assert len(plan.restored) == len(targets)


def test_shape_and_dtype_mismatches(ckpt) -> None:
    def change(target: TargetVariable) -> TargetVariable:
        if target.name == "cnn/logits/kernel":
            return TargetVariable(target.name, (16, 5), target.dtype)  # a new 5-class head
        if target.name == "cnn/logits/bias":
            return TargetVariable(target.name, target.shape, "float64")
        return target

    targets = targets_like(ckpt, change=change)
    plan = make_plan(ckpt, targets)
    by_name = {e.target.name: e for e in plan.entries}
    assert by_name["cnn/logits/kernel"].status == SKIPPED_SHAPE
    assert by_name["cnn/logits/kernel"].reason == "source [16, 10] vs target [16, 5]"
    assert by_name["cnn/logits/bias"].status == SKIPPED_DTYPE
    cast = make_plan(ckpt, targets, on_dtype_mismatch="cast")
    assert {e.target.name: (e.status, e.cast) for e in cast.entries}["cnn/logits/bias"] == (RESTORED, True)
    with pytest.raises(TransferError, match=r"cnn/logits/kernel.*\[16, 10\] vs target \[16, 5\]"):
        make_plan(ckpt, targets, on_shape_mismatch="error")
    with pytest.raises(TransferError, match="dtype mismatch"):
        make_plan(ckpt, targets, on_dtype_mismatch="error")


def test_unmatched_sources_get_a_suggestion(ckpt) -> None:
    targets = targets_like(ckpt, rename=lambda n: n.replace("conv_block1/", "conv_blok1/"))
    plan = make_plan(ckpt, targets, scopes=["conv_block1"])
    assert plan.unmatched and plan.restored == []
    first = plan.unmatched[0]
    assert first.suggestion == first.mapped_name.replace("conv_block1/", "conv_blok1/")
    with pytest.raises(TransferError, match="did you mean 'cnn/conv_blok1/"):
        make_plan(ckpt, targets, scopes=["conv_block1"], on_missing="error")


def test_two_sources_onto_one_target_is_refused(ckpt) -> None:
    with pytest.raises(PatternError, match="both 'cnn/conv_block1/conv/bias' and 'cnn/conv_block2/conv/bias'"):
        make_plan(ckpt, targets_like(ckpt), mapping=[r"re:conv_block\d=conv_block"])


def test_nothing_selected(ckpt) -> None:
    with pytest.raises(NotFoundError, match="no variables matching nope"):
        make_plan(ckpt, targets_like(ckpt), scopes=["nope"])


def test_exclude(ckpt) -> None:
    plan = make_plan(ckpt, targets_like(ckpt), scopes=["cnn"], exclude=["logits", "bn"])
    names = {e.target.name for e in plan.restored}
    assert names and not any("logits" in n or "/bn/" in n for n in names)


def test_json_counts(ckpt) -> None:
    doc = make_plan(ckpt, targets_like(ckpt), scopes=["conv_block1"]).to_dict()
    assert doc["schema"] == "ckpttools.plan/1"
    assert doc["counts"][RESTORED] + doc["counts"][NEW] == len(doc["variables"])


def test_terminal_table_escapes_names_and_shortens_same_sources(ckpt, monkeypatch, capsys) -> None:
    """On a terminal: names with brackets print as they are (not as rich markup); an unrenamed source says so."""
    from ckpttools.cli.transfer_view import print_plan

    targets = targets_like(ckpt, rename=lambda name: name.replace("conv_block2", "blk[b]2"))
    plan = make_plan(ckpt, targets, scopes=["conv_block[1-2]"], mapping=["conv_block2=blk[b]2"])
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("NO_COLOR", "1")
    print_plan(plan)
    lines = capsys.readouterr().out.splitlines()
    renamed = next(line for line in lines if "cnn/blk[b]2/conv/kernel" in line)
    assert "restored" in renamed and "cnn/conv_block2/conv/kernel" in renamed
    kept = next(line for line in lines if "cnn/conv_block1/conv/kernel" in line)
    assert "restored" in kept and "same name" in kept and kept.count("conv_block1") == 1


def test_read_map_file_skips_blank_and_comment_lines_and_names_bad_lines(tmp_path) -> None:
    from ckpttools.errors import NotFoundError, PatternError
    from ckpttools.transfer.rename import Renamer, read_map_file

    good = tmp_path / "map.txt"
    good.write_text("# from doctor\n\nNet/=cnn/\nre:^tower_0/(.*)=\\1\n")
    rules = read_map_file(str(good))
    assert rules == ["Net/=cnn/", "re:^tower_0/(.*)=\\1"]
    assert Renamer(rules)("tower_0/Net/conv1/w") == "cnn/conv1/w"
    bad = tmp_path / "bad.txt"
    bad.write_text("Net/=cnn/\nno-equals-sign\n")
    with pytest.raises(PatternError, match=r"bad.txt:2: --map 'no-equals-sign'"):
        read_map_file(str(bad))
    with pytest.raises(NotFoundError, match="no such map file"):
        read_map_file(str(tmp_path / "missing.txt"))
