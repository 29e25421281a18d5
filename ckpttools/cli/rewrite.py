"""``ckpttools rewrite``: change a checkpoint (select, rename, strip, EMA, cast, average, set step) without TF."""

from __future__ import annotations

import re
from contextlib import ExitStack

import click

from ..errors import EXIT_INTERRUPTED
from ..ops.rewrite import rewrite
from ..ops.rewrite_plan import Plan
from .progress import byte_progress
from .rewrite_view import print_plan, print_result
from .storage_options import storage_option
from .text import print_json

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40, "ki": 2**10, "mi": 2**20,
          "gi": 2**30, "ti": 2**40}


def parse_size(text: str) -> int:
    """``500MB``, ``2GiB``, ``1000000`` -> bytes."""
    match = _SIZE.match(text)
    unit = (match.group(2) or "").lower() if match else ""
    if not match or unit not in _UNITS or float(match.group(1)) * _UNITS[unit] < 1:
        raise click.BadParameter(f"'{text}' is not a size (e.g. 500MB, 2GiB, 1000000)")
    return int(float(match.group(1)) * _UNITS[unit])


@click.command()
@click.argument("source")
@storage_option
@click.option("--output", "-o", metavar="OUT", help="Output checkpoint prefix (OUT.index, OUT.data-*).")
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN", help="Keep only variables matching PATTERN.")
@click.option("--exclude", multiple=True, metavar="PATTERN", help="Drop variables matching PATTERN.")
@click.option("--map", "mapping", multiple=True, metavar="OLD=NEW",
              help="Rename, in order, with transfer's rules: 'Net/=cnn/', 're:^tower_0/(.*)=\\1'.")
@click.option("--map-file", metavar="FILE", help="--map rules from a file, one per line ('#' comments).")
@click.option("--strip-optimizer", is_flag=True, help="Drop optimizer slots, beta powers and global_step.")
@click.option("--keep-step", is_flag=True, help="With --strip-optimizer: keep global_step.")
@click.option("--use-ema", is_flag=True, help="Replace variables by their ExponentialMovingAverage shadows.")
@click.option("--cast", multiple=True, metavar="FROM=TO", help="Cast tensors of dtype FROM to TO (float32=bfloat16).")
@click.option("--average", "average_with", multiple=True, metavar="CKPT",
              help="Average SOURCE with CKPT (repeatable); integer tensors come from SOURCE.")
@click.option("--average-last", type=click.IntRange(min=2), metavar="N",
              help="Average the N newest checkpoints of SOURCE's directory.")
@click.option("--set-step", type=int, metavar="N", help="Write global_step (TF2: save_counter) as N.")
@click.option("--shards", type=click.IntRange(min=1), default=1, show_default=True, metavar="N",
              help="Number of data shards.")
@click.option("--max-shard-size", metavar="SIZE", help="Start a new data shard past SIZE (500MB, 2GiB).")
@click.option("--dry-run", is_flag=True, help="Print the plan and write nothing.")
@click.option("--force", "-f", is_flag=True, help="Overwrite an existing OUT checkpoint.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan and result as JSON (ckpttools.rewrite/1).")
def rewrite_command(source: str, output: str | None, scopes: tuple[str, ...], exclude: tuple[str, ...],
                    mapping: tuple[str, ...], map_file: str | None, strip_optimizer: bool, keep_step: bool,
                    use_ema: bool, cast: tuple[str, ...], average_with: tuple[str, ...], average_last: int | None,
                    set_step: int | None, shards: int, max_shard_size: str | None, dry_run: bool, force: bool,
                    as_json: bool) -> None:
    """Write a changed copy of a checkpoint, without TensorFlow, in one streaming pass.

    Operations apply in this order: --scopes/--exclude, --map, --strip-optimizer,
    --use-ema, --cast, --average/--average-last, --set-step. SOURCE is anything
    `ls` opens (V1, V2, TF2, a run directory); OUT is always a V2 checkpoint, with
    a `checkpoint` state file beside it. The source's .meta is copied only when no
    variable was renamed or removed. --dry-run prints the plan (a table on a
    terminal, tab-separated lines when piped).

    \b
    Example:
      ckpttools rewrite runs/cnn -o small/model.ckpt --strip-optimizer --cast float32=bfloat16
      ckpttools rewrite old/model.ckpt-9000 -o new/model.ckpt --map Net/=cnn/ --dry-run
      ckpttools rewrite runs/cnn --average-last 3 -o avg/model.ckpt
    \b
    Exit codes: 0 ok, 2 bad option (--map collision, unknown --cast dtype),
    3 not found, 4 bad data (corrupt or missing data shard, averaged inputs
    differ), 5 output error (exists without --force, directory missing or
    read-only, disk full, OUT is SOURCE), 130 interrupted (nothing written).
    """
    if not output and not dry_run:
        raise click.UsageError("--output OUT is required (or --dry-run)")
    if max_shard_size and shards != 1:
        raise click.UsageError("use --shards or --max-shard-size, not both")
    max_bytes = parse_size(max_shard_size) if max_shard_size else None
    with ExitStack() as stack:
        advance = [lambda nbytes: None]

        def start(plan: Plan) -> None:  # the bar covers the bytes to write, known once the plan is
            total = sum(entry.nbytes for entry in plan.entries)
            advance[0] = stack.enter_context(byte_progress(total, f"writing {output}"))

        try:
            report = rewrite(source, output, scopes=scopes, exclude=exclude, mapping=mapping, map_file=map_file,
                             strip_optimizer=strip_optimizer, keep_step=keep_step, use_ema=use_ema, cast=cast,
                             average_with=average_with, average_last=average_last, set_step=set_step,
                             num_shards=shards, max_shard_bytes=max_bytes, dry_run=dry_run, force=force,
                             progress=lambda nbytes: advance[0](nbytes), on_plan=None if dry_run else start)
        except KeyboardInterrupt:
            click.echo(f"Error: interrupted; nothing was written to {output}", err=True)
            raise SystemExit(EXIT_INTERRUPTED) from None
    if as_json:
        print_json(report.to_dict())
    elif dry_run:
        print_plan(report.plan)
    else:
        print_result(report)
