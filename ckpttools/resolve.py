"""Turn whatever path a user has into one concrete checkpoint.

Accepted: a checkpoint prefix (``model.ckpt-20``); any of its files
(``.index``, ``.data-00000-of-00001``, ``.meta``); a directory (its
``checkpoint`` state file, else the newest checkpoint by global step); a
SavedModel directory, its ``saved_model.pb`` or a TF1 Hub module's
``tfhub_module.pb``; a folder of SavedModels (the newest numbered export); a
V1 checkpoint file or a sharded V1 pattern; an ``.npz`` or ``.safetensors``
weights file (as ``ckpttools extract`` writes); a Keras file (``.keras`` zip,
``.weights.h5``, legacy ``.h5``, or any file starting with the HDF5 signature).
"""

from __future__ import annotations

import glob
import os
import re
from typing import NamedTuple

from .errors import CkptError, NotACheckpointError, NotFoundError
from .formats.sstable import file_has_table_magic
from .formats.textproto import unescape_text_proto
from .formats.v1_shards import shard_of
from .storage import sources
from .storage.sources import isfile

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_V1_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt", "tfhub_module.pb")
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


class Resolved(NamedTuple):
    """A concrete checkpoint: its format, prefix and files, and how we got there."""

    format: str  # "v2", "v1", "npz", "safetensors", "keras" (.keras zip) or "keras_h5"
    prefix: str
    files: tuple[str, ...] = ()  # V1 files (V2 files follow from the prefix)
    note: str | None = None
    saved_model: bool = False


def resolve(path: str) -> Resolved:
    """Resolve ``path`` to a checkpoint, or raise NotFoundError / NotACheckpointError."""
    path = os.fspath(path)
    if sources.is_url(path):
        found = _resolve_url(path)
        return found._replace(note=sources.redact(found.note)) if found.note else found  # notes get printed
    path = sources.local_path(path)  # file:// URLs are local paths
    if os.path.isdir(path):
        return _resolve_dir(path)
    if os.path.isfile(path):
        return _resolve_file(path)
    return _resolve_prefix(path) or _missing(path)


def _missing(path: str) -> Resolved:
    raise NotFoundError(f"{path}: no such file, directory or checkpoint prefix")


def _resolve_url(url: str) -> Resolved:
    """A URL: ask the cheapest question first (``PREFIX.index`` is one request), then file, then directory."""
    url = url.rstrip("/") if not url.endswith("://") else url
    name = url.rpartition("/")[2]
    for suffix, kind in _WEIGHT_FILES:
        if name.endswith(suffix):
            return _weights_file(kind, url)
    if name.endswith(".index") or _DATA_SUFFIX.search(name):  # no request: reading the index will say
        return Resolved("v2", _DATA_SUFFIX.sub("", url.removesuffix(".index")))
    if name.endswith(".meta"):
        return _resolve_file(url)
    if isfile(url + ".index"):
        return Resolved("v2", url)
    if sources.isdir(url):
        return _resolve_dir(url)
    if isfile(url):
        return _resolve_file(url)
    return _resolve_prefix(url) or _missing(url)


def _resolve_prefix(prefix: str) -> Resolved | None:
    """A path that is not a file itself: a V2 prefix or a sharded V1 pattern."""
    if isfile(prefix + ".index"):
        return Resolved("v2", prefix)
    pattern = prefix if glob.has_magic(prefix) else glob.escape(prefix) + "-?????-of-?????"
    shards = sorted(p for p in sources.glob(pattern) if _V1_SHARD.search(p))
    if shards:
        return Resolved("v1", prefix, tuple(shards))
    return None


def _resolve_file(path: str) -> Resolved:
    for suffix, kind in _WEIGHT_FILES:
        if path.endswith(suffix):
            return _weights_file(kind, path)
    for suffix in (".index", ".meta"):
        if path.endswith(suffix):
            prefix = path[: -len(suffix)]
            found = _resolve_prefix(prefix) or _v1_file(prefix)
            if found is None:
                raise NotFoundError(f"{path}: no checkpoint beside it (looked for {prefix}.index)")
            return found
    if _DATA_SUFFIX.search(path):
        prefix = _DATA_SUFFIX.sub("", path)
        if not isfile(prefix + ".index"):
            raise NotFoundError(f"{path}: its index {prefix}.index is missing; nothing can be read without it")
        return Resolved("v2", prefix)
    if isfile(path + ".index"):
        return Resolved("v2", path)
    if os.path.basename(path) in SAVED_MODEL_FILES:  # saved_model.pb, or a TF1 Hub module's tfhub_module.pb
        return _saved_model(os.path.dirname(path) or ".")
    found = _v1_file(path)
    if found is None and _has_hdf5_signature(path):
        return Resolved("keras_h5", path, (path,))
    if found is None:
        raise NotACheckpointError(f"{path}: not a TensorFlow checkpoint{_not_a_checkpoint_hint(path)}")
    return found


