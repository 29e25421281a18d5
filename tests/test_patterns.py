"""Scope patterns: what each form selects, what it must not select, and how bad patterns fail."""

from __future__ import annotations

import re

import pytest

from ckpttools import patterns
from ckpttools.errors import PatternError
from ckpttools.patterns import Selector, compile_pattern, select

TF1_CNN = [
    *(
        f"cnn/conv_block{block}/{leaf}"
        for block in (1, 2, 3, 4)
        for leaf in (
            "conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance",
            "conv/kernel/Adam", "conv/kernel/Adam_1",
        )
    ),
    "cnn/conv_block1/bias",
    "cnn/dense/kernel",
    "cnn/dense/bias",
    "cnn/logits/kernel",
    "cnn/logits/bias",
    "beta1_power",
    "beta2_power",
    "global_step",
]  # fmt: skip

DEEP_LAYERS = [f"encoder/layer{i}/attention/kernel" for i in (*range(0, 14), 123)]


def assert_selects(pattern: str, names: list[str], expected: list[str]) -> None:
    assert select(names, [pattern]) == expected, pattern


# --- globs over scope components -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, name",
    [
        ("conv_block[1-3]", "cnn/conv_block2/conv/kernel"),
        ("cnn/*/bias", "cnn/conv_block1/bias"),
        ("cnn/*/bias", "cnn/dense/bias"),
        ("cnn/*/bias", "model/cnn/dense/bias"),  # at any depth
        ("conv/kernel", "cnn/conv_block1/conv/kernel"),
        ("conv/kernel", "cnn/conv_block1/conv/kernel/Adam"),  # a scope selects everything below it
        ("kernel", "cnn/dense/kernel"),
        ("cnn", "cnn/dense/kernel"),
        ("cnn/dense/kernel", "cnn/dense/kernel"),  # a full name selects itself
        ("conv_block?", "cnn/conv_block4/bn/beta"),
        ("bn/moving_*", "cnn/conv_block1/bn/moving_variance"),
        ("*_block1", "cnn/conv_block1/conv/bias"),
        ("conv_block[13]", "cnn/conv_block3/conv/bias"),
        ("conv_block[!13]", "cnn/conv_block2/conv/bias"),
        ("[a-d]nn", "cnn/dense/bias"),
        ("[]x]", "a/]/b"),  # fnmatch: a leading ']' is a member
        ("*", "global_step"),
        ("emb/part_*", "emb/part_0"),
        ("layer_with_weights-[0-1]/kernel", "model/layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE"),
        (".OPTIMIZER_SLOT", "model/dense/kernel/.OPTIMIZER_SLOT/optimizer/m"),  # '.' is literal
    ],
)
def test_glob_selects(pattern: str, name: str) -> None:
    assert compile_pattern(pattern).matches(name)


@pytest.mark.parametrize(
    "pattern, name",
    [
        ("conv", "convolution/w"),  # a pattern component matches a whole name component
        ("conv", "cnn/myconv/w"),
        ("conv_block1", "cnn/conv_block12/conv/kernel"),
        ("cnn/*/bias", "cnn/conv_block1/conv/bias"),  # '*' never crosses '/'
        ("cnn/*/bias", "rnn/dense/bias"),
        ("cnn/bias", "cnn/dense/bias"),  # components must be consecutive
        ("dense/cnn", "cnn/dense/bias"),  # ... and in order
        ("conv_block?", "cnn/conv_block12/conv/kernel"),
        ("a?c", "a/c"),  # '?' is not '/'
        ("conv_block[13]", "cnn/conv_block2/conv/bias"),
        ("conv_block[!13]", "cnn/conv_block3/conv/bias"),
        ("a[!x]b", "a/b"),  # a negated class does not match '/'
        ("[a-d]nn", "rnn/dense/bias"),
        ("Kernel", "cnn/dense/kernel"),  # case-sensitive
        ("OPTIMIZER_SLOT", "model/dense/kernel/.OPTIMIZER_SLOT/optimizer/m"),
        ("c.n", "cnn/dense/bias"),  # '.' is not a regex wildcard
        ("emb/part_*", "emb"),
    ],
)
def test_glob_does_not_select(pattern: str, name: str) -> None:
    assert not compile_pattern(pattern).matches(name)


