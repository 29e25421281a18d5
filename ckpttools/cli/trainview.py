"""Show training progress and evaluation results: rich bars and tables, plain lines, or JSON.

Training progress goes to stderr (a bar per epoch on a terminal, one line per epoch otherwise);
results go to stdout, so ``ckpttools eval --json`` and the final ``train`` line stay clean data.
"""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from .text import plural

EVAL_SCHEMA = "ckpttools.eval/1"
TRAIN_SCHEMA = "ckpttools.train/1"


class EpochProgress:
    """``on_step`` callback: one bar per epoch on a terminal, else a line per finished epoch."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        self.epoch = 0
        self.last: Any = None

    def __enter__(self) -> EpochProgress:
        return self  # the bar starts with the first step, so whatever is printed before it (a plan) stays intact

    def _start(self) -> Progress:
        columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("step {task.fields[step]}"),
                   TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[accuracy]:.3f}"),
                   TextColumn("{task.fields[rate]:,.0f} img/s"), TimeElapsedColumn())
        progress = Progress(*columns, console=self.console)
        progress.start()
        return progress

    def __exit__(self, *exc: object) -> None:
        if self.progress:
            if self.task is not None and self.last.step == self.last.total_steps:
                self.progress.update(self.task, completed=1.0)  # done, though the last batch may end mid-epoch
            self.progress.stop()
        elif self.last is not None and exc[0] is None:
            self._line(self.last)  # the last, possibly partial, epoch

    def __call__(self, info: Any) -> None:
        if self.live and self.progress is None:
            self.progress = self._start()
        if info.epoch != self.epoch:
            if not self.live and self.last is not None:
                self._line(self.last)
            self.epoch = info.epoch
            if self.progress:
                if self.task is not None:
                    self.progress.update(self.task, completed=1.0)
                self.task = self.progress.add_task("", total=1.0, **self._fields(info))
        self.last = info
        if self.progress and self.task is not None:
            self.progress.update(self.task, completed=info.epoch_fraction, **self._fields(info))

    @staticmethod
    def _fields(info: Any) -> dict[str, Any]:
        return {"epoch": f"{info.epoch}/{info.epochs}", "step": f"{info.step}/{info.total_steps}",
                "loss": info.loss, "accuracy": info.accuracy, "rate": info.images_per_sec}

    def _line(self, info: Any) -> None:
        self.console.print(f"epoch {info.epoch}/{info.epochs}: step {info.step}/{info.total_steps}  "
                           f"loss {info.loss:.4f}  accuracy {info.accuracy:.3f}  "
                           f"{info.images_per_sec:,.0f} images/s", highlight=False, soft_wrap=True)


def train_line(result: Any) -> str:
    """The one line ``train`` ends with: step, test accuracy, where the checkpoint is."""
    parts = [f"step {result.step}: test accuracy {result.test.accuracy:.4f} (loss {result.test.loss:.4f})"]
    if result.validation is not None:
        parts.append(f"validation accuracy {result.validation.accuracy:.4f}")
    if result.images_per_sec:
        parts.append(f"{result.images_per_sec:,.0f} images/s")
    parts.append(f"{result.seconds:.1f} s")
    return ", ".join(parts) + f"; checkpoint {result.checkpoint}"


def train_json(result: Any) -> dict[str, Any]:
    def score(s: Any) -> dict[str, float] | None:
        return None if s is None else {"accuracy": s.accuracy, "loss": s.loss}

    return {"schema": TRAIN_SCHEMA, "run_dir": str(result.run_dir), "step": result.step,
            "checkpoint": result.checkpoint, "interrupted": result.interrupted, "resumed_from": result.resumed_from,
            "test": score(result.test), "validation": score(result.validation),
            "images_per_sec": result.images_per_sec, "seconds": result.seconds,
            "config": result.config.to_dict()}


def eval_json(result: Any) -> dict[str, Any]:
    return {"schema": EVAL_SCHEMA, "checkpoint": result.checkpoint, "step": result.step, "split": result.split,
            "examples": result.examples, "accuracy": result.accuracy, "loss": result.loss,
            "classes": [{"label": c.label, "name": c.name, "examples": c.examples, "correct": c.correct,
                         "accuracy": c.accuracy if c.examples else None} for c in result.per_class],
            "confusion_matrix": result.confusion.tolist()}


def eval_line(result: Any) -> str:
    """``runs/cnn5/model.ckpt-390 (step 390), test split, 1,000 examples: accuracy 0.7500, loss 0.6677``."""
    step = f" (step {result.step})" if result.step is not None else ""
    return (f"{result.checkpoint}{step}, {result.split} split, {plural(result.examples, 'example')}: "
            f"accuracy {result.accuracy:.4f}, loss {result.loss:.4f}")


def eval_rows(result: Any) -> list[list[str]]:
    """Piped ``eval``: per true class ``label, name, examples, correct, accuracy`` then the predicted counts."""
    return [[str(row.label), row.name, str(row.examples), str(row.correct),
             f"{row.accuracy:.4f}" if row.examples else "-", *(str(int(n)) for n in result.confusion[row.label])]
            for row in result.per_class]


def write_eval(result: Any) -> None:
    """The eval result on stdout: the table on a terminal; piped, tab-separated rows (summary on stderr)."""
    if sys.stdout.isatty():
        print_eval(result)
        return
    sys.stdout.write("".join("\t".join(fields) + "\n" for fields in eval_rows(result)))
    sys.stderr.write(eval_line(result) + "\n")


def print_eval(result: Any, console: Console | None = None) -> None:
    """A summary line and the confusion matrix (rows: true class; columns: predicted) with per-class accuracy."""
    console = console or Console()
    console.print(escape(eval_line(result)), highlight=False, soft_wrap=True)
    table = Table(title="confusion matrix: rows are true classes, columns predicted", title_justify="left")
    table.add_column("true class")
    for label in range(len(result.class_names)):
        table.add_column(str(label), justify="right")
    table.add_column("accuracy", justify="right")
    for row in result.per_class:
        counts = [_cell(int(n), label == row.label) for label, n in enumerate(result.confusion[row.label])]
        accuracy = f"{row.accuracy:.3f}" if row.examples else "-"
        table.add_row(f"{row.label} {escape(row.name)}", *counts, accuracy)
    console.print(table)


def _cell(count: int, diagonal: bool) -> str:
    return f"[bold]{count}[/bold]" if diagonal else (str(count) if count else "[dim]0[/dim]")


__all__ = ["EpochProgress", "eval_json", "eval_line", "eval_rows", "print_eval", "train_json", "train_line",
           "write_eval"]
