"""Data sets for training and transfer: load IDX directories, pick classes, sample few-shot (numpy only).

Everything here is deterministic for a given seed, so a run can be rebuilt from its ``run.json``.
``prepare`` applies the steps in the order transfer experiments need them: keep only the chosen
classes (relabelled 0..k-1), hold out a stratified validation split, then sample N per class.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, NotFoundError
from . import idx

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "fashion-mnist-small"
CLASS_NAMES_FILE = "classes.txt"  # optional, one class name per line, in label order
_CLASS_SPEC = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+))?\s*$")


@dataclass(frozen=True)
class Examples:
    """Images (N, H, W[, C], uint8) and their integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels): what a model's input layer sees."""
        shape = self.images.shape[1:]
        return (shape[0], shape[1], shape[2] if len(shape) == 3 else 1)

    def take(self, indices: np.ndarray) -> Examples:
        return Examples(self.images[indices], self.labels[indices])

    def class_counts(self, num_classes: int) -> list[int]:
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass(frozen=True)
class DataSet:
    """The splits a run trains and evaluates on, and the names of its classes."""

    train: Examples
    test: Examples
    class_names: tuple[str, ...]
    source: str  # the directory read, or "bundled"
    validation: Examples | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    def split(self, name: str) -> Examples:
        """One split by name: ``train``, ``validation`` or ``test``."""
        found = {"train": self.train, "test": self.test, "validation": self.validation}.get(name)
        if found is None:
            raise ConfigError(f"no {name} split in {self.source} (splits: train, test"
                              f"{', validation' if self.validation is not None else ''})")
        return found


def load_dataset(directory: str | os.PathLike | None = None) -> DataSet:
    """Read a directory of MNIST-format IDX files (None: the bundled Fashion-MNIST subset).

    Example:
        >>> data = load_dataset("/data/fashion-mnist")
        >>> data.train.images.shape, data.class_names[:2]
        ((60000, 28, 28), ('T-shirt/top', 'Trouser'))
    """
    path = Path(directory) if directory is not None else BUNDLED
    if not path.is_dir():
        raise NotFoundError(f"{path}: no such data directory")
    train, test = Examples(*idx.load_pair(path, "train")), Examples(*idx.load_pair(path, "test"))
    num_classes = int(max(train.labels.max(initial=0), test.labels.max(initial=0))) + 1
    source = "bundled" if directory is None else str(path)
    return DataSet(train, test, _class_names(path, num_classes), source)


def parse_classes(spec: str | Sequence[int]) -> tuple[int, ...]:
    """Parse ``"5-9"``, ``"0,2,4"`` or ``"1-3,7"`` into label numbers, in the order given.

    Example:
        >>> parse_classes("5-7,0")
        (5, 6, 7, 0)
    """
    if not isinstance(spec, str):
        return _check_unique(tuple(int(c) for c in spec), str(list(spec)))
    labels: list[int] = []
    for part in spec.split(","):
        match = _CLASS_SPEC.match(part)
        if not match:
            raise ConfigError(f"--classes: cannot read '{spec}' (expected labels and ranges like 5-9 or 0,2,4)")
        first, last = int(match[1]), int(match[2] or match[1])
        if last < first:
            raise ConfigError(f"--classes: range '{part.strip()}' runs backwards (write {last}-{first})")
        labels += range(first, last + 1)
    return _check_unique(tuple(labels), spec)


def select_classes(examples: Examples, classes: Sequence[int]) -> Examples:
    """Keep only ``classes``, relabelled 0..k-1 in the order given (class ``classes[0]`` becomes 0)."""
    lookup = np.full(int(max(examples.labels.max(initial=0), max(classes))) + 1, -1, np.int64)
    lookup[list(classes)] = np.arange(len(classes))
    keep = np.flatnonzero(lookup[examples.labels] >= 0)
    return Examples(examples.images[keep], lookup[examples.labels[keep]])


def split_validation(examples: Examples, fraction: float, seed: int) -> tuple[Examples, Examples]:
    """Hold out ``fraction`` of each class (stratified, seeded); returns (train, validation)."""
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"--validation must be a fraction in [0, 1); received {fraction}")
    rng = np.random.default_rng([seed, 1])
    held = [rng.permutation(np.flatnonzero(examples.labels == label))
            for label in np.unique(examples.labels)]
    held_out = np.sort(np.concatenate([members[: round(fraction * len(members))] for members in held]))
    kept = np.setdiff1d(np.arange(len(examples)), held_out)
    return examples.take(kept), examples.take(held_out)


def sample_per_class(examples: Examples, per_class: int, seed: int) -> Examples:
    """Few-shot: ``per_class`` examples of each class, chosen with ``seed`` (kept in file order)."""
    rng = np.random.default_rng([seed, 2])
    chosen = []
    for label in np.unique(examples.labels):
        members = np.flatnonzero(examples.labels == label)
        if len(members) < per_class:
            raise ConfigError(f"--per-class {per_class}: class {label} has only {len(members)} training "
                              f"examples; use --per-class {len(members)} or less")
        chosen.append(rng.permutation(members)[:per_class])
    return examples.take(np.sort(np.concatenate(chosen)))


def prepare(directory: str | os.PathLike | None = None, classes: str | Sequence[int] | None = None,
            per_class: int | None = None, validation: float = 0.0, seed: int = 0) -> DataSet:
    """Load a data set and apply a run's data settings: classes, validation split, few-shot sampling.

    Example:
        >>> data = prepare(classes="5-9", per_class=10, validation=0.1, seed=0)   # bundled data
        >>> data.class_names, len(data.train), len(data.validation)
        (('Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'), 50, 250)
    """
    data = load_dataset(directory)
    train, test, names = data.train, data.test, data.class_names
    if classes is not None:
        chosen = parse_classes(classes)
        missing = [c for c in chosen if c >= data.num_classes]
        if missing:
            raise ConfigError(f"--classes: no class {missing[0]} in {data.source} "
                              f"(labels 0-{data.num_classes - 1})")
        train, test = select_classes(train, chosen), select_classes(test, chosen)
        names = tuple(names[c] for c in chosen)
    held_out = None
    if validation:
        train, held_out = split_validation(train, validation, seed)
    if per_class is not None:
        if per_class < 1:
            raise ConfigError(f"--per-class must be at least 1; received {per_class}")
        train = sample_per_class(train, per_class, seed)
    return DataSet(train, test, names, data.source, held_out)


def _check_unique(labels: tuple[int, ...], spec: str) -> tuple[int, ...]:
    if len(set(labels)) != len(labels):
        raise ConfigError(f"--classes: '{spec}' names a class twice")
    if len(labels) < 2:
        raise ConfigError(f"--classes: '{spec}' names {len(labels)} class; a classifier needs at least two")
    return labels


def _class_names(directory: Path, num_classes: int) -> tuple[str, ...]:
    names_file = directory / CLASS_NAMES_FILE
    if not names_file.is_file():
        return tuple(str(label) for label in range(num_classes))
    names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(names) < num_classes:
        names += [str(label) for label in range(len(names), num_classes)]
    return tuple(names)