def test_star_bias_over_a_cnn() -> None:
    assert_selects("cnn/*/bias", TF1_CNN, ["cnn/conv_block1/bias", "cnn/dense/bias", "cnn/logits/bias"])


def test_conv_kernel_selects_kernels_and_their_slots() -> None:
    expected = [name for name in TF1_CNN if "/conv/kernel" in name]
    assert len(expected) == 12
    assert_selects("conv/kernel", TF1_CNN, expected)


# --- numeric ranges ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, expected_numbers",
    [
        ("layer[1-12]", list(range(1, 13))),
        ("layer[0-10]", list(range(0, 11))),
        ("layer[5-12]", list(range(5, 13))),
        ("layer[1-3]", [1, 2, 3]),
        ("layer[0-9]", list(range(0, 10))),
        ("layer[10-13]", [10, 11, 12, 13]),
        ("layer[13-200]", [13, 123]),
    ],
)
def test_numeric_range_selects_whole_numbers(pattern: str, expected_numbers: list[int]) -> None:
    expected = [f"encoder/layer{n}/attention/kernel" for n in expected_numbers]
    assert_selects(pattern, DEEP_LAYERS, expected)


def test_single_digit_range_is_a_class_of_one_digit() -> None:
    in_blocks_1_to_3 = [name for name in TF1_CNN if re.search(r"/conv_block[123]/", name)]
    assert len(in_blocks_1_to_3) == 3 * 8 + 1
    assert_selects("conv_block[1-3]", TF1_CNN, in_blocks_1_to_3)
    assert compile_pattern("layer[0-9][0-9]").matches("encoder/layer12/x")  # shell habit keeps working
    assert not compile_pattern("layer[1-3]").matches("encoder/layer12/x")


@pytest.mark.parametrize(
    "pattern, name, selected",
    [
        ("step_[01-10]", "step_01", True),
        ("step_[01-10]", "step_09", True),
        ("step_[01-10]", "step_10", True),
        ("step_[01-10]", "step_1", False),  # width comes from the lower bound
        ("step_[01-10]", "step_00", False),
        ("step_[01-10]", "step_11", False),
        ("step_[01-10]", "step_010", False),
        ("shard_[001-120]", "shard_007", True),
        ("shard_[001-120]", "shard_120", True),
        ("shard_[001-120]", "shard_121", False),
        ("step_[00-99]", "step_05", True),
        ("step_[01-100]", "step_100", True),  # wider than the padding: written in full
        ("layer[1-12]", "layer01", False),  # unpadded ranges do not accept padded numbers
        ("layer[1-12]", "layer13", False),
        ("layer[1-12]", "layer123", False),
        ("layer5[1-12]", "layer512", False),  # the range is the whole digit run, not its tail
        ("*[1-12]", "layer112", False),
        ("*[1-12]", "layer12", True),
        ("x[0-99999]", "x99999", True),
        ("x[0-99999]", "x100000", False),
        ("x[123-4567]", "x122", False),
        ("x[123-4567]", "x123", True),
        ("x[123-4567]", "x999", True),
        ("x[123-4567]", "x4567", True),
        ("x[123-4567]", "x4568", False),
    ],
)
def test_numeric_range_edges(pattern: str, name: str, selected: bool) -> None:
    assert compile_pattern(pattern).matches(name) is selected


def test_numeric_range_regex_is_exact_over_every_value() -> None:
    pattern = compile_pattern("v[7-1234]")
    assert [n for n in range(0, 2000) if pattern.matches(f"v{n}")] == list(range(7, 1235))
    padded = compile_pattern("v[007-1234]")
    assert [n for n in range(0, 2000) if padded.matches(f"v{n:03d}")] == list(range(7, 1235))


