"""Reader for ``.npz`` weight archives (as written by ``ckpttools extract``).

An npz is a zip of ``NAME.npy`` members (numpy's ``format.py``). Opening reads
only each member's header (dtype, shape); values are read on demand.
Members whose dtype needs pickle are refused, never unpickled.
"""

from __future__ import annotations

import zipfile

import numpy as np

from ..errors import CorruptFileError, NotFoundError, UnsupportedError
from ..info import TensorInfo
from ..storage.sources import open_file


class NpzReader:
    """Lists and reads the arrays of one npz file without loading them all."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._file = open_file(path)
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        try:
            self._zip = zipfile.ZipFile(self._file)
        except (zipfile.BadZipFile, OSError) as exc:
            self._file.close()
            raise CorruptFileError(f"{path}: not a readable npz archive ({exc})") from None
        except BaseException:
            self._file.close()
            raise
        self._members: dict[str, str] = {}
        self.tensors = []
        try:
            for member in self._zip.namelist():
                if member.endswith(".npy"):
                    name = member[: -len(".npy")]
                    self._members[name] = member
                    self.tensors.append(self._info(name, member))
        except Exception:
            self.close()
            raise
        self.data_files = [path]

    def _info(self, name: str, member: str) -> TensorInfo:
        with self._zip.open(member) as f:
            shape, dtype = _read_header(f, self.path, name)
        if dtype.hasobject:
            raise UnsupportedError(f"{self.path}: '{name}' holds pickled Python objects; refused (never unpickled)")
        size = int(np.prod(shape, dtype=np.int64))
        return TensorInfo(name, name, _dtype_name(dtype), tuple(shape), size * dtype.itemsize)

    def read(self, name: str) -> np.ndarray:
        member = self._members.get(name)
        if member is None:
            raise NotFoundError(f"{self.path}: no array '{name}'")
        try:
            with self._zip.open(member) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            raise CorruptFileError(f"{self.path}: cannot read '{name}' ({exc})") from None

    def close(self) -> None:
        self._zip.close()
        self._file.close()


def _read_header(f, path: str, name: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(f"{path}: '{name}' is not a valid .npy member ({exc})") from None
    return tuple(shape), dtype


def _dtype_name(dtype: np.dtype) -> str:
    """TensorFlow-style names, so an npz lists like the checkpoint it came from."""
    if dtype.kind == "S":
        return "string"
    return {"float16": "float16", "float32": "float32", "float64": "float64"}.get(dtype.name, dtype.name)
