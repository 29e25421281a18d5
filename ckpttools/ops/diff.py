"""Compare two checkpoints (or npz / safetensors files) variable by variable.

Values are read one pair at a time, so memory stays near the two largest
tensors. Default tolerances are zero: "equal" means bitwise-equal values
(NaN equals NaN); ``rtol``/``atol`` relax that as ``numpy.allclose`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..checkpoint import Checkpoint, open_checkpoint
from ..errors import PatternError
from ..info import TensorInfo
from ..transfer.rename import Renamer
from .listing import list_variables

IDENTICAL, CLOSE, CHANGED = "identical", "close", "changed"
_CHUNK = 1 << 20  # elements compared per step: float64 temporaries stay ~8 MB each


class DiffOptions(NamedTuple):
    """What ``compare`` compares and how strictly (``diff``'s keyword arguments, as one record)."""

    scopes: Sequence[str] = ()
    include_all: bool = False
    rtol: float = 0.0
    atol: float = 0.0
    mapping: Sequence[str] = ()


EVERY_MODEL_VARIABLE = DiffOptions()  # bitwise, by name, optimizer state left out


@dataclass(frozen=True)
class ValueDiff:
    """How one variable's values compare: identical, close (within tolerance) or changed."""

    name: str
    status: str
    max_abs: float | None = None  # None for strings
    max_rel: float | None = None
    mismatched: int = 0  # elements outside the tolerance


@dataclass
class Diff:
    """The comparison of A with B. ``equal`` is what the exit code reports."""

    only_in_a: list[TensorInfo] = field(default_factory=list)
    only_in_b: list[TensorInfo] = field(default_factory=list)
    shape_changed: list[tuple[TensorInfo, TensorInfo]] = field(default_factory=list)
    dtype_changed: list[tuple[TensorInfo, TensorInfo]] = field(default_factory=list)
    values: list[ValueDiff] = field(default_factory=list)
    a: str = ""  # the checkpoints actually read (resolved prefixes)
    b: str = ""
    notes: list[str] = field(default_factory=list)  # how a directory was resolved ("A: using ...")

    def count(self, status: str) -> int:
        return sum(1 for v in self.values if v.status == status)

    @property
    def changed(self) -> list[ValueDiff]:
        return [v for v in self.values if v.status == CHANGED]

    @property
    def equal(self) -> bool:
        return not (self.only_in_a or self.only_in_b or self.shape_changed or self.dtype_changed or self.changed)


def diff(
    a: str,
    b: str,
    scopes: Sequence[str] = (),
    include_all: bool = False,
    rtol: float = 0.0,
    atol: float = 0.0,
    progress: Callable[[int], None] | None = None,
    mapping: Sequence[str] = (),
) -> Diff:
    """Compare the selected variables of ``a`` and ``b`` by name.

    ``mapping`` holds ``--map`` rules (``transfer.rename``) that turn A's names into B's, so files that
    name the same weights differently (a ``.keras`` file and a TF checkpoint of its model) compare.

    Example:
        >>> result = diff("runs/pretrained", "runs/finetuned", scopes=["conv_block[1-3]"])
        >>> result.equal  # the frozen layers did not change
        True
    """
    options = DiffOptions(scopes, include_all, rtol, atol, mapping)
    with open_checkpoint(a) as left, open_checkpoint(b) as right:
        return compare(left, right, options, progress)


def _selected(left: Checkpoint, right: Checkpoint, options: DiffOptions
              ) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    """The selected variables of each side by the name they are matched on (A's after ``options.mapping``)."""
    def shown(ckpt: Checkpoint) -> list[TensorInfo]:
        return list_variables(ckpt, options.scopes, show_all=options.include_all).shown

    return _renamed(shown(left), options.mapping), {info.name: info for info in shown(right)}


def _renamed(infos: Sequence[TensorInfo], mapping: Sequence[str]) -> dict[str, TensorInfo]:
    """A's variables by the name they get under ``mapping`` (their own name without rules)."""
    if not mapping:
        return {info.name: info for info in infos}
    rename = Renamer(mapping)
    out: dict[str, TensorInfo] = {}
    for info in infos:
        new = rename(info.name)
        if new in out:
            raise PatternError(f"--map gives '{out[new].name}' and '{info.name}' the same name '{new}'")
        out[new] = info
    return out


def bytes_to_compare(left: Checkpoint, right: Checkpoint, options: DiffOptions = EVERY_MODEL_VARIABLE) -> int:
    """How many bytes ``compare`` reads (both sides of the same-shape, same-dtype pairs): a progress total."""
    infos_a, infos_b = _selected(left, right, options)
    return sum(infos_a[name].nbytes + infos_b[name].nbytes for name in infos_a.keys() & infos_b.keys()
               if (infos_a[name].shape, infos_a[name].dtype) == (infos_b[name].shape, infos_b[name].dtype))


def compare(left: Checkpoint, right: Checkpoint, options: DiffOptions = EVERY_MODEL_VARIABLE,
            progress: Callable[[int], None] | None = None) -> Diff:
    """``diff`` of two open checkpoints; ``progress`` gets the bytes compared, chunk by chunk."""
    result = Diff(a=left.prefix, b=right.prefix)
    result.notes = [f"{side}: {ckpt.note}" for side, ckpt in (("A", left), ("B", right)) if ckpt.note]
    infos_a, infos_b = _selected(left, right, options)
    result.only_in_a = [infos_a[name] for name in sorted(infos_a.keys() - infos_b.keys())]
    result.only_in_b = [infos_b[name] for name in sorted(infos_b.keys() - infos_a.keys())]
    same: list[TensorInfo] = []  # A's side of the pairs whose values are compared
    common: dict[str, str] = {}  # A's name -> the name both sides share
    for name in sorted(infos_a.keys() & infos_b.keys()):
        info_a, info_b = infos_a[name], infos_b[name]
        if info_a.shape != info_b.shape:
            result.shape_changed.append((info_a, info_b))
        elif info_a.dtype != info_b.dtype:
            result.dtype_changed.append((info_a, info_b))
        else:
            same.append(info_a)
            common[info_a.name] = name
    ordered = left.in_storage_order(same)  # read as stored: runs of tensors stream as one on both sides
    pairs = zip(left.values(info.name for info in ordered), right.values(common[info.name] for info in ordered))
    for (name_a, a), (_, b) in pairs:
        result.values.append(compare_values(common[name_a], a, b, options.rtol, options.atol, progress))
    result.values.sort(key=lambda value: value.name)
    return result


def compare_values(name: str, a: np.ndarray, b: np.ndarray, rtol: float = 0.0, atol: float = 0.0,
                   progress: Callable[[int], None] | None = None) -> ValueDiff:
    """Compare two same-shape arrays chunk by chunk; NaN equals NaN, NaN vs a number is infinitely far."""
    advance = progress or (lambda nbytes: None)
    if a.dtype == object or b.dtype == object:  # strings: equal or not, no distance
        mismatched = int(np.sum(a != b))
        advance(a.nbytes + b.nbytes)
        return ValueDiff(name, CHANGED if mismatched else IDENTICAL, mismatched=mismatched)
    wide = np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(b) else np.float64
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    identical = True
    mismatched = 0
    max_abs = max_rel = 0.0
    for start in range(0, flat_a.size, _CHUNK):
        x = flat_a[start : start + _CHUNK].astype(wide)
        y = flat_b[start : start + _CHUNK].astype(wide)
        advance(x.size * (a.itemsize + b.itemsize))
        if np.array_equal(x, y, equal_nan=True):
            continue
        identical = False
        same_nan = np.isnan(x) & np.isnan(y)
        delta = np.where(same_nan, 0.0, np.abs(x - y))
        delta[np.isnan(delta)] = np.inf
        scale = np.abs(y)
        mismatched += int(np.sum(delta > atol + rtol * scale))
        with np.errstate(divide="ignore", invalid="ignore"):
            relative = np.where(delta == 0, 0.0, delta / scale)
        max_abs = max(max_abs, float(delta.max()))
        max_rel = max(max_rel, float(relative.max()))
    if identical:
        return ValueDiff(name, IDENTICAL, 0.0, 0.0, 0)
    return ValueDiff(name, CHANGED if mismatched else CLOSE, max_abs, max_rel, mismatched)
