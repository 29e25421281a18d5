"""``verify`` for the single-file formats: V1 checkpoints (block checksums), npz and ``.keras`` (zip CRC-32),
safetensors and Keras ``.h5`` (none).

V1 values have no checksum of their own; the table's block checksums cover them, so every tensor is
read (one at a time) and any block that fails is reported with the variable it holds. npz and
``.keras`` members carry a zip CRC-32, checked by streaming each member. safetensors and HDF5 weights
have no checksums at all: only their structure can be checked, and the report says so. Files may be
URLs: zip members are streamed through ``storage.sources``.
"""

from __future__ import annotations

import zipfile

from ..errors import CkptError
from ..storage import sources
from . import problems as P
from .problems import CheckpointReport, Problem
from .sniff import V2_INDEX, sniff_problem, table_kind


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
    if _check_zip(report, path, quick, "npz archive"):
        _check_structure(report, path)


def check_keras(report: CheckpointReport, path: str, fmt: str, quick: bool) -> None:
    """A ``.keras`` zip: every member's CRC-32, then its weights' structure; an HDF5 file: its structure only."""
    report.format = fmt
    if fmt == "keras_h5":
        _no_checksums(report, path, "Keras HDF5 weights store no checksums: only the structure was checked")
    elif not _check_zip(report, path, quick, ".keras archive"):
        return
    report.tensors = 0  # counted by the reader below: weights, not zip members
    _check_structure(report, path)


def check_safetensors(report: CheckpointReport, path: str) -> None:
    report.format = "safetensors"
    _no_checksums(report, path, "safetensors stores no checksums: only the header and offsets were checked")
    _check_structure(report, path)


def _no_checksums(report: CheckpointReport, path: str, what: str) -> None:
    report.add(Problem(path, what, "", P.NO_CHECKSUMS, severity=P.NOTE))


def _check_zip(report: CheckpointReport, path: str, quick: bool, kind: str) -> bool:
    """Stream every member of the zip at ``path`` through zipfile's CRC-32 check; False (reported) if unreadable."""
    try:
        with sources.open_file(path) as file, zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            if not quick:
                for member in members:
                    with archive.open(member) as f:
                        while f.read(1 << 22):
                            pass
                    report.tensors += 1
                    report.nbytes += member.file_size
                report.checksums = True
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        report.add(sniff_problem(path) or Problem(path, f"not a readable {kind} ({exc})",
                                                  "write it again", P.CORRUPT_FILE))
        return False
    return True


def _check_structure(report: CheckpointReport, path: str) -> None:
    from ..checkpoint import open_checkpoint

    try:
        with open_checkpoint(path) as ckpt:
            if not report.tensors:
                report.tensors = len(ckpt)
    except CkptError as exc:
        report.add(sniff_problem(path) or Problem(path, _detail(exc), "write it again", P.CORRUPT_FILE))


def _detail(exc: Exception) -> str:
    return str(exc).split(": ", 1)[-1]


def _file_of(exc: Exception, files: list[str]) -> str:
    head = str(exc).split(": ", 1)[0]
    return head if head in files else files[0]
