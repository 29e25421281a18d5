"""The public reader: ``open_checkpoint(path)`` -> ``Checkpoint``.

Opening reads only the index (V2) or the metadata entry (V1), so listing is
fast and works even when data shards are missing; values are read on demand
by ``get``. TF2 object-based checkpoints are renamed to readable object paths
(see ``formats.objgraph``); every tensor also keeps TensorFlow's own ``key``.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING

from . import collector, roles
from .errors import CkptError, CorruptFileError, NotFoundError, bounded
from .formats import dtypes, messages, objgraph
from .formats.bundle import BundleReader
from .formats.protowire import WireError
from .info import DUPLICATE, METADATA, MODEL, TensorInfo
from .resolve import Resolved, resolve
from .storage import sources

if TYPE_CHECKING:
    import numpy as np

    from .storage.spans import ByteRange


_DEFAULT_NAME = re.compile(r"(?:^|/)Variable(?:_\d+)?$")


class Checkpoint:
    """An open checkpoint: its tensors' metadata, and their values on demand.

    Example:
        >>> with open_checkpoint("runs/cnn") as ckpt:
        ...     kernel = ckpt.get("cnn/conv_block1/conv/kernel")
    """

    def __init__(self, resolved: Resolved) -> None:
        self.resolved = resolved
        self.prefix = resolved.prefix
        self.saved_model = resolved.saved_model
        self.warnings: list[str] = []
        self._reader = _open_reader(resolved)
        infos = list(self._reader.tensors)
        self.format = resolved.format
        if objgraph.OBJECT_GRAPH_KEY in map(attrgetter("key"), infos):
            self.format = "tf2"
            infos = self._name_objects(infos)
        else:
            infos = _classify(infos)
        self._infos = sorted(self._unique_names(infos), key=attrgetter("name"))
        self._ranges: dict[str, ByteRange] | None = None

    @cached_property
    def _by_name(self) -> dict[str, TensorInfo]:  # built on the first lookup: a listing never needs it
        return dict(zip(map(attrgetter("name"), self._infos), self._infos))

    @cached_property
    def _by_key(self) -> dict[str, TensorInfo]:
        return dict(zip(map(attrgetter("key"), self._infos), self._infos))

    @property
    def note(self) -> str | None:
        """How the given path was resolved, when that was not obvious."""
        return self.resolved.note

    def _unique_names(self, infos: list[TensorInfo]) -> list[TensorInfo]:
        """Every tensor gets its own name: where readable names collide, those tensors keep their keys.

        Keys are unique in a valid checkpoint; if even they collide, the listing would hide a
        tensor, so it is refused.
        """
        names = [info.name for info in infos]
        if len(set(names)) == len(names):
            return infos
        clashes = {name for name, n in Counter(names).items() if n > 1}
        self.warnings.append(_clash_warning(clashes))
        infos = [info._replace(name=info.key) if info.name in clashes else info for info in infos]
        keys = Counter(info.name for info in infos)
        twice = sorted(name for name, n in keys.items() if n > 1)
        if twice:
            raise CorruptFileError(f"{self.prefix}: {len(twice)} name(s) are used by several tensors "
                                   f"(e.g. '{bounded(twice[0])}'); refusing a listing that would hide one")
        return infos

    def _name_objects(self, infos: list[TensorInfo]) -> list[TensorInfo]:
        try:
            raw = self._reader.read(objgraph.OBJECT_GRAPH_KEY)
            nodes = messages.parse_object_graph(bytes(raw.reshape(-1)[0]))
        except (CkptError, WireError, IndexError) as exc:
            self.warnings.append(f"object graph unreadable, showing raw keys ({exc})")
            return _classify(infos)
        clashes: set[str] = set()
        infos = _classify(objgraph.rename(infos, nodes, clashes))
        if clashes:
            self.warnings.append(_clash_warning(clashes))
        return _mark_copies(infos, self._reader.checksum) if self.saved_model else infos

    # --- listing --------------------------------------------------------------

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._by_key

    def no_variables_hint(self) -> str:
        """Why a command finds nothing to work on, when the checkpoint holds no variables at all ("" if it does)."""
        if any(info.role != METADATA for info in self._infos):
            return ""
        if self.saved_model:
            return (" (this SavedModel has no variables: a variable-free model keeps its weights as constants "
                    "in its graph; see 'ckpttools graph')")
        return " (it holds no variables, only TensorFlow's object graph)"

    @property
    def variables(self) -> list[TensorInfo]:
        """Every tensor, sorted by display name."""
        return list(self._infos)

    def info(self, name: str) -> TensorInfo:
        """The TensorInfo for a display name or a TensorFlow key."""
        found = self._by_name.get(name) or self._by_key.get(name)
        if found is None:
            raise NotFoundError(f"{self.prefix}: no variable '{name}'{_suggest(name, self._by_name)}")
        return found

    def data_files(self) -> list[str]:
        """The files holding tensor values (V2 shards, V1 files, the npz/safetensors file)."""
        return list(self._reader.data_files)

    def missing_data_files(self) -> list[str]:
        """Data files the index refers to that do not exist."""
        return [path for path in self.data_files() if not sources.isfile(path)]

    def leftover_data_files(self) -> list[str]:
        """``PATH is <what>; <fix>`` for each data shard that a failed download left in place of the real one (an
        empty file, a Git LFS pointer, an HTML page): listing works from the index, but no value can be read.
        Only a shard shorter than the index needs is read (its first KiB), as the reader checks it."""
        from .formats.downloads import explained, file_mistake

        shard_end = getattr(self._reader, "shard_end", None)
        found = []
        for shard, path in enumerate(self.data_files() if shard_end else ()):
            if sources.isfile(path) and sources.getsize(path) < shard_end(shard):
                mistake = file_mistake(path)
                if mistake is not None:
                    found.append(f"{path} {explained(mistake)}")
        return found

    # --- values ---------------------------------------------------------------

    def get(self, name: str) -> np.ndarray:
        """Read one tensor's value (verified against its checksum, for V2)."""
        return self._reader.read(self.info(name).key)

    def read_slice(self, name: str, number: int) -> np.ndarray:
        """The value of one stored part (``info(name).slices[number]``) of a partitioned variable."""
        info = self.info(name)
        if number >= len(info.slices):
            raise NotFoundError(f"{self.prefix}: '{name}' has no slice {number}")
        return self._reader.read_slice(info.key, number)

    def stream(self, name: str, chunk_size: int | None = None) -> Iterator[bytes] | None:
        """The tensor's stored bytes in chunks when they are its array's memory (V2, whole, native order).

        None otherwise; use ``get``. Lets ``extract`` copy tensors without holding them in memory.
        ``chunk_size`` overrides the reader's (8 MiB), e.g. to bound memory when several streams are open.
        """
        stream = getattr(self._reader, "stream", None)
        if stream is None:
            return None
        return stream(self.info(name).key) if chunk_size is None else stream(self.info(name).key, chunk_size)

    def in_storage_order(self, infos: Iterable[TensorInfo]) -> list[TensorInfo]:
        """``infos`` sorted by where their bytes are stored (data file, then offset), as TensorFlow wrote them
        (in the order it saved them, not by name): read in turn, each file is read front to back, and
        ``streams`` reads them in long runs. Partitioned tensors, and other formats, keep their order, last.
        """
        return sorted(infos, key=lambda info: self.position(info.key))

    def position(self, key: str) -> tuple[float, int]:
        """Where the bytes of TensorFlow key ``key`` begin, as (data shard, offset), for sorting; after every
        stored tensor for a partitioned one, and the same for all in formats that do not say."""
        position = getattr(self._reader, "position", None)
        return (position(key) if position else None) or (math.inf, 0)

    def streams(self, names: Iterable[str | None], chunk_size: int | None = None
                ) -> Iterator[tuple[str | None, Iterator[bytes] | None]]:
        """``(name, stream(name))`` for each name in turn, tensors stored one after another read as one stream:
        for a URL one pipeline of ranged requests for the run, not a round trip per tensor. Use each stream
        up, or leave it, before taking the next. A None in ``names`` holds a place (a tensor the caller reads
        otherwise): it gets ``(None, None)`` and neither reads nor ends a run.
        """
        names = list(names)
        streams = getattr(self._reader, "streams", None)
        keys = [self.info(name).key for name in names if name is not None]
        if streams is None:
            found: Iterator = iter(())
        else:
            found = streams(keys) if chunk_size is None else streams(keys, chunk_size)
        for name in names:
            yield name, None if name is None else next(found, (None, None))[1]

    def values(self, names: Iterable[str]) -> Iterator[tuple[str, np.ndarray]]:
        """``(name, get(name))`` for each name in turn, tensors stored one after another read as one stream
        (``streams``), one tensor in memory at a time. An error ends the iteration, raised as ``get`` would."""
        from .formats import arrays  # numpy is imported only when values are read

        for name, stream in self.streams(names):
            info = self.info(name)
            dtype = dtypes.from_name(info.dtype)
            if stream is None or not dtypes.is_readable(dtype):
                yield name, self.get(name)
                continue
            raw = arrays.buffer(info.nbytes)
            view, done = memoryview(raw), 0
            for chunk in stream:
                view[done:done + len(chunk)] = chunk
                done += len(chunk)
            yield name, arrays.from_buffer(raw, dtype, info.shape, big_endian=False)  # (streams are native order)

    def stored_ranges(self) -> dict[str, ByteRange]:
        """TensorFlow key -> where the tensor's stored bytes lie in a local data file, when they are its array.

        The tensors ``stream`` streams (V2, whole, fixed-size dtype, native byte order), in local files;
        none for other formats or URLs. Lets ``rewrite`` and ``extract`` have the kernel copy tensors file
        to file and check their crc32c (``ByteRange.crc``, unmasked) apart (``crcscan.verified``).
        """
        if self._ranges is None:
            self._ranges = _stored_ranges(self._reader)
        return self._ranges

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Checkpoint {self.format} {self.prefix!r}: {len(self)} tensors>"


