"""Transfer into any model, without TensorFlow: a TEMPLATE checkpoint whose variables take SOURCE values.

TEMPLATE is the new model's freshly initialised checkpoint, written by any TF1 or TF2
program. The output has exactly TEMPLATE's keys, dtypes, shapes and layout (partitioned
variables stay partitioned, a TF2 object graph is copied unchanged), and the variables the
plan restores carry SOURCE's values; everything else keeps TEMPLATE's. The new model then
just restores the output. Values are streamed tensor by tensor from either checkpoint into
the writer, so memory stays near one tensor (one chunk when the bytes can be copied as stored).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checkpoint import Checkpoint, open_checkpoint
from ..errors import MissingDataError, OutputError
from ..formats import dtypes
from ..formats.bundle_writer import BundleWriter
from ..formats.state_file import update_state_file
from ..info import METADATA, MODEL, TensorInfo
from ..storage.outputs import check_output_prefix, same_checkpoint
from .plan import Plan, PlanEntry, TargetVariable, make_plan

Progress = Callable[[int], None]
DEFAULT_NAME = "model.ckpt"  # the checkpoint's name when OUT is a directory


@dataclass
class IntoResult:
    """What ``transfer_into`` wrote: the plan, the output files, bytes taken from each side."""

    plan: Plan
    prefix: str
    paths: list[str] = field(default_factory=list)
    source_bytes: int = 0
    template_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"prefix": self.prefix, "files": self.paths, "restored": len(self.plan.restored),
                "source_bytes": self.source_bytes, "template_bytes": self.template_bytes}


def output_prefix(out: str) -> str:
    """The checkpoint prefix ``-o OUT`` means: ``OUT/model.ckpt`` for a directory (or a name ending with a
    slash), ``OUT`` without ``.index`` when given the index file's name, else ``OUT`` itself."""
    if os.path.isdir(out) or out.endswith(("/", os.sep)):
        return os.path.join(out, DEFAULT_NAME)
    return out.removesuffix(".index")


def target_names(template: Checkpoint) -> dict[str, TensorInfo]:
    """TEMPLATE's variables (the object graph aside) by the name the plan matches source names against.

    For model variables that is the variable's own name where a TF2 checkpoint records one for
    each, uniquely (Keras: ``sequential/dense/kernel``, the ``variable name`` column of
    ``ckpttools ls``): the names a TF1 source's variables resemble. Otherwise, and for optimizer
    and bookkeeping variables, the names ``ckpttools ls`` shows.
    """
    infos = [info for info in template if info.role != METADATA]
    shown = {info.name: info for info in infos}
    model = [info for info in infos if info.role == MODEL]
    own = [info.original_name for info in model]
    if not all(own) or len(set(own)) < len(own) or set(own) & (set(shown) - {i.name for i in model}):
        return shown
    renamed = dict(zip(own, model))
    renamed.update((info.name, info) for info in infos if info.role != MODEL)
    return renamed


def template_targets(template: Checkpoint) -> list[TargetVariable]:
    """TEMPLATE's variables as plan targets (see ``target_names``)."""
    return [TargetVariable(name, tuple(info.shape), info.dtype) for name, info in target_names(template).items()]


def plan_into(source: Checkpoint, template: Checkpoint, scopes: Sequence[str] = (), exclude: Sequence[str] = (),
              mapping: Sequence[str] = (), with_optimizer_state: bool = False, on_missing: str = "warn",
              on_shape_mismatch: str = "skip", on_dtype_mismatch: str = "skip") -> Plan:
    """The transfer plan from ``source`` onto ``template``'s variables (no values read)."""
    return make_plan(source, template_targets(template), scopes, exclude, mapping, with_optimizer_state,
                     on_missing, on_shape_mismatch, on_dtype_mismatch)


