"""``verify`` for V2 checkpoints: the index, every data shard's presence and length, every tensor's crc32c.

Sizes are checked first (cheap, and they tell truncation from corruption); then the crc32c of every
stored byte range that fits its shard is checked by ``storage.crcscan`` in parallel threads. When most
tensors fail their checksum while the files have the expected lengths, the index and the data come
from different saves (another step, another run): that is reported once, with every variable.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass

from ..errors import CkptError, CorruptFileError, NotFoundError
from ..formats import dtypes, messages
from ..formats.bundle import BundleReader, data_file
from ..formats.crc import unmask
from ..storage import sources
from ..storage.crcscan import check_ranges
from ..storage.spans import ByteRange
from . import problems as P
from .problems import CheckpointReport, Problem, Progress, no_progress
from .sniff import V1_TABLE, sniff_problem, table_kind

_SHOWN = 5  # variables named in a one-line message; --json lists all


@dataclass(frozen=True)
class _Part:
    key: str
    entry: messages.BundleEntry  # this stored range (a whole tensor, or one slice of a partitioned one)
    dtype: dtypes.DType
    sliced: bool

    @property
    def end(self) -> int:
        return self.entry.offset + self.entry.size


def check_v2(report: CheckpointReport, prefix: str, quick: bool, workers: int | None,
             progress: Progress | None = None) -> None:
    """Add every problem of the V2 checkpoint at ``prefix`` to ``report``."""
    report.format = "v2"
    index = prefix + ".index"
    if sources.isfile(index) and table_kind(index) == V1_TABLE:
        report.add(_index_problem(index))
        return
    try:
        reader = BundleReader(prefix)
    except NotFoundError as exc:
        report.add(Problem(index, str(exc).split(": ", 1)[-1], "copy the .index file beside the data files",
                           P.MISSING_SHARD))
        return
    except CorruptFileError as exc:
        report.add(_index_problem(index, exc))
        for path in sorted(sources.glob(glob.escape(prefix) + ".data-*")):
            found = sniff_problem(path)
            if found is not None:
                report.add(found)
        return
    try:
        parts = [_Part(key, part, dtypes.from_enum(entry.dtype), part is not entry)
                 for key, entry, part in reader.stored_parts()]
        report.tensors = len({p.key for p in parts})
        fitting = _check_sizes(report, reader, parts)
        if not quick:
            _check_values(report, reader, fitting, workers, progress or no_progress)
    except CorruptFileError as exc:
        report.add(Problem(index, str(exc).split(": ", 1)[-1], "the index is damaged: copy it again",
                           P.CORRUPT_INDEX))
    finally:
        reader.close()


def _index_problem(index: str, exc: CkptError | None = None) -> Problem:
    found = sniff_problem(index)
    if found is not None:
        return found
    if table_kind(index) == V1_TABLE:
        plain = index[: -len(".index")]
        return Problem(index, "a V1 checkpoint file (SavedTensorSlices), not a V2 index",
                       f"open it as a V1 checkpoint: rename it to {plain}", P.V1_AS_V2)
    detail = str(exc).split(": ", 1)[-1] if exc else "unreadable"
    return Problem(index, detail, "the index is damaged: copy it again from where it was saved", P.CORRUPT_INDEX)


def _check_sizes(report: CheckpointReport, reader: BundleReader, parts: list[_Part]) -> list[_Part]:
    """Shard presence and lengths, entry sizes; returns the parts whose bytes are all there."""
    shards = reader.header.num_shards
    by_shard: dict[int, list[_Part]] = {}
    for part in parts:
        if not 0 <= part.entry.shard_id < shards:
            report.add(Problem(reader.index_path, f"entry points to shard {part.entry.shard_id} of {shards}",
                               "the index is damaged: copy it again", P.BAD_ENTRY, part.key))
            continue
        expected = math.prod(part.entry.shape) * part.dtype.itemsize if part.dtype.itemsize else None
        if expected is not None and not part.sliced and part.entry.size != expected:
            report.add(Problem(reader.index_path, f"stores {part.entry.size} bytes but {part.dtype.name}"
                               f"{list(part.entry.shape)} needs {expected}", "the index is damaged",
                               P.BAD_ENTRY, part.key))
            continue
        by_shard.setdefault(part.entry.shard_id, []).append(part)
    fitting: list[_Part] = []
    for shard in range(shards):
        path = data_file(reader.prefix, shard, shards)
        members = by_shard.get(shard, [])
        if not sources.isfile(path):
            lost = _keys(members)
            report.add(Problem(path, f"missing; {_count(lost)} lost{_names(lost)}", _missing_fix(reader, shards),
                               P.MISSING_SHARD, variables=lost))
            continue
        size = sources.getsize(path)
        needed = max((p.end for p in members), default=0)
        not_data = sniff_problem(path, _keys(members)) if size < needed else None
        if not_data is not None:  # an LFS pointer, a web page...: none of its bytes are tensor data
            report.add(not_data)
            continue
        fitting += [p for p in members if p.end <= size]
        if size < needed:
            lost = _keys(p for p in members if p.end > size)
            report.add(Problem(
                path, f"truncated: {size:,} bytes, {needed - size:,} short of the {needed:,} the index needs; "
                f"{_count(lost)} lost{_names(lost)}", "copy the file again (the transfer stopped early)",
                P.TRUNCATED, variables=lost))
        elif size > needed:
            report.add(Problem(path, f"{size - needed:,} bytes longer than the index expects ({needed:,})",
                               "the index and this data file may come from different saves", P.EXTRA_BYTES,
                               severity=P.WARNING))
    return fitting


def _missing_fix(reader: BundleReader, shards: int) -> str:
    """What to copy for a missing shard; data files of this prefix with another shard count are named.

    Such files (``variables.data-00000-of-00002`` beside an index wanting ``-of-00001``) were written by
    another save to the same prefix: the index and the data files come from different saves.
    """
    others = sorted(os.path.basename(path) for path in sources.glob(glob.escape(reader.prefix) + ".data-*")
                    if not path.endswith(f"-of-{shards:05d}"))
    if not others:
        return "copy every .data-* file saved with this index"
    return (f"{', '.join(others[:_SHOWN])} beside it came from another save (this index wants {shards} shard"
            f"{'' if shards == 1 else 's'}): copy {os.path.basename(reader.index_path)} and its .data-* "
            "files from the same save")


def _check_values(report: CheckpointReport, reader: BundleReader, parts: list[_Part], workers: int | None,
                  progress: Progress) -> None:
    """crc32c of every stored tensor: raw ranges in parallel; strings decoded (they carry two checksums)."""
    shards = reader.header.num_shards
    ranges, strings, skipped = [], set(), []
    for part in parts:
        if part.dtype.is_string:
            strings.add(part.key)
        elif part.dtype.itemsize:
            path = data_file(reader.prefix, part.entry.shard_id, shards)
            ranges.append(ByteRange(path, part.entry.offset, part.entry.size, unmask(part.entry.crc32c), part.key))
        else:
            skipped.append(part.key)
    with progress(sum(r.size for r in ranges), f"verifying {reader.prefix}") as advance:
        found = check_ranges(ranges, workers, advance=advance)
    failed = [(r.label, r.path, reason) for r, reason in found if r.size]  # an empty tensor stores no checksum
    for key in sorted(strings):
        try:
            reader.read(key)
        except CkptError as exc:
            failed.append((key, str(exc).split(":", 1)[0], str(exc).split(": ", 1)[-1]))
    report.checksums = True
    report.tensors = len({p.key for p in parts}) - len(skipped)
    report.nbytes = sum(r.size for r in ranges)
    if skipped:
        report.add(Problem(reader.index_path, f"{len(skipped)} tensors of types without a byte checksum not checked",
                           "", P.NO_CHECKSUMS, severity=P.NOTE, variables=tuple(skipped)))
    _report_failures(report, reader, failed, len(ranges) + len(strings))


def _report_failures(report: CheckpointReport, reader: BundleReader, failed: list, checked: int) -> None:
    if len(failed) >= 2 and 2 * len(failed) >= checked:
        keys = tuple(sorted({key for key, _, _ in failed}))
        files = sorted({path for _, path, _ in failed})
        report.add(Problem(", ".join(files), f"{len(failed)} of {checked} tensors fail their checksum: the index "
                           "and the data come from different saves (another step or run)",
                           f"copy {os.path.basename(reader.index_path)} and its .data-* files from the same save",
                           P.MIXED_SAVES, variables=keys))
        return
    for key, path, reason in failed:
        report.add(Problem(path, reason + " (the stored bytes are damaged)",
                           "restore this file from a good copy", P.CHECKSUM, key))


def _keys(parts) -> tuple[str, ...]:
    return tuple(sorted({p.key for p in parts}))


def _count(keys: tuple[str, ...]) -> str:
    return f"{len(keys)} variable" + ("" if len(keys) == 1 else "s")


def _names(keys: tuple[str, ...]) -> str:
    if not keys:
        return ""
    more = f", +{len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return ": " + ", ".join(keys[:_SHOWN]) + more