def _stored_ranges(reader: object) -> dict[str, ByteRange]:
    """Key -> ByteRange of each tensor whose stored bytes are its little-endian array (see ``stored_ranges``)."""
    from .formats.crc import unmask
    from .storage.spans import ByteRange

    if not isinstance(reader, BundleReader) or reader.header.big_endian:
        return {}
    files = reader.data_files
    if any(sources.is_url(path) for path in files):
        return {}
    paths = [sources.local_path(path) for path in files]
    found = {}
    for key, entry, part in reader.stored_parts():
        if part is not entry or not 0 <= entry.shard_id < len(paths) or entry.offset < 0:
            continue
        dtype = dtypes.from_enum(entry.dtype)
        if dtype.storage is not None and entry.size == math.prod(entry.shape) * dtype.itemsize:
            found[key] = ByteRange(paths[entry.shard_id], entry.offset, entry.size, unmask(entry.crc32c), key)
    _check_lengths(list(found.values()))
    return found


def _check_lengths(ranges: list[ByteRange]) -> None:
    """Data files copied without the reader are checked as it checks them: not a failed download's leftovers."""
    from .formats.downloads import HEAD, check_length

    ends: dict[str, int] = {}
    for stored in ranges:
        ends[stored.path] = max(ends.get(stored.path, 0), stored.offset + stored.size)
    for path, end in ends.items():
        if os.path.isfile(path):
            check_length(path, os.path.getsize(path), end, lambda path=path: _head(path, HEAD))


