"""Class subsets, few-shot sampling and validation splits: deterministic and checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ckpttools.errors import ConfigError, NotFoundError
from ckpttools.training import datasets, idx
from ckpttools.training.datasets import Examples


def examples(counts: list[int]) -> Examples:
    """``counts[c]`` examples of class c; each image's single pixel holds its index."""
    labels = np.repeat(np.arange(len(counts)), counts)
    return Examples(np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1), labels)


@pytest.mark.parametrize("spec, labels", [
    ("5-9", (5, 6, 7, 8, 9)), ("0,2,4", (0, 2, 4)), ("1-3,7", (1, 2, 3, 7)), (" 7 , 5 - 6 ", (7, 5, 6)),
    ([3, 1], (3, 1)),
])
def test_parse_classes(spec: str, labels: tuple[int, ...]) -> None:
    assert datasets.parse_classes(spec) == labels


@pytest.mark.parametrize("spec, message", [
    ("cats", "--classes: cannot read 'cats' (expected labels and ranges like 5-9 or 0,2,4)"),
    ("9-5", "--classes: range '9-5' runs backwards (write 5-9)"),
    ("1,2,1", "--classes: '1,2,1' names a class twice"),
    ("3", "--classes: '3' names 1 class; a classifier needs at least two"),
])
def test_parse_classes_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        datasets.parse_classes(spec)
    assert str(error.value) == message


def test_select_classes_relabels_in_the_order_given() -> None:
    picked = datasets.select_classes(examples([1, 2, 1, 3]), (3, 1))
    assert picked.labels.tolist() == [1, 1, 0, 0, 0]
    assert picked.images.ravel().tolist() == [1, 2, 4, 5, 6]


def test_validation_split_is_stratified_disjoint_and_seeded() -> None:
    data = examples([10, 20, 30])
    train, held = datasets.split_validation(data, 0.1, seed=0)
    assert held.class_counts(3) == [1, 2, 3] and train.class_counts(3) == [9, 18, 27]
    assert sorted(train.images.ravel().tolist() + held.images.ravel().tolist()) == list(range(60))
    again = datasets.split_validation(data, 0.1, seed=0)[1]
    other = datasets.split_validation(data, 0.1, seed=1)[1]
    assert again.images.ravel().tolist() == held.images.ravel().tolist()
    assert other.images.ravel().tolist() != held.images.ravel().tolist()


def test_validation_fraction_must_be_below_one() -> None:
    with pytest.raises(ConfigError, match=r"--validation must be a fraction in \[0, 1\); received 1.0"):
        datasets.split_validation(examples([2, 2]), 1.0, seed=0)


def test_few_shot_sampling() -> None:
    data = examples([10, 20, 30])
    few = datasets.sample_per_class(data, 4, seed=3)
    assert few.class_counts(3) == [4, 4, 4]
    assert list(few.images.ravel()) == sorted(few.images.ravel())  # file order kept
    assert datasets.sample_per_class(data, 4, seed=3).images.tolist() == few.images.tolist()
    with pytest.raises(ConfigError) as error:
        datasets.sample_per_class(data, 11, seed=0)
    assert str(error.value) == "--per-class 11: class 0 has only 10 training examples; use --per-class 10 or less"


def test_prepare_bundled_subset() -> None:
    data = datasets.prepare(classes="5-9", per_class=10, validation=0.1, seed=0)
    assert data.class_names == ("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    assert data.train.class_counts(5) == [10] * 5
    assert data.validation.class_counts(5) == [50] * 5
    assert data.test.class_counts(5) == [100] * 5 and data.num_classes == 5
    assert data.image_shape == (28, 28, 1)
    assert data.split("validation") is data.validation


def test_prepare_rejects_classes_not_in_the_data() -> None:
    with pytest.raises(ConfigError) as error:
        datasets.prepare(classes="8-12")
    assert str(error.value) == "--classes: no class 10 in bundled (labels 0-9)"


def test_prepare_rejects_bad_per_class() -> None:
    with pytest.raises(ConfigError, match="--per-class must be at least 1; received 0"):
        datasets.prepare(per_class=0)


def test_missing_split_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no validation split in bundled \(splits: train, test\)"):
        datasets.prepare().split("validation")
    with pytest.raises(NotFoundError) as error:
        datasets.load_dataset(tmp_path / "nope")
    assert str(error.value) == f"{tmp_path / 'nope'}: no such data directory"


def test_any_idx_directory_with_default_class_names(tmp_path: Path) -> None:
    for prefix, n in (("train", 6), ("t10k", 3)):
        idx.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", np.zeros((n, 8, 8), np.uint8))
        idx.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 3).astype(np.uint8))
    data = datasets.load_dataset(tmp_path)
    assert data.class_names == ("0", "1", "2") and data.image_shape == (8, 8, 1) and data.source == str(tmp_path)
