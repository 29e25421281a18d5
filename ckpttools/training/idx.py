"""Read and write IDX files, the format of MNIST, Fashion-MNIST and their kin (numpy only).

Layout (Y. LeCun, "THE MNIST DATABASE", http://yann.lecun.com/exdb/mnist/):

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions, D
    4*D bytes   each dimension's size, uint32 big-endian (the first is the number of examples)
    the data    row-major, big-endian, exactly prod(sizes) elements

Files are often gzipped (``train-images-idx3-ubyte.gz``); we recognise gzip by its
magic bytes, not the file name. A data set directory holds four files: ``train-images-idx3-ubyte``,
``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each
optionally gzipped (``load_pair`` reads and cross-checks one images/labels pair).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError, NotFoundError

_GZIP_MAGIC = b"\x1f\x8b"
_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_CODES = {np.dtype(name).newbyteorder("=").str[1:]: code for code, name in _TYPES.items()}
SPLITS = {"train": "train", "test": "t10k"}  # our split name -> the file name prefix MNIST uses


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (gzipped or raw) into a native-endian array, validating its header.

    Raises DataError naming the file when the magic number, type code or size is wrong.

    Example:
        >>> labels = read_idx("data/train-labels-idx1-ubyte.gz")   # shape (60000,), uint8
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (magic number 0x{raw[:4].hex() or 'empty'}; expected 0x0000 "
                        f"then a type code 08/09/0B/0C/0D/0E and the number of dimensions)")
    dtype, ndim = np.dtype(_TYPES[raw[2]]), raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes; {ndim} dimensions need {4 + 4 * ndim})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    start, expected = 4 + 4 * ndim, math.prod(shape) * dtype.itemsize
    have = len(raw) - start
    if have != expected:
        what = "truncated" if have < expected else f"{have - expected} unexpected bytes after the data"
        raise DataError(f"{path}: {what}: header says {_shape_text(shape)} {dtype.name} = {expected} bytes "
                        f"of data, file has {have}")
    return np.frombuffer(raw, dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzipped when the name ends in ``.gz`` (byte-for-byte reproducible)."""
    path, array = Path(path), np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("=").str[1:])
    if code is None:
        raise DataError(f"{path}: IDX cannot store dtype {array.dtype} (use uint8, int8, int16, int32, "
                        f"float32 or float64)")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    payload = header + array.astype(_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
            out.write(payload)
    else:
        path.write_bytes(payload)
    return path


def find_idx(directory: str | os.PathLike, name: str) -> Path:
    """The file for ``name`` (e.g. ``train-images-idx3-ubyte``) in ``directory``, gzipped or not.

    Also accepts the dotted spelling some mirrors use (``train-images.idx3-ubyte``).
    """
    directory = Path(directory)
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, name + ".gz", dotted, dotted + ".gz"):
        if (directory / candidate).is_file():
            return directory / candidate
    raise NotFoundError(f"{directory}: no {name} or {name}.gz (a data directory holds MNIST-format IDX files: "
                        f"train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
                        f"t10k-labels-idx1-ubyte, optionally gzipped)")


def load_pair(directory: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read and cross-check one split's images (N, H, W[, C]) and integer labels (N,).

    ``split`` is ``"train"`` or ``"test"`` (files ``train-*`` / ``t10k-*``).
    """
    prefix = SPLITS[split]
    images_path = find_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim not in (3, 4):
        raise DataError(f"{images_path}: images must have 3 dimensions (count, height, width) or 4 "
                        f"(with channels); this file has shape {_shape_text(images.shape)}")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels must be one integer per example; this file holds "
                        f"{_shape_text(labels.shape)} {labels.dtype}")
    if len(images) != len(labels):
        raise DataError(f"{split} split: {images_path.name} has {len(images)} images but {labels_path.name} "
                        f"has {len(labels)} labels (in {Path(directory)})")
    if labels.size and labels.min() < 0:
        raise DataError(f"{labels_path}: negative label {labels.min()}")
    return images, labels.astype(np.int64)


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: damaged gzip data ({exc}); re-download the file") from None


def _shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) or "scalar"
