"""What a failed download leaves in place of a file: nothing, a Git LFS pointer, or an HTML page.

Told from the file's first bytes (``download_mistake``); every reader that meets bytes it cannot parse
asks here first, so the error names the real cause and its fix instead of a parse failure.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import CorruptFileError, NotFoundError

HEAD = 1024  # enough of a file's start to tell these apart
_LFS = re.compile(rb"^version https://git-lfs\.github\.com/spec/v\d+\s*\n(?:.*\n)*?oid sha256:([0-9a-f]+)\s*\n"
                  rb"size (\d+)", re.M)
_HTML = re.compile(rb"^\s*(<!doctype html|<html|<\?xml|<head|<body)", re.I)

EMPTY, LFS_POINTER, HTML = "empty", "lfs-pointer", "html"
FIXES = {
    EMPTY: "the file was created but never written: copy it again",
    LFS_POINTER: "fetch the real file: git lfs pull (or download it, not its pointer)",
    HTML: "download the file itself (the link returned a web page: login, quota or 404?)",
}


@dataclass(frozen=True)
class Sniffed:
    """The kind of a file and a phrase describing it (for an error line)."""

    kind: str
    description: str
    size: int
    real_size: int | None = None  # an LFS pointer's size of the real file


def download_mistake(head: bytes, size: int) -> Sniffed | None:
    """What a failed download leaves in place of the file (empty, a Git LFS pointer, an HTML page), from
    its first bytes; None for anything else."""
    if size == 0:
        return Sniffed(EMPTY, "an empty file", 0)
    lfs = _LFS.search(head)
    if head.startswith(b"version https://git-lfs") and lfs:
        real = int(lfs.group(2))
        return Sniffed(LFS_POINTER, f"a Git LFS pointer ({size} bytes) to a {real:,}-byte file that was "
                       "never downloaded", size, real)
    if _HTML.match(head):
        title = re.search(rb"<title>(.*?)</title>", head, re.I | re.S)
        what = f" ('{title.group(1).decode('utf-8', 'replace').strip()[:60]}')" if title else ""
        return Sniffed(HTML, f"an HTML page{what}, not checkpoint data (a failed download?)", size)
    return None


def file_mistake(path: str) -> Sniffed | None:
    """``download_mistake`` of the file (or URL) at ``path``, from its first ``HEAD`` bytes; None also when it
    cannot be read (whoever asked reports that)."""
    from ..storage import sources

    try:
        with sources.open_source(path) as f:
            return download_mistake(f.read_at(0, HEAD), f.size)
    except (OSError, NotFoundError):
        return None


def mistake_text(head: bytes, size: int) -> str | None:
    """``is <what>; <fix>`` for a failed download's leftovers, to follow a file name in an error; else None."""
    found = download_mistake(head, size)
    return None if found is None else explained(found)


def explained(found: Sniffed) -> str:
    """``is <what>; <fix>``: what a failed download left, to follow the file's name."""
    return f"is {found.description}; {FIXES[found.kind]}"


def check_length(path: str, size: int, needed: int, head: Callable[[], bytes]) -> None:
    """A CorruptFileError naming a failed download's leftovers when ``path`` (``size`` bytes) is shorter than
    the ``needed`` bytes its index promises and ``head()`` (its first bytes) shows what it is instead."""
    if size < needed:
        why = mistake_text(head(), size)
        if why:
            raise CorruptFileError(f"{path}: {why}")
