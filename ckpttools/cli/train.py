"""``ckpttools train``: train a model into a run directory (thin wrapper over ``tfcore.train``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_INTERRUPTED
from ..training.datasets import parse_classes
from ..training.runconfig import OPTIMIZERS, RUN_FILE, RunConfig, load_run
from . import trainview
from .cluster import begin_task, cluster_options, end_task, exit_hard_on_error, pop_cluster_settings, run_local
from .text import print_json
from .tfimport import import_tfcore

_DEFAULTS = RunConfig()


def _default(name: str) -> str:
    value = getattr(_DEFAULTS, name)
    return "bundled Fashion-MNIST subset" if name == "data" and value is None else str(value)


# The training settings, shared by `train` and `transfer` (each maps onto a RunConfig field).
TRAINING_OPTIONS = [
    click.option("--model", "-m", metavar="NAME",
                 help=f"deep_mnist, lenet5, slim_cnn, cnn5 or a registered model  [default: {_default('model')}]"),
    click.option("--data", "-d", metavar="DIR",
                 help=f"directory of MNIST-format IDX files  [default: {_default('data')}]"),
    click.option("--steps", type=int, help="train until this global step (overrides --epochs)"),
    click.option("--epochs", type=float, help=f"passes over the training set  [default: {_default('epochs')}]"),
    click.option("--classes", metavar="LIST", help="train on these labels only, relabelled 0..k-1: '5-9', '0,2,4'"),
    click.option("--per-class", type=int, metavar="N", help="few-shot: N training examples per class"),
    click.option("--validation", type=float, metavar="FRACTION",
                 help="hold out this fraction of each class for validation  [default: 0]"),
    click.option("--batch-size", type=int, help=f"[default: {_default('batch_size')}]"),
    click.option("--optimizer", type=click.Choice(OPTIMIZERS), help=f"[default: {_default('optimizer')}]"),
    click.option("--lr", "learning_rate", type=float, help=f"learning rate  [default: {_default('learning_rate')}]"),
    click.option("--momentum", type=float, help=f"for --optimizer momentum  [default: {_default('momentum')}]"),
    click.option("--decay-steps", type=int, help="decay the learning rate exponentially every N steps  [default: off]"),
    click.option("--decay-rate", type=float, help=f"[default: {_default('decay_rate')}]"),
    click.option("--staircase/--smooth", default=None, help="decay in steps or smoothly  [default: smooth]"),
    click.option("--weight-decay", type=float, help="L2 factor on kernels  [default: the model's own]"),
    click.option("--keep-prob", type=float, help=f"dropout keep probability  [default: {_default('keep_prob')}]"),
    click.option("--num-classes", type=int, help="size of the output layer  [default: from the data]"),
    click.option("--seed", type=int, help=f"[default: {_default('seed')}]"),
    click.option("--checkpoint-every", type=int, metavar="N",
                 help=f"steps between checkpoints and test evaluations  [default: {_default('checkpoint_every')}]"),
    click.option("--max-to-keep", type=int, metavar="N",
                 help=f"checkpoints kept  [default: {_default('max_to_keep')}]"),
    click.option("--summary-every", type=int, metavar="N",
                 help=f"steps between TensorBoard scalars  [default: {_default('summary_every')}]"),
    click.option("--histogram-every", type=int, metavar="N",
                 help="steps between TensorBoard weight and activation histograms, input images and first-layer "
                      f"filters  [default: {_default('histogram_every')}]"),
]
DEFAULT_OUT = "runs/MODEL"  # the run directory when --out is not given; MODEL is --model's value


def training_options(out_default: str = DEFAULT_OUT) -> Any:
    """A decorator adding --out (whose default is ``out_default``) and the training settings to a command."""
    def decorate(command: Any) -> Any:
        for option in reversed(TRAINING_OPTIONS):
            command = option(command)
        return click.option("--out", "-o", metavar="RUN", help=f"run directory  [default: {out_default}]")(command)
    return decorate


def default_out(out: str | None, settings: dict[str, Any], out_default: str = DEFAULT_OUT) -> Path:
    """The run directory: --out, else ``out_default`` with MODEL replaced by the model trained (as --help says)."""
    return Path(out or out_default.replace("MODEL", settings.get("model") or _DEFAULTS.model))


def config_from_options(settings: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """A RunConfig from the given options (None = not given) over ``base`` (a resumed run's, or the defaults)."""
    given = {name: value for name, value in settings.items() if value is not None}
    if "classes" in given:
        given["classes"] = parse_classes(given["classes"])
    if "epochs" in given and "steps" not in given:
        given["steps"] = None  # --epochs replaces a --steps the run was started with
    return dataclasses.replace(base or RunConfig(), **given)


@click.command()
@training_options()
@cluster_options
@click.option("--resume", is_flag=True, help="continue the run in --out from its latest checkpoint")
@click.option("--force", is_flag=True, help="start a new run in a directory that holds one (old files are moved)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON (schema ckpttools.train/1)")
def train(out: str | None, resume: bool, force: bool, as_json: bool, **settings: Any) -> None:
    """Train a model and write checkpoints, TensorBoard summaries and run.json to RUN.

    With no options, trains cnn5 on the Fashion-MNIST subset bundled with
    ckpttools. A run stopped with Ctrl-C saves a checkpoint first; --resume
    continues it exactly where it stopped (same settings required, except
    --steps/--epochs and how often to save).

    \b
    Examples:
      ckpttools train
      ckpttools train --model deep_mnist --data ~/data/fashion-mnist --epochs 10 --out runs/deep
      ckpttools train --model lenet5 --classes 5-9 --per-class 20 --steps 300 --out runs/fewshot
      ckpttools train --out runs/deep --steps 20000 --resume
      ckpttools train --cluster local --workers 2 --ps 2 --steps 500 --out runs/dist
    \b
    Exit codes: 0 done, 2 bad option or settings that conflict with the run
    being resumed, 3 data or run not found, 4 malformed data, 5 RUN not
    writable or holding another run, 6 TensorFlow missing, 8 a cluster task
    could not start or failed, 130 Ctrl-C.
    """
    cluster = pop_cluster_settings(settings)
    run_dir = default_out(out, settings)
    if cluster.local:
        raise SystemExit(run_local(cluster, run_dir, resume, force))
    base = load_run(run_dir) if resume and (run_dir / RUN_FILE).is_file() else RunConfig()
    config = config_from_options(settings, base)
    task = begin_task(cluster, run_dir, resume)
    tfcore = import_tfcore()
    with exit_hard_on_error(task), trainview.EpochProgress() as progress:
        result = tfcore.train(config, run_dir, resume=resume, force=force, on_step=progress, cluster=task)
    if result is None:  # a parameter server or a worker other than the chief: nothing to report
        end_task(task)
        return
    if result.already_done:
        click.echo(f"note: {run_dir} is {trainview.already_done_text(result)}", err=True)
    if result.moved_to:
        click.echo(f"note: moved the previous run's files to {result.moved_to}", err=True)
    if result.interrupted:
        click.echo(f"Interrupted at step {result.step}: saved {result.checkpoint}; continue with: "
                   f"ckpttools train --out {run_dir} --resume", err=True)
    if as_json:
        print_json(trainview.train_json(result))
    elif not result.interrupted and not result.already_done:
        click.echo(trainview.train_line(result))
    end_task(task, EXIT_INTERRUPTED if result.interrupted else 0)
