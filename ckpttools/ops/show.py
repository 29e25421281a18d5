"""What `ckpttools show` prints: chosen tensors' values, as numpy prints them or as JSON-ready lists.

TensorFlow's ``inspect_checkpoint --tensor_name`` prints one tensor; this picks tensors by exact name
(with a "did you mean" for a typo) or by scope pattern, and reads them one at a time, so memory stays
near the largest tensor shown. Numbers are formatted by numpy itself (``array2string``), so what users
see is what ``print(array)`` would show them.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..checkpoint import Checkpoint
from ..errors import ConfigError, NotFoundError
from ..info import TensorInfo
from ..patterns import Selector
from .listing import list_variables

JSON_SCHEMA = "ckpttools.show/1"
DEFAULT_PRECISION = 8  # numpy's own default
SUMMARY_THRESHOLD = 1000  # numpy's own default: more elements than this are summarised with "..."
BASE64_KEY = "base64"


def select_tensors(ckpt: Checkpoint, names: Sequence[str] = (), scopes: Sequence[str] = (),
                   include_all: bool = False) -> list[TensorInfo]:
    """The tensors to show: each of ``names`` (display name or TensorFlow key), then the ``scopes`` matches.

    A name that does not exist is a NotFoundError with the closest name; a pattern that matches nothing
    is one too (a show of nothing is never what was meant). Patterns select model variables unless
    ``include_all``, as ``ls`` does; names are shown whatever their role. Each tensor appears once.
    """
    if not names and not scopes:
        raise ConfigError(f"{ckpt.prefix}: give a variable NAME or --scopes PATTERN (ckpttools ls lists them)")
    chosen = [ckpt.info(name) for name in names]
    if scopes:
        listing = list_variables(ckpt, scopes, show_all=include_all)
        unmatched = Selector(scopes).unmatched(info.name for info in listing.shown)
        if unmatched:
            raise NotFoundError(f"{ckpt.prefix}: {_unmatched_text(unmatched, listing.hidden)}")
        chosen += listing.shown
    unique: dict[str, TensorInfo] = {}
    for info in chosen:
        unique.setdefault(info.name, info)
    return list(unique.values())


def _unmatched_text(patterns: Sequence[str], hidden: Sequence[TensorInfo]) -> str:
    """Which patterns matched nothing, and which of them match only state hidden without --all."""
    nowhere = Selector(patterns).unmatched(info.name for info in hidden)
    parts = [f"pattern '{p}' matched no variable" for p in nowhere]
    parts += [f"pattern '{p}' matches only optimizer/training state (add --all)"
              for p in patterns if p not in nowhere]
    return "; ".join(parts)


def read_values(ckpt: Checkpoint, infos: Sequence[TensorInfo]) -> Iterator[tuple[TensorInfo, np.ndarray]]:
    """Each tensor with its value, read lazily: one value in memory at a time, tensors stored one after
    another read as one stream (``Checkpoint.values``)."""
    for info, (_, value) in zip(infos, ckpt.values(info.name for info in infos)):
        yield info, value


def format_value(value: np.ndarray, precision: int = DEFAULT_PRECISION, full: bool = False,
                 linewidth: int = 75) -> str:
    """The value as ``print(value)`` shows it: summarised with ``...`` beyond 1000 elements unless ``full``."""
    if precision < 0:
        raise ConfigError(f"precision must be 0 or more, got {precision}")
    threshold = sys.maxsize if full else SUMMARY_THRESHOLD
    with np.printoptions(precision=precision, threshold=threshold, linewidth=linewidth):
        return np.array2string(value)


def json_values(value: np.ndarray) -> Any:
    """The value as nested lists of JSON-safe Python values, exactly.

    Floats of every width (bfloat16, float8, float16 included) become JSON numbers through float64,
    which holds them exactly; NaN and the infinities become the strings "nan", "inf", "-inf" (JSON has no
    number for them); complex numbers become [real, imaginary]; strings become text when they are UTF-8,
    else ``{"base64": "..."}``; sub-byte integers (int4...) become ints.
    """
    kind = value.dtype.kind
    if value.dtype == object or kind == "S":
        return _map_nested(value.tolist(), _string_json)
    if kind == "c":
        pairs = np.stack([value.real, value.imag], axis=-1).astype(np.float64)
        return _map_nested(pairs.tolist(), _float_json)
    if kind in "biu":
        return value.tolist()
    try:
        as_float = value.astype(np.float64)  # bfloat16, float8, float4 (kind "V"), float16..float64
    except (TypeError, ValueError):
        return value.astype(np.int64).tolist()  # ml_dtypes' int4/int2 and kin
    if value.dtype.name.startswith(("int", "uint")):
        return as_float.astype(np.int64).tolist()
    return _map_nested(as_float.tolist(), _float_json)


def _map_nested(items: Any, convert) -> Any:
    if isinstance(items, list):
        return [_map_nested(item, convert) for item in items]
    return convert(items)


def _float_json(number: float) -> float | str:
    if number != number:
        return "nan"
    if number in (float("inf"), float("-inf")):
        return "inf" if number > 0 else "-inf"
    return number


def _string_json(item: bytes | str) -> str | dict[str, str]:
    if isinstance(item, str):
        return item
    try:
        return item.decode("utf-8")
    except UnicodeDecodeError:
        return {BASE64_KEY: base64.b64encode(item).decode("ascii")}


def tensor_json(info: TensorInfo, value: np.ndarray) -> dict[str, Any]:
    """One tensor of the ``ckpttools.show/1`` document."""
    return {"name": info.name, "key": info.key, "dtype": info.dtype, "shape": list(info.shape),
            "role": info.role, "values": json_values(value)}


def show_json(path: str, ckpt: Checkpoint, infos: Sequence[TensorInfo]) -> Iterator[str]:
    """The ``ckpttools show --json`` document (schema ``ckpttools.show/1``) as text pieces.

    The same text as ``json.dumps(document, indent=2)``, but produced one tensor at a time, so a
    large selection never holds more than one tensor's values (and their lists) in memory.
    """
    head = {"schema": JSON_SCHEMA,
            "checkpoint": {"path": path, "prefix": ckpt.prefix, "format": ckpt.format, "note": ckpt.note}}
    text = json.dumps(head, indent=2)
    yield text[:-2] + ',\n  "tensors": ['
    for number, (info, value) in enumerate(read_values(ckpt, infos)):
        item = json.dumps(tensor_json(info, value), indent=2).replace("\n", "\n    ")
        yield ("," if number else "") + "\n    " + item
    yield "\n  ]\n}\n" if infos else "]\n}\n"
