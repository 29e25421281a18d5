"""``ckpttools transfer``: warm-start a model from selected scopes of a checkpoint, then fine-tune it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_INTERRUPTED, ConfigError
from ..training.runconfig import RUN_FILE, load_run
from ..transfer.plan import DTYPE_POLICIES, MISSING_POLICIES, SHAPE_POLICIES, Plan
from ..transfer.rename import read_map_file
from . import trainview, transfer_ckpt
from .cluster import begin_task, cluster_options, end_task, exit_hard_on_error, pop_cluster_settings, run_local
from .text import print_json
from .tfimport import import_tfcore
from .train import config_from_options, default_out, training_options
from .transfer_view import print_plan

OUT_DEFAULT = "runs/transfer-MODEL"


@click.command()
@click.option("--from", "source", metavar="SOURCE",
              help="checkpoint prefix or directory, SavedModel, .npz, .safetensors or Keras file to start from")
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN", help="source variables to take (repeatable)")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="source variables to leave out (repeatable)")
@click.option("--map", "mapping", multiple=True, metavar="OLD=NEW",
              help="rename source scopes onto the model's, in order; 're:REGEX=REPL' for regular expressions")
@click.option("--map-file", "map_files", multiple=True, metavar="FILE",
              help="rules from FILE, one per line (ckpttools doctor --write-map); applied before --map rules")
@click.option("--into", metavar="TEMPLATE",
              help="write -o OUT: TEMPLATE's checkpoint with the selected SOURCE values (no TensorFlow)")
@click.option("--graph", "graph_meta", metavar="META",
              help="write -o OUT (+ .meta): the TF1 graph META initialised and warm-started from SOURCE")
@click.option("--with-optimizer-state", is_flag=True, help="also copy optimizer slots (never by default)")
@click.option("--on-missing", type=click.Choice(MISSING_POLICIES), default="warn", show_default=True,
              help="a selected source variable with no target")
@click.option("--on-shape-mismatch", type=click.Choice(SHAPE_POLICIES), default="skip", show_default=True,
              help="skip: initialise the target fresh; error: stop")
@click.option("--on-dtype-mismatch", type=click.Choice(DTYPE_POLICIES), default="skip", show_default=True,
              help="skip, cast the source value, or stop")
@click.option("--strict", is_flag=True, help="every selected variable must be restored (all policies 'error')")
@click.option("--freeze", "freeze", multiple=True, is_flag=False, flag_value="", metavar="[PATTERN]",
              help="keep restored variables (or those matching PATTERN, repeatable) out of training")
@click.option("--lr-mult", multiple=True, metavar="PATTERN=FACTOR",
              help="scale the learning rate of matching variables instead of freezing them")
@click.option("--dry-run", is_flag=True, help="print the plan and stop")
@click.option("--init-only", is_flag=True, help="write the warm-started checkpoint (step 0) without training")
@training_options(OUT_DEFAULT)
@cluster_options
@click.option("--resume", is_flag=True, help="continue a transfer run in --out from its latest checkpoint")
@click.option("--force", is_flag=True,
              help="start in a directory that holds another run (old files are moved); --into/--graph: overwrite OUT")
@click.option("--json", "as_json", is_flag=True, help="print the plan and result as JSON (schema ckpttools.transfer/1)")
def transfer(source: str | None, scopes: tuple[str, ...], exclude: tuple[str, ...], mapping: tuple[str, ...],
             map_files: tuple[str, ...], into: str | None, graph_meta: str | None, with_optimizer_state: bool,
             on_missing: str, on_shape_mismatch: str, on_dtype_mismatch: str, strict: bool,
             freeze: tuple[str, ...], lr_mult: tuple[str, ...], dry_run: bool, init_only: bool, out: str | None,
             resume: bool, force: bool, as_json: bool, **settings: Any) -> None:
    """Start a new model from selected layers of a checkpoint, then fine-tune it.

    Prints the plan first: every variable of the new model with its source and
    status (restored, new, skipped with both shapes), and the selected source
    variables that found no target, with a "did you mean" suggestion.
    Optimizer state is never copied unless --with-optimizer-state; batch-norm
    moving averages are (TensorFlow's own warm start leaves them out).

    Any other model: --into TEMPLATE (its freshly initialised checkpoint, from
    any TF1 or TF2 program) writes -o OUT with TEMPLATE's variables, the
    restored ones holding SOURCE's values, without TensorFlow; --graph META
    imports a TF1 meta graph, initialises it, warm-starts it and saves -o OUT.
    The new model then restores OUT. --force overwrites an existing OUT.

    \b
    Examples:
      ckpttools transfer --from runs/pretrain --scopes 'conv_block[1-3]' --freeze \\
          --model cnn5 --classes 5-9 --per-class 100 --out runs/transfer
      ckpttools transfer --from old/model.ckpt-20000 --map Net/=cnn/ --dry-run
      ckpttools transfer --from old/model.ckpt-20000 --map-file fix.map --dry-run --strict
      ckpttools transfer --from weights.npz --scopes 'conv_block*' --lr-mult 'conv_block*=0.1' --out runs/ft
      ckpttools transfer --out runs/transfer --resume --steps 2000
      ckpttools transfer --from runs/pretrain --scopes 'conv_block*' --cluster local --workers 2 --out runs/ft
      ckpttools transfer --from old/model.ckpt-20000 --into new/ckpt-0 \\
          --map-file names.map --strict -o warm/ckpt-0
      ckpttools transfer --from runs/pretrain --graph new/model.meta \\
          --scopes 'conv_block*' -o warm/model.ckpt
    \b
    Exit codes: 0 done, 2 bad option or --map, 3 source or data not found,
    4 malformed data or missing data files, 5 RUN or OUT not writable, OUT
    exists or RUN holding another run, 6 TensorFlow missing, 7 plan fails
    --strict or an 'error' policy, 8 a cluster task could not start or
    failed, 130 Ctrl-C.
    """
    mapping = tuple(rule for path in map_files for rule in read_map_file(path)) + mapping
    cluster = pop_cluster_settings(settings)
    if into or graph_meta:
        if not source:
            raise click.UsageError("--from SOURCE is required")
        given = {"freeze": freeze, "lr_mult": lr_mult, "init_only": init_only, "resume": resume,
                 "cluster": cluster.mode or cluster.spec_file, "sync": cluster.sync,
                 "partition_min_bytes": cluster.partition_min_bytes is not None}
        transfer_ckpt.refuse_training_flags("--into" if into else "--graph", given, settings)
        if strict:
            on_missing = on_shape_mismatch = on_dtype_mismatch = "error"
        options = transfer_ckpt.PlanOptions(scopes, exclude, mapping, with_optimizer_state, on_missing,
                                            on_shape_mismatch, on_dtype_mismatch)
        if graph_meta:
            import_tfcore()  # the meta graph is imported even for --dry-run
        transfer_ckpt.run(source, into, graph_meta, out, options, force, dry_run, as_json)
        return
    run_dir = default_out(out, settings, OUT_DEFAULT)
    if cluster.sync and lr_mult:  # refused here, before any task starts or TensorFlow loads
        raise ConfigError("--sync cannot be combined with --lr-mult (one synchronous optimizer per run)")
    if cluster.local and not dry_run:
        raise SystemExit(run_local(cluster, run_dir, resume, force))
    if cluster.partition_min_bytes is not None:
        raise ConfigError("--partition-min-bytes is not supported by transfer: the plan matches whole variables, "
                          "not their partitions; transfer without it, or train the partitioned run from scratch")
    task = None if dry_run else begin_task(cluster, run_dir, resume)  # --dry-run plans here, starts nothing
    import_tfcore()  # TensorFlow, quietly; or exit 6 with the install hint
    from ..tfcore import transfer as engine
    options = _options(engine, run_dir, resume, source, scopes, exclude, mapping, with_optimizer_state,
                       on_missing, on_shape_mismatch, on_dtype_mismatch, strict, freeze, lr_mult)
    base = load_run(run_dir) if resume and (run_dir / RUN_FILE).is_file() else None
    config = config_from_options(settings, base)
    if dry_run:
        _show_plan(engine.plan_transfer(config, options).plan, as_json)
        return
    chief = task is None or task.task.is_chief
    show = None if resume or as_json or not chief else print_plan  # a resumed run's plan is in its transfer.json
    with exit_hard_on_error(task), trainview.EpochProgress() as progress:
        result = engine.transfer(config, run_dir, options, resume=resume, force=force, init_only=init_only,
                                 on_step=progress, on_plan=show, cluster=task)
    if result.train is None:  # a parameter server or a worker other than the chief
        end_task(task)
        return
    if result.train.already_done:
        click.echo(f"note: {run_dir} is {trainview.already_done_text(result.train)}", err=True)
    if as_json:
        document = {"schema": "ckpttools.transfer/1", "plan": result.plan.to_dict(),
                    "train": trainview.train_json(result.train)}
        print_json(document)
    elif not result.train.interrupted and not result.train.already_done:
        click.echo(trainview.train_line(result.train))
    if result.train.interrupted:
        click.echo(f"Interrupted at step {result.train.step}: saved {result.train.checkpoint}; continue with: "
                   f"ckpttools transfer --out {run_dir} --resume", err=True)
    end_task(task, EXIT_INTERRUPTED if result.train.interrupted else 0)


def _options(module: Any, run_dir: Path, resume: bool, source: str | None, scopes: tuple, exclude: tuple,
             mapping: tuple, with_optimizer_state: bool, on_missing: str, on_shape: str, on_dtype: str,
             strict: bool, freeze: tuple, lr_mult: tuple) -> Any:
    """TransferOptions from the flags, or from the run's transfer.json when resuming."""
    if resume:
        saved = module.load_transfer_options(run_dir)
        if saved is None:
            raise ConfigError(f"{run_dir}: not a transfer run (no {module.TRANSFER_FILE}); resume it with "
                              "'ckpttools train --resume'")
        return saved
    if not source:
        raise click.UsageError("--from SOURCE is required (a checkpoint, run directory, .npz or .safetensors)")
    if strict:
        on_missing = on_shape = on_dtype = "error"
    freeze_patterns = None if not freeze else tuple(p for p in freeze if p)
    return module.TransferOptions(source, scopes, exclude, mapping, with_optimizer_state, on_missing, on_shape,
                                  on_dtype, freeze_patterns, module.parse_lr_mult(lr_mult))


def _show_plan(plan: Plan, as_json: bool) -> None:
    if as_json:
        print_json({"schema": "ckpttools.transfer/1", "plan": plan.to_dict()})
    else:
        print_plan(plan)
