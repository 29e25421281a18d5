"""``ckpttools.rewrite``: change a checkpoint without TensorFlow, in one streaming pass.

The plan (``rewrite_plan``) says what each output tensor is. Unchanged tensors go from the source
shard to the output shard in chunks (``Checkpoint.stream`` -> ``BundleWriter.add_raw``), a reader
thread ahead of the writer; cast and averaged tensors are converted chunk by chunk as well, so memory
stays at a few chunks. Only what cannot stream (partitioned variables: one part at a time; strings;
big-endian or V1 sources: one tensor at a time) is read whole. The output appears only when every file
is complete; any failure or Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..checkpoint import Checkpoint, open_checkpoint
from ..errors import ConfigError, MissingDataError, OutputError
from ..formats import dtypes
from ..formats.bundle_writer import BundleWriter, check_output_prefix, same_checkpoint
from ..formats.objgraph import OBJECT_GRAPH_KEY
from ..formats.state_file import update_state_file
from ..info import METADATA
from ..storage import sources
from ..storage.atomic import atomic_path
from ..storage.crcscan import verified
from ..storage.prefetch import read_ahead
from ..storage.spans import ByteRange
from ..transfer.rename import read_map_file
from . import average
from .rewrite_plan import Entry, Plan, RewriteOptions, build_plan

if TYPE_CHECKING:
    import numpy as np

Progress = Callable[[int], None]
CHUNK = 8 << 20
AVERAGE_CHUNK = 2 << 20  # per input; the float64 sum of a chunk takes four times a float32 chunk


@dataclass
class RewriteReport:
    """What a rewrite planned and, unless it was a dry run, wrote."""

    plan: Plan
    output: str | None
    dry_run: bool = False
    files: list[str] = field(default_factory=list)
    meta: str | None = None  # the copied .meta, when there was one to copy
    notes: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self.plan.entries)

    def to_dict(self) -> dict:
        return {"schema": "ckpttools.rewrite/1", "output": self.output, "dry_run": self.dry_run,
                "plan": self.plan.to_dict(), "files": self.files, "meta": self.meta,
                "notes": self.plan.notes + self.notes, "variables": len(self.plan.entries), "nbytes": self.nbytes}


def rewrite(
    source: str,
    output: str | None,
    *,
    scopes: Sequence[str] = (),
    exclude: Sequence[str] = (),
    mapping: Sequence[str] = (),
    map_file: str | None = None,
    strip_optimizer: bool = False,
    keep_step: bool = False,
    use_ema: bool = False,
    cast: Sequence[str] = (),
    average_with: Sequence[str] = (),
    average_last: int | None = None,
    set_step: int | None = None,
    num_shards: int = 1,
    max_shard_bytes: int | None = None,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    on_plan: Callable[[Plan], None] | None = None,
) -> RewriteReport:
    """Rewrite ``source`` into a new V2 checkpoint ``output``, applying the operations in one pass.

    ``average_with`` are further checkpoints averaged with ``source`` (which gives the integer tensors:
    name the newest as ``source``); ``average_last=N`` averages the N newest checkpoints of
    ``source``'s directory. ``on_plan`` sees the plan before anything is written. With ``dry_run``
    only the plan is made (``output`` may be None). ``source`` may be a URL; ``output`` is a local prefix.

    Example:
        >>> rewrite("sample_checkpoints/tf1_cnn", "small/model.ckpt", strip_optimizer=True,
        ...         cast=["float32=bfloat16"]).nbytes
        5908
    """
    if output and not dry_run and sources.is_url(output):
        raise OutputError(f"{sources.redact(output)}: rewrite writes a local checkpoint; a checkpoint is several "
                          "files, which an object store cannot make appear at once: write it locally, then upload")
    rules = list(mapping) + (read_map_file(map_file) if map_file else [])
    options = RewriteOptions(scopes, exclude, rules, strip_optimizer, keep_step, use_ema, cast, set_step)
    with ExitStack() as stack:
        base, others = _open_inputs(stack, source, average_with, average_last)
        plan = build_plan(base, options, [other.prefix for other in others])
        if on_plan:
            on_plan(plan)
        report = RewriteReport(plan, output, dry_run)
        if dry_run:
            return report
        if not output:
            raise ConfigError(f"{source}: no output prefix given")
        if output.endswith(("/", os.sep)) or os.path.isdir(output):
            raise OutputError(f"{output}: is a directory; give a checkpoint prefix such as "
                              f"{os.path.join(output, 'model.ckpt')}")
        for ckpt in (base, *others):
            if same_checkpoint(ckpt.prefix, output):
                raise OutputError(f"{output}: is the source checkpoint {ckpt.prefix}; write to another prefix")
            _check_data(ckpt)
        check_output_prefix(output, force)
        _check_meta_output(output, force)
        copies = _copies(plan, base)
        order = _write_order(plan.entries, copies, base)
        runs = base.streams(entry.read_key if entry.out_key not in copies and _one_stream(entry) else None
                            for entry in order)
        with BundleWriter(output, num_shards=num_shards, max_shard_bytes=max_shard_bytes, force=force) as writer:
            with verified(list(copies.values())):
                for entry, (_, stream) in zip(order, runs):
                    _write_entry(writer, entry, plan, base, others, progress or _no_progress,
                                 copies.get(entry.out_key), stream)
        report.files = writer.finished_paths
        update_state_file(output)
        report.meta = _copy_meta(base, output, plan, report, force)
    return report


def _open_inputs(stack: ExitStack, source: str, average_with: Sequence[str],
                 average_last: int | None) -> tuple[Checkpoint, list[Checkpoint]]:
    paths = [source, *average_with]
    if average_last is not None:
        if average_with:
            raise ConfigError("use --average or --average-last, not both")
        paths = average.newest_checkpoints(source, average_last)
    opened = [stack.enter_context(open_checkpoint(path)) for path in paths]
    base, others = opened[0], opened[1:]
    if others:
        average.check_same(base, others)
    return base, others


def _check_data(ckpt: Checkpoint) -> None:
    """Fail before writing when a data file is missing: listing works without it, rewriting does not."""
    missing = ckpt.missing_data_files()
    if missing:
        raise MissingDataError(f"{missing[0]}: data file missing; {ckpt.prefix} can be listed but not rewritten")


def _no_progress(nbytes: int) -> None:
    pass


def _copies(plan: Plan, base: Checkpoint) -> dict[str, ByteRange]:
    """Output key -> the source bytes it is copied from, for tensors written unchanged from a local file."""
    stored = base.stored_ranges()
    return {entry.out_key: stored[entry.read_key] for entry in plan.entries
            if entry.read_key in stored and entry.streamed and not entry.slices and entry.role != METADATA}


def _write_order(entries: list[Entry], copies: dict[str, ByteRange], base: Checkpoint) -> list[Entry]:
    """Copies first, in the source's order (neighbours there are copied as one), then the rest in the order
    they are stored in the source (runs of them are read as one stream).

    Where nothing changes, the output's data file is then the source's, byte for byte.
    """
    copied = sorted((e for e in entries if e.out_key in copies), key=lambda e: copies[e.out_key])  # path, offset
    return copied + sorted((e for e in entries if e.out_key not in copies), key=lambda e: base.position(e.read_key))


def _one_stream(entry: Entry) -> bool:
    """Whether the entry is written from one stream of the source's stored bytes (cast or not)."""
    return not (entry.average or entry.slices or entry.set_value is not None or entry.role == METADATA)


