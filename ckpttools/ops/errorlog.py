"""Read what a restore needed out of TensorFlow's error text: missing keys and shape mismatches.

Recognised (TensorFlow 1.x and 2.x wordings):

* ``Key cnn/logits/bias not found in checkpoint`` (RestoreV2, ``Saver.restore``)
* ``tensor_name = cnn/logits/bias; shape in shape_and_slice spec [5] does not match the shape stored in
  checkpoint: [10]`` (RestoreV2 with resource variables)
* ``Received incompatible tensor with shape (10,) when attempting to restore variable with shape (5,) and
  name dense/bias:0.`` (``tf.train.Checkpoint``)
* ``Assign requires shapes of both tensors to match. lhs shape= [5] rhs shape= [10]`` (ref variables: no
  name is given, so it is reported as such)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import NotFoundError
from ..storage import sources

_MISSING = re.compile(r"Key (\S+?) not found in checkpoint")
_SLICE_SPEC = re.compile(r"tensor_name = (\S+?); shape in shape_and_slice spec \[([^\]]*)\] does not match the "
                         r"shape stored in checkpoint: \[([^\]]*)\]")
_INCOMPATIBLE = re.compile(r"Received incompatible tensor with shape \(([^)]*)\) when attempting to restore "
                           r"variable with shape \(([^)]*)\) and name (\S+?)(?::\d+)?\.?(?=\s|$)")
_ASSIGN = re.compile(r"Assign requires shapes of both tensors to match\. lhs shape= \[([^\]]*)\] "
                     r"rhs shape= \[([^\]]*)\]")


@dataclass(frozen=True)
class LoggedNeed:
    """A variable the failed restore wanted: its name, and for a shape mismatch both shapes."""

    name: str
    target_shape: tuple[int, ...] | None = None
    source_shape: tuple[int, ...] | None = None
    by_variable_name: bool = False  # TF2 names the variable (dense/bias), not the checkpoint key


@dataclass
class ErrorLog:
    needs: list[LoggedNeed]
    unnamed: list[str]  # mismatches TensorFlow did not name a variable for


def parse_error_log(path: str) -> ErrorLog:
    """Every missing key and shape mismatch in the TensorFlow error text at ``path`` (each once)."""
    try:
        text = sources.read_bytes(path).decode("utf-8", errors="replace")  # a local file or a URL
    except OSError as exc:
        raise NotFoundError(f"{path}: cannot read the error log ({exc.strerror})") from None
    needs: dict[str, LoggedNeed] = {}
    for match in _MISSING.finditer(text):
        needs.setdefault(match.group(1), LoggedNeed(match.group(1)))
    for match in _SLICE_SPEC.finditer(text):
        name = match.group(1)
        needs[name] = LoggedNeed(name, _shape(match.group(2)), _shape(match.group(3)))
    for match in _INCOMPATIBLE.finditer(text):
        name = match.group(3)
        needs[name] = LoggedNeed(name, _shape(match.group(2)), _shape(match.group(1)), by_variable_name=True)
    unnamed = [f"lhs [{m.group(1)}] vs rhs [{m.group(2)}]" for m in _ASSIGN.finditer(text)]
    if not needs and not unnamed:
        raise NotFoundError(f"{path}: no 'Key ... not found in checkpoint' or shape mismatch lines in it "
                            "(paste the whole TensorFlow error)")
    return ErrorLog(list(needs.values()), list(dict.fromkeys(unnamed)))


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.split(r"[,\s]+", text.strip()) if part)
