"""Weights out of checkpoints: into Python dicts, ``.npz`` files or ``.safetensors`` files.

Tensors are read one at a time and streamed into the output, so peak memory
stays near the largest single tensor, never the whole checkpoint. Reading runs a
couple of chunks ahead of writing, on a thread, so the two overlap. To ``.safetensors``,
tensors whose stored bytes are their array in a local file are copied file to file by the
kernel instead, their crc32c checked from the source on a thread meanwhile, as ``rewrite`` does.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO

from ..checkpoint import Checkpoint, open_checkpoint
from ..errors import ArgumentError, MissingDataError, NotFoundError, OutputError, bounded
from ..formats import dtypes
from ..formats.safetensors import CODE_FOR_NAME
from ..info import TensorInfo
from ..storage import sources
from ..storage.atomic import remove_stale_partials
from ..storage.crcscan import verified
from ..storage.filecopy import SourceFiles, SourceTooShort, copy_range, write_all
from ..storage.prefetch import read_ahead
from ..storage.spans import ByteRange
from ..storage.url_outputs import check_output, output_path
from .listing import list_variables

if TYPE_CHECKING:  # numpy is imported where values or .npy headers need it: .safetensors copies never load it
    import numpy as np

FORMATS = ("npz", "safetensors")
SUFFIXES = {".npz": "npz", ".safetensors": "safetensors"}
# npz (numpy) has no bfloat16/float8: these are widened to float32, which holds them exactly.
ZIP_NAME_LIMIT = 0xFFFF  # bytes of a zip member name (a 16-bit field), ".npy" included
_WIDENED = ("bfloat16", "float8_e5m2", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e4m3b11fnuz", "float8_e5m2fnuz")

Progress = Callable[[int], None]


@dataclass
class ExtractReport:
    """What an extraction wrote and what it had to leave out or convert."""

    path: str
    format: str
    source: str = ""  # the checkpoint actually read (resolved prefix)
    written: list[TensorInfo] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # name -> reason
    converted: dict[str, str] = field(default_factory=dict)  # name -> what changed
    removed_partials: list[str] = field(default_factory=list)  # temporary files of killed earlier runs

    @property
    def nbytes(self) -> int:
        return sum(info.nbytes for info in self.written)


def select(ckpt: Checkpoint, scopes: Sequence[str] = (), include_all: bool = False) -> list[TensorInfo]:
    """The tensors an extraction takes: matching ``scopes``; model variables unless ``include_all``."""
    chosen = list_variables(ckpt, scopes, show_all=include_all).shown
    if not chosen:
        what = f"matching {', '.join(scopes)}" if scopes else "to extract"
        raise NotFoundError(f"{ckpt.prefix}: no variables {what}{ckpt.no_variables_hint()}")
    return chosen


def extract(path: str, scopes: Sequence[str] = (), include_all: bool = False) -> dict[str, np.ndarray]:
    """Read the selected variables into a dict keyed by variable name.

    Example:
        >>> weights = extract("runs/cnn", scopes=["conv_block[1-3]"])
        >>> weights["cnn/conv_block1/conv/kernel"].shape
        (3, 3, 1, 8)
    """
    with open_checkpoint(path) as ckpt:
        return {info.name: ckpt.get(info.name) for info in select(ckpt, scopes, include_all)}


def write_weights(
    source: str | Checkpoint,
    out: str,
    scopes: Sequence[str] = (),
    include_all: bool = False,
    fmt: str | None = None,
    compress: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> ExtractReport:
    """Stream the selected variables of ``source`` (a path or URL, or an open Checkpoint, which stays open)
    into ``out`` (.npz or .safetensors), atomically.

    Example:
        >>> write_weights("runs/cnn", "weights.npz", scopes=["cnn/*"]).nbytes
        1041632
    """
    fmt = output_format(out, fmt)
    removed = [] if sources.is_url(out) else remove_stale_partials(out)
    check_output(out, force)
    with nullcontext(source) if isinstance(source, Checkpoint) else open_checkpoint(source) as ckpt:
        chosen = ckpt.in_storage_order(select(ckpt, scopes, include_all))  # runs of them read as one stream
        if fmt == "npz":
            _check_npz_names(out, chosen)
        report = ExtractReport(out, fmt, ckpt.prefix, removed_partials=removed)
        with output_path(out, force) as tmp:
            if fmt == "npz":
                _write_npz(ckpt, chosen, tmp, compress, report, progress or (lambda n: None))
            else:
                _write_safetensors(ckpt, chosen, tmp, report, progress or (lambda n: None))
    return report


def output_format(out: str, fmt: str | None = None) -> str:
    """The format to write ``out`` in: ``fmt`` if given, else from its suffix; an unknown suffix is an error."""
    suffix = os.path.splitext(out)[1].lower()
    named = SUFFIXES.get(suffix)
    if fmt is not None and fmt not in FORMATS:
        raise ArgumentError(f"{out}: unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
    if fmt is not None and named is not None and named != fmt:
        raise ArgumentError(f"{out}: the name says {named} but the format asked for is {fmt}")
    if fmt is None and named is None:
        known = " or ".join(SUFFIXES)
        what = f"unknown output suffix '{suffix}'" if suffix else "no suffix to tell the format"
        raise ArgumentError(f"{out}: {what}; name it {known} (or give --format {'|'.join(FORMATS)})")
    return fmt or named


def _check_npz_names(out: str, chosen: list[TensorInfo]) -> None:
    """Refuse, before writing anything, names a zip archive cannot hold."""
    for info in chosen:
        size = len(info.name.encode("utf-8")) + len(".npy")
        if size > ZIP_NAME_LIMIT:
            raise OutputError(f"{out}: variable '{bounded(info.name, 60)}' has a {size:,}-byte name, over npz's limit "
                              f"of {ZIP_NAME_LIMIT:,} (zip member names); leave it out with --scopes or write "
                              f".safetensors")


def _open_output(tmp: str, buffering: int = -1) -> BinaryIO:
    """The (new, empty) temporary output, opened without truncating it: ext4 flushes a file truncated to zero,
    even an empty one, when it is closed (its auto_da_alloc heuristic): a synchronous write-back of the whole
    output, half a second per GB."""
    return open(tmp, "r+b", buffering=buffering)  # noqa: SIM115 - the caller closes it


def _write_npz(ckpt: Checkpoint, chosen: list[TensorInfo], tmp: str, compress: bool, report: ExtractReport,
               progress: Progress) -> None:
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    streams = ckpt.streams(None if info.dtype in _WIDENED or dtypes.from_name(info.dtype).numpy is None else info.name
                           for info in chosen)  # (widened values are converted: read whole)
    with _open_output(tmp) as f, zipfile.ZipFile(f, "w", compression=method, allowZip64=True) as archive:
        for info, (_, stream) in zip(chosen, streams):
            numpy_dtype = dtypes.from_name(info.dtype).numpy
            if stream is not None:  # the stored bytes are the array: copy them through in chunks
                with archive.open(info.name + ".npy", "w", force_zip64=True) as member:
                    _write_npy_header(member, info.shape, numpy_dtype)
                    for chunk in read_ahead(stream, info.nbytes):  # the next chunk is read while this is written
                        member.write(chunk)
                        progress(len(chunk))  # by bytes, so a bar moves inside a big tensor
                report.written.append(info)
            else:
                value = _npz_value(info, ckpt.get(info.name), report)
                if value is not None:
                    with archive.open(info.name + ".npy", "w", force_zip64=True) as member:
                        _write_npy(member, value)
                    report.written.append(info)
                progress(info.nbytes)


def _write_npy_header(member, shape: tuple[int, ...], dtype: np.dtype) -> None:
    import numpy as np
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(shape)}
    try:
        np.lib.format.write_array_header_1_0(member, header)
    except ValueError:  # header too long for format 1.0
        np.lib.format.write_array_header_2_0(member, header)


def _write_npy(member, value: np.ndarray) -> None:
    """Write one ``.npy``: the header, then the array's memory in one write (numpy copies it in chunks)."""
    import numpy as np
    if not value.flags.c_contiguous:
        value = value.copy(order="C")  # (not np.ascontiguousarray: it turns scalars into 1-d arrays)
    _write_npy_header(member, value.shape, value.dtype)
    if value.dtype.kind == "S":
        member.write(value.tobytes())
    else:
        member.write(memoryview(value.reshape(-1).view(np.uint8)))


