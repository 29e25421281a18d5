"""Evaluate a run's checkpoint: accuracy, loss, per-class accuracy and the confusion matrix.

The graph is rebuilt from the run's ``run.json`` (model, classes, input shape), so
``evaluate("runs/cnn5")`` needs no other settings; only the model's variables are restored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import open_checkpoint
from ..errors import DataError, NotFoundError
from ..training import datasets
from ..training.datasets import Examples
from ..training.runconfig import RunConfig, find_run_dir, load_run
from .graph import EvalOps, build_eval, model_variables
from .models import get_model
from .session import graph_session, tf

EVAL_BATCH = 500  # examples per session.run: bounded memory, few calls


@dataclass(frozen=True)
class ClassAccuracy:
    """How one class fared."""

    label: int
    name: str
    examples: int
    correct: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.examples if self.examples else float("nan")


@dataclass(frozen=True)
class EvalResult:
    """What ``evaluate`` measured; ``confusion[true, predicted]`` counts examples."""

    checkpoint: str
    step: int | None
    split: str
    accuracy: float
    loss: float
    confusion: np.ndarray
    class_names: tuple[str, ...]
    note: str | None = None

    @property
    def examples(self) -> int:
        return int(self.confusion.sum())

    @property
    def per_class(self) -> list[ClassAccuracy]:
        return [ClassAccuracy(label, name, int(self.confusion[label].sum()), int(self.confusion[label, label]))
                for label, name in enumerate(self.class_names)]


def run_eval(session: Any, ops: EvalOps, examples: Examples, num_classes: int,
             batch_size: int = EVAL_BATCH) -> tuple[float, float, np.ndarray]:
    """(accuracy, mean loss, confusion matrix) of the model in ``session`` on ``examples``."""
    confusion = np.zeros((num_classes, num_classes), np.int64)
    total_loss = 0.0
    images = examples.images.reshape((len(examples), *ops.images.shape[1:]))
    for start in range(0, len(examples), batch_size):
        labels = examples.labels[start:start + batch_size].astype(np.int32)
        predictions, losses = session.run([ops.predictions, ops.losses],
                                          {ops.images: images[start:start + batch_size], ops.labels: labels})
        np.add.at(confusion, (labels, predictions), 1)
        total_loss += float(losses.astype(np.float64).sum())
    count = max(len(examples), 1)
    return float(np.trace(confusion)) / count, total_loss / count, confusion


def evaluate(path: str | os.PathLike, data: str | os.PathLike | None = None, split: str = "test",
             batch_size: int = EVAL_BATCH) -> EvalResult:
    """Evaluate the checkpoint at ``path`` (a run directory, prefix or checkpoint file) on ``split``.

    Args:
        path: a run directory (its latest checkpoint), or one checkpoint of it.
        data: IDX directory to evaluate on; default: the data the run was trained on.
        split: ``test``, ``validation`` (if the run held one out) or ``train``.

    Example:
        >>> result = evaluate("runs/cnn5")
        >>> result.examples, result.per_class[0].name, result.confusion.shape
        (1000, 'T-shirt/top', (10, 10))
    """
    run_dir = find_run_dir(path)
    if run_dir is None:
        raise NotFoundError(f"{path}: no run.json in it or beside it; eval rebuilds the model from the "
                            f"run.json that 'ckpttools train' writes")
    config = load_run(run_dir)
    with open_checkpoint(path) as ckpt:
        prefix, note = ckpt.prefix, ckpt.note
        step = int(ckpt.get("global_step")) if "global_step" in ckpt else None
    examples = _examples(config, data, split)
    with graph_session(config.seed) as (graph, session):
        ops = build_eval(get_model(config.model), config)
        saver = tf.compat.v1.train.Saver(model_variables(get_model(config.model)))
        graph.finalize()
        _restore(saver, session, prefix)
        accuracy, loss, confusion = run_eval(session, ops, examples, config.num_classes, batch_size)
    names = config.class_names or tuple(str(label) for label in range(config.num_classes))
    return EvalResult(prefix, step, split, accuracy, loss, confusion, names, note)


def _examples(config: RunConfig, data: str | os.PathLike | None, split: str) -> Examples:
    directory = data if data is not None else config.data
    prepared = datasets.prepare(directory, config.classes, config.per_class, config.validation, config.seed)
    examples = prepared.split(split)
    if examples.image_shape != tuple(config.input_shape):
        raise DataError(f"{prepared.source}: images are {'x'.join(map(str, examples.image_shape))} but the run "
                        f"was trained on {'x'.join(map(str, config.input_shape))}")
    if len(examples) and int(examples.labels.max()) >= config.num_classes:
        raise DataError(f"{prepared.source}: label {int(examples.labels.max())} in the {split} split, but the run "
                        f"predicts {config.num_classes} classes")
    return examples


def _restore(saver: Any, session: Any, prefix: str) -> None:
    try:
        saver.restore(session, prefix)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as exc:
        first_line = str(exc.message).strip().splitlines()[0]
        raise DataError(f"{Path(prefix).name}: cannot restore the run's model from it ({first_line})") from None
