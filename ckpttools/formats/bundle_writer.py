"""Writer for V2 checkpoints (the mirror of ``bundle``), as TensorFlow's ``BundleWriter`` writes them.

From ``tensorflow/core/util/tensor_bundle/tensor_bundle.cc``:

``PREFIX.data-KKKKK-of-NNNNN``
    tensors' bytes back to back, in the order they were added (``data_alignment``
    1: no padding). Fixed-size dtypes are the little-endian array (bool, int4,
    float8... one element per byte, as TensorFlow stores them). Strings are
    ``varint64 length * n``, the masked crc32c of the lengths (each taken as a
    uint32, or uint64 when longer than 4 GiB), then the bytes (``WriteStringTensor``);
    a string tensor with no elements still stores its (empty) length checksum.
``PREFIX.index``
    a table (``sstable_writer``) with the ``BundleHeaderProto`` under key ``""``
    (``num_shards``, little-endian, version ``{producer: 1}``) and a
    ``BundleEntryProto`` per key in bytewise key order: dtype, shape, shard,
    offset, size and the masked crc32c of the stored bytes (for strings: of the
    lengths as uint32, the length checksum, then the bytes).
partitioned variables (``AddSlice``)
    an entry under the variable's name with dtype, shape and the list of its
    slices (no data), and each slice as a regular tensor under
    ``EncodeTensorNameSlice(name, slice)`` (``ordered_code.slice_key``).
several shards
    what ``MergeBundles`` produces from per-device bundles: each entry names its
    shard; the header counts them.

For the same tensors added in the same order to one shard, the ``.index`` and
``.data`` files are byte-identical to TensorFlow's (tests/test_writer.py checks it).

Bytes reach a shard three ways: ``add`` (an array), ``add_raw`` (chunks from a
source, checksummed as they pass) and ``add_copy`` (a byte range of a file,
copied by the kernel with ``storage.filecopy``; the caller vouches for its crc).

Every file is written under a hidden temporary name beside the output
(``.BASENAME.PART.ckpttools-partial-HOST-PID-RANDOM``) and renamed into place by ``finish`` once
all are complete, data shards first and the index last, so a reader never sees
an index whose data is not there. ``abort`` (or an exception inside ``with``)
removes them; temporaries left by a killed process are recognised by their
name and removed by the next writer of the same prefix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from ..errors import MissingDataError
from ..storage.atomic import _remove
from ..storage.filecopy import SourceFiles, SourceTooShort, copy_range
from ..storage.outputs import (  # noqa: F401  (check_output_prefix, same_checkpoint: part of this module's API)
    check_output_prefix,
    existing_data_files,
    new_tag,
    partial_path,
    remove_stale_partials,
    same_checkpoint,
    stale_partials,
    write_error,
)
from . import dtypes
from .bundle import data_file
from .crc import crc32c, mask
from .encoders import encode_bundle_entry, encode_bundle_header
from .ordered_code import slice_key
from .protowire import encode_varint
from .sstable_writer import TableWriter

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

    import numpy as np

_CHUNK = 8 << 20
_OVERLAP_MIN = 4 << 20  # smaller tensors are written directly: a thread hand-off would cost more than it saves


@dataclass
class _Shard:
    number: int
    tmp: str
    file: BinaryIO
    size: int = 0


@dataclass
class _Copy:
    """``size`` bytes of the source file ``path`` (open as ``src``) to copy to ``dst_offset`` of ``shard``."""

    shard: _Shard
    path: str
    src: int
    src_offset: int
    dst_offset: int
    size: int

    @property
    def end(self) -> int:
        """Where the copied range ends in the source."""
        return self.src_offset + self.size


class BundleWriter:
    """Writes one V2 bundle under temporary names; finish() renames every file into place at once.

    Example:
        >>> with BundleWriter("out/model.ckpt-5") as writer:
        ...     writer.add("dense/kernel", numpy.ones((3, 4), numpy.float32))
        ...     writer.add("global_step", numpy.int64(5))
    """

    def __init__(self, prefix: str, *, num_shards: int = 1, max_shard_bytes: int | None = None,
                 force: bool = False) -> None:
        if num_shards < 1:
            raise ValueError(f"num_shards must be at least 1, not {num_shards}")
        if max_shard_bytes is not None and (max_shard_bytes < 1 or num_shards != 1):
            raise ValueError("max_shard_bytes must be positive and cannot be combined with num_shards")
        self.prefix = prefix
        self.force = force
        self.max_shard_bytes = max_shard_bytes
        check_output_prefix(prefix, force)
        remove_stale_partials(prefix)
        self._tag = new_tag()
        self._shards: list[_Shard] = []
        self._entries: dict[bytes, bytes] = {}
        self._state = "open"
        self._pool: ThreadPoolExecutor | None = None
        self._copy: _Copy | None = None  # bytes add_copy has placed but not yet copied
        self._sources = SourceFiles()  # add_copy's source files, open until the writer is done
        self.finished_paths: list[str] = []
        try:
            for _ in range(num_shards):
                self._open_shard()
        except BaseException:
            self.abort()
            raise

    # --- adding tensors -------------------------------------------------------

    def add(self, key: str, value: np.ndarray, *, dtype: str | None = None) -> None:
        """A whole tensor. dtype: TF dtype name override (e.g. 'qint8'); strings: numpy bytes/object arrays."""
        name = self._new_key(key)
        tf_dtype, array = _as_tensor(key, value, dtype)
        self._add_array(name, tf_dtype, array)

    def add_raw(self, key: str, dtype: str, shape: tuple[int, ...], chunks: Iterable[bytes | memoryview],
                nbytes: int) -> None:
        """Stored bytes streamed from a source (fixed-size dtypes, little-endian); crc32c computed as they pass."""
        name = self._new_key(key)
        tf_dtype, shape = _raw_layout(key, dtype, shape, nbytes)
        self._write(name, tf_dtype, shape, chunks, nbytes)

    def add_copy(self, key: str, dtype: str, shape: tuple[int, ...], path: str, offset: int, nbytes: int,
                 crc: int) -> None:
        """Stored bytes copied unchanged from the file ``path`` at ``offset``, by the kernel (``filecopy``).

        ``crc`` is their unmasked crc32c as the source's index gives it. Nothing here reads the bytes,
        so the caller verifies them (``rewrite`` checks the source's crc32c while this copies). Copies
        that continue each other, in the source and in the output shard, are made as one.
        """
        name = self._new_key(key)
        tf_dtype, shape = _raw_layout(key, dtype, shape, nbytes)
        shard = self._pick_shard(nbytes)
        src = self._source_fd(path)
        pending = self._copy
        if pending is not None and pending.shard is shard and pending.src == src and pending.end == offset:
            pending.size += nbytes
        else:
            self._flush_copy()
            self._copy = _Copy(shard, path, src, offset, shard.size, nbytes)
        self._entries[name] = encode_bundle_entry(
            tf_dtype.enum, shape, shard.number, shard.size, nbytes, mask(crc))
        shard.size += nbytes
        if self._copy.size >= _CHUNK:
            self._flush_copy()

    def add_sliced(self, key: str, dtype: str, shape: tuple[int, ...],
                   slices: Iterable[tuple[tuple[int, ...], np.ndarray]]) -> None:
        """A partitioned variable kept as slices: (start, array) pairs, as TensorFlow's slice entries."""
        name = self._new_key(key)
        tf_dtype = _known_dtype(key, dtype)
        shape = tuple(int(n) for n in shape)
        parts: list[tuple[list[tuple[int, int]], np.ndarray]] = []
        for start, part in slices:  # check every slice before writing any
            array = _as_tensor(key, part, dtype)[1]
            parts.append((_extents(key, shape, tuple(start), array.shape, [box for box, _ in parts]), array))
        covered = sum(math.prod(length for _, length in box) for box, _ in parts)
        if covered != math.prod(shape):
            raise ValueError(f"'{key}': slices cover {covered} of the {math.prod(shape)} elements of {list(shape)}")
        for extents, array in parts:
            self._add_array(slice_key(key, extents), tf_dtype, array)
        self._entries[name] = encode_bundle_entry(tf_dtype.enum, shape, slices=[box for box, _ in parts])

    def _add_array(self, name: bytes, tf_dtype: dtypes.DType, array: np.ndarray) -> None:
        import numpy as np

        shape = tuple(int(n) for n in array.shape)
        if tf_dtype.is_string:
            chunks, nbytes, crc = _string_chunks(array)
            self._write(name, tf_dtype, shape, chunks, nbytes, crc)
        else:
            raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
            self._write(name, tf_dtype, shape, [memoryview(raw)], raw.nbytes)

    def _new_key(self, key: str) -> bytes:
        """The key's bytes, after checking that it is valid and new (and the writer still open)."""
        if self._state != "open":
            raise ValueError(f"{self.prefix}: writer is already {self._state}")
        if not isinstance(key, str) or not key or key.startswith("\0"):
            raise ValueError(f"invalid tensor name {key!r}: names are non-empty strings not starting with NUL")
        name = key.encode("utf-8")
        if name in self._entries:
            raise ValueError(f"{self.prefix}: tensor '{key}' added twice")
        return name

    def _pick_shard(self, nbytes: int) -> _Shard:
        if len(self._shards) == 1 and self.max_shard_bytes is None:
            return self._shards[0]
        if self.max_shard_bytes is not None:
            shard = self._shards[-1]
            if shard.size and shard.size + nbytes > self.max_shard_bytes:
                shard = self._open_shard()
            return shard
        return min(self._shards, key=lambda s: s.size)  # balanced by bytes; ties: lowest shard

    def _write(self, name: bytes, tf_dtype: dtypes.DType, shape: tuple[int, ...],
               chunks: Iterable[bytes | memoryview], nbytes: int, crc: int | None = None) -> None:
        """Append the stored bytes to a shard and record the entry; any failure spoils the writer.

        A big tensor's pieces are written by a helper thread (``write`` releases the GIL) while this
        thread checksums the next piece and pulls the next chunk from its source; every byte is
        written before this returns, so a caller may reuse its buffers afterwards.
        """
        self._flush_copy()
        shard = self._pick_shard(nbytes)
        offset = shard.size
        written = 0
        running = 0
        pending: Future | None = None
        executor = self._executor() if nbytes >= _OVERLAP_MIN else None
        with self._spoiled_on_failure():
            for chunk in chunks:
                for piece in _pieces(chunk):
                    if crc is None:
                        running = crc32c(piece, running)
                    if pending is not None:
                        pending.result()
                    if executor is None:
                        shard.file.write(piece)
                    else:
                        pending = executor.submit(shard.file.write, piece)
                    written += len(piece)
            if pending is not None:
                pending.result()
        shard.size += written
        if written != nbytes:
            self._fail()
            key = name.decode("utf-8", "replace")
            raise ValueError(f"'{key}': the source gave {written} bytes, {nbytes} were announced")
        checksum = running if crc is None else crc
        self._entries[name] = encode_bundle_entry(
            tf_dtype.enum, shape, shard.number, offset, nbytes, mask(checksum))

    def _source_fd(self, path: str) -> int:
        try:
            return self._sources.fd(path)
        except MissingDataError:
            self._fail()
            raise

    def _flush_copy(self) -> None:
        """Make the pending copy; any failure spoils the writer."""
        copy, self._copy = self._copy, None
        if copy is None:
            return
        f = copy.shard.file
        with self._spoiled_on_failure():
            f.flush()
            try:
                copy_range(copy.src, copy.src_offset, f.fileno(), copy.dst_offset, copy.size)
            except SourceTooShort as exc:
                raise MissingDataError(f"{copy.path}: file too short (ends at byte {copy.src_offset + exc.copied}, "
                                       f"the index needs {copy.end})") from None
            f.seek(copy.dst_offset + copy.size)  # later writes go after the copied bytes

    @contextmanager
    def _spoiled_on_failure(self) -> Iterator[None]:
        """Any failure inside removes every temporary file; an OSError becomes one OutputError line."""
        try:
            yield
        except OSError as exc:
            self._fail()
            raise write_error(self.prefix, exc) from None
        except BaseException:
            self._fail()
            raise

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor  # (imports logging: only for big tensors)

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ckpttools-write")
        return self._pool

    # --- files ----------------------------------------------------------------

    def _temp_path(self, part: str) -> str:
        return partial_path(self.prefix, part, self._tag)

    def _open_shard(self) -> _Shard:
        tmp = self._temp_path(f"data-{len(self._shards):05d}")
        try:
            f = open(tmp, "xb")
        except OSError as exc:
            raise write_error(self.prefix, exc) from None
        shard = _Shard(len(self._shards), tmp, f)
        self._shards.append(shard)
        return shard

    def finish(self) -> list[str]:
        """Write the index and rename every file into place; return the final paths (data shards, then index)."""
        if self._state != "open":
            raise ValueError(f"{self.prefix}: writer is already {self._state}")
        index_tmp = self._temp_path("index")
        placed: list[str] = []
        try:
            self._flush_copy()
            self._sources.close()
            self._stop_pool()
            for shard in self._shards:
                shard.file.close()
            with open(index_tmp, "xb") as f:
                table = TableWriter(f)
                table.add(b"", encode_bundle_header(len(self._shards)))
                for name in sorted(self._entries):
                    table.add(name, self._entries[name])
                table.finish()
            check_output_prefix(self.prefix, self.force)  # did one appear while we worked?
            n = len(self._shards)
            finals = [data_file(self.prefix, k, n) for k in range(n)]
            old = existing_data_files(self.prefix)
            for shard, final in zip(self._shards, finals):  # created 0o666 less the umask, like any output
                os.replace(shard.tmp, final)
                placed.append(final)
            os.replace(index_tmp, self.prefix + ".index")
        except OSError as exc:
            self._fail(index_tmp, *placed)
            raise write_error(self.prefix, exc) from None
        except BaseException:  # Ctrl-C between renames: no data file without its index stays behind
            self._fail(index_tmp, *placed)
            raise
        for stale in set(old) - set(finals):  # --force over a checkpoint with another shard count
            _remove(stale)
        self._state = "finished"
        self.finished_paths = [*finals, self.prefix + ".index"]
        return list(self.finished_paths)

    def abort(self) -> None:
        """Remove every temporary file; the output is left as it was."""
        if self._state == "finished":
            return
        self._fail(self._temp_path("index"))
        self._state = "aborted"

    def _stop_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _fail(self, *extra: str) -> None:
        self._copy = None
        self._sources.close()
        self._stop_pool()
        for shard in self._shards:
            shard.file.close()
            _remove(shard.tmp)
        for path in extra:
            _remove(path)
        self._state = "failed"

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()


# --- helpers -----------------------------------------------------------------


def _pieces(chunk: bytes | memoryview) -> Iterable[bytes | memoryview]:
    """A chunk in pieces of at most _CHUNK bytes; ``bytes`` whole, since crc32c reads bytes without a copy."""
    if isinstance(chunk, bytes):
        return (chunk,)
    view = memoryview(chunk).cast("B")
    return (view[start : start + _CHUNK] for start in range(0, len(view), _CHUNK))


def _as_tensor(key: str, value, dtype: str | None) -> tuple[dtypes.DType, np.ndarray]:
    """The TF dtype and a little-endian numpy array for ``value`` (an array, scalar, list...)."""
    import numpy as np

    if dtype is not None:
        tf_dtype = _known_dtype(key, dtype)
        if tf_dtype.is_string:
            array = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
        else:
            array = np.asarray(value, dtype=tf_dtype.numpy)
            if isinstance(value, np.ndarray) and value.dtype.newbyteorder("=") != tf_dtype.numpy:
                raise ValueError(f"'{key}': a {value.dtype} array cannot be stored as {dtype} without a cast")
    else:
        array = np.asarray(value)
        tf_dtype = _infer_dtype(key, array)
    if tf_dtype.is_string:
        if array.dtype.kind not in "SUO":
            raise ValueError(f"'{key}': a {array.dtype} array is not a string tensor")
        return tf_dtype, array
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return tf_dtype, array


def _infer_dtype(key: str, array: np.ndarray) -> dtypes.DType:
    if array.dtype.kind in "SUO":
        return dtypes.from_name("string")
    found = dtypes.from_numpy(array.dtype)
    if found is None:
        raise ValueError(f"'{key}': numpy dtype {array.dtype} has no TensorFlow equivalent")
    return found


def _known_dtype(key: str, dtype: str) -> dtypes.DType:
    try:
        tf_dtype = dtypes.from_name(dtype)
    except KeyError:
        raise ValueError(f"'{key}': unknown dtype '{dtype}'") from None
    if not dtypes.is_readable(tf_dtype):
        raise ValueError(f"'{key}': dtype '{dtype}' cannot be written")
    return tf_dtype


_FIXED: dict[str, dtypes.DType] = {}  # dtype names _fixed_dtype accepted: a rewrite asks once per tensor


def _raw_layout(key: str, dtype: str, shape: tuple[int, ...], nbytes: int) -> tuple[dtypes.DType, tuple[int, ...]]:
    """The dtype and shape of stored bytes given as they are, checked against their size."""
    tf_dtype = _fixed_dtype(key, dtype)
    shape = tuple(map(int, shape))
    expected = math.prod(shape) * tf_dtype.itemsize
    if nbytes != expected:
        raise ValueError(f"'{key}': {dtype}{list(shape)} takes {expected} bytes, not {nbytes}")
    return tf_dtype, shape


def _fixed_dtype(key: str, dtype: str) -> dtypes.DType:
    tf_dtype = _FIXED.get(dtype)
    if tf_dtype is not None:
        return tf_dtype
    tf_dtype = _known_dtype(key, dtype)
    if tf_dtype.storage is None:
        raise ValueError(f"'{key}': add_raw takes fixed-size dtypes; {dtype} must go through add()")
    _FIXED[dtype] = tf_dtype
    return tf_dtype


def _string_chunks(array: np.ndarray) -> tuple[list[bytes], int, int]:
    """A string tensor in TensorFlow's layout (``WriteStringTensor``): chunks, size and (unmasked) crc32c."""
    items = [_as_bytes(item) for item in array.reshape(-1).tolist()]
    lengths = bytearray()
    crc = 0
    for item in items:
        n = len(item)
        lengths += encode_varint(n)
        crc = crc32c(n.to_bytes(4 if n <= 0xFFFFFFFF else 8, "little"), crc)
    length_crc = mask(crc).to_bytes(4, "little")
    crc = crc32c(length_crc, crc)
    body = b"".join(items)
    crc = crc32c(body, crc)
    chunks = [bytes(lengths), length_crc, body]
    return chunks, sum(len(c) for c in chunks), crc


def _as_bytes(item) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"string tensors hold bytes or str, not {type(item).__name__}")


def _extents(key: str, shape: tuple[int, ...], start: tuple[int, ...], part_shape: tuple[int, ...],
             boxes: Sequence[Sequence[tuple[int, int]]]) -> list[tuple[int, int]]:
    """The ``(start, length)`` per dimension of one slice, checked against the shape and earlier slices."""
    if len(start) != len(shape) or len(part_shape) != len(shape):
        raise ValueError(f"'{key}': slice at {list(start)} of shape {list(part_shape)} does not match rank "
                         f"{len(shape)}")
    extents = [(int(s), int(n)) for s, n in zip(start, part_shape)]
    if any(s < 0 or s + n > full for (s, n), full in zip(extents, shape)):
        raise ValueError(f"'{key}': slice at {list(start)} of shape {list(part_shape)} lies outside {list(shape)}")
    for box in boxes:
        if all(s < bs + bn and bs < s + n for (s, n), (bs, bn) in zip(extents, box)):
            raise ValueError(f"'{key}': slice at {list(start)} overlaps the slice at {[s for s, _ in box]}")
    return extents