def _npz_value(info: TensorInfo, value: np.ndarray, report: ExtractReport) -> np.ndarray | None:
    import numpy as np
    if info.dtype in _WIDENED:
        report.converted[info.name] = f"{info.dtype} stored as float32 (exact; npz has no {info.dtype})"
        return value.astype(np.float32)
    if info.dtype == "string":
        items = value.reshape(-1).tolist()
        if any(item.endswith(b"\x00") for item in items):
            report.skipped[info.name] = "strings ending in NUL bytes cannot be stored without pickle"
            return None
        return np.array(items, dtype=np.bytes_).reshape(value.shape) if items else np.zeros(value.shape, "S1")
    if value.dtype.hasobject or value.dtype.kind == "V":
        report.skipped[info.name] = f"dtype {info.dtype} has no npz representation"
        return None
    return value


def _write_safetensors(ckpt: Checkpoint, chosen: list[TensorInfo], tmp: str, report: ExtractReport,
                       progress: Progress) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "tf", "source": os.path.basename(ckpt.prefix)}}
    offset = 0
    kept = []
    for info in chosen:
        code = CODE_FOR_NAME.get(info.dtype)
        if code is None:
            report.skipped[info.name] = f"safetensors has no {info.dtype} type"
            progress(info.nbytes)
            continue
        nbytes = info.size * dtypes.from_name(info.dtype).itemsize
        header[info.name] = {"dtype": code, "shape": list(info.shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
        kept.append((info, nbytes))
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format asks for 8-byte alignment of the data
    stored = ckpt.stored_ranges()
    copies = {info.name: stored[info.key] for info, _ in kept if info.key in stored}
    checked = [copy for copy in copies.values() if copy.size]  # as the reader, no checksum for no bytes
    streams = ckpt.streams(None if info.name in copies else info.name for info, _ in kept)
    # unbuffered: tensors are appended to its descriptor directly
    with _open_output(tmp, buffering=0) as f, SourceFiles() as files, verified(checked):
        out = f.fileno()
        write_all(out, len(encoded).to_bytes(8, "little") + encoded)
        for (info, nbytes), (_, stream) in zip(kept, streams):
            copy = copies.get(info.name)
            if copy is not None:
                _append_copy(files, copy, out, progress)
            else:
                _append_stream(ckpt, info, stream, nbytes, out, progress)
            report.written.append(info)


def _append_copy(files: SourceFiles, copy: ByteRange, out: int, progress: Progress) -> None:
    """Append a tensor's stored bytes to ``out`` inside the kernel (``verified`` checks their crc32c)."""
    src = files.fd(copy.path, f"data shard for '{copy.label}'")
    start = os.lseek(out, 0, os.SEEK_CUR)
    try:
        copy_range(src, copy.offset, out, start, copy.size, progress)
    except SourceTooShort:
        raise MissingDataError(f"{copy.path}: file too short for '{copy.label}' (needs bytes {copy.offset}.."
                               f"{copy.offset + copy.size}, file has {os.fstat(src).st_size})") from None
    os.lseek(out, start + copy.size, os.SEEK_SET)  # what follows goes after the copied bytes


def _append_stream(ckpt: Checkpoint, info: TensorInfo, stream: Iterator[bytes] | None, nbytes: int, out: int,
                   progress: Progress) -> None:
    """Append a tensor's little-endian bytes to ``out``: its ``stream`` read ahead on a thread, or, without
    one, its decoded value."""
    if stream is None:
        import numpy as np

        value = ckpt.get(info.name)
        if not value.flags.c_contiguous:
            value = value.copy(order="C")
        stream = [memoryview(value.reshape(-1).view(np.uint8))]  # native order = little-endian
    written = 0
    for chunk in read_ahead(stream, nbytes):
        write_all(out, chunk)
        written += len(chunk)
        progress(len(chunk))
    if written != nbytes:
        raise ValueError(f"'{info.name}': {written} bytes read, header says {nbytes}")
