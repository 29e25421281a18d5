"""``ckpttools eval``: accuracy, loss, per-class accuracy and confusion matrix of a checkpoint."""

from __future__ import annotations

import click

from . import trainview
from .text import print_json
from .tfimport import import_tfcore


@click.command(name="eval")
@click.argument("path", metavar="RUN_OR_CKPT")
@click.option("--data", "-d", metavar="DIR", help="IDX directory to evaluate on  [default: the run's own data]")
@click.option("--split", type=click.Choice(["test", "validation", "train"]), default="test", show_default=True,
              help="which split of the data")
@click.option("--batch-size", type=int, default=500, show_default=True, help="examples per evaluation batch")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (schema ckpttools.eval/1)")
def evaluate(path: str, data: str | None, split: str, batch_size: int, as_json: bool) -> None:
    """Evaluate a trained run: accuracy, loss, per-class accuracy, confusion matrix.

    RUN_OR_CKPT is a run directory written by 'ckpttools train' (its latest
    checkpoint) or one checkpoint in it (model.ckpt-STEP, or any of its
    files). The model and its classes are rebuilt from the run's run.json.
    Piped, one tab-separated line per true class: label, name, examples,
    correct, accuracy, then the counts predicted as each class (the summary
    line goes to stderr).

    \b
    Examples:
      ckpttools eval runs/cnn5
      ckpttools eval runs/deep/model.ckpt-5000 --data ~/data/fashion-mnist
      ckpttools eval runs/fewshot --split validation --json | jq .accuracy
    \b
    Exit codes: 0 ok, 2 bad option, 3 run, checkpoint or data not found,
    4 malformed data or a checkpoint that does not fit the run, 6 TensorFlow missing,
    130 Ctrl-C.
    """
    tfcore = import_tfcore()
    result = tfcore.evaluate(path, data=data, split=split, batch_size=batch_size)
    if as_json:
        print_json(trainview.eval_json(result))
    else:
        trainview.write_eval(result)
