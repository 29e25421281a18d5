"""``ckpttools transfer --into TEMPLATE`` / ``--graph NEW.meta``: start any model from a checkpoint.

Both write a checkpoint (``-o OUT``) instead of training a registered model: ``--into`` without
TensorFlow (TEMPLATE's variables, SOURCE's values where the plan restores them), ``--graph`` by
importing the user's TF1 meta graph. The plan is printed first, as for registered models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import click

from ..errors import EXIT_INTERRUPTED
from .progress import byte_progress
from .text import print_json
from .transfer_view import print_plan

# Flags of the training flow that mean nothing when writing a checkpoint.
TRAINING_ONLY = ("freeze", "lr_mult", "init_only", "resume", "cluster", "sync", "partition_min_bytes")


@dataclass(frozen=True)
class PlanOptions:
    """What to take from SOURCE and the policies: the flags shared by every transfer flow."""

    scopes: tuple[str, ...]
    exclude: tuple[str, ...]
    mapping: tuple[str, ...]
    with_optimizer_state: bool
    on_missing: str
    on_shape_mismatch: str
    on_dtype_mismatch: str

    def kwargs(self) -> dict[str, Any]:
        return dict(self.__dict__)


def refuse_training_flags(flag: str, given: dict[str, Any], settings: dict[str, Any]) -> None:
    """A usage error for training flags given along with ``--into``/``--graph``."""
    names = [name for name in TRAINING_ONLY if given.get(name)]
    names += [name for name, value in settings.items() if value is not None]
    if names:
        shown = ", ".join("--" + name.replace("_", "-") for name in names)
        raise click.UsageError(f"{shown}: training options; {flag} writes a checkpoint and trains nothing")


def run(source: str, into: str | None, graph: str | None, out: str | None, options: PlanOptions, force: bool,
        dry_run: bool, as_json: bool) -> None:
    """Plan, print the plan, write OUT (unless --dry-run), say what was written."""
    if into and graph:
        raise click.UsageError("--into and --graph are two ways to start a model; give one")
    flag = "--into" if into else "--graph"
    if not out and not dry_run:
        raise click.UsageError(f"{flag} needs -o/--out OUT: the checkpoint prefix to write")
    try:
        result = _write(source, into, graph, out, options, force, dry_run, None if as_json else print_plan)
    except KeyboardInterrupt:
        click.echo("Interrupted: nothing was written (temporary files removed)", err=True)
        raise SystemExit(EXIT_INTERRUPTED) from None
    if as_json:
        document = {"schema": "ckpttools.transfer/1", "plan": result.plan.to_dict()}
        if not dry_run:
            document["output"] = result.to_dict()
        print_json(document)
    elif not dry_run:
        click.echo(f"wrote {result.prefix} ({len(result.plan.restored)} variables from {result.plan.source})",
                   err=True)


def _write(source: str, into: str | None, graph: str | None, out: str | None, options: PlanOptions, force: bool,
           dry_run: bool, show: Any) -> Any:
    """The library call of either flow: an IntoResult or a GraphResult."""
    if into:
        from ..transfer.into import output_prefix, transfer_into

        total = _template_bytes(into)
        with byte_progress(total, f"writing {output_prefix(out or '.')}") as advance:
            return transfer_into(source, into, out or ".", force=force, dry_run=dry_run, progress=advance,
                                 on_plan=show, **options.kwargs())
    from ..tfcore.graph_transfer import transfer_graph

    return transfer_graph(source, graph, out or ".", force=force, dry_run=dry_run, on_plan=show,
                          **options.kwargs())


def _template_bytes(template: str) -> int:
    from ..checkpoint import open_checkpoint

    with open_checkpoint(template) as ckpt:
        return sum(info.nbytes for info in ckpt)
