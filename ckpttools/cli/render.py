"""Turn listings into tab-separated lines, indented trees or JSON; pick the rich renderer on a terminal.

Piped output never imports rich (nor numpy, unless --stats reads values):
``ls`` stays a few-millisecond job. Tables and trees go to stdout; notes and
progress go to stderr so piped output stays pure data.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from ..checkpoint import Checkpoint
from ..errors import UnsupportedError
from ..info import TensorInfo
from ..ops.listing import Listing, ScopeNode, scope_tree
from .progress import byte_progress

JSON_SCHEMA = "ckpttools.ls/1"


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def listing_notes(ckpt: Checkpoint, listing: Listing) -> list[str]:
    """The one-line remarks shown beside a listing (on stderr)."""
    notes = []
    if ckpt.note:
        notes.append(ckpt.note)
    notes += ckpt.warnings
    missing = ckpt.missing_data_files()
    if missing:
        notes.append(f"data file missing: {', '.join(missing)} (listing works; values cannot be read)")
    if listing.hidden:
        kinds = ", ".join(f"{count} {role}" for role, count in sorted(listing.hidden_roles.items()))
        nbytes = sum(info.nbytes for info in listing.hidden)
        count = len(listing.hidden)
        notes.append(f"{count} non-model variables hidden ({kinds}; {human_bytes(nbytes)}); --all shows them")
    for pattern in listing.unmatched_patterns:
        notes.append(f"pattern '{pattern}' matched no variable")
    return notes


def stats_notes(listing: Listing, stats: dict | None) -> list[str]:
    """Say which shown tensors got no statistics (strings, complex numbers, undecodable dtypes)."""
    if stats is None:
        return []
    without = [info for info in listing.shown if stats.get(info.name) is None]
    if not without:
        return []
    dtypes = ", ".join(sorted({info.dtype for info in without}))
    return [f"no numeric statistics for {len(without)} {'tensor' if len(without) == 1 else 'tensors'} "
            f"of dtype {dtypes} (shown as -)"]


def human_bytes(size: int) -> str:
    """Decimal units, as rich prints them: 950 bytes, 1.2 kB, 3.4 MB."""
    if size < 1000:
        return f"{size:,} bytes" if size != 1 else "1 byte"
    for unit in ("kB", "MB", "GB", "TB", "PB", "EB"):
        size /= 1000
        if size < 1000 or unit == "EB":
            return f"{size:,.1f} {unit}"
    return ""


def read_stats(ckpt: Checkpoint, infos: Sequence[TensorInfo]) -> dict:
    """Read each tensor once and summarise it, with a progress bar on big checkpoints."""
    from ..ops.stats import tensor_stats  # numpy: only when values are read

    stats: dict = {}
    with byte_progress(sum(info.nbytes for info in infos), "reading values") as advance:
        for info in infos:
            try:
                stats[info.name] = tensor_stats(ckpt.get(info.name))
            except UnsupportedError:  # listed, but its dtype cannot be decoded: no stats, keep going
                stats[info.name] = None
            advance(info.nbytes)
    return stats


def output_for_stdout():  # -> PlainOutput | RichOutput
    """A rich table renderer on a terminal, tab-separated lines when piped."""
    if sys.stdout.isatty():
        from .rich_render import RichOutput

        return RichOutput()
    return PlainOutput()


def print_json(document: dict[str, Any]) -> None:
    """The ``--json`` output of every command: one indented document on stdout."""
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


class PlainOutput:
    """Pipe-friendly output: one tab-separated line per row; notes and totals on stderr."""

    def notes(self, notes: Sequence[str]) -> None:
        for note in notes:
            sys.stderr.write(f"note: {note}\n")

    def table(self, ckpt: Checkpoint, listing: Listing, stats: dict | None) -> None:
        for info in listing.shown:
            sys.stdout.write("\t".join(row(info, stats)) + "\n")
        sys.stderr.write(totals_text(listing) + "\n")

    def tree(self, ckpt: Checkpoint, listing: Listing) -> None:
        root = scope_tree(listing.shown)
        sys.stdout.write(f"{ckpt.prefix}\t{root.parameters:,} parameters\t{human_bytes(root.nbytes)}\n")
        for depth, name, node in walk_tree(root):
            sys.stdout.write("  " * depth + scope_text(name, node, markup=False) + "\n")

    def slices(self, listing: Listing) -> None:
        parted = [info for info in listing.shown if info.partitioned]
        if not parted:
            sys.stderr.write("note: no partitioned variables among those selected\n")
        for info in parted:
            for number, part in enumerate(info.slices):
                fields = [info.name, str(number), range_text(part.start, part.stop),
                          shape_text(part.shape), shard_text(part.shard), str(part.nbytes)]
                sys.stdout.write("\t".join(fields) + "\n")


STATS_COLUMNS = ("min", "max", "mean", "std", "nan", "inf")


def row(info: TensorInfo, stats: dict | None) -> list[str]:
    """One variable's cells: name, dtype, shape, parameters, bytes (and the stats columns)."""
    cells = [info.name, info.dtype, shape_text(info.shape), f"{info.size:,}", str(info.nbytes)]
    if stats is None:
        return cells
    found = stats.get(info.name)
    if found is None:
        return cells + ["-"] * len(STATS_COLUMNS)
    numbers = [found.min, found.max, found.mean, found.std]
    return cells + ["-" if n is None else f"{n:.6g}" for n in numbers] + [str(found.nan), str(found.inf)]


def totals_text(listing: Listing) -> str:
    totals = listing.totals
    return f"total: {totals.variables} variables, {totals.parameters:,} parameters, {human_bytes(totals.nbytes)}"


def range_text(start: Sequence[int], stop: Sequence[int]) -> str:
    return "[" + ", ".join(f"{a}:{b}" for a, b in zip(start, stop)) + "]"


def shard_text(shard: int | None) -> str:
    return "-" if shard is None else str(shard)


def walk_tree(node: ScopeNode, depth: int = 0):  # -> Iterator[tuple[int, str, ScopeNode]]
    """Yield (depth, label, node) in display order, folding single-child chains (a/b/c) into one line."""
    for child in node.children.values():
        name = child.name
        while len(child.children) == 1 and child.tensor is None:
            child = next(iter(child.children.values()))
            name = f"{name}/{child.name}"
        yield depth, name, child
        yield from walk_tree(child, depth + 1)


def scope_text(name: str, node: ScopeNode, markup: bool) -> str:
    """A tree line: a variable with dtype, shape and size, or a scope with its totals."""
    if markup:
        from rich.markup import escape  # rich is loaded already whenever markup is wanted

        name = escape(name)
    if node.tensor is not None and not node.children:
        info = node.tensor
        detail = f"{info.dtype} {shape_text(info.shape)}  {info.size:,}"
        return f"{name}  [dim]{detail}[/dim]" if markup else f"{name}  {detail}"
    detail = f"{node.parameters:,} parameters, {human_bytes(node.nbytes)}"
    return f"[bold]{name}[/bold]  {detail}" if markup else f"{name}  {detail}"


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
