"""TensorFlow's verdict on checkpoints: which open, and which variables it can read.

Run in a subprocess (TensorFlow stays out of the test process)::

    python tests/tf_read_judge.py PATH [PATH ...]
    ->  JSON {path: {"open": error|null, "variables": n, "failed": {key: error}}}

``open`` is TensorFlow's error from ``tf.train.load_checkpoint`` (its first line), ``saved_model_load``
that of ``tf.saved_model.load`` for a SavedModel's ``variables/variables`` prefix; ``failed`` maps every
key that ``get_tensor`` refuses to the first line of its error. TensorFlow aborts the whole process (a
failed CHECK) on some damaged files, e.g. reading a tensor of a missing shard: each path is read in a
forked child that reports key by key, and a key during which the child died is recorded as failed.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _child(path: str, skip: set[str], out) -> None:
    """Write JSON lines: {"open": ...} first, then {"key": k} before and {"key": k, "error": e|null} after."""
    try:
        reader = tf.train.load_checkpoint(path)
        keys = sorted(reader.get_variable_to_shape_map())
    except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types; the text is what we compare
        out.write(json.dumps({"open": _first_line(exc)}) + "\n")
        return
    loaded = None
    saved_model = os.path.dirname(os.path.dirname(path))
    if path.endswith("variables/variables") and os.path.isfile(os.path.join(saved_model, "saved_model.pb")):
        try:
            tf.saved_model.load(saved_model)
        except Exception as exc:  # noqa: BLE001
            loaded = _first_line(exc) or type(exc).__name__
    out.write(json.dumps({"open": None, "variables": len(keys), "saved_model_load": loaded}) + "\n")
    for key in keys:
        if key in skip:
            continue
        out.write(json.dumps({"key": key}) + "\n")
        out.flush()
        try:
            reader.get_tensor(key)
            error = None
        except Exception as exc:  # noqa: BLE001
            error = _first_line(exc)
            reader = tf.train.load_checkpoint(path)  # TensorFlow's reader keeps a failed status: start afresh
        out.write(json.dumps({"key": key, "error": error}) + "\n")


def _run_child(path: str, skip: set[str]) -> tuple[list[dict], bool]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        with os.fdopen(write_end, "w") as out:
            _child(path, skip, out)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as incoming:
        lines = [json.loads(line) for line in incoming if line.strip()]
    _, status = os.waitpid(pid, 0)
    return lines, os.WIFSIGNALED(status)


def judge(path: str) -> dict:
    verdict: dict = {"open": None, "variables": 0, "failed": {}}
    done: set[str] = set()
    while True:
        lines, died = _run_child(path, done)
        if lines and "open" in lines[0]:
            verdict["open"] = lines[0]["open"]
            verdict["variables"] = lines[0].get("variables", 0)
            verdict["saved_model_load"] = lines[0].get("saved_model_load")
        elif died:
            verdict["open"] = "TensorFlow aborted while opening"
        pending = None
        for line in lines[1:]:
            if "error" in line:
                done.add(line["key"])
                pending = None
                if line["error"]:
                    verdict["failed"][line["key"]] = line["error"]
            elif "key" in line:
                pending = line["key"]
        if not died or pending is None:
            return verdict
        verdict["failed"][pending] = "TensorFlow aborted"
        done.add(pending)


if __name__ == "__main__":
    print(json.dumps({path: judge(path) for path in sys.argv[1:]}))
