"""Reader for V2 checkpoints: ``PREFIX.index`` + ``PREFIX.data-KKKKK-of-NNNNN``.

From ``tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc,proto}``:

``PREFIX.index`` is a table (see ``sstable``) mapping keys to protos:

* key ``""`` -> ``BundleHeaderProto``: ``num_shards``, ``endianness``, version.
* key = tensor name -> ``BundleEntryProto``: ``dtype``, ``shape``,
  ``shard_id``, ``offset``, ``size``, masked ``crc32c`` of the stored bytes,
  and for a partitioned variable the list of its ``slices`` (then no data).
* key = ``EncodeTensorNameSlice(name, slice)`` (starts with byte 0x00) ->
  the ``BundleEntryProto`` of one slice of a partitioned variable.

Tensor bytes live in shard ``shard_id`` at ``[offset, offset + size)``:
the raw array in the writer's byte order, or for strings
``varint64 len * n | uint32 masked crc of the lengths | bytes * n``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from ..errors import ChecksumError, CorruptFileError, MissingDataError, NotFoundError, UnsupportedError
from ..info import MODEL, SliceInfo, TensorInfo
from ..storage import sources
from ..storage.spans import GAP, read_span
from . import dtypes, messages
from .crc import crc32c, unmask
from .downloads import HEAD, check_length, mistake_text
from .ordered_code import slice_key
from .protowire import WireError, read_varint
from .slices import SliceError, check_tiling, slice_region
from .sstable import TableError, read_table

if TYPE_CHECKING:
    import numpy as np

_new_tuple = tuple.__new__


def data_file(prefix: str, shard: int, num_shards: int) -> str:
    """The data shard path, ``PREFIX.data-00000-of-00001`` style."""
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


class BundleReader:
    """Reads one V2 bundle lazily: the index at open, tensor bytes on demand."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.index_path = prefix + ".index"
        self._options = sources.current_options()
        try:
            data = sources.read_bytes(self.index_path)
        except FileNotFoundError:
            raise NotFoundError(f"{self.index_path}: no such file") from None
        except OSError as exc:
            raise NotFoundError(f"{self.index_path}: cannot read ({exc.strerror})") from None
        self.header = messages.BundleHeader(num_shards=1)
        self._entries: dict[str, messages.BundleEntry] = {}
        self._slice_entries: dict[bytes, messages.BundleEntry] = {}
        try:
            self._load_index(data)
        except (TableError, WireError) as exc:
            why = mistake_text(data[:HEAD], len(data)) or f"corrupt checkpoint index ({exc})"
            raise CorruptFileError(f"{self.index_path}: {why}") from None
        self._files: dict[int, sources.ByteSource] = {}
        # One TensorInfo per tensor, inline for whole tensors: this runs 20,000 times for 20,000 variables.
        # (nbytes: an empty string tensor stores just a crc, so an empty tensor counts 0 bytes.)
        # (tuple.__new__: TensorInfo's fields in order, without the named tuple's keyword-taking __new__.)
        names = dtypes.NAMES
        self.tensors = [_new_tuple(TensorInfo, (key, key, names[entry.dtype], entry.shape,
                                                0 if 0 in entry.shape else entry.size, MODEL, None, None, None,
                                                (entry.shard_id,), ()))
                        if not entry.slices else self._partitioned_info(key, entry)
                        for key, entry in self._entries.items()]

    def _load_index(self, data: bytes) -> None:
        headers, sliced, named = [], [], []
        for item in read_table(data):
            key = item[0]
            if not key:
                headers.append(item[1])
            elif key[0]:
                named.append(item)
            else:
                sliced.append(item)
        if not headers:
            raise TableError("no bundle header entry")
        self.header = messages.parse_bundle_header(headers[-1])
        self._slice_entries = dict(zip(map(itemgetter(0), sliced),
                                       messages.parse_bundle_entries(map(itemgetter(1), sliced))))
        self._entries = dict(zip([key.decode("utf-8", "replace") for key, _ in named],
                                 messages.parse_bundle_entries(map(itemgetter(1), named))))
        stored = max(1, len(self._entries) + len(self._slice_entries))
        if not 1 <= self.header.num_shards <= stored:  # each shard file holds at least one entry
            raise TableError(f"header says {self.header.num_shards} data shards for {stored} stored tensors")

    # --- metadata -------------------------------------------------------------

    @property
    def data_files(self) -> list[str]:
        n = self.header.num_shards
        return [data_file(self.prefix, k, n) for k in range(n)]

    def checksum(self, key: str) -> int | None:
        """The stored (masked) crc32c of an unpartitioned tensor's bytes; None for partitioned or unknown keys."""
        entry = self._entries.get(key)
        return None if entry is None or entry.slices else entry.crc32c

    def missing_data_files(self) -> list[str]:
        """Data shards that the index needs but that are absent."""
        return [path for path in self.data_files if not sources.isfile(path)]

    def _partitioned_info(self, key: str, entry: messages.BundleEntry) -> TensorInfo:
        slices = []
        for extents in entry.slices:
            part = self._slice_entry(key, extents)
            start = tuple(s for s, _ in extents)
            shape = tuple(n if n >= 0 else full for (_, n), full in zip(extents, entry.shape))
            slices.append(SliceInfo(start, shape, part.shard_id, part.size))
        shards = tuple(sorted({s.shard for s in slices}))
        nbytes = sum(s.nbytes for s in slices)
        return TensorInfo(key, key, dtypes.NAMES[entry.dtype], entry.shape, nbytes, shards=shards,
                          slices=tuple(slices))

    def position(self, key: str) -> tuple[int, int] | None:
        """Where a whole tensor's bytes begin: (data shard, offset); None for partitioned or unknown keys."""
        entry = self._entries.get(key)
        return None if entry is None or entry.slices else (entry.shard_id, entry.offset)

    def stored_parts(self) -> Iterator[tuple[str, messages.BundleEntry, messages.BundleEntry]]:
        """Every byte range the index promises: ``(key, entry, part)``, ``part`` being the entry itself for a
        whole tensor and each slice's entry for a partitioned one. ``verify`` checks their sizes and crc32c.
        """
        for key, entry in self._entries.items():
            if not entry.slices:
                yield key, entry, entry
            for extents in entry.slices:
                yield key, entry, self._slice_entry(key, extents)

    def _slice_entry(self, key: str, extents: list[tuple[int, int]]) -> messages.BundleEntry:
        part = self._slice_entries.get(slice_key(key, extents))
        if part is None:
            raise CorruptFileError(f"{self.index_path}: slice {extents} of '{key}' is listed but not stored")
        return part

    # --- values ---------------------------------------------------------------

    def read(self, key: str) -> np.ndarray:
        """Return the value of tensor ``key``, reassembling partitioned variables."""
        entry = self._entries.get(key)
        if entry is None:
            raise NotFoundError(f"{self.prefix}: no tensor '{key}'")
        dtype = dtypes.from_enum(entry.dtype)
        if not dtypes.is_readable(dtype):
            raise UnsupportedError(f"{self.prefix}: '{key}' has dtype {dtype.name}, which ckpttools cannot decode")
        if not entry.slices:
            return self._read_entry(key, entry, dtype, entry.shape)
        from . import arrays  # numpy is imported only when values are read

        parts = [(self._slice_entry(key, extents), *self._region(key, entry.shape, extents))
                 for extents in entry.slices]
        count, stored = math.prod(entry.shape), sum(max(part.size, 0) for part, _, _ in parts)
        if count > stored if dtype.is_string else count * dtype.itemsize != stored:
            raise CorruptFileError(f"{self.index_path}: the slices of '{key}' store {stored} bytes, "
                                   f"which cannot hold {dtype.name}{list(entry.shape)}")
        try:
            check_tiling(entry.shape, [index for _, index, _ in parts])
        except SliceError as exc:
            raise CorruptFileError(f"{self.index_path}: partitioned '{key}': {exc}") from None
        full = arrays.empty(entry.shape, dtype)
        for part, index, shape in parts:
            full[index] = self._read_entry(key, part, dtype, shape)
        return full

    def read_slice(self, key: str, number: int) -> np.ndarray:
        """The value of the ``number``-th stored slice of partitioned tensor ``key`` (as listed in its info)."""
        entry = self._entries.get(key)
        if entry is None or number >= len(entry.slices):
            raise NotFoundError(f"{self.prefix}: no slice {number} of '{key}'")
        dtype = dtypes.from_enum(entry.dtype)
        if not dtypes.is_readable(dtype):
            raise UnsupportedError(f"{self.prefix}: '{key}' has dtype {dtype.name}, which ckpttools cannot decode")
        extents = entry.slices[number]
        shape = tuple(n if n >= 0 else size for (_, n), size in zip(extents, entry.shape))
        return self._read_entry(key, self._slice_entry(key, extents), dtype, shape)

    def _region(self, key: str, shape: tuple[int, ...], extents: list) -> tuple[tuple[slice, ...], tuple[int, ...]]:
        try:
            return slice_region(shape, extents)
        except SliceError as exc:
            raise CorruptFileError(f"{self.index_path}: a slice of '{key}' is invalid ({exc})") from None

    def stream(self, key: str, chunk_size: int = 8 << 20) -> Iterator[bytes] | None:
        """The stored bytes of ``key`` in chunks, or None when they need decoding first.

        Only for whole (unpartitioned), fixed-size, native-byte-order tensors, whose stored bytes
        are exactly the array's memory. The crc32c is checked after the last chunk: a caller that
        writes chunks as they come must discard its output on ChecksumError.
        """
        entry = self._raw_entry(key)
        return None if entry is None else self._chunks(key, entry, chunk_size)

    def streams(self, keys: Iterable[str], chunk_size: int = 8 << 20) -> Iterator[tuple[str, Iterator[bytes] | None]]:
        """``(key, stream(key))`` for each key in turn, a run of keys stored one after another in one data
        file read as one stream (``spans``): remotely one pipeline of ranged requests for the whole run
        instead of a round trip per tensor. Each stream is checked as ``stream``'s is; use it up (or leave
        it) before taking the next."""
        run: list[tuple[str, messages.BundleEntry]] = []
        for key in keys:
            entry = self._raw_entry(key)
            if entry is None:
                yield from self._run_streams(run, chunk_size)
                run = []
                yield key, None
                continue
            if run and not _follows(run[-1][1], entry):
                yield from self._run_streams(run, chunk_size)
                run = []
            run.append((key, entry))
        yield from self._run_streams(run, chunk_size)

    def _run_streams(self, run: list[tuple[str, messages.BundleEntry]], chunk_size: int
                     ) -> Iterator[tuple[str, Iterator[bytes]]]:
        if len(run) <= 1:
            yield from ((key, self._chunks(key, entry, chunk_size)) for key, entry in run)
            return
        first_key, first = run[0]
        path = self._shard_path(first_key, first)
        f = self._open(first.shard_id, path, first_key)
        for key, entry in run:
            self._shard_path(key, entry)  # (offsets and sizes checked)
        for index, pieces in read_span(f, [entry for _, entry in run], chunk_size):
            key, entry = run[index]
            yield key, self._checked(key, entry, path, pieces, f.size)

    def _raw_entry(self, key: str) -> messages.BundleEntry | None:
        """The entry of ``key`` if its stored bytes are exactly its array's memory: a whole (unpartitioned)
        tensor of fixed-size elements in native byte order. None otherwise."""
        entry = self._entries.get(key)
        dtype = dtypes.from_enum(entry.dtype) if entry else None
        if entry is None or entry.slices or dtype.storage is None or self.header.big_endian:
            return None
        if entry.size != math.prod(entry.shape) * dtype.itemsize:
            return None  # let read() report the inconsistency
        return entry

    def _chunks(self, key: str, entry: messages.BundleEntry, chunk_size: int) -> Iterator[bytes]:
        path = self._shard_path(key, entry)
        f = self._locate(key, path, entry)
        yield from self._checked(key, entry, path, f.iter_chunks(entry.offset, entry.size, chunk_size), f.size)

    @staticmethod
    def _checked(key: str, entry: messages.BundleEntry, path: str, chunks: Iterable[bytes | memoryview],
                 file_size: int) -> Iterator[bytes]:
        """``chunks`` passed on, their crc32c checked as they arrive and against the entry's after the last."""
        crc = 0
        left = entry.size
        for chunk in chunks:
            crc = crc32c(chunk, crc)
            left -= len(chunk)
            yield chunk
        if left:
            raise _too_short(path, key, entry, file_size)
        if entry.size and crc != unmask(entry.crc32c):
            raise ChecksumError(f"{path}: checksum mismatch in '{key}' (the data file is corrupt)")

    def _read_entry(self, key: str, entry: messages.BundleEntry, dtype: dtypes.DType, shape: tuple) -> np.ndarray:
        from . import arrays  # numpy is imported only when values are read

        count = math.prod(shape)
        path = self._shard_path(key, entry)
        if dtype.is_string:
            if count > entry.size:  # each element needs at least its one-byte length
                raise CorruptFileError(f"{self.index_path}: '{key}' stores {entry.size} bytes, "
                                       f"too few for {count} strings")
            raw, _ = self._read_bytes(key, path, entry)
            return arrays.strings(_decode_strings(raw.tobytes(), count, entry.crc32c, path, key), shape)
        expected = count * dtype.itemsize
        if entry.size != expected:
            raise CorruptFileError(
                f"{self.index_path}: '{key}' stores {entry.size} bytes but {dtype.name}{list(shape)} needs {expected}"
            )
        raw, crc = self._read_bytes(key, path, entry)
        if count and crc != unmask(entry.crc32c):
            raise ChecksumError(f"{path}: checksum mismatch in '{key}' (the data file is corrupt)")
        return arrays.from_buffer(raw, dtype, shape, self.header.big_endian)

    def _read_bytes(self, key: str, path: str, entry: messages.BundleEntry) -> tuple[Any, int]:
        """Read the entry's bytes straight into one uninitialised buffer; return it and its crc32c.

        One ``readinto`` on an unbuffered file, no zero-filling and no per-chunk allocations:
        reading runs at close to copy speed.
        """
        from . import arrays  # numpy is imported only when values are read

        if entry.size == 0:
            return arrays.buffer(0), 0
        f = self._locate(key, path, entry)
        buf = arrays.buffer(entry.size)  # bounded by the shard's size (checked by _locate)
        view = memoryview(buf)
        if f.readinto_at(entry.offset, view) < entry.size:
            raise _too_short(path, key, entry, f.size)
        return buf, crc32c(view)

    def _shard_path(self, key: str, entry: messages.BundleEntry) -> str:
        if not 0 <= entry.shard_id < self.header.num_shards:
            raise CorruptFileError(f"{self.index_path}: '{key}' is in data shard {entry.shard_id}, "
                                   f"but the checkpoint has {self.header.num_shards}")
        if entry.offset < 0 or entry.size < 0:
            raise CorruptFileError(f"{self.index_path}: '{key}' has offset {entry.offset} and size {entry.size}")
        return data_file(self.prefix, entry.shard_id, self.header.num_shards)

    def _locate(self, key: str, path: str, entry: messages.BundleEntry) -> sources.ByteSource:
        """The open shard, once the entry's bytes are known to lie inside it."""
        f = self._open(entry.shard_id, path, key)
        if entry.offset + entry.size > f.size:
            raise _too_short(path, key, entry, f.size)
        return f

    def _open(self, shard: int, path: str, key: str) -> sources.ByteSource:
        f = self._files.get(shard)
        if f is None:
            try:
                f = sources.open_source(path, self._options)  # reads go straight into the tensor's buffer
            except OSError as exc:
                raise MissingDataError(f"{path}: cannot read data shard for '{key}' ({exc.strerror})") from None
            try:
                check_length(path, f.size, self.shard_end(shard), lambda: f.read_at(0, HEAD))
            except CorruptFileError:
                f.close()
                raise
            self._files[shard] = f
        return f

    def shard_end(self, shard: int) -> int:
        """Where the last bytes the index promises in data shard ``shard`` end."""
        entries = (*self._entries.values(), *self._slice_entries.values())
        return max((e.offset + e.size for e in entries if e.shard_id == shard), default=0)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