def _weights_file(kind: str, path: str) -> Resolved:
    """A weights file by its suffix; but Keras 2 also wrote HDF5 files under a ``.keras`` name."""
    if kind == "keras" and _has_hdf5_signature(path):
        return Resolved("keras_h5", path, (path,), note=f"{path} is an HDF5 Keras file (despite its .keras name)")
    return Resolved(kind, path, (path,))


def _not_a_checkpoint_hint(path: str) -> str:
    """Why: a failed download's leftovers (web page, LFS pointer, empty file) or a graph file."""
    from .formats.downloads import file_mistake  # only on this error path
    from .ops.sniff import saved_model_sidecar

    sidecar = saved_model_sidecar(path)
    if sidecar is not None:
        return f": it is {sidecar}"
    mistake = file_mistake(path)
    if mistake is not None:
        return f": it is {mistake.description.replace(', not checkpoint data', '')}"
    return " (a graph: use 'ckpttools graph')" if path.endswith((".pb", ".pbtxt")) else ""


def _has_hdf5_signature(path: str) -> bool:
    """HDF5 files start with this signature (at offset 0 unless a user block precedes it)."""
    try:
        with sources.open_source(path) as f:
            return f.read_at(0, 8) == HDF5_SIGNATURE
    except (OSError, NotFoundError):
        return False


def _v1_file(path: str) -> Resolved | None:
    if isfile(path) and file_has_table_magic(path):
        lone = shard_of(path)
        note = None if lone is None else (f"{path} is shard {lone[0] + 1} of {lone[1]} of a V1 checkpoint; the "
                                          f"others hold more of it: give {lone[2]} (or their directory) for all")
        return Resolved("v1", path, (path,), note=note)
    return None


def _is_saved_model(directory: str) -> bool:
    return any(isfile(os.path.join(directory, name)) for name in SAVED_MODEL_FILES)


def _saved_model(directory: str) -> Resolved:
    """A SavedModel's (or TF1 Hub module's) variables: ``variables/variables``, else the one checkpoint
    in ``variables/`` under another name."""
    variables = os.path.join(directory, "variables")
    prefix = os.path.join(variables, "variables")
    if isfile(prefix + ".index"):
        return Resolved("v2", prefix, note=f"SavedModel variables: {prefix}", saved_model=True)
    try:
        others = sorted(os.path.basename(path)[: -len(".index")] for path in sources.list_files(variables)
                        if path.endswith(".index"))
    except (OSError, CkptError):
        others = []
    if len(others) == 1:
        prefix = os.path.join(variables, others[0])
        return Resolved("v2", prefix, note=f"SavedModel variables (under another name): {prefix}", saved_model=True)
    if others:
        raise NotFoundError(f"{directory}: SavedModel has no {prefix}.index; did you mean one of "
                            f"{', '.join(os.path.join(variables, name) for name in others)}?")
    raise NotFoundError(f"{directory}: SavedModel has no variables ({prefix}.index is missing; "
                        f"a frozen or variable-free model keeps its weights in the graph: use 'ckpttools graph')")


def _saved_models_below(directory: str) -> Resolved | None:
    """A folder of SavedModels (``export/1600000000/``, or named models), one or two levels down: the
    only one, the newest of numbered versions (TF Serving's layout), or a 'did you mean' error."""
    if sources.is_url(directory):
        return _export_at_url(directory)
    found = [path for level in (1, 2) for path in _subdirs(directory, level) if _is_saved_model(path)]
    if not found:
        return None
    parents = {os.path.dirname(path) for path in found}
    names = [os.path.basename(path) for path in found]
    if len(found) == 1:
        chosen, why = found[0], "the only SavedModel here"
    elif len(parents) == 1 and all(name.isdigit() for name in names):
        chosen = max(found, key=lambda path: int(os.path.basename(path)))
        why = f"the newest of {len(found)} numbered exports"
    else:
        shown = ", ".join(sorted(found)[:8]) + (", ..." if len(found) > 8 else "")
        raise NotFoundError(f"{directory}: holds {len(found)} SavedModels; did you mean {shown}?")
    return _export(chosen, why)