def _write_entry(writer: BundleWriter, entry: Entry, plan: Plan, base: Checkpoint, others: list[Checkpoint],
                 progress: Progress, copy: ByteRange | None = None, stream: Iterator[bytes] | None = None) -> None:
    """Write one output tensor; ``progress`` hears of its bytes as they are written (chunk by chunk when streamed).

    ``copy``: the tensor's source bytes, copied unchanged by the kernel (``verified`` checks them).
    ``stream``: its stored bytes from ``base.streams`` (a run of tensors read as one), when ``_one_stream``.
    """
    if copy is not None:
        writer.add_copy(entry.out_key, entry.out_dtype, entry.shape, copy.path, copy.offset, copy.size, copy.crc)
        progress(copy.size)
        return
    inputs = [base, *others] if entry.average else [base]
    chunk = AVERAGE_CHUNK if entry.average else None  # several inputs open at once: smaller chunks
    if _one_stream(entry):
        streams = [stream]
    elif entry.slices or entry.set_value is not None or entry.role == METADATA:
        streams = []
    else:  # an average: by TensorFlow key, the same in every input
        streams = [ckpt.stream(entry.read_key, chunk) for ckpt in inputs]
    if streams and all(s is not None for s in streams) and dtypes.from_name(entry.out_dtype).storage:
        if entry.streamed and entry.source_nbytes <= CHUNK:  # one chunk: read it (checksum verified) and write it
            writer.add_raw(entry.out_key, entry.out_dtype, entry.shape, list(streams[0]), entry.nbytes)
            progress(entry.nbytes)
            return
        chunks = _counted(_chunks(entry, streams), progress)
        writer.add_raw(entry.out_key, entry.out_dtype, entry.shape, chunks, entry.nbytes)
        return
    for unused in streams:
        if unused is not None:
            unused.close()  # type: ignore[attr-defined]
    import numpy as np  # here and below: a rewrite that only copies starts without numpy (0.1 s)

    if entry.key == OBJECT_GRAPH_KEY and plan.object_graph is not None:
        writer.add(entry.out_key, np.array(plan.object_graph, dtype=object), dtype="string")
    elif entry.set_value is not None:
        value = np.full(entry.shape, entry.set_value, dtypes.from_name(entry.out_dtype).numpy)
        writer.add(entry.out_key, value, dtype=entry.out_dtype)
    elif entry.slices:
        parts = ((part.start, _value(entry, [c.read_slice(entry.read_key, n) for c in inputs]))
                 for n, part in enumerate(entry.slices))
        writer.add_sliced(entry.out_key, entry.out_dtype, entry.shape, parts)
    else:
        value = _value(entry, [ckpt.get(entry.read_key) for ckpt in inputs])
        writer.add(entry.out_key, value, dtype=entry.out_dtype)
    progress(entry.nbytes)


