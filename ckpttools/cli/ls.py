"""``ckpttools ls``: list the variables of a checkpoint."""

from __future__ import annotations

import click

from .. import collector
from ..checkpoint import open_checkpoint
from ..ops.listing import SORT_KEYS, list_variables
from . import render
from .storage_options import storage_option


@click.command()
@click.argument("path")
@storage_option
@click.option("--scopes", "-s", multiple=True, metavar="PATTERN",
              help="Only variables matching PATTERN (repeatable; see README 'Selecting variables').")
@click.option("--all", "-a", "show_all", is_flag=True, help="Also show optimizer slots and training state.")
@click.option("--tree", is_flag=True, help="Show the scope hierarchy with parameter totals per scope.")
@click.option("--slices", is_flag=True, help="Show how partitioned variables are split: parts, ranges, shards.")
@click.option("--stats", is_flag=True, help="Read values: min, max, mean, std, NaN and Inf counts.")
@click.option("--sort", type=click.Choice(SORT_KEYS), default="name", show_default=True, help="Row order.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (schema in the README).")
@collector.paused()  # a listing builds no garbage cycles; paused until its objects are freed on return
def ls(path: str, scopes: tuple[str, ...], show_all: bool, tree: bool, slices: bool, stats: bool,
       sort: str, as_json: bool) -> None:
    """List the variables in a checkpoint: name, dtype, shape, parameters, bytes.

    PATH is a checkpoint prefix, one of its files (.index, .data-*, .meta), a
    directory (uses its 'checkpoint' file, else the newest step), a SavedModel
    directory or its saved_model.pb, a folder of SavedModel exports (the newest
    numbered one), a V1 checkpoint file, an .npz/.safetensors file, or a Keras
    file (.keras, .weights.h5, legacy .h5). Optimizer state is hidden unless --all.
    Output is a table on a terminal and tab-separated lines when piped.

    \b
    Examples:
      ckpttools ls runs/cnn
      ckpttools ls model.ckpt-20000 --scopes 'conv_block[1-3]' --tree
      ckpttools ls model.ckpt-20000 --all --sort size
      ckpttools ls model.ckpt-20000 --json | jq '.totals'
      ckpttools ls model.keras --all
    \b
    Exit codes: 0 ok, 2 bad option or pattern, 3 checkpoint not found,
    4 bad or corrupt data, 130 Ctrl-C.
    """
    views = [flag for flag, given in (("--tree", tree), ("--slices", slices), ("--stats", stats)) if given]
    if len(views) > 1 and not as_json:  # (--json carries the tree and the stats together)
        raise click.UsageError(f"{' and '.join(views)} are different views; choose one "
                               "(--json --tree --stats gives both)")
    with open_checkpoint(path) as ckpt:
        listing = list_variables(ckpt, scopes, show_all=show_all, sort=sort)
        values = render.read_stats(ckpt, listing.shown) if stats else None
        out = render.output_for_stdout()
        if as_json:
            render.print_json(render.listing_json(path, ckpt, listing, values, with_tree=tree))
            return
        out.notes(render.listing_notes(ckpt, listing) + render.stats_notes(listing, values))
        if tree:
            out.tree(ckpt, listing)
        elif slices:
            out.slices(listing)
        else:
            out.table(ckpt, listing, values)
