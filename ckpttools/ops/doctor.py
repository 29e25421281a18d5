"""``doctor``: why SOURCE will not restore into TARGET, and the ``--map`` rules that make it restore.

TARGET's variables (see ``doctor_targets``) are matched against SOURCE's model variables, by name after
the inferred rules (see ``naming``). Each target variable is ``matched`` (same name), ``renamed`` (by
the rules), ``shape`` or ``dtype`` mismatched (both shapes and a likely reason), or ``missing`` from the
source; source variables nothing takes are ``unused``; optimizer slots, step counters and moving-average
shadows on either side are ``ignored``. Nothing is guessed: a variable whose match names cannot decide
is reported with its candidates.

Example:
    >>> report = doctor("old/model.ckpt-20000", "runs/new/model.ckpt-0")
    >>> report.suggested_map, report.ok
    (['Net/=cnn/', 'weights=kernel', 'biases=bias'], True)
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from ..checkpoint import open_checkpoint
from ..info import METADATA, MODEL, TensorInfo
from ..transfer.rename import Renamer, compile_rule
from .doctor_targets import ERROR_LOG, Wanted, load_target
from .errorlog import parse_error_log
from .naming import Named, infer_rules

MATCHED, RENAMED, SHAPE, DTYPE, MISSING = "matched", "renamed", "shape-mismatch", "dtype-mismatch", "missing"


@dataclass(frozen=True)
class Row:
    """One target variable's fate."""

    target: str
    status: str
    source: str | None = None
    target_shape: tuple[int, ...] | None = None
    source_shape: tuple[int, ...] | None = None
    detail: str = ""
    rules: tuple[str, ...] = ()  # the rules that renamed it

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "status": self.status, "source": self.source,
                "target_shape": _list(self.target_shape), "source_shape": _list(self.source_shape),
                "detail": self.detail, "rules": list(self.rules)}


