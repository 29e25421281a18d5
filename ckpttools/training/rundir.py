"""Run directories: make sure a run may write where it is told to, and never destroy an older run.

A directory "holds a run" when it has a ``run.json``, a ``checkpoint`` state file or checkpoint files.
Training there needs ``resume`` (continue that run) or ``force`` (start a new one: the old run's files
are moved aside into ``replaced-<time>/``, not deleted).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path

from ..errors import NotFoundError, OutputError
from .runconfig import RUN_FILE, load_run

SUMMARIES = "summaries"
_RUN_FILE_PATTERNS = (RUN_FILE, "checkpoint", "model.ckpt-*", SUMMARIES, "events.out.tfevents.*")
_STEP = re.compile(r"\.ckpt-(\d+)\.index$")


def run_files(run_dir: str | os.PathLike) -> list[Path]:
    """The files and folders in ``run_dir`` that belong to a training run (ours or another tool's)."""
    run_dir = Path(run_dir)
    return sorted({path for pattern in _RUN_FILE_PATTERNS for path in run_dir.glob(pattern)})


def latest_step(run_dir: str | os.PathLike) -> int | None:
    """The highest step among ``model.ckpt-STEP`` checkpoints in ``run_dir``, if any."""
    steps = [int(m[1]) for p in Path(run_dir).glob("*.ckpt-*.index") if (m := _STEP.search(p.name))]
    return max(steps, default=None)


def prepare_out_dir(out: str | os.PathLike, *, resume: bool = False, force: bool = False) -> Path | None:
    """Create ``out`` if needed and check it can take this run; returns where old files were moved, if anywhere.

    Raises OutputError when ``out`` cannot be written or already holds a run (without ``resume``/``force``),
    NotFoundError when ``resume`` finds no run to continue.
    """
    out = Path(out)
    if resume:
        check_resume(out)
    _make_writable_dir(out)
    existing = run_files(out)
    if resume:
        return None
    if not existing:
        return None
    if not force:
        raise OutputError(f"{out} already holds a run ({describe_run(out)}); pass --resume to continue it, "
                          f"--force to start a new one (the old files are moved to {out}/replaced-<time>/), "
                          f"or choose another --out")
    return _move_aside(out, existing)


def check_resume(out: str | os.PathLike) -> None:
    """NotFoundError unless ``out`` holds a run to resume; creates nothing."""
    if not (Path(out) / RUN_FILE).is_file():
        raise NotFoundError(f"{out}: no run to resume (no {RUN_FILE}); start it without --resume")


def describe_run(run_dir: Path) -> str:
    """A few words on what a run directory holds: its model and its last checkpoint."""
    parts = []
    if (run_dir / RUN_FILE).is_file():
        try:
            parts.append(f"model {load_run(run_dir).model}")
        except Exception:  # a damaged run.json still counts as a run; describe what we can
            parts.append(f"unreadable {RUN_FILE}")
    step = latest_step(run_dir)
    parts.append(f"last checkpoint at step {step}" if step is not None else "no checkpoints")
    return ", ".join(parts)


def _make_writable_dir(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except FileExistsError:
        raise OutputError(f"{out}: exists and is not a directory; choose another --out") from None
    except OSError as exc:
        raise OutputError(f"{out}: cannot write a run here ({exc.strerror or exc}); "
                          f"choose another --out") from None


def _move_aside(out: Path, files: list[Path]) -> Path:
    target = out / time.strftime("replaced-%Y%m%d-%H%M%S")
    suffix = 1
    while target.exists():
        suffix += 1
        target = out / (time.strftime("replaced-%Y%m%d-%H%M%S") + f"-{suffix}")
    target.mkdir()
    for path in files:
        path.rename(target / path.name)
    return target