def _export_at_url(directory: str) -> Resolved | None:
    """At a URL, only what the directory's one listing shows is looked at (each folder below would take
    another listing): its only subdirectory, or the newest numbered one, when it holds a SavedModel."""
    try:
        below = sources.list_dirs(directory)
    except CkptError:  # not listable (plain HTTP without an index page)
        return None
    numbered = [path for path in below if sources.file_name(path).isdigit()]
    if len(below) == 1:
        chosen, why = below[0], "the only SavedModel here"
    elif numbered:
        chosen = max(numbered, key=lambda path: int(sources.file_name(path)))
        why = f"the newest of {len(numbered)} numbered exports"
    else:
        return None
    return _export(chosen, why) if _is_saved_model(chosen) else None


def _export(chosen: str, why: str) -> Resolved:
    resolved = _saved_model(chosen)
    return Resolved(resolved.format, resolved.prefix, note=f"using {chosen} ({why}); {resolved.note}",
                    saved_model=True)


def _subdirs(directory: str, level: int, limit: int = 1000) -> list[str]:
    """Directories ``level`` levels below ``directory`` (at most ``limit`` looked at per level)."""
    current = [directory]
    for _ in range(level):
        below = []
        for parent in current:
            try:
                with os.scandir(parent) as entries:
                    below += [e.path for e in entries if e.is_dir() and not e.name.startswith(".")]
            except OSError:
                continue
        current = sorted(below)[:limit]
    return current


def _resolve_dir(directory: str) -> Resolved:
    if sources.is_url(directory):
        _list_once(directory)  # then every question about this directory's files is answered from the listing
    if _is_saved_model(directory):
        return _saved_model(directory)
    if isfile(os.path.join(directory, "variables.index")):
        return Resolved("v2", os.path.join(directory, "variables"))
    from_state, state_note = _from_state_file(directory)
    if from_state is not None:
        return from_state
    found = _newest(directory)
    if found is None:
        below = _saved_models_below(directory)
        if below is not None:
            return below
        variables = os.path.join(directory, "variables", "variables")
        if isfile(variables + ".index"):  # a SavedModel whose saved_model.pb is missing (or was not copied)
            return Resolved("v2", variables, note=f"SavedModel variables, without a saved_model.pb: {variables}",
                            saved_model=True)
        why = f"{state_note}, and no *.index here" if state_note else "no 'checkpoint' file, no *.index"
        raise NotFoundError(f"{directory}: no checkpoint in this directory ({why})")
    reason = state_note or "no 'checkpoint' state file"
    return Resolved(found.format, found.prefix, found.files, f"{reason}; using the newest by step: {found.prefix}")


def _from_state_file(directory: str) -> tuple[Resolved | None, str | None]:
    """Follow the ``checkpoint`` state file, tolerating paths from another machine."""
    state = os.path.join(directory, "checkpoint")
    try:
        if not isfile(state):
            return None, None
        text = sources.read_bytes(state).decode("utf-8", errors="replace")
    except (OSError, NotFoundError):
        return None, None
    match = _STATE_LINE.search(text)
    if not match:
        return None, f"{state} names no model_checkpoint_path"
    named = unescape_text_proto(match.group(1))
    candidates = [named if os.path.isabs(named) or sources.is_url(named) else os.path.join(directory, named)]
    if sources.is_url(directory) and not sources.is_url(candidates[0]):
        candidates = []  # a local path written by the training machine means nothing here
    basename = os.path.join(directory, sources.file_name(named))
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
    files = sources.list_files(directory)  # one listing, also for the V1 fallback
    for path in files:
        if path.endswith(".index"):
            candidates.append(Resolved("v2", path[: -len(".index")]))
    if not candidates:  # V1: single files, or shards grouped into one pattern
        shards: dict[str, list[str]] = {}
        for path in files:
            if not _NOT_V1.search(os.path.basename(path)) and file_has_table_magic(path):
                if _V1_SHARD.search(path):
                    shards.setdefault(_V1_SHARD.sub("", path), []).append(path)
                else:
                    candidates.append(Resolved("v1", path, (path,)))
        candidates += [Resolved("v1", prefix, tuple(sorted(files))) for prefix, files in shards.items()]
    if not candidates:
        return None
    return max(candidates, key=_step_then_mtime)


def _step_then_mtime(found: Resolved) -> tuple[int, float]:
    match = _STEP.search(found.prefix)
    first_file = found.files[0] if found.files else found.prefix + ".index"
    return (int(match.group(1)) if match else -1, sources.getmtime(first_file))


def _list_once(directory: str) -> None:
    """List a remote directory once (cached); an unlistable one (plain HTTP) is asked file by file."""
    try:
        sources.list_files(directory)
    except CkptError:
        pass
