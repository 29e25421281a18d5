"""Paths and URLs as text: which are URLs, their last component, and the same text without credentials."""

from __future__ import annotations

import re

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|::")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
# a query string holding key=value pairs (every signed URL's keys are there); a bare ``?`` is kept: in
# ``model.ckpt-7-?????-of-00003`` (V1 shards) it is a glob, not the start of a query
_QUERY = re.compile(r"(://[^\s?]*)\?(?=[^\s,;)'\"=]*=)[^\s,;)'\"]*?(?=:?(?:[\s,;)'\"]|$))")


def is_url(path: str) -> bool:
    """True for ``scheme://...`` and fsspec chains (``a::b``), except ``file://`` (read as a local path)."""
    return bool(_URL.search(path)) and not path.startswith("file://")


def local_path(path: str) -> str:
    """``file:///x`` -> ``/x``; any other path unchanged."""
    return path[len("file://"):] if path.startswith("file://") else path


def file_name(path: str) -> str:
    """The last component of a path or URL, also one written on Windows (``C:\\runs\\model.ckpt-0``), as a
    ``checkpoint`` state file from another machine may name it."""
    return path.replace("\\", "/").rpartition("/")[2]


def redact(text: str) -> str:
    """``text`` with credentials removed from every URL in it: ``user:password@`` and query strings of
    ``key=value`` pairs (signed URLs carry their keys there); a glob's ``?`` stays. Error messages pass
    through this before they are printed."""
    return _QUERY.sub(r"\1", _USERINFO.sub(r"\1", text))
