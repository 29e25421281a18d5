"""Turn listings into tab-separated lines, indented trees or JSON; pick the rich renderer on a terminal.

Piped output never imports rich (nor numpy, unless --stats reads values):
``ls`` stays a few-millisecond job. Tables and trees go to stdout; notes and
progress go to stderr so piped output stays pure data.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ..checkpoint import Checkpoint
from ..info import TensorInfo
from ..ops.listing import Listing, ScopeNode, scope_tree
from .listing_text import STATS_COLUMNS, listing_notes, row, scope_detail, stats_notes, totals_text, walk_tree
from .progress import byte_progress
from .text import human_bytes, print_json, range_text, shape_text, shard_text, write_notes

JSON_SCHEMA = "ckpttools.ls/1"

# Re-exported: commands import these from here.
__all__ = ["JSON_SCHEMA", "STATS_COLUMNS", "PlainOutput", "human_bytes", "listing_json", "listing_notes",
           "output_for_stdout", "print_json", "read_stats", "shape_text", "stats_notes", "tensor_json"]


def read_stats(ckpt: Checkpoint, infos: Sequence[TensorInfo]) -> dict:
    """Read each tensor once and summarise it, with a progress bar (by bytes) on big checkpoints."""
    from ..ops.stats import variables_stats  # numpy: only when values are read

    with byte_progress(sum(info.nbytes for info in infos), "reading values") as advance:
        return variables_stats(ckpt, infos, advance)


def output_for_stdout():  # -> PlainOutput | RichOutput
    """A rich table renderer on a terminal, tab-separated lines when piped."""
    if sys.stdout.isatty():
        from .rich_render import RichOutput

        return RichOutput()
    return PlainOutput()


class PlainOutput:
    """Pipe-friendly output: one tab-separated line per row, counts without separators; notes and totals on stderr."""

    def notes(self, notes: Sequence[str]) -> None:
        write_notes(notes)

    def table(self, ckpt: Checkpoint, listing: Listing, stats: dict | None) -> None:
        join = "\t".join
        sys.stdout.write("".join([join(row(info, stats)) + "\n" for info in listing.shown]))
        sys.stderr.write(totals_text(listing) + "\n")

    def tree(self, ckpt: Checkpoint, listing: Listing) -> None:
        root = scope_tree(listing.shown)
        sys.stdout.write(f"{ckpt.prefix}\t{root.parameters} parameters\t{human_bytes(root.nbytes)}\n")
        for depth, name, node in walk_tree(root):
            sys.stdout.write("  " * depth + f"{name}  {scope_detail(node, plain=True)}\n")

    def slices(self, listing: Listing) -> None:
        parted = [info for info in listing.shown if info.partitioned]
        if not parted:
            write_notes(["no partitioned variables among those selected"])
        for info in parted:
            for number, part in enumerate(info.slices):
                fields = [info.name, str(number), range_text(part.start, part.stop),
                          shape_text(part.shape), shard_text(part.shard), str(part.nbytes)]
                sys.stdout.write("\t".join(fields) + "\n")


# --- JSON --------------------------------------------------------------------


def listing_json(path: str, ckpt: Checkpoint, listing: Listing, stats: dict | None,
                 with_tree: bool = False) -> dict[str, Any]:
    """The documented ``ckpttools ls --json`` document (schema ``ckpttools.ls/1``)."""
    document: dict[str, Any] = {
        "schema": JSON_SCHEMA,
        "checkpoint": {
            "path": path,
            "prefix": ckpt.prefix,
            "format": ckpt.format,
            "saved_model": ckpt.saved_model,
            "note": ckpt.note,
            "missing_data_files": ckpt.missing_data_files(),
        },
        "variables": [tensor_json(info, stats) for info in listing.shown],
        "hidden": {
            "variables": len(listing.hidden),
            "nbytes": sum(info.nbytes for info in listing.hidden),
            "roles": listing.hidden_roles,
        },
        "totals": {
            "variables": listing.totals.variables,
            "parameters": listing.totals.parameters,
            "nbytes": listing.totals.nbytes,
        },
        "unmatched_patterns": listing.unmatched_patterns,
    }
    if with_tree:
        document["tree"] = _tree_json(scope_tree(listing.shown))
    return document


def tensor_json(info: TensorInfo, stats: dict | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "name": info.name,
        "key": info.key,
        "dtype": info.dtype,
        "shape": list(info.shape),
        "size": info.size,
        "nbytes": info.nbytes,
        "role": info.role,
        "slot_of": info.slot_of,
        "slot_name": info.slot_name,
        "original_name": info.original_name,
        "slices": [
            {"start": list(s.start), "shape": list(s.shape), "shard": s.shard, "nbytes": s.nbytes}
            for s in info.slices
        ],
    }
    if stats is not None:
        found = stats.get(info.name)
        item["stats"] = None if found is None else {
            "min": found.min, "max": found.max, "mean": found.mean, "std": found.std,
            "nan": found.nan, "inf": found.inf,
        }
    return item


def _tree_json(node: ScopeNode) -> dict[str, Any]:
    return {
        "name": node.name,
        "variables": node.variables,
        "parameters": node.parameters,
        "nbytes": node.nbytes,
        "children": [_tree_json(child) for child in node.children.values()],
    }
