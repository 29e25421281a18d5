"""The cells, notes and tree lines of ``ckpttools ls``, shared by the plain and the rich renderer.

Plain text only (no rich): the renderers decide how to lay it out. ``plain=True`` is the form for
scripts (counts without thousands separators, full-precision floats).
"""

from __future__ import annotations

from collections.abc import Iterator
from math import prod

from ..checkpoint import Checkpoint
from ..info import TensorInfo
from ..ops.listing import Listing, ScopeNode
from .text import cached_shape_text, count_text, human_bytes, number_text, plural, shape_text

STATS_COLUMNS = ("min", "max", "mean", "std", "nan", "inf")
_GROUPED = "{:,}".format  # 128,640
PLAIN_DIGITS = 6  # significant digits of the stats piped (and in JSON: full precision)
TABLE_DIGITS = 4  # on a terminal: compact columns, e.g. -0.1235 or 1.235e-05


def listing_notes(ckpt: Checkpoint, listing: Listing) -> list[str]:
    """The one-line remarks shown beside a listing (on stderr)."""
    notes = []
    if ckpt.note:
        notes.append(ckpt.note)
    notes += ckpt.warnings
    missing = ckpt.missing_data_files()
    if missing:
        notes.append(f"data file missing: {', '.join(missing)} (listing works; values cannot be read)")
    notes += [f"data file {why} (listing works; values cannot be read)" for why in ckpt.leftover_data_files()]
    if listing.hidden:
        kinds = ", ".join(f"{count} {role}" for role, count in sorted(listing.hidden_roles.items()))
        nbytes = sum(info.nbytes for info in listing.hidden)
        notes.append(f"{plural(len(listing.hidden), 'non-model variable')} hidden ({kinds}; {human_bytes(nbytes)}); "
                     "--all shows them")
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
    return [f"no numeric statistics for {plural(len(without), 'tensor')} of dtype {dtypes} (shown as -)"]


def row(info: TensorInfo, stats: dict | None, plain: bool = True, digits: int | None = None) -> list[str]:
    """One variable's cells: name, dtype, shape, parameters, bytes (and the stats columns, in ``digits``)."""
    # count_text and shape_text without their calls (a TensorInfo's shape is a tuple): this runs once per row
    count = str if plain else _GROUPED
    cells = [info.name, info.dtype, cached_shape_text(info.shape), count(prod(info.shape)), count(info.nbytes)]
    if stats is None:
        return cells
    found = stats.get(info.name)
    if found is None:
        return cells + ["-"] * len(STATS_COLUMNS)
    digits = digits or (PLAIN_DIGITS if plain else TABLE_DIGITS)
    numbers = [number_text(n, digits) for n in (found.min, found.max, found.mean, found.std)]
    return cells + numbers + [count_text(found.nan, plain), count_text(found.inf, plain)]


def totals_text(listing: Listing) -> str:
    totals = listing.totals
    return (f"total: {plural(totals.variables, 'variable')}, {plural(totals.parameters, 'parameter')}, "
            f"{human_bytes(totals.nbytes)}")


def walk_tree(node: ScopeNode, depth: int = 0) -> Iterator[tuple[int, str, ScopeNode]]:
    """Yield (depth, label, node) in display order, folding single-child chains (a/b/c) into one line."""
    for child in node.children.values():
        name = child.name
        while len(child.children) == 1 and child.tensor is None:
            child = next(iter(child.children.values()))
            name = f"{name}/{child.name}"
        yield depth, name, child
        yield from walk_tree(child, depth + 1)


def scope_detail(node: ScopeNode, plain: bool) -> str:
    """What a tree line says after the name: a variable's dtype, shape and size, or a scope's totals.

    A variable with optimizer slots under it (``--all``) is both: its own line keeps dtype and shape,
    and says how much it weighs with its slots.
    """
    info = node.tensor
    if info is None:
        return f"{plural(node.parameters, 'parameter', grouped=not plain)}, {human_bytes(node.nbytes)}"
    detail = f"{info.dtype} {shape_text(info.shape)}  {count_text(info.size, plain)}"
    if node.children:
        slots = node.variables - 1
        detail += f"  (with its {plural(slots, 'slot')}: {human_bytes(node.nbytes)})"
    return detail
