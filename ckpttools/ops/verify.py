"""``verify``: is this checkpoint intact? Every problem found, each with its file, variable, cause and fix.

Works without TensorFlow on a checkpoint prefix or any of its files, a directory (the checkpoint its
``checkpoint`` state file names; every one it lists with ``all_checkpoints``), a SavedModel, a V1 file,
npz and safetensors, locally or at a URL (every file question goes through ``storage.sources``). A path
that is not a checkpoint at all (a Git LFS pointer, a web page) is reported as a problem, not raised, so
the user learns why.

Example:
    >>> report = verify("runs/cnn/model.ckpt-2000")
    >>> report.intact, [p.what for p in report.all_problems()]
    (True, [])
"""

from __future__ import annotations

import os
import re

from ..errors import NotACheckpointError, NotFoundError
from ..resolve import Resolved, resolve
from ..storage import sources
from . import problems as P
from .problems import CheckpointReport, Problem, Progress, VerifyReport
from .sniff import sniff_problem
from .verify_files import check_keras, check_npz, check_safetensors, check_v1
from .verify_v2 import check_v2

_STATE = re.compile(r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"((?:[^"\\]|\\.)*)"', re.M)
_DATA = re.compile(r"\.data-\d{5}-of-\d{5}$")


def verify(path: str | os.PathLike, quick: bool = False, all_checkpoints: bool = False, workers: int | None = None,
           progress: Progress | None = None) -> VerifyReport:
    """Check ``path``; ``quick`` checks structure and sizes only (no value checksums).

    Raises NotFoundError only when nothing exists at ``path``; everything else is a problem in the report.
    """
    path = os.fspath(path)
    report = VerifyReport(path, quick=quick)
    targets: list[Resolved] = []
    if sources.isdir(path) and not _is_bundle_dir(path):
        targets = _directory(report, path, all_checkpoints)
    else:
        _wrong_file_note(report, path)
        try:
            targets = [resolve(path)]
        except NotACheckpointError as exc:
            report.checkpoints.append(_not_a_checkpoint(path, exc))
    for resolved in targets:
        report.checkpoints.append(check_resolved(resolved, quick, workers, progress))
    return report


def check_resolved(resolved: Resolved, quick: bool = False, workers: int | None = None,
                   progress: Progress | None = None) -> CheckpointReport:
    """Verify one resolved checkpoint."""
    report = CheckpointReport(resolved.prefix, resolved.prefix)
    if resolved.format == "v2":
        check_v2(report, resolved.prefix, quick, workers, progress)
        if resolved.saved_model and report.intact:
            from .verify_saved_model import check_saved_model  # protobuf: only for SavedModels

            report.format = "saved_model"
            check_saved_model(report, os.path.dirname(os.path.dirname(resolved.prefix)), resolved.prefix)
    elif resolved.format == "v1":
        check_v1(report, list(resolved.files), quick)
    elif resolved.format == "npz":
        check_npz(report, resolved.prefix, quick)
    elif resolved.format.startswith("keras"):
        check_keras(report, resolved.prefix, resolved.format, quick)
    else:
        check_safetensors(report, resolved.prefix)
    return report


def _is_bundle_dir(path: str) -> bool:
    """A SavedModel or a bare ``variables/`` directory: one checkpoint, resolved like any path."""
    return any(sources.isfile(os.path.join(path, name)) for name in ("saved_model.pb", "saved_model.pbtxt",
                                                                      "variables.index"))


def _wrong_file_note(report: VerifyReport, path: str) -> None:
    """TensorFlow wants the prefix; ckpttools accepts a file of the checkpoint but says which prefix it used."""
    for pattern, kind in ((_DATA, "a data shard"), (re.compile(r"\.index$"), "the index"),
                          (re.compile(r"\.meta$"), "the graph (.meta)")):
        if pattern.search(path) and sources.isfile(path):
            prefix = pattern.sub("", path)
            report.problems.append(Problem(
                path, f"is {kind} of a checkpoint, not its prefix (TensorFlow fails on it with "
                "'not an sstable' or 'Data loss')", f"give TensorFlow the prefix: {prefix}", P.WRONG_FILE,
                severity=P.WARNING))
            return


def _not_a_checkpoint(path: str, exc: NotACheckpointError) -> CheckpointReport:
    report = CheckpointReport(path)
    report.add(sniff_problem(path) or Problem(path, str(exc).split(": ", 1)[-1],
                                              "give the checkpoint prefix (PREFIX for PREFIX.index)",
                                              P.CORRUPT_FILE))
    return report


def _directory(report: VerifyReport, directory: str, all_checkpoints: bool) -> list[Resolved]:
    """The checkpoints of a run directory, and the state file's entries that do not exist."""
    state = os.path.join(directory, "checkpoint")
    entries = _state_entries(state)
    found: list[Resolved] = []
    for field, named in entries:
        latest = field == "model_checkpoint_path"
        resolved, moved = _locate(directory, named)
        if resolved is None:
            severity = P.ERROR if latest or all_checkpoints else P.WARNING
            what = "the latest checkpoint" if latest else "a checkpoint"
            report.problems.append(Problem(state, f"names {what} {named}, which does not exist",
                                           "remove the line, or copy that checkpoint", P.STATE_FILE,
                                           severity=severity))
            continue
        if moved:
            report.problems.append(Problem(state, f"names {named}, a path from another machine; TensorFlow's "
                                           "latest_checkpoint will not find it", "write relative paths: "
                                           f'{field}: "{sources.file_name(named)}"', P.STATE_FILE,
                                           severity=P.WARNING))
        if (latest or all_checkpoints) and resolved.prefix not in {r.prefix for r in found}:
            found.append(resolved)
    if all_checkpoints and not entries:
        found = [Resolved("v2", path[: -len(".index")]) for path in sorted(sources.list_files(directory))
                 if path.endswith(".index")]
    if not found and not any(p.severity == P.ERROR for p in report.problems):
        found = [resolve(directory)]  # (its NotFoundError says why there is none)
    return found


def _state_entries(state: str) -> list[tuple[str, str]]:
    try:
        text = sources.read_bytes(state).decode("utf-8", errors="replace")
    except (OSError, NotFoundError):
        return []
    entries: dict[str, str] = {}  # named path -> field; the latest keeps its field when listed twice
    for match in _STATE.finditer(text):
        entries.setdefault(match.group(2).encode().decode("unicode_escape"), match.group(1))
    return [(field, named) for named, field in entries.items()]


def _locate(directory: str, named: str) -> tuple[Resolved | None, bool]:
    """The checkpoint a state-file entry names, trying the same file name here when the path is foreign."""
    first = named if os.path.isabs(named) or sources.is_url(named) else os.path.join(directory, named)
    here = os.path.join(directory, sources.file_name(named))
    if sources.is_url(directory) and not sources.is_url(first):
        first = None  # a local path written by the training machine means nothing at a URL
    for candidate in dict.fromkeys([first, here]):
        if candidate is None:
            continue
        try:
            return resolve(candidate), candidate != first
        except (NotFoundError, NotACheckpointError):
            continue
    return None, False