def _head(path: str, size: int) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _v1_reader(resolved: Resolved):
    from .formats.v1 import V1Reader

    return V1Reader(list(resolved.files))


def _npz_reader(resolved: Resolved):
    from .formats.npz import NpzReader

    return NpzReader(resolved.prefix)


def _safetensors_reader(resolved: Resolved):
    from .formats.safetensors import SafetensorsReader

    return SafetensorsReader(resolved.prefix)


def _keras_reader(resolved: Resolved):
    from .formats.keras_zip import KerasZipReader

    return KerasZipReader(resolved.prefix)


def _keras_h5_reader(resolved: Resolved):
    from .formats.keras_h5 import KerasH5Reader

    return KerasH5Reader(resolved.prefix, resolved.prefix)


# V2 is the common case and needs no numpy to list; the others load on demand.
_READERS = {
    "v2": lambda resolved: BundleReader(resolved.prefix),
    "v1": _v1_reader,
    "npz": _npz_reader,
    "safetensors": _safetensors_reader,
    "keras": _keras_reader,
    "keras_h5": _keras_h5_reader,
}


def _open_reader(resolved: Resolved):
    """The format's reader; a weights file that a failed download left in place (a Git LFS pointer, an HTML
    page) is named as such rather than as a damaged zip, HDF5 or safetensors file."""
    try:
        return _READERS[resolved.format](resolved)
    except CorruptFileError:
        from .formats.downloads import explained, file_mistake

        mistake = file_mistake(resolved.prefix) if resolved.format in _SINGLE_FILES else None
        if mistake is None:
            raise
        raise CorruptFileError(f"{resolved.prefix}: {explained(mistake)}") from None


