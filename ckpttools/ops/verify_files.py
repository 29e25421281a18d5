"""``verify`` for the single-file formats: V1 checkpoints (block checksums), npz and .keras (zip CRC-32),
safetensors and Keras HDF5.

V1 values have no checksum of their own; the table's block checksums cover them, so every tensor is
read (one at a time) and any block that fails is reported with the variable it holds. npz and .keras
members carry a zip CRC-32, checked by streaming each member. safetensors and HDF5 have no checksums
(HDF5's optional Fletcher-32 filter aside, which reading checks): only their structure can be checked,
plus, for HDF5, that every dataset reads, and the report says so. Files may be URLs: zip members are
streamed through ``storage.sources``.
"""

from __future__ import annotations

import zipfile

from ..errors import CkptError, MissingDataError
from ..storage import sources
from . import problems as P
from .problems import CheckpointReport, Problem
from .sniff import V2_INDEX, sniff_problem, table_kind

_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError)


def check_v1(report: CheckpointReport, files: list[str], quick: bool) -> None:
    from ..formats.v1 import V1Reader

    report.format = "v1"
    misnamed = [path for path in files if table_kind(path) == V2_INDEX]
    if misnamed:
        report.add(_v2_index(misnamed[0]))
        return
    try:
        reader = V1Reader(files)
    except CkptError as exc:
        report.add(_unreadable(files, exc))
        return
    try:
        report.checksums = not quick
        if quick:
            return
        for info in reader.tensors:
            try:
                reader.read(info.key)
            except MissingDataError as exc:  # one shard of several, opened alone: the rest is in the others
                report.add(Problem(_file_of(exc, files), _detail(exc), "verify every shard together",
                                   P.MISSING_SHARD, info.key))
                continue
            except CkptError as exc:
                report.add(Problem(_file_of(exc, files), _detail(exc), "restore this file from a good copy",
                                   P.CHECKSUM if "checksum" in str(exc) else P.CORRUPT_FILE, info.key))
                continue
            report.tensors += 1
            report.nbytes += info.nbytes
    finally:
        reader.close()


def _unreadable(files: list[str], exc: CkptError) -> Problem:
    for path in files:
        found = sniff_problem(path)
        if found is not None:
            return found
    return Problem(_file_of(exc, files), _detail(exc), "restore this file from a good copy", P.CORRUPT_FILE)


def _v2_index(path: str) -> Problem:
    return Problem(path, "a V2 checkpoint index read as a V1 checkpoint file (TensorFlow finds no variables in it)",
                   f"name it {path}.index, beside its {path}.data-* files (the prefix is {path})", P.V2_AS_V1)


def check_npz(report: CheckpointReport, path: str, quick: bool) -> None:
    """The zip structure, each member's CRC-32 (streamed by zipfile), and that every member is an array."""
    report.format = "npz"
    if _check_zip_members(report, path, quick, "npz", count=True):
        _check_structure(report, path)


def check_keras(report: CheckpointReport, path: str, kind: str, quick: bool) -> None:
    """A ``.keras`` zip: every member's CRC-32; a Keras HDF5 file: no checksums. Then the structure
    (config against weights), and unless ``quick`` every weight read, so a damaged dataset is found.

    Reading a weight checks the CRC-32 of ``model.weights.h5`` (the reader does, once), so when weights were
    read the member scan leaves that member out instead of reading the largest member twice. The archive is
    opened once, its central directory read once, for both the check that it opens and the member scan.
    """
    report.format = kind
    if kind == "keras_h5":
        _check_structure(report, path, read_values=not quick)
        _no_checksums(report, path, "HDF5 stores no checksums: the structure was checked and every weight read")
        return
    from ..formats.keras_zip import WEIGHTS  # (imports h5py: only for .keras files)

    try:
        with sources.open_file(path) as file, zipfile.ZipFile(file) as archive:  # the archive opens at all
            weights_tried = _check_structure(report, path, read_values=not quick)
            if not quick:
                _scan_members(report, archive, count=False, checked=(WEIGHTS,) if weights_tried else ())
    except _ZIP_ERRORS as exc:
        report.add(_unreadable_archive(path, ".keras", exc))


def _check_zip_members(report: CheckpointReport, path: str, quick: bool, what: str, count: bool) -> bool:
    """Stream every member through zipfile (which checks its CRC-32); False when the archive is damaged."""
    try:
        with sources.open_file(path) as file, zipfile.ZipFile(file) as archive:
            if not quick:
                _scan_members(report, archive, count)
    except _ZIP_ERRORS as exc:
        report.add(_unreadable_archive(path, what, exc))
        return False
    return True


def _scan_members(report: CheckpointReport, archive: zipfile.ZipFile, count: bool,
                  checked: tuple[str, ...] = ()) -> None:
    """Read every member (zipfile checks its CRC-32). Members in ``checked`` were verified already: counted,
    not read again."""
    for member in archive.infolist():
        if member.filename not in checked:
            with archive.open(member) as f:
                while f.read(1 << 22):
                    pass
        if count:
            report.tensors += 1
        report.nbytes += member.file_size
    report.checksums = True


def _unreadable_archive(path: str, what: str, exc: Exception) -> Problem:
    return sniff_problem(path) or Problem(path, f"not a readable {what} archive ({exc})", "write it again",
                                          P.CORRUPT_FILE)


def check_safetensors(report: CheckpointReport, path: str) -> None:
    report.format = "safetensors"
    _check_structure(report, path)
    _no_checksums(report, path, "safetensors stores no checksums: only the header and offsets were checked")


def _no_checksums(report: CheckpointReport, path: str, what: str) -> None:
    """Say first that the format has no checksums, when the file is one (not a web page under its name)."""
    if report.intact:
        report.problems.insert(0, Problem(path, what, "", P.NO_CHECKSUMS, severity=P.NOTE))


def _check_structure(report: CheckpointReport, path: str, read_values: bool = False) -> int:
    """Open the file as a checkpoint (and read every value if ``read_values``); how many values it tried to read
    (each try checks what the reader checks, whether it read or reported a problem)."""
    from ..checkpoint import open_checkpoint

    read = 0
    seen: set[str] = set()
    try:
        with open_checkpoint(path) as ckpt:
            if not report.tensors:
                report.tensors = len(ckpt)
            for info in ckpt if read_values else ():
                read += 1
                try:
                    ckpt.get(info.name)
                except CkptError as exc:
                    detail = _detail(exc)
                    if detail in seen:  # one damaged member fails every weight in it: said once
                        continue
                    seen.add(detail)
                    report.add(Problem(path, detail, "restore this file from a good copy",
                                       P.CHECKSUM if "CRC" in str(exc) else P.CORRUPT_FILE, info.name))
    except CkptError as exc:
        report.add(sniff_problem(path) or Problem(path, _detail(exc), "write it again", P.CORRUPT_FILE))
    return read


def _detail(exc: Exception) -> str:
    return str(exc).split(": ", 1)[-1]


def _file_of(exc: Exception, files: list[str]) -> str:
    head = str(exc).split(": ", 1)[0]
    return head if head in files else files[0]