def _decode_strings(raw: bytes, count: int, stored_crc: int, path: str, key: str) -> list[bytes]:
    """Decode a string tensor's elements and verify both of its checksums.

    TensorFlow writes every string tensor as lengths, their checksum, then the bytes: even an
    empty one has its 4-byte length checksum, so there is always something to verify.
    """
    if count == 0 and not raw:
        return []
    lengths = []
    pos = 0
    crc = 0
    try:
        for _ in range(count):
            length, pos = read_varint(raw, pos)
            lengths.append(length)
            width = 4 if length <= 0xFFFFFFFF else 8
            crc = crc32c(length.to_bytes(width, "little"), crc)
    except WireError:
        raise CorruptFileError(f"{path}: corrupt string lengths in '{key}'") from None
    length_crc = raw[pos : pos + 4]
    if len(length_crc) < 4 or unmask(int.from_bytes(length_crc, "little")) != crc:  # checked first, as TF does
        raise ChecksumError(f"{path}: checksum mismatch in the string lengths of '{key}'")
    if pos + 4 + sum(lengths) != len(raw):
        raise CorruptFileError(f"{path}: string lengths of '{key}' do not add up to its stored size")
    crc = crc32c(length_crc, crc)
    pos += 4
    items = []
    for length in lengths:
        items.append(bytes(raw[pos : pos + length]))
        pos += length
    if crc32c(raw[pos - sum(lengths) : pos], crc) != unmask(stored_crc):
        raise ChecksumError(f"{path}: checksum mismatch in '{key}' (the data file is corrupt)")
    return items


def _follows(previous: messages.BundleEntry, entry: messages.BundleEntry) -> bool:
    """Whether ``entry`` is stored in the same data file just after ``previous`` (see ``spans.GAP``)."""
    end = previous.offset + previous.size
    return entry.shard_id == previous.shard_id and end <= entry.offset <= end + GAP


def _too_short(path: str, key: str, entry: messages.BundleEntry, size: int) -> MissingDataError:
    """A data shard ends before the bytes the index promises for ``key``."""
    return MissingDataError(f"{path}: file too short for '{key}' (needs bytes {entry.offset}.."
                            f"{entry.offset + entry.size}, file has {size})")
