"""Reader for ``.npz`` weight archives (as written by ``ckpttools extract``).

An npz is a zip of ``NAME.npy`` members (numpy's ``format.py``). Opening reads
only each member's header (dtype, shape); values are read on demand.
Members whose dtype needs pickle are refused, never unpickled.
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib

import numpy as np

from ..errors import CorruptFileError, NotFoundError, UnsupportedError
from ..info import TensorInfo
from ..storage import sources
from ..storage.sources import open_file

# What zipfile, zlib and numpy's header parser raise on damaged archives: all mean "corrupt".
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error, OverflowError,
            UnicodeDecodeError, SyntaxError, tokenize.TokenError, RecursionError, KeyError, IndexError)
_DEFLATE_MAX_RATIO = 1032  # deflate cannot expand data more than this
# ... plus unknown methods, encryption and "zip file version" (NotImplementedError, RuntimeError).
DAMAGED_ZIP = (*_DAMAGED, NotImplementedError, RuntimeError)


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
        except DAMAGED_ZIP as exc:
            self._file.close()
            raise CorruptFileError(f"{path}: not a readable npz archive ({_short(exc)})") from None
        except BaseException:
            self._file.close()
            raise
        self._size = sources.getsize(path)
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
        info = self._zip.getinfo(member)
        if info.flag_bits & 1:
            raise UnsupportedError(f"{self.path}: '{name}' is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise UnsupportedError(f"{self.path}: '{name}' uses zip compression method {info.compress_type}; "
                                   "npz files use stored or deflate")
        expand = 1 if info.compress_type == zipfile.ZIP_STORED else _DEFLATE_MAX_RATIO
        if info.header_offset + info.compress_size > self._size or info.file_size > expand * info.compress_size + 64:
            raise CorruptFileError(f"{self.path}: '{name}' claims sizes the archive cannot hold")
        try:
            with self._zip.open(member) as f:
                shape, dtype = _read_header(f, self.path, name)
                header_size = f.tell()
        except DAMAGED_ZIP as exc:
            raise CorruptFileError(f"{self.path}: cannot read the header of '{name}' ({_short(exc)})") from None
        if dtype.hasobject:
            raise UnsupportedError(f"{self.path}: '{name}' holds pickled Python objects; refused (never unpickled)")
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - header_size:
            raise CorruptFileError(f"{self.path}: '{name}' is {dtype}{list(shape)} ({nbytes} bytes) but its member "
                                   f"holds {info.file_size - header_size} bytes of data")
        return TensorInfo(name, name, _dtype_name(dtype), tuple(shape), nbytes)

    def read(self, name: str) -> np.ndarray:
        member = self._members.get(name)
        if member is None:
            raise NotFoundError(f"{self.path}: no array '{name}'")
        try:
            with self._zip.open(member) as f:
                return np.lib.format.read_array(f, allow_pickle=False)
        except DAMAGED_ZIP as exc:
            raise CorruptFileError(f"{self.path}: cannot read '{name}' ({_short(exc)})") from None

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
    except (ValueError, SyntaxError, tokenize.TokenError, RecursionError) as exc:
        raise CorruptFileError(f"{path}: '{name}' is not a valid .npy member ({_short(exc)})") from None
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise CorruptFileError(f"{path}: '{name}' has shape {shape}")
    return tuple(shape), dtype


def _short(exc: BaseException) -> str:
    """An exception as one short line (zipfile and numpy messages can quote whole headers)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _dtype_name(dtype: np.dtype) -> str:
    """TensorFlow-style names, so an npz lists like the checkpoint it came from."""
    if dtype.kind == "S":
        return "string"
    return {"float16": "float16", "float32": "float32", "float64": "float64"}.get(dtype.name, dtype.name)
