"""The public reader: ``open_checkpoint(path)`` -> ``Checkpoint``.

Opening reads only the index (V2) or the metadata entry (V1), so listing is
fast and works even when data shards are missing; values are read on demand
by ``get``. TF2 object-based checkpoints are renamed to readable object paths
(see ``formats.objgraph``); every tensor also keeps TensorFlow's own ``key``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from . import roles
from .errors import CkptError, NotFoundError
from .formats import messages, objgraph
from .formats.bundle import BundleReader
from .formats.protowire import WireError
from .info import MODEL, TensorInfo
from .resolve import Resolved, resolve

if TYPE_CHECKING:
    import numpy as np


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
        self._reader = _READERS[resolved.format](resolved)
        infos = list(self._reader.tensors)
        self.format = resolved.format
        if any(info.key == objgraph.OBJECT_GRAPH_KEY for info in infos):
            self.format = "tf2"
            infos = self._name_objects(infos)
        else:
            infos = _classify(infos)
        self._infos = sorted(infos, key=lambda info: info.name)
        self._by_name = {info.name: info for info in self._infos}
        self._by_key = {info.key: info for info in self._infos}

    @property
    def note(self) -> str | None:
        """How the given path was resolved, when that was not obvious."""
        return self.resolved.note

    def _name_objects(self, infos: list[TensorInfo]) -> list[TensorInfo]:
        try:
            raw = self._reader.read(objgraph.OBJECT_GRAPH_KEY)
            nodes = messages.parse_object_graph(bytes(raw.reshape(-1)[0]))
        except (CkptError, WireError, IndexError) as exc:
            self.warnings.append(f"object graph unreadable, showing raw keys ({exc})")
            return _classify(infos)
        return _classify(objgraph.rename(infos, nodes))

    # --- listing --------------------------------------------------------------

    def __iter__(self) -> Iterator[TensorInfo]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name or name in self._by_key

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
        return [path for path in self.data_files() if not os.path.isfile(path)]

    # --- values ---------------------------------------------------------------

    def get(self, name: str) -> np.ndarray:
        """Read one tensor's value (verified against its checksum, for V2)."""
        return self._reader.read(self.info(name).key)

    def stream(self, name: str) -> Iterator[bytes] | None:
        """The tensor's stored bytes in chunks when they are its array's memory (V2, whole, native order).

        None otherwise; use ``get``. Lets ``extract`` copy tensors without holding them in memory.
        """
        stream = getattr(self._reader, "stream", None)
        return stream(self.info(name).key) if stream else None

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> Checkpoint:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Checkpoint {self.format} {self.prefix!r}: {len(self)} tensors>"


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


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Open a checkpoint from a prefix, one of its files, a directory or a SavedModel.

    Example:
        >>> ckpt = open_checkpoint("runs/cnn/model.ckpt-2000.index")
        >>> [(v.name, v.shape) for v in ckpt][:1]
        [('cnn/conv_block1/conv/bias', (8,))]
    """
    return Checkpoint(resolve(os.fspath(path)))


def _classify(infos: list[TensorInfo]) -> list[TensorInfo]:
    """Set each tensor's role by its name and, for TF1 optimizer slots, the variable they belong to.

    A role already known from the TF2 object graph (anything but MODEL) is kept.
    """
    names = {info.name for info in infos}
    out = []
    for info in infos:
        role = info.role if info.role != MODEL else roles.classify(info.name)
        target = roles.slot_target(info.name) if info.slot_of is None and role != MODEL else None
        if target is not None and target[0] in names:
            out.append(replace(info, role=role, slot_of=target[0], slot_name=target[1]))
        elif role != info.role:
            out.append(replace(info, role=role))
        else:
            out.append(info)  # dataclasses.replace costs ~10 us: skip it when nothing changes
    return out


def _suggest(name: str, known: dict[str, TensorInfo]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
