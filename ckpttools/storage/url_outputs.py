"""Outputs that may be URLs: written to a local temporary file, then uploaded in one piece.

Local paths go to ``atomic.py`` (temp file beside the target, renamed when complete). For a URL the
file is built in the temporary directory and uploaded only once complete, so a failure before or
during the upload leaves no object (S3 and GCS make an object visible only when its upload completes;
s3fs aborts an unfinished multipart upload).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator

from ..errors import CkptError, OutputError
from . import atomic, sources


def check_output(path: str, force: bool) -> None:
    """Fail early, before any work, when ``path`` (a file or a URL) must not be written."""
    if not sources.is_url(path):
        atomic.check_writable(sources.local_path(path), force)
        return
    if path.endswith("/"):
        raise OutputError(f"{sources.redact(path)}: is a directory; give a file name")
    if not force and _exists(path):
        raise OutputError(f"{sources.redact(path)}: already exists (use --force to overwrite)")


def _exists(url: str) -> bool:
    from . import remote

    remote.forget(url)
    return remote.isfile(url, sources.current_options())


@contextlib.contextmanager
def output_path(path: str, force: bool = False) -> Iterator[str]:
    """Yield a local temporary path to write; on success it becomes ``path`` (renamed, or uploaded)."""
    if not sources.is_url(path):
        with atomic.atomic_path(sources.local_path(path), force) as tmp:
            yield tmp
        return
    check_output(path, force)
    suffix = os.path.splitext(path.rpartition("/")[2])[1]
    fd, tmp = tempfile.mkstemp(prefix="ckpttools-upload-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        if not force and _exists(path):  # appeared while we worked
            raise OutputError(f"{sources.redact(path)}: already exists (use --force to overwrite)")
        _upload(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def _upload(tmp: str, url: str) -> None:
    from . import remote

    fs, target = remote.open_fs(url, sources.current_options())
    try:
        remote.call(url, "uploading", lambda: fs.put_file(tmp, target))
    except CkptError as exc:
        raise OutputError(f"{exc}; nothing was written") from None
    finally:
        remote.forget(url)
