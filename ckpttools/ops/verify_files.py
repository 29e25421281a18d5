"""``verify`` for the single-file formats: V1 checkpoints (block checksums), npz (zip CRC-32), safetensors.

V1 values have no checksum of their own; the table's block checksums cover them, so every tensor is
read (one at a time) and any block that fails is reported with the variable it holds. npz members
carry a zip CRC-32, checked by streaming each member. safetensors has no checksums at all: only its
structure can be checked, and the report says so.
"""

from __future__ import annotations

import zipfile

from ..errors import CkptError
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
    try:
        with zipfile.ZipFile(path) as archive:
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
        report.add(sniff_problem(path) or Problem(path, f"not a readable npz archive ({exc})",
                                                  "write it again", P.CORRUPT_FILE))
        return
    _check_structure(report, path)


def check_safetensors(report: CheckpointReport, path: str) -> None:
    report.format = "safetensors"
    report.add(Problem(path, "safetensors stores no checksums: only the header and offsets were checked", "",
                       P.NO_CHECKSUMS, severity=P.NOTE))
    _check_structure(report, path)


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
