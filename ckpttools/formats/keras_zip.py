"""Reader for Keras 3 ``.keras`` archives: a zip of ``config.json``, ``metadata.json`` and ``model.weights.h5``.

Keras stores the members uncompressed (``ZIP_STORED``), so the weights are read in place: h5py is
given a file object over the member's byte range and reads only the metadata and the tensors asked
for, locally or at a URL (through the byte-source layer). A compressed member (an archive rewritten
by another zip tool) is streamed to a temporary file first, removed on close. ``config.json`` and
``metadata.json`` are parsed as JSON and nothing else: no class is imported, no Lambda or pickled
object is decoded or run.

A member read in place bypasses zipfile's CRC-32 check, so before the first value is returned the
member's bytes are checked against the CRC-32 the archive records (listing needs no values and
skips it): a damaged archive never yields a value silently.
"""

from __future__ import annotations

import shutil
import struct
import tempfile
import zipfile
import zlib
from typing import Any

from ..errors import ChecksumError, CorruptFileError, NotFoundError, UnsupportedError
from ..storage import sources
from ..storage.filerange import SourceFile
from .keras_config import MAX_CONFIG_BYTES, ModelSpec, check_weights, parse_json, parse_model
from .keras_h5 import KerasH5Reader
from .npz import DAMAGED_ZIP

WEIGHTS = "model.weights.h5"
NPZ_WEIGHTS = "model.weights.npz"  # Keras 3 weights_format="npz": each layer's weights pickled as a dict
CONFIG = "config.json"
METADATA = "metadata.json"
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_LOCAL_MAGIC = b"PK\x03\x04"


class KerasZipReader:
    """Lists and reads the weights of a ``.keras`` file; ``model`` and ``metadata`` hold its JSON members."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.data_files = [path]
        self._closers: list[Any] = []
        self._unverified: tuple[int, int, int] | None = None  # (start, size, CRC-32) of a member read in place
        self._damaged: str | None = None  # why that member failed its check (every later read fails alike)
        self._options = sources.current_options()
        try:
            file = sources.open_file(path, self._options)
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        try:
            archive = zipfile.ZipFile(file)
        except DAMAGED_ZIP as exc:
            file.close()
            raise CorruptFileError(f"{path}: not a readable .keras archive (damaged or truncated zip: {exc})") from None
        except BaseException:
            file.close()
            raise
        try:
            self.metadata = _json_member(archive, METADATA, path) or {}
            document = _json_member(archive, CONFIG, path)
            self.model: ModelSpec | None = parse_model(document, f"{path}:{CONFIG}") if document else None
            version = self.metadata.get("keras_version") if isinstance(self.metadata, dict) else None
            self._h5 = KerasH5Reader(self._weights_source(archive), f"{path}:{WEIGHTS}", self.model,
                                     version if isinstance(version, str) else None)
            self._closers.insert(0, self._h5)
            if self.model is not None:
                check_weights(self.model, self._h5.tensors, path, self._h5.keras2)
        except Exception:
            self.close()
            raise
        finally:
            archive.close()
            file.close()
        self.tensors = self._h5.tensors
        self.layout = self._h5.layout

    def _weights_source(self, archive: zipfile.ZipFile) -> Any:
        try:
            info = archive.getinfo(WEIGHTS)
        except KeyError:
            names = archive.namelist()
            if any(name.startswith("model.weights") and name.endswith(".json") for name in names):
                raise UnsupportedError(f"{self.path}: sharded weights (model.weights.json) are not supported yet") \
                    from None
            if NPZ_WEIGHTS in names:
                twice = f" (the archive names {NPZ_WEIGHTS} twice: a sign of tampering)" \
                    if names.count(NPZ_WEIGHTS) > 1 else ""
                raise UnsupportedError(f"{self.path}: the weights are {NPZ_WEIGHTS} (Keras' weights_format='npz', "
                                       f"pickled Python objects), which ckpttools never unpickles{twice}; "
                                       "re-save with the default .h5 weights") from None
            raise CorruptFileError(f"{self.path}: no {WEIGHTS} in the archive "
                                   f"(it holds: {', '.join(names) or 'nothing'})") from None
        if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
            source = sources.open_source(self.path, self._options)
            try:
                start = _data_offset(source, info)
            except BaseException:
                source.close()
                raise
            source = SourceFile(source, start, info.file_size)
            self._unverified = (start, info.file_size, info.CRC)
        else:
            source = self._extract(archive, info)
        self._closers.append(source)
        return source

    def _extract(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
        """Stream a compressed member to an anonymous temporary file (gone when closed)."""
        temp = tempfile.TemporaryFile(suffix=".h5")  # noqa: SIM115 - closed by close()
        try:
            with archive.open(info) as member:
                shutil.copyfileobj(member, temp, 1 << 20)
        except DAMAGED_ZIP as exc:
            temp.close()
            raise CorruptFileError(f"{self.path}: {WEIGHTS} cannot be decompressed ({exc})") from None
        temp.seek(0)
        return temp

    def read(self, key: str):
        if self._damaged is not None:
            raise ChecksumError(self._damaged)
        if self._unverified is not None:
            self._verify_member(*self._unverified)
        return self._h5.read(key)

    def _verify_member(self, start: int, size: int, expected: int) -> None:
        """Check the in-place member against its recorded CRC-32 (once, streamed in 4 MiB reads)."""
        crc, left = 0, size
        with sources.open_source(self.path, self._options) as f:
            for chunk in f.iter_chunks(start, size, 4 << 20):
                crc = zlib.crc32(chunk, crc)
                left -= len(chunk)
        if left:
            raise CorruptFileError(f"{self.path}: truncated inside {WEIGHTS}")
        self._unverified = None
        if crc != expected:
            self._damaged = (f"{self.path}: {WEIGHTS} does not match the CRC-32 the archive records "
                             "(the file is damaged)")
            raise ChecksumError(self._damaged)

    def close(self) -> None:
        for closer in self._closers:
            closer.close()
        self._closers = []


def _data_offset(source: sources.ByteSource, info: zipfile.ZipInfo) -> int:
    """Where a stored member's bytes begin: after its local header (whose extra field may differ from the central)."""
    path, size = source.name, source.size
    header = source.read_at(info.header_offset, _LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or not header.startswith(_LOCAL_MAGIC):
        raise CorruptFileError(f"{path}: the zip entry of {WEIGHTS} is damaged (no local header)")
    _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    if start + info.file_size > size:
        raise CorruptFileError(f"{path}: truncated: {WEIGHTS} needs {start + info.file_size:,} bytes, "
                               f"the file has {size:,}")
    return start


def _json_member(archive: zipfile.ZipFile, name: str, path: str) -> Any:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_CONFIG_BYTES:
        raise CorruptFileError(f"{path}: {name} is {info.file_size:,} bytes, too large for a config")
    try:
        raw = archive.read(info)
    except DAMAGED_ZIP as exc:
        raise CorruptFileError(f"{path}: {name} cannot be read ({exc})") from None
    return parse_json(raw, f"{path}:{name}")
