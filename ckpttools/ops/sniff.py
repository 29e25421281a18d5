"""What a file really is, from its first and last bytes: the usual reasons a checkpoint will not open.

A Git LFS pointer downloaded instead of the file, an HTML error page or other text saved by a
failed download, an empty file, a V1 checkpoint where a V2 index was expected and the reverse.
``verify`` names these causes instead of TensorFlow's "not an sstable" or "Data loss".
"""

from __future__ import annotations

import struct

from ..formats.downloads import EMPTY, FIXES, HEAD, HTML, LFS_POINTER, Sniffed, download_mistake
from ..formats.sstable import FOOTER_SIZE, MAGIC
from ..storage import sources

TEXT, TABLE, BINARY = "text", "table", "binary"
V1_TABLE, V2_INDEX = "v1", "v2-index"


# Files a SavedModel holds beside saved_model.pb that are neither graphs nor checkpoints (by their file name).
_SAVED_MODEL_SIDECARS = {
    "keras_metadata.pb": "the Keras metadata of a SavedModel",
    "fingerprint.pb": "the fingerprint of a SavedModel",
}


def saved_model_sidecar(path: str) -> str | None:
    """What ``path`` is if it is one of a SavedModel's side files, with what to give instead; else None."""
    what = _SAVED_MODEL_SIDECARS.get(sources.file_name(path))
    return None if what is None else f"{what}, not a graph or checkpoint: give its SavedModel directory"


def sniff(path: str) -> Sniffed:
    """Look at ``path``'s head and footer (a file or a URL); never reads more than a few kB."""
    with sources.open_source(path) as f:
        size = f.size
        head = f.read_at(0, HEAD)
        tail = f.read_at(size - 8, 8) if size >= FOOTER_SIZE else b""
    mistake = download_mistake(head, size)
    if mistake is not None:
        return mistake
    if len(tail) == 8 and struct.unpack("<Q", tail)[0] == MAGIC:
        return Sniffed(TABLE, "a checkpoint table", size)
    if _looks_like_text(head):
        first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip()[:60]
        return Sniffed(TEXT, f"a text file ('{first}'), not checkpoint data (a failed download?)", size)
    return Sniffed(BINARY, "binary data", size)


def table_kind(path: str) -> str | None:
    """For a table file: ``V1_TABLE`` (SavedTensorSlices) or ``V2_INDEX`` (bundle header); None if unreadable.

    Both formats store their header under the empty key; a V2 header starts with field 1 as a varint
    (``num_shards``), a V1 one with field 1 as a message (``meta``).
    """
    from ..formats.sstable import Table, TableError

    try:
        table = Table(path)
    except (OSError, TableError):
        return None
    try:
        header = table.get(b"")
    except TableError:
        return None
    finally:
        table.close()
    if not header:
        return None
    return {0x08: V2_INDEX, 0x0A: V1_TABLE}.get(header[0])


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * len(text)


_CAUSES = {EMPTY: "empty", LFS_POINTER: "lfs-pointer", HTML: "html", TEXT: "text"}
_FIXES = {**FIXES, TEXT: "download the file itself; this text is not checkpoint data"}


def sniff_problem(path: str, lost: tuple[str, ...] = ()):  # -> Problem | None
    """A Problem naming the cause when ``path`` is an LFS pointer, a web page, text or empty; else None."""
    from .problems import Problem

    found = sniff(path)
    if found.kind not in _CAUSES:
        return None
    what = f"is {found.description}"
    if lost:
        what += f"; {len(lost)} variable{'s' if len(lost) != 1 else ''} lost"
    return Problem(path, what, _FIXES[found.kind], _CAUSES[found.kind], variables=lost)
