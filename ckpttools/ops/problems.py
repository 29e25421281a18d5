"""What ``verify`` reports: problems (file, variable, what is wrong, what to do) per checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

ERROR, WARNING, NOTE = "error", "warning", "note"  # only errors make a checkpoint "not intact"

# causes: short codes a script can branch on (``--json``)
LFS_POINTER, HTML, TEXT, EMPTY = "lfs-pointer", "html", "text", "empty"
WRONG_FILE, V1_AS_V2, V2_AS_V1 = "wrong-file", "v1-as-v2", "v2-as-v1"
CORRUPT_INDEX, MISSING_SHARD, TRUNCATED, CHECKSUM = "corrupt-index", "missing-shard", "truncated", "checksum"
MIXED_SAVES, EXTRA_BYTES, BAD_ENTRY, STATE_FILE = "mixed-saves", "extra-bytes", "bad-entry", "state-file"
CORRUPT_FILE, NO_CHECKSUMS, SAVED_MODEL = "corrupt-file", "no-checksums", "saved-model"


# progress(total_bytes, description) -> a context yielding advance(nbytes); the CLI passes a bar
Progress = Callable[[int, str], AbstractContextManager[Callable[[int], None]]]


@contextmanager
def no_progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    yield lambda nbytes: None


@dataclass(frozen=True)
class Problem:
    """One thing wrong: where, what, and what to do about it."""

    file: str
    what: str
    fix: str = ""
    cause: str = CORRUPT_FILE
    variable: str | None = None
    severity: str = ERROR
    variables: tuple[str, ...] = ()  # every variable affected (lost with a shard, failing checksums...)

    def to_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "cause": self.cause, "file": self.file, "variable": self.variable,
                "what": self.what, "fix": self.fix, "variables": list(self.variables)}


@dataclass
class CheckpointReport:
    """The verdict on one checkpoint (or one file that should have been one)."""

    path: str
    prefix: str | None = None
    format: str | None = None
    problems: list[Problem] = field(default_factory=list)
    tensors: int = 0  # tensors whose stored bytes were checked
    nbytes: int = 0  # bytes whose checksums were checked
    checksums: bool = False  # True when value checksums were checked (not --quick, format has them)

    @property
    def intact(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "prefix": self.prefix, "format": self.format, "intact": self.intact,
                "tensors_checked": self.tensors, "bytes_checked": self.nbytes, "checksums_checked": self.checksums,
                "problems": [p.to_dict() for p in self.problems]}


@dataclass
class VerifyReport:
    """Everything ``ckpttools verify PATH`` found: one report per checkpoint, plus directory-level problems."""

    path: str
    checkpoints: list[CheckpointReport] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the state file, the path given
    quick: bool = False

    @property
    def intact(self) -> bool:
        return all(c.intact for c in self.checkpoints) and not any(p.severity == ERROR for p in self.problems)

    def all_problems(self) -> list[Problem]:
        return self.problems + [p for c in self.checkpoints for p in c.problems]

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "ckpttools.verify/1", "path": self.path, "quick": self.quick, "intact": self.intact,
                "problems": [p.to_dict() for p in self.problems],
                "checkpoints": [c.to_dict() for c in self.checkpoints]}
