"""Turn whatever path a user has into one concrete checkpoint.

Accepted: a checkpoint prefix (``model.ckpt-20``); any of its files
(``.index``, ``.data-00000-of-00001``, ``.meta``); a directory (its
``checkpoint`` state file, else the newest checkpoint by global step); a
SavedModel directory; a V1 checkpoint file or a sharded V1 pattern; an
``.npz`` or ``.safetensors`` weights file (as ``ckpttools extract`` writes); a Keras file
(``.keras`` zip, ``.weights.h5``, legacy ``.h5``, or any file starting with the HDF5 signature).
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from .errors import NotACheckpointError, NotFoundError
from .formats.sstable import file_has_table_magic

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_V1_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
_STEP = re.compile(r"-(\d+)$")
# [ \t]*, not \s*: \s also eats newlines, which made a file of blank lines quadratic to search.
_STATE_LINE = re.compile(r'^[ \t]*model_checkpoint_path[ \t]*:[ \t]*"((?:[^"\\\n]|\\.)*)"', re.M)
_NOT_V1 = re.compile(  # names in a run directory that are never V1 checkpoint files
    r"(\.(meta|index|pb|pbtxt|json|txt|md|npz|npy|h5|keras|safetensors|py)$)"
    r"|\.data-\d{5}-of-\d{5}$|^checkpoint$|^events\."
)
_WEIGHT_FILES = (
    (".npz", "npz"), (".safetensors", "safetensors"), (".keras", "keras"), (".h5", "keras_h5"),
    (".hdf5", "keras_h5"), (".keras.zip", "keras"),
)  # fmt: skip
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Resolved:
    """A concrete checkpoint: its format, prefix and files, and how we got there."""

    format: str  # "v2", "v1", "npz", "safetensors", "keras" (.keras zip) or "keras_h5"
    prefix: str
    files: tuple[str, ...] = ()  # V1 files (V2 files follow from the prefix)
    note: str | None = None
    saved_model: bool = False


def resolve(path: str) -> Resolved:
    """Resolve ``path`` to a checkpoint, or raise NotFoundError / NotACheckpointError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return _resolve_dir(path)
    if os.path.isfile(path):
        return _resolve_file(path)
    return _resolve_prefix(path) or _missing(path)


def _missing(path: str) -> Resolved:
    raise NotFoundError(f"{path}: no such file, directory or checkpoint prefix")


def _resolve_prefix(prefix: str) -> Resolved | None:
    """A path that is not a file itself: a V2 prefix or a sharded V1 pattern."""
    if os.path.isfile(prefix + ".index"):
        return Resolved("v2", prefix)
    pattern = prefix if glob.has_magic(prefix) else glob.escape(prefix) + "-?????-of-?????"
    shards = sorted(p for p in glob.glob(pattern) if _V1_SHARD.search(p))
    if shards:
        return Resolved("v1", prefix, tuple(shards))
    return None


def _resolve_file(path: str) -> Resolved:
    for suffix, kind in _WEIGHT_FILES:
        if path.endswith(suffix):
            return Resolved(kind, path, (path,))
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            prefix = path[: -len(suffix)]
            found = _resolve_prefix(prefix) or _v1_file(prefix)
            if found is None:
                raise NotFoundError(f"{path}: no checkpoint beside it (looked for {prefix}.index)")
            return found
    if _DATA_SUFFIX.search(path):
        prefix = _DATA_SUFFIX.sub("", path)
        if not os.path.isfile(prefix + ".index"):
            raise NotFoundError(f"{path}: its index {prefix}.index is missing; nothing can be read without it")
        return Resolved("v2", prefix)
    if os.path.isfile(path + ".index"):
        return Resolved("v2", path)
    found = _v1_file(path)
    if found is None and _has_hdf5_signature(path):
        return Resolved("keras_h5", path, (path,))
    if found is None:
        hint = " (a graph: use 'ckpttools graph')" if path.endswith((".pb", ".pbtxt")) else ""
        raise NotACheckpointError(f"{path}: not a TensorFlow checkpoint{hint}")
    return found