def _counted(chunks: Iterator, progress: Progress) -> Iterator:
    for chunk in chunks:
        yield chunk
        progress(len(chunk))


def _value(entry: Entry, values: list[np.ndarray]) -> np.ndarray:
    """One tensor (or part) transformed: averaged and/or cast to the output dtype."""
    if entry.average:
        return average.mean(values, entry.out_dtype)
    if entry.out_dtype != entry.dtype:
        return values[0].astype(dtypes.from_name(entry.out_dtype).numpy)
    return values[0]


def _chunks(entry: Entry, streams: list) -> Iterator[bytes]:
    """The output bytes of a whole tensor, chunk by chunk; read ahead on a thread when there are several."""
    size = entry.source_nbytes
    if entry.average:  # one thread reads every input and averages: chunks of the inputs are not queued twice
        return read_ahead(average.mean_chunks(streams, entry.dtype, entry.out_dtype), size)
    if entry.out_dtype != entry.dtype:
        import numpy as np

        source, target = dtypes.from_name(entry.dtype).numpy, dtypes.from_name(entry.out_dtype).numpy
        return (_as_bytes(np.frombuffer(chunk, source).astype(target)) for chunk in read_ahead(streams[0], size))
    return read_ahead(streams[0], size)


def _as_bytes(array: np.ndarray) -> memoryview:
    """An array's memory as bytes, without the copy ``tobytes`` makes."""
    import numpy as np

    return memoryview(array.reshape(-1).view(np.uint8))


def _check_meta_output(output: str, force: bool) -> None:
    """An existing ``OUT.meta`` is kept unless --force (checked before anything is written)."""
    if os.path.exists(output + ".meta") and not force:
        raise OutputError(f"{output}.meta: already exists (use --force to overwrite)")


def _copy_meta(base: Checkpoint, output: str, plan: Plan, report: RewriteReport, force: bool) -> str | None:
    """Copy the source's ``.meta`` graph when it still describes the output (nothing renamed or removed).

    Otherwise an old ``OUT.meta`` (replaced with --force) goes: it would describe the old checkpoint.
    """
    meta, meta_out = base.prefix + ".meta", output + ".meta"
    found = sources.isfile(meta)  # the source may be a URL
    if found and not plan.renamed_or_removed:
        with atomic_path(meta_out, force) as tmp:
            sources.copy_file(meta, tmp)
        return meta_out
    if found:
        report.notes.append(f"{sources.redact(meta)} not copied: variables were renamed or removed, "
                            "the graph would not match")
    if os.path.exists(meta_out):
        os.remove(meta_out)
    return None


__all__ = ["RewriteReport", "rewrite"]