def transfer_into(source: str, template: str, out: str, *, scopes: Sequence[str] = (), exclude: Sequence[str] = (),
                  mapping: Sequence[str] = (), with_optimizer_state: bool = False, on_missing: str = "warn",
                  on_shape_mismatch: str = "skip", on_dtype_mismatch: str = "skip", force: bool = False,
                  dry_run: bool = False, progress: Progress | None = None,
                  on_plan: Callable[[Plan], None] | None = None) -> IntoResult:
    """Write ``out``: ``template``'s checkpoint with the planned variables taken from ``source``.

    Example:
        >>> result = transfer_into("old/model.ckpt-20000", "new/ckpt-1", "warm/ckpt-1",
        ...                        scopes=["conv_block1"], mapping=["cnn/conv_block1/conv=sequential/c1"])
        >>> len(result.plan.restored), result.paths[-1]
        (2, 'warm/checkpoint')
    """
    prefix = output_prefix(out)
    with open_checkpoint(source) as src, open_checkpoint(template) as tpl:
        for what, ckpt in (("source", src), ("template", tpl)):
            if same_checkpoint(prefix, ckpt.prefix):
                raise OutputError(f"{prefix}: is the {what} checkpoint itself; write to another prefix")
        plan = plan_into(src, tpl, scopes, exclude, mapping, with_optimizer_state, on_missing,
                         on_shape_mismatch, on_dtype_mismatch)
        if on_plan:
            on_plan(plan)
        result = IntoResult(plan, prefix)
        if dry_run:
            return result
        check_output_prefix(prefix, force)
        _require_data(src, [entry.source for entry in plan.restored])
        _require_data(tpl, list(tpl))
        restored = {entry.target.name: entry for entry in plan.restored}
        advance = progress or (lambda nbytes: None)
        named = {info.key: name for name, info in target_names(tpl).items()}
        with BundleWriter(prefix, force=force) as writer:
            for info in tpl:
                entry = restored.get(named.get(info.key, ""))
                if entry is None:
                    _copy(writer, tpl, info, info)
                    result.template_bytes += info.nbytes
                else:
                    _copy(writer, src, entry.source, info, cast=entry.cast)
                    result.source_bytes += info.nbytes
                advance(info.nbytes)
        result.paths = [*writer.finished_paths, update_state_file(prefix)]
    return result


def _require_data(ckpt: Checkpoint, infos: list[TensorInfo]) -> None:
    """Fail before writing anything when a data file that the copy needs is absent."""
    missing = set(ckpt.missing_data_files())
    if not missing:
        return
    files = ckpt.data_files()
    for info in infos:
        needed = [files[s] for s in info.shards if s is not None and s < len(files) and files[s] in missing]
        if needed or not info.shards:
            path = needed[0] if needed else sorted(missing)[0]
            raise MissingDataError(f"{path}: data file missing; '{info.name}' of {ckpt.prefix} needs it "
                                   "(listing works without data, transferring does not)")


def _copy(writer: BundleWriter, ckpt: Checkpoint, info: TensorInfo, target: TensorInfo, cast: bool = False) -> None:
    """Write ``info``'s value from ``ckpt`` under ``target``'s key, dtype and layout (slices kept)."""
    if not cast and not target.slices and info.dtype == target.dtype:
        chunks = ckpt.stream(info.key)
        if chunks is not None:  # stored bytes are the array: copy them chunk by chunk
            writer.add_raw(target.key, target.dtype, target.shape, chunks, target.nbytes)
            return
    value = ckpt.get(info.key)
    if cast:
        value = value.astype(dtypes.from_name(target.dtype).numpy)
    if target.slices:
        parts = [(s.start, value[tuple(slice(a, b) for a, b in zip(s.start, s.stop))]) for s in target.slices]
        writer.add_sliced(target.key, target.dtype, target.shape, parts)
    else:
        writer.add(target.key, value, dtype=target.dtype)


__all__ = ["IntoResult", "PlanEntry", "output_prefix", "plan_into", "template_targets", "transfer_into"]