@pytest.mark.parametrize(
    "pattern, name, selected",
    [
        ("tower[0-1]_layer[2-3]", "model/tower0_layer2/w", True),
        ("tower[0-1]_layer[2-3]", "model/tower1_layer3/w", True),
        ("tower[0-1]_layer[2-3]", "model/tower2_layer2/w", False),
        ("tower[0-1]_layer[2-3]", "model/tower1_layer4/w", False),
        ("tower[0-10]_layer[2-13]", "model/tower10_layer13/w", True),
        ("tower[0-10]_layer[2-13]", "model/tower11_layer13/w", False),
        ("tower[0-10]_layer[2-13]", "model/tower10_layer14/w", False),
    ],
)
def test_several_ranges_in_one_component(pattern: str, name: str, selected: bool) -> None:
    assert compile_pattern(pattern).matches(name) is selected


def test_partitioned_parts_by_range() -> None:
    names = [f"embedding/part_{i}" for i in range(12)] + ["embedding/part_0/Adam"]
    assert select(names, ["part_[2-10]"]) == [f"embedding/part_{i}" for i in range(2, 11)]
    first_two = ["embedding/part_0", "embedding/part_1", "embedding/part_0/Adam"]
    assert select(names, ["embedding/part_[0-1]"]) == first_two


# --- **, anchors, trailing slash ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, name, selected",
    [
        ("cnn/**/kernel", "cnn/kernel", True),  # zero components
        ("cnn/**/kernel", "cnn/dense/kernel", True),
        ("cnn/**/kernel", "cnn/conv_block1/conv/kernel", True),
        ("cnn/**/kernel", "model/cnn/conv_block1/conv/kernel", True),
        ("cnn/**/kernel", "rnn/dense/kernel", False),
        ("cnn/**/kernel", "cnn/dense/kernels", False),
        ("cnn/**/kernel", "cnnx/dense/kernel", False),
        ("a/**/b/**/c", "a/b/c", True),
        ("a/**/b/**/c", "a/x/b/y/z/c", True),
        ("a/**/b/**/c", "a/x/c", False),
        ("**/kernel", "cnn/dense/kernel", True),
        ("**/kernel", "kernel", True),
        ("/**/kernel", "cnn/dense/kernel", True),
        ("cnn/**", "cnn/dense/kernel", True),
        ("cnn/**", "rnn/dense/kernel", False),
        ("**", "anything/at/all", True),
        ("a/**/**/b", "a/b", True),
        ("/cnn", "cnn/x", True),
        ("/cnn", "model/cnn/x", False),
        ("/cnn/dense", "cnn/dense/kernel", True),
        ("/dense", "cnn/dense/kernel", False),
        ("/global_step", "global_step", True),
        ("cnn/", "cnn/dense/kernel", True),
        ("cnn/", "model/cnn/dense/kernel", True),
        ("/cnn/", "model/cnn/x", False),
        ("dense/", "cnn/dense/kernel", True),
    ],
)
def test_any_components_anchor_and_trailing_slash(pattern: str, name: str, selected: bool) -> None:
    assert compile_pattern(pattern).matches(name) is selected


# --- regular expressions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, name, selected",
    [
        ("re:kernel$", "cnn/dense/kernel", True),
        ("re:kernel$", "cnn/dense/kernel/Adam", False),
        ("re:conv_block[13]/", "cnn/conv_block3/conv/bias", True),
        ("re:conv_block[13]/", "cnn/conv_block2/conv/bias", False),
        ("re:^cnn/", "cnn/dense/bias", True),
        ("re:^cnn/", "model/cnn/dense/bias", False),
        ("re:onv", "cnn/conv_block1/bias", True),  # searched anywhere, not per component
        ("re:(?i)KERNEL", "cnn/dense/kernel", True),
        ("re:/Adam(_\\d+)?$", "cnn/dense/kernel/Adam_1", True),
    ],
)
def test_regex_patterns_search_the_full_name(pattern: str, name: str, selected: bool) -> None:
    assert compile_pattern(pattern).matches(name) is selected


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, complaint",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("/", "empty"),
        ("//", "empty"),
        ("re:", "empty"),
        ("conv_block[1-3", "unbalanced '['"),
        ("cnn/conv_block[", "unbalanced '['"),
        ("[!]", "unbalanced '['"),
        ("a[b/c]d", "unbalanced '['"),  # a class cannot span components
        ("conv_block1]", "']' without"),
        ("x[0-100000]", "100001 numbers"),
        ("x[1-99999999999999999999]", "at most 100000"),
        ("x[12-1]", "backwards"),
        ("x[z-a]", "bad character range"),
        ("re:(", "missing ), unterminated subpattern"),
        ("re:conv[", "unterminated character set"),
    ],
)
def test_bad_patterns_name_the_pattern_and_the_problem(pattern: str, complaint: str) -> None:
    with pytest.raises(PatternError) as raised:
        compile_pattern(pattern)
    message = str(raised.value)
    assert repr(pattern) in message
    assert complaint in message