@dataclass
class DoctorReport:
    source: str
    target: str
    target_kind: str
    rows: list[Row] = field(default_factory=list)
    unused: list[TensorInfo] = field(default_factory=list)  # source model variables nothing takes
    ignored_source: dict[str, int] = field(default_factory=dict)  # role -> count
    ignored_target: dict[str, int] = field(default_factory=dict)
    suggested_map: list[str] = field(default_factory=list)
    ambiguous: list[tuple[str, list[str]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def with_status(self, *statuses: str) -> list[Row]:
        return [row for row in self.rows if row.status in statuses]

    @property
    def ok(self) -> bool:
        """Everything the target needs is matched (possibly through the suggested map)."""
        return bool(self.rows) and not self.with_status(SHAPE, DTYPE, MISSING)

    @property
    def nothing_in_common(self) -> bool:
        return not self.with_status(MATCHED, RENAMED, SHAPE, DTYPE)

    @property
    def suggested_exclude(self) -> list[str]:
        """Source variables to leave out so that ``transfer --strict`` accepts the rest."""
        mismatched = [row.source for row in self.with_status(SHAPE, DTYPE) if row.source]
        return sorted(set(mismatched) | {info.name for info in self.unused})

    def to_dict(self) -> dict[str, Any]:
        counts = {status: len(self.with_status(status)) for status in (MATCHED, RENAMED, SHAPE, DTYPE, MISSING)}
        return {
            "schema": "ckpttools.doctor/1", "source": self.source, "target": self.target,
            "target_kind": self.target_kind, "ok": self.ok, "counts": counts | {"unused": len(self.unused)},
            "suggested_map": self.suggested_map, "suggested_exclude": self.suggested_exclude,
            "variables": [row.to_dict() for row in self.rows],
            "unused": [{"source": info.name, "shape": list(info.shape)} for info in self.unused],
            "ambiguous": [{"source": s, "candidates": c} for s, c in self.ambiguous],
            "ignored": {"source": self.ignored_source, "target": self.ignored_target}, "notes": self.notes,
        }


def doctor(source: str, against: str | None = None, error_log: str | None = None, classes: int = 10) -> DoctorReport:
    """Match SOURCE against TARGET (a path or registered model) or against TensorFlow's error text."""
    with open_checkpoint(source) as ckpt:
        infos = [info for info in ckpt if info.role != METADATA]
        prefix = ckpt.prefix
    models = [info for info in infos if info.role == MODEL]
    if error_log is not None:
        return _against_log(prefix, models, error_log)
    target = load_target(against, classes)
    report = DoctorReport(prefix, target.path, target.kind, notes=list(target.notes))
    report.ignored_source = _count_roles(infos)
    report.ignored_target = _count_roles(target.variables)
    wanted = [w for w in target.variables if w.role == MODEL]
    _match(report, models, wanted)
    return report


def _match(report: DoctorReport, models: list[TensorInfo], wanted: list[Wanted], log: bool = False) -> None:
    inference = infer_rules([Named(i.name, tuple(i.shape), i.original_name) for i in models],
                            [Named(w.name, w.shape) for w in wanted])
    report.suggested_map = inference.rules
    report.ambiguous = inference.ambiguous
    by_mapped = {inference.mapped[info.name]: info for info in models}
    used: set[str] = set()
    for want in wanted:
        info = by_mapped.get(want.name)
        if info is None:
            report.rows.append(Row(want.name, MISSING, target_shape=want.shape,
                                   detail=_missing_detail(want, models, inference.ambiguous)))
            continue
        used.add(info.name)
        report.rows.append(_row(want, info, inference.rules))
    if not log:
        report.unused = [info for info in models if info.name not in used]


def _row(want: Wanted, info: TensorInfo, rules: list[str]) -> Row:
    shape = tuple(info.shape)
    applied = _rules_used(info.name, rules)
    status = RENAMED if info.name != want.name else MATCHED
    if want.shape is not None and want.shape != shape:
        return Row(want.name, SHAPE, info.name, want.shape, shape, shape_reason(shape, want.shape), applied)
    if want.dtype and want.dtype != info.dtype:
        return Row(want.name, DTYPE, info.name, want.shape, shape, f"source {info.dtype} vs target {want.dtype}",
                   applied)
    detail = f"partitioned in {want.parts} parts in the graph; TensorFlow restores them from it" if want.parts else ""
    return Row(want.name, status, info.name, want.shape, shape, detail, applied)


def shape_reason(source: tuple[int, ...], target: tuple[int, ...]) -> str:
    """Both shapes and the likely reason they differ."""
    text = f"source {list(source)} vs target {list(target)}"
    if len(source) == len(target) and len(source) >= 1 and source[:-1] == target[:-1]:
        return text + f": a new number of outputs ({source[-1]} -> {target[-1]}; a new head starts fresh)"
    if sorted(source) == sorted(target) and len(source) >= 2:
        return text + ": the same dimensions in another order (a transposed or channels-first layout)"
    if math.prod(source) == math.prod(target):
        return text + ": the same number of values (a reshape)"
    return text + ": a different layer size"


def _rules_used(name: str, rules: list[str]) -> tuple[str, ...]:
    used = []
    for text in rules:
        renamed = compile_rule(text).apply(name)
        if renamed != name:
            used.append(text)
            name = Renamer()(renamed)
    return tuple(used)


def _missing_detail(want: Wanted, models: list[TensorInfo], ambiguous: list[tuple[str, list[str]]]) -> str:
    candidates = [source for source, targets in ambiguous if want.name in targets]
    if candidates:
        return "names cannot decide between: " + ", ".join(candidates)
    same_shape = [info.name for info in models if want.shape is not None and tuple(info.shape) == want.shape]
    close = difflib.get_close_matches(want.name, same_shape or [info.name for info in models], n=1, cutoff=0.5)
    return f"not in the source (closest: {close[0]})" if close else "not in the source"


def _count_roles(items: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        if item.role not in (MODEL, METADATA):
            counts[item.role] = counts.get(item.role, 0) + 1
    return counts


def _against_log(prefix: str, models: list[TensorInfo], path: str) -> DoctorReport:
    """TARGET from the error text: the keys it missed (shapes unknown) and its shape mismatches."""
    log = parse_error_log(path)
    report = DoctorReport(prefix, path, ERROR_LOG)
    _match(report, models, [Wanted(need.name, None) for need in log.needs if need.source_shape is None], log=True)
    for need in log.needs:
        if need.source_shape is not None:
            info = _logged_source(models, need.name)
            report.rows.append(Row(need.name, SHAPE, info.name if info else None, need.target_shape,
                                   need.source_shape, shape_reason(need.source_shape, need.target_shape)))
    missing = [need for need in log.needs if need.source_shape is None]
    if len(missing) == 1:
        report.notes.append("TensorFlow names only the first key it misses; apply the map and run again, or use "
                            "--against with the graph or model to see everything")
    for text in log.unnamed:
        report.notes.append(f"a shape mismatch TensorFlow gave no variable name for: {text}")
    return report


def _logged_source(models: list[TensorInfo], name: str) -> TensorInfo | None:
    """The source variable an error line names: by key or name, by its own (TF2) name, or by that name under
    another model name (Keras numbers models: ``sequential_1/dense/kernel`` is ``sequential/dense/kernel``)."""
    for info in models:
        if name in (info.name, info.key, info.original_name):
            return info
    tail = name.split("/", 1)[-1]
    found = [info for info in models if info.original_name and info.original_name.split("/", 1)[-1] == tail]
    return found[0] if len(found) == 1 else None


def _list(shape: tuple[int, ...] | None) -> list[int] | None:
    return None if shape is None else list(shape)


def write_map(rules: list[str], path: str, force: bool = False) -> str:
    """Write the rules one per line (what ``--map-file`` reads), atomically; keep an existing file unless ``force``."""
    from ..storage.atomic import atomic_path

    with atomic_path(path, force) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("".join(rule + "\n" for rule in rules))
    return path
