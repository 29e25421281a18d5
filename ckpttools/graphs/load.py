"""Find and parse a TensorFlow graph file into a ``LoadedGraph``, without TensorFlow.

The messages come from TensorFlow's ``core/framework/graph.proto``, ``core/protobuf/meta_graph.proto``
and ``core/protobuf/saved_model.proto``; their descriptors ship with ckpttools (``protos``, as compiled
into tensorboard, package ``tensorboard``). Top-level fields, ``number: type``:

- ``GraphDef`` (frozen ``.pb``, ``tf.io.write_graph``): 1 node (repeated NodeDef), 2 library
  (FunctionDefLibrary), 3 version (int32, deprecated), 4 versions (VersionDef).
- ``MetaGraphDef`` (``.meta`` from ``tf.train.Saver``/``export_meta_graph``): 1 meta_info_def, 2 graph_def,
  3 saver_def, 4 collection_def (map), 5 signature_def (map), 6 asset_file_def, 7 object_graph_def.
- ``SavedModel`` (``saved_model.pb``): 1 saved_model_schema_version (int64 varint), 2 meta_graphs
  (repeated MetaGraphDef). Binary files: the two fields are read with ``protowire`` and each meta graph
  is parsed as a ``MetaGraphDef``; text files with the two-field ``SavedModel`` message from ``protos``.

Binary files are told apart by those field numbers and wire types (only a varint field 1 or 3 and
fields 3, 5-7 as messages are decisive), then by file name. Text files (``.pbtxt``, or any file that
is plain text) are told apart by their first field name and parsed with ``google.protobuf.text_format``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import message as pb_message
from google.protobuf import text_format

from ..errors import CkptError, CorruptFileError, NotACheckpointError, NotFoundError, RemoteError, bounded
from ..formats import protowire
from ..formats.downloads import download_mistake
from ..formats.protowire import LENGTH, VARINT
from ..ops.sniff import saved_model_sidecar
from ..resolve import resolve
from ..storage import sources
from ..storage.sources import isfile
from .protos import message_class

GRAPH_DEF, META_GRAPH, SAVED_MODEL = "graph_def", "meta_graph", "saved_model"
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SERVING_TAG = "serve"

# Field number -> wire type each message allows at its top level.
_FIELDS = {
    GRAPH_DEF: {1: LENGTH, 2: LENGTH, 3: VARINT, 4: LENGTH},
    META_GRAPH: {n: LENGTH for n in range(1, 8)},
    SAVED_MODEL: {1: VARINT, 2: LENGTH},
}
_TEXT_FIELDS = {
    GRAPH_DEF: {"node", "library", "version", "versions"},
    META_GRAPH: {"meta_info_def", "graph_def", "saver_def", "collection_def", "signature_def",
                 "asset_file_def", "object_graph_def"},
    SAVED_MODEL: {"saved_model_schema_version", "meta_graphs"},
}
_EXPECTED = {
    GRAPH_DEF: "GraphDef (.pb/.pbtxt from tf.io.write_graph or a frozen graph)",
    META_GRAPH: "MetaGraphDef (.meta from tf.train.Saver or export_meta_graph)",
    SAVED_MODEL: "SavedModel (saved_model.pb)",
}
_SNIFF_BYTES = 1024  # enough to tell an HTML page or a Git LFS pointer from a graph
_FIRST_FIELD = re.compile(r"\A(?:\s|#[^\n]*\n)*([A-Za-z_][A-Za-z0-9_]*)")
_CHECKPOINT_FILE = re.compile(r"\.(?:index|data-\d{5}-of-\d{5})$")
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass
class LoadedGraph:
    """A parsed graph file: the GraphDef to inspect plus, for meta graphs and SavedModels, the MetaGraphDef."""

    path: str  # the file that was read
    format: str  # GRAPH_DEF | META_GRAPH | SAVED_MODEL
    text: bool  # protobuf text format rather than binary
    graph_def: pb_message.Message  # GraphDef
    meta_graph: pb_message.Message | None = None  # MetaGraphDef
    tags: tuple[str, ...] = ()  # SavedModel: the tags of the meta graph shown
    note: str | None = None  # how the path was resolved or which meta graph was chosen


def load_graph(path: str | os.PathLike) -> LoadedGraph:
    """Load a .meta, GraphDef .pb/.pbtxt, saved_model.pb, SavedModel directory or checkpoint prefix.

    Args:
        path: a graph file; a SavedModel directory; a checkpoint directory or prefix (its ``.meta`` is used).

    Returns:
        The parsed graph; for a SavedModel with several meta graphs, the one tagged ``serve`` (else the first).

    Example:
        >>> graph = load_graph("sample_checkpoints/tf1_cnn")   # its model.ckpt-20.meta
        >>> graph.format, len(graph.graph_def.node)
        ('meta_graph', 950)

    Raises:
        NotFoundError: nothing at ``path`` holds a graph.
        CorruptFileError: the file is empty, truncated, corrupt, or text with a syntax error.
    """
    found, note = find_graph_file(sources.local_path(os.fspath(path)))
    try:
        data = sources.read_bytes(found)
    except OSError as exc:
        raise NotFoundError(f"{found}: cannot read ({exc.strerror})") from None
    if not data:
        raise CorruptFileError(f"{found}: file is empty; expected a GraphDef, MetaGraphDef or SavedModel")
    sidecar = saved_model_sidecar(found)
    if sidecar is not None:
        raise NotACheckpointError(f"{found}: is {sidecar}")
    mistake = download_mistake(data[:_SNIFF_BYTES], len(data))
    if mistake is not None:
        raise CorruptFileError(f"{found}: is {mistake.description.replace('checkpoint data', 'a graph')}")
    graph = _parse_text(found, data) if _looks_like_text(found, data) else _parse_binary(found, data)
    graph.note = "; ".join(n for n in (note, graph.note) if n) or None
    return graph


def find_graph_file(path: str) -> tuple[str, str | None]:
    """The graph file ``path`` stands for, and a note when it was not ``path`` itself."""
    checkpoint_file = _CHECKPOINT_FILE.search(path)
    if checkpoint_file and isfile(path[: checkpoint_file.start()] + ".meta"):
        meta = path[: checkpoint_file.start()] + ".meta"
        return meta, f"using {sources.redact(meta)}, the graph of this checkpoint"  # (notes are printed)
    if isfile(path):
        return path, None
    if sources.isdir(path):
        for name in SAVED_MODEL_FILES:
            if isfile(os.path.join(path, name)):
                return os.path.join(path, name), None
        meta = _checkpoint_meta(path)
        if meta:
            return meta, f"using {sources.redact(meta)}"
        raise NotFoundError(f"{path}: no saved_model.pb and no checkpoint with a .meta graph in this directory")
    if isfile(path + ".meta"):
        return path + ".meta", f"using {sources.redact(path)}.meta"
    raise NotFoundError(f"{path}: no such file or directory")


def _checkpoint_meta(directory: str) -> str | None:
    """The .meta of the checkpoint ``ckpttools ls`` would pick in ``directory``, if it has one."""
    try:
        prefix = resolve(directory).prefix
    except RemoteError:  # the state file or listing could not be read: say so, not "no .meta"
        raise
    except CkptError:
        return None
    return prefix + ".meta" if isfile(prefix + ".meta") else None


def _looks_like_text(path: str, data: bytes) -> bool:
    """Text format when named so, or when the head is UTF-8 text: binary protos have tag bytes below 0x20."""
    if path.endswith((".pbtxt", ".pbtext", ".txt", ".prototxt")):
        return True
    head = data[:4096]
    if _BINARY_BYTES.search(head):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(head) - 4  # only a character cut at the 4 KiB boundary
    return True


# --- binary -------------------------------------------------------------------------------------------


def _parse_binary(path: str, data: bytes) -> LoadedGraph:
    top = _top_level_fields(path, data)
    kind = _binary_kind(path, top)
    _check_fields(path, kind, top)
    if kind == SAVED_MODEL:
        return _saved_model(path, _saved_model_meta_graphs(path, data), text=False)
    message = _decode(path, kind, data)
    if kind == META_GRAPH:
        return LoadedGraph(path, META_GRAPH, False, message.graph_def, message)
    return LoadedGraph(path, GRAPH_DEF, False, message)


def _top_level_fields(path: str, data: bytes) -> list[tuple[int, int]]:
    """``(field number, wire type)`` of every top-level field, skipping over their contents."""
    out = []
    pos = start = 0
    end = len(data)
    try:
        while pos < end:
            start = pos
            key, pos = protowire.read_varint(data, pos)
            number, wire_type = key >> 3, key & 7
            if number == 0:
                raise protowire.WireError("field number 0")
            if wire_type == VARINT:
                _, pos = protowire.read_varint(data, pos)
            elif wire_type == LENGTH:
                size, pos = protowire.read_varint(data, pos)
                pos += size
            elif wire_type in (protowire.FIXED32, protowire.FIXED64):
                pos += 4 if wire_type == protowire.FIXED32 else 8
            else:
                raise protowire.WireError(f"unknown wire type {wire_type}")
            if pos > end:
                raise protowire.WireError(f"field {number} needs {pos - end} more bytes than the file has")
            out.append((number, wire_type))
    except protowire.WireError as exc:
        raise CorruptFileError(
            f"{path}: truncated or not a graph file: {exc} (top-level field at byte {start} of {end})"
        ) from None
    return out


def _binary_kind(path: str, top: list[tuple[int, int]]) -> str:
    """Which message the fields are: decisive field numbers first, then the file name."""
    present = set(top)
    if (1, VARINT) in present:
        return SAVED_MODEL
    if (3, VARINT) in present or top.count((1, LENGTH)) > 1:
        return GRAPH_DEF
    if present & {(3, LENGTH), (5, LENGTH), (6, LENGTH), (7, LENGTH)}:
        return META_GRAPH
    name = os.path.basename(path)
    if name.startswith("saved_model"):
        return SAVED_MODEL
    return META_GRAPH if name.endswith(".meta") else GRAPH_DEF


def _check_fields(path: str, kind: str, top: Iterable[tuple[int, int]]) -> None:
    allowed = _FIELDS[kind]
    for number, wire_type in dict.fromkeys(top):
        if allowed.get(number) != wire_type:
            raise CorruptFileError(
                f"{path}: not a graph file: top-level field {number} (wire type {wire_type}) is not part of a "
                f"{_EXPECTED[kind]}; the file is corrupt or of another kind"
            )


def _decode(path: str, kind: str, data: bytes) -> pb_message.Message:
    cls = message_class("GraphDef" if kind == GRAPH_DEF else "MetaGraphDef")
    try:
        return cls.FromString(data)
    except pb_message.DecodeError:
        raise CorruptFileError(
            f"{path}: corrupt or truncated {cls.__name__} (protobuf could not decode it); expected a {_EXPECTED[kind]}"
        ) from None


def _saved_model_meta_graphs(path: str, data: bytes) -> list[pb_message.Message]:
    metas = [_decode(path, META_GRAPH, value) for number, _, value in protowire.fields(data) if number == 2]
    if not metas:
        raise CorruptFileError(f"{path}: SavedModel holds no meta graph")
    return metas


def _saved_model(path: str, metas: list[pb_message.Message], text: bool) -> LoadedGraph:
    """Show the serving meta graph (else the first), and say so when there is a choice."""
    chosen = next((m for m in metas if SERVING_TAG in m.meta_info_def.tags), metas[0])
    tags = tuple(chosen.meta_info_def.tags)
    note = None
    if len(metas) > 1:
        note = f"SavedModel has {len(metas)} meta graphs; showing the one tagged {', '.join(tags) or '(none)'}"
    return LoadedGraph(path, SAVED_MODEL, text, chosen.graph_def, chosen, tags, note)


# --- text ---------------------------------------------------------------------------------------------


def _parse_text(path: str, data: bytes) -> LoadedGraph:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        binary = _as_binary(path, data)
        if binary:
            raise CorruptFileError(f"{path}: binary protobuf, not the text TensorFlow expects of this name; {binary}"
                                   ) from None
        raise CorruptFileError(f"{path}: not UTF-8 text (byte {exc.start}); a .pbtxt must be protobuf text") from None
    first = _FIRST_FIELD.match(text)
    field = first.group(1) if first else ""
    kind = next((k for k, names in _TEXT_FIELDS.items() if field in names), GRAPH_DEF)
    if kind == SAVED_MODEL:
        saved = _text_message(path, text, message_class("SavedModel")(), kind)
        if not saved.meta_graphs:
            raise CorruptFileError(f"{path}: SavedModel holds no meta graph")
        return _saved_model(path, list(saved.meta_graphs), text=True)
    if kind == META_GRAPH:
        meta = _text_message(path, text, message_class("MetaGraphDef")(), kind)
        return LoadedGraph(path, META_GRAPH, True, meta.graph_def, meta)
    return LoadedGraph(path, GRAPH_DEF, True, _text_message(path, text, message_class("GraphDef")(), kind))


def _as_binary(path: str, data: bytes) -> str | None:
    """What to do with a file named as text that holds a binary graph (a ``saved_model.pb`` renamed), or None.

    A binary file kept under a text name may also have had its line endings converted on the way (git's
    ``autocrlf`` drops each ``\r`` before ``\n``), which leaves it shorter than its fields say.
    """
    if not data or data[0] not in (0x08, 0x0A, 0x12):  # field 1 or 2 of a SavedModel, MetaGraphDef, GraphDef
        return None
    try:
        top = _top_level_fields(path, data)
        kind = _binary_kind(path, top)
        _check_fields(path, kind, top)
    except CorruptFileError as exc:
        reason = str(exc).split(": ", 1)[-1]
        return (f"read as binary it is damaged too ({reason}): a binary file stored under a text name may have "
                "had its line endings converted (git autocrlf); copy the original saved file")
    stem = os.path.splitext(os.path.basename(path))[0]
    name = {SAVED_MODEL: "saved_model.pb", META_GRAPH: f"{stem}.meta"}.get(kind, f"{stem}.pb")
    return f"it is a {_EXPECTED[kind]}: rename it to {name}"


def _text_message(path: str, text: str, message: pb_message.Message, kind: str) -> pb_message.Message:
    try:
        text_format.Parse(text, message, allow_unknown_extension=True)
    except text_format.ParseError as exc:
        where = f"line {exc.GetLine()} column {exc.GetColumn()}: " if exc.GetLine() else ""
        reason, near = _parse_reason(str(exc), text, exc.GetLine(), exc.GetColumn())
        raise CorruptFileError(f"{path}: {where}{reason}{near} (parsing it as a text {_EXPECTED[kind]})") from None
    return message


def _parse_reason(message: str, text: str, line: int | None, column: int | None) -> tuple[str, str]:
    """protobuf's reason without the offending line it quotes (whole, however long), and a short excerpt
    of that line around the column instead."""
    reason = message.split(" : ", 1)[-1]
    lines = text.splitlines()
    if not line or not 0 < line <= len(lines):
        return bounded(reason), ""
    source = lines[line - 1]
    if reason.startswith(f"'{source}': "):
        reason = reason[len(source) + 4 :]
    start = max(0, (column or 1) - 1 - 40)
    excerpt = source[start : start + 80].strip()
    if not excerpt:
        return bounded(reason, 120), ""
    reason = reason.split(": '", 1)[0].rstrip(".")  # the token it quotes is in the excerpt
    return bounded(reason, 120), f" near '{bounded(excerpt, 80)}'"