def test_pattern_error_is_a_usage_error() -> None:
    with pytest.raises(PatternError) as raised:
        Selector(["dense", "conv["])
    assert raised.value.exit_code == 2


def test_largest_allowed_range_compiles_to_a_short_regex() -> None:
    pattern = compile_pattern("x[0-99999]")
    assert len(pattern.regex.pattern) < 200


# --- Selector and select --------------------------------------------------------------------------------


def test_empty_selector_selects_everything() -> None:
    assert select(TF1_CNN, []) == TF1_CNN
    assert Selector([]).unmatched(TF1_CNN) == []


def test_several_patterns_select_the_union_in_name_order() -> None:
    names = ["cnn/logits/bias", "cnn/dense/kernel", "global_step", "cnn/conv_block2/conv/bias"]
    assert select(names, ["global_step", "dense", "conv_block[2-3]"]) == [
        "cnn/dense/kernel",
        "global_step",
        "cnn/conv_block2/conv/bias",
    ]


def test_unmatched_lists_patterns_that_selected_nothing_in_given_order() -> None:
    selector = Selector(["lstm", "conv_block[1-3]", "re:^decoder/", "cnn/*/bias", "lstm"])
    assert selector.unmatched(TF1_CNN) == ["lstm", "re:^decoder/"]
    assert selector.unmatched(iter(TF1_CNN)) == ["lstm", "re:^decoder/"]  # any iterable, read once


def test_unmatched_with_no_names_reports_every_pattern() -> None:
    assert Selector(["lstm", "dense"]).unmatched([]) == ["lstm", "dense"]


def test_selector_keeps_pattern_texts() -> None:
    selector = Selector(("dense", "re:kernel$"))
    assert [pattern.text for pattern in selector.patterns] == ["dense", "re:kernel$"]


def test_patterns_compile_once_not_per_name(monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[str] = []
    real_compile = re.compile

    def counting_compile(regex: str, *args: object) -> re.Pattern[str]:
        compiled.append(regex)
        return real_compile(regex, *args)

    monkeypatch.setattr(patterns.re, "compile", counting_compile)
    selector = Selector(["conv_block[1-12]", "lstm/**/bias", "re:^decoder/"])
    assert len(compiled) == 3
    names = [f"cnn/conv_block{i}/conv/{leaf}" for i in range(500) for leaf in ("kernel", "bias")]
    assert sum(selector.matches(name) for name in names) == 12 * 2
    assert selector.unmatched(names) == ["lstm/**/bias", "re:^decoder/"]
    assert len(compiled) == 3


# --- the documented table is true ------------------------------------------------------------------------


def documented_examples() -> list[tuple[str, list[str], list[str]]]:
    rows = []
    for line in (patterns.__doc__ or "").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            pattern, selects, rejects = (re.findall(r"`([^`]+)`", cell) for cell in cells)
            rows.append((pattern[0], selects, rejects))
    return rows


def test_docstring_table_is_read() -> None:
    assert len(documented_examples()) >= 8


@pytest.mark.parametrize("pattern, selects, rejects", documented_examples())
def test_docstring_table_examples_hold(pattern: str, selects: list[str], rejects: list[str]) -> None:
    compiled = compile_pattern(pattern)
    assert all(compiled.matches(name) for name in selects), selects
    assert not any(compiled.matches(name) for name in rejects), rejects