_SINGLE_FILES = ("npz", "safetensors", "keras", "keras_h5")


def open_checkpoint(path: str | os.PathLike, storage_options: dict | None = None) -> Checkpoint:
    """Open a checkpoint from a prefix, one of its files, a directory or a SavedModel.

    ``path`` may be a URL (``s3://``, ``gs://``, ``https://``, fsspec chains); ``storage_options`` go to
    its fsspec backend (``{"anon": True}``, ``{"endpoint_url": ...}``) and are kept for later reads.

    Example:
        >>> ckpt = open_checkpoint("runs/cnn/model.ckpt-2000.index")
        >>> [(v.name, v.shape) for v in ckpt][:1]
        [('cnn/conv_block1/conv/bias', (8,))]
    """
    with sources.using(storage_options), collector.paused():
        return Checkpoint(resolve(os.fspath(path)))


def _clash_warning(clashes: set[str]) -> str:
    return (f"{len(clashes)} readable name(s) shared by several tensors (e.g. '{bounded(min(clashes))}'): "
            "those are shown by their keys")


def _classify(infos: list[TensorInfo]) -> list[TensorInfo]:
    """Set each tensor's role by its name and, for TF1 optimizer slots, the variable they belong to.

    A role already known from the TF2 object graph (anything but MODEL) is kept.
    """
    names = [info.name for info in infos]
    classified = roles.classify_all(names)
    if classified.count(MODEL) == len(infos) and set(map(attrgetter("role"), infos)) <= {MODEL}:
        return infos  # model variables only (the common case for 20,000 tensors): nothing to change
    known = set(names)
    out = list(infos)  # most tensors are model variables, kept as they are
    for index, (role, info) in enumerate(zip(classified, infos)):
        if role == MODEL and info.role == MODEL:
            continue
        role = info.role if info.role != MODEL else role
        target = roles.slot_target(info.name) if info.slot_of is None else None
        if target is not None and target[0] in known:
            out[index] = info._replace(role=role, slot_of=target[0], slot_name=target[1])
        elif role != info.role:
            out[index] = info._replace(role=role)
    return out


def _mark_copies(infos: list[TensorInfo], checksum: Callable[[str], int | None]) -> list[TensorInfo]:
    """In a SavedModel, mark second copies of a model variable as DUPLICATE, so parameters count once.

    Keras 3's ``model.export()`` saves every variable twice (``variables/0`` and ``_all_variables/0``).
    Copies share the variable's own name, dtype, shape, size and stored checksum, which the index alone
    tells, and are reached through a private list (``_all_variables``): only a tensor with more private
    (``_``) path components than the kept one counts as a copy. Two public variables that merely hold
    equal values under one name stay two; TensorFlow's default names (``Variable``) are never grouped.
    """
    groups: dict[tuple, list[TensorInfo]] = {}
    for info in infos:
        named = info.original_name and not _DEFAULT_NAME.search(info.original_name)
        if info.role == MODEL and named and not info.slices:
            crc = checksum(info.key)
            if crc is not None:
                groups.setdefault((info.original_name, info.dtype, info.shape, info.nbytes, crc), []).append(info)
    copies = set()
    for group in groups.values():
        if len(group) > 1:
            kept = min(group, key=lambda info: (_private_parts(info.name), info.name))
            copies.update(info.key for info in group if _private_parts(info.name) > _private_parts(kept.name))
    return [info._replace(role=DUPLICATE) if info.key in copies else info for info in infos]


def _private_parts(name: str) -> int:
    return sum(part.startswith("_") for part in name.split("/"))


def _suggest(name: str, known: dict[str, TensorInfo]) -> str:
    import difflib  # only when a name is not found

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
