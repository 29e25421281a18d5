"""The ``checkpoint`` state file: a text-format ``CheckpointState`` naming a directory's checkpoints.

TensorFlow writes it with ``tf.train.update_checkpoint_state`` (``checkpoint_management.py``):
``text_format.MessageToString`` of ``model_checkpoint_path`` (the newest) and the repeated
``all_model_checkpoint_paths`` (oldest first), strings C-escaped with non-ASCII bytes as octal.
We write paths relative to the directory, so the folder can be moved or copied elsewhere.
"""

from __future__ import annotations

import os
import re

from ..storage.atomic import atomic_path
from .textproto import c_escape, unescape_text_proto

STATE_FILE = "checkpoint"
_FIELD = re.compile(r'^\s*(model_checkpoint_path|all_model_checkpoint_paths)\s*:\s*"((?:[^"\\]|\\.)*)"', re.M)


def parse_state(text: str) -> tuple[str | None, list[str]]:
    """``(model_checkpoint_path, all_model_checkpoint_paths)`` of a state file's text."""
    newest, every = None, []
    for field, value in _FIELD.findall(text):
        if field == "model_checkpoint_path":
            newest = unescape_text_proto(value)
        else:
            every.append(unescape_text_proto(value))
    return newest, every


def format_state(newest: str, every: list[str]) -> str:
    """The state file's text for checkpoint paths ``every`` (oldest first) whose newest is ``newest``."""
    lines = [f'model_checkpoint_path: "{c_escape(newest)}"']
    lines += [f'all_model_checkpoint_paths: "{c_escape(path)}"' for path in every]
    return "\n".join(lines) + "\n"


def update_state_file(prefix: str) -> str:
    """Make ``prefix`` the newest checkpoint of its directory's state file, atomically; return the file's path.

    Paths already listed are kept (relative ones stay relative) when their checkpoint still exists;
    ``prefix`` itself is written relative to the directory.
    """
    directory, base = os.path.split(os.path.abspath(prefix))
    path = os.path.join(os.path.dirname(prefix), STATE_FILE)
    kept: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            _, listed = parse_state(f.read())
    except OSError:
        listed = []
    for old in listed:
        full = old if os.path.isabs(old) else os.path.join(directory, old)
        if os.path.dirname(os.path.abspath(full)) == directory:
            old = os.path.basename(full)
        if old != base and old not in kept and _exists(full):
            kept.append(old)
    with atomic_path(path, force=True) as tmp, open(tmp, "w", encoding="ascii") as f:
        f.write(format_state(base, [*kept, base]))
    return path


def _exists(prefix: str) -> bool:
    return os.path.exists(prefix + ".index") or os.path.exists(prefix)
