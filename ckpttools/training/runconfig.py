"""A training run's settings, saved beside its checkpoints as ``run.json`` (no TensorFlow needed).

``eval`` and ``transfer`` rebuild a run's graph and data from this file alone, so users never repeat
flags. The defaults train the small ``cnn5`` on the bundled Fashion-MNIST subset in well under a minute.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, DataError, NotFoundError

RUN_FILE = "run.json"
SCHEMA = "ckpttools.run/1"
OPTIMIZERS = ("adam", "sgd", "momentum")


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a run computes. ``None`` means "take it from the data or model"."""

    model: str = "cnn5"
    data: str | None = None  # a directory of IDX files; None = the bundled Fashion-MNIST subset
    classes: tuple[int, ...] | None = None  # train on these labels only, relabelled 0..k-1 in this order
    per_class: int | None = None  # few-shot: this many training examples per class
    validation: float = 0.0  # fraction of each class held out (before few-shot sampling); 0 = none
    num_classes: int | None = None  # None = from the data; set it to build a new head of another size
    input_shape: tuple[int, int, int] | None = None  # (height, width, channels); None = from the data
    keep_prob: float = 0.5  # dropout keep probability while training (models with dropout); 1.0 in eval
    optimizer: str = "adam"
    learning_rate: float = 1e-3  # Adam's usual default; SGD wants ~0.05 on these models
    momentum: float = 0.9  # only for optimizer="momentum"
    decay_steps: int = 0  # exponential learning-rate decay every this many steps; 0 = constant rate
    decay_rate: float = 0.96
    staircase: bool = False  # decay in steps (lr * rate ** (step // decay_steps)) rather than smoothly
    weight_decay: float | None = None  # L2 factor for models that define it (slim_cnn); None = model default
    batch_size: int = 64
    epochs: float = 5.0  # ~390 steps on the bundled 5,000 images at batch 64
    steps: int | None = None  # total steps to reach (overrides epochs); resuming continues up to it
    seed: int = 0  # weights, data order and dropout all follow from it: same seed, same run
    checkpoint_every: int = 500  # steps between checkpoints (one is always written at the end)
    max_to_keep: int = 5  # older checkpoints are deleted by the saver, newest kept
    summary_every: int = 50  # steps between TensorBoard scalars (loss, accuracy, learning rate)
    histogram_every: int = 500  # steps between histograms and images: slower to write, rarely needed
    class_names: tuple[str, ...] = field(default=(), compare=False)  # filled in from the data

    # Settings a resumed run may change: they alter how long and how often, not what is computed.
    RESUMABLE = ("epochs", "steps", "checkpoint_every", "max_to_keep", "summary_every", "histogram_every")

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer '{self.optimizer}' (choose from {', '.join(OPTIMIZERS)})")
        positive = {"batch_size": self.batch_size, "checkpoint_every": self.checkpoint_every,
                    "max_to_keep": self.max_to_keep, "summary_every": self.summary_every,
                    "histogram_every": self.histogram_every, "learning_rate": self.learning_rate,
                    "epochs": self.epochs, "steps": 1 if self.steps is None else self.steps}
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive; received {value}")
        if not 0.0 < self.keep_prob <= 1.0:
            raise ConfigError(f"--keep-prob must be in (0, 1]; received {self.keep_prob}")

    def total_steps(self, num_train: int) -> int:
        """The global step training stops at: ``steps``, else ``epochs`` worth of batches."""
        return self.steps if self.steps is not None else max(1, int(self.epochs * num_train // self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Rebuild a config from JSON, turning lists back into tuples; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown run settings: {', '.join(unknown)} (written by a newer ckpttools?)")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})

    def differences(self, other: RunConfig) -> list[str]:
        """``name=old -> new`` for each setting (except RESUMABLE ones) where the two runs differ."""
        return [f"{name}={getattr(self, name)!r} -> {getattr(other, name)!r}"
                for name in (f.name for f in dataclasses.fields(self) if f.compare)
                if name not in self.RESUMABLE and getattr(self, name) != getattr(other, name)]


def save_run(run_dir: str | os.PathLike, config: RunConfig, versions: dict[str, str] | None = None,
             cluster: dict[str, Any] | None = None) -> Path:
    """Write ``run.json``: the config plus the versions that produced the run (and its cluster, if distributed)."""
    path = Path(run_dir) / RUN_FILE
    record = {"schema": SCHEMA, "config": config.to_dict(),
              "versions": {"ckpttools": __version__, "python": platform.python_version(), **(versions or {})}}
    if cluster is not None:
        record["cluster"] = cluster
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # never leave a half-written run.json behind
    return path


def load_run(run_dir: str | os.PathLike) -> RunConfig:
    """Read the ``RunConfig`` stored in ``run_dir/run.json``."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise NotFoundError(f"{Path(run_dir)}: no {RUN_FILE} (not a ckpttools run directory)")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return RunConfig.from_dict(record["config"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a valid run file ({type(exc).__name__}: {exc})") from None


def load_cluster(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The cluster a distributed run was trained on (``run.json``'s ``cluster``), None for one process."""
    try:
        record = json.loads((Path(run_dir) / RUN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    cluster = record.get("cluster") if isinstance(record, dict) else None
    return cluster if isinstance(cluster, dict) else None


def find_run_dir(path: str | os.PathLike) -> Path | None:
    """The run directory for a run directory, checkpoint prefix or checkpoint file, if it has ``run.json``."""
    path = Path(path)
    for candidate in (path, path.parent):
        if (candidate / RUN_FILE).is_file():
            return candidate
    return None