def _has_hdf5_signature(path: str) -> bool:
    """HDF5 files start with this signature (at offset 0 unless a user block precedes it)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def _v1_file(path: str) -> Resolved | None:
    if os.path.isfile(path) and file_has_table_magic(path):
        return Resolved("v1", path, (path,))
    return None


def _resolve_dir(directory: str) -> Resolved:
    for name in ("saved_model.pb", "saved_model.pbtxt"):
        if os.path.isfile(os.path.join(directory, name)):
            prefix = os.path.join(directory, "variables", "variables")
            if not os.path.isfile(prefix + ".index"):
                raise NotFoundError(f"{directory}: SavedModel has no variables ({prefix}.index is missing)")
            return Resolved("v2", prefix, note=f"SavedModel variables: {prefix}", saved_model=True)
    if os.path.isfile(os.path.join(directory, "variables.index")):
        return Resolved("v2", os.path.join(directory, "variables"))
    from_state, state_note = _from_state_file(directory)
    if from_state is not None:
        return from_state
    found = _newest(directory)
    if found is None:
        raise NotFoundError(f"{directory}: no checkpoint in this directory (no 'checkpoint' file, no *.index)")
    reason = state_note or "no 'checkpoint' state file"
    return Resolved(found.format, found.prefix, found.files, f"{reason}; using the newest by step: {found.prefix}")


def _from_state_file(directory: str) -> tuple[Resolved | None, str | None]:
    """Follow the ``checkpoint`` state file, tolerating paths from another machine."""
    state = os.path.join(directory, "checkpoint")
    try:
        with open(state, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None, None
    match = _STATE_LINE.search(text)
    if not match:
        return None, f"{state} names no model_checkpoint_path"
    try:
        named = match.group(1).encode().decode("unicode_escape")
    except UnicodeDecodeError:  # a broken escape (\x without digits): take the text as written
        named = match.group(1)
    candidates = [named if os.path.isabs(named) else os.path.join(directory, named)]
    basename = os.path.join(directory, os.path.basename(named.replace("\\", "/")))
    if basename not in candidates:
        candidates.append(basename)
    for candidate in candidates:
        found = _resolve_prefix(candidate) or _v1_file(candidate)
        if found is not None:
            moved = "" if candidate == candidates[0] else f" (it names {named}, not found; using the same name here)"
            note = f"using {found.prefix} from {state}{moved}"
            return Resolved(found.format, found.prefix, found.files, note), None
    return None, f"{state} names {named}, which does not exist"


def _newest(directory: str) -> Resolved | None:
    candidates: list[Resolved] = []
    for entry in os.scandir(directory):
        if entry.name.endswith(".index") and entry.is_file():
            candidates.append(Resolved("v2", entry.path[: -len(".index")]))
    if not candidates:  # V1: single files, or shards grouped into one pattern
        shards: dict[str, list[str]] = {}
        for entry in os.scandir(directory):
            if entry.is_file() and not _NOT_V1.search(entry.name) and file_has_table_magic(entry.path):
                if _V1_SHARD.search(entry.path):
                    shards.setdefault(_V1_SHARD.sub("", entry.path), []).append(entry.path)
                else:
                    candidates.append(Resolved("v1", entry.path, (entry.path,)))
        candidates += [Resolved("v1", prefix, tuple(sorted(files))) for prefix, files in shards.items()]
    if not candidates:
        return None
    return max(candidates, key=_step_then_mtime)


def _step_then_mtime(found: Resolved) -> tuple[int, float]:
    match = _STEP.search(found.prefix)
    first_file = found.files[0] if found.files else found.prefix + ".index"
    return (int(match.group(1)) if match else -1, os.path.getmtime(first_file))
