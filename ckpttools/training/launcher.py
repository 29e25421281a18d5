"""Start a whole parameter-server cluster on this machine (``--cluster local``), wait, and stop every task.

Each task is this same command run again as a separate process with ``--cluster-spec FILE --job J
--task I`` appended, its output kept in ``RUN/logs/`` (``ps-0.log``, ``worker-1.log``...). The run
ends when the chief ends: the other tasks are then stopped (a parameter server serves until told to
stop, as in TensorFlow itself). A task that fails stops the whole cluster, and so does Ctrl-C (the
chief first gets the chance to save a checkpoint). Every child also dies with this process
(``PR_SET_PDEATHSIG`` on Linux), so nothing is left running even after ``kill -9``.

Ports are picked free, but another program can take one before its task (still importing TensorFlow)
binds it: a task that cannot start its server makes the launcher start the cluster again on other ports.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import EXIT_INTERRUPTED, ClusterError
from .cluster import SERVER_START_FAILED

LOGS = "logs"
SPEC_FILE = "cluster.json"
POLL_SECONDS = 0.2
SAVE_GRACE_SECONDS = 60  # after Ctrl-C, how long the chief may take to save its checkpoint
STOP_GRACE_SECONDS = 5  # SIGTERM, then SIGKILL
START_ATTEMPTS = 3  # clusters started, each on newly picked ports, while a task's port turns out taken


@dataclass
class Task:
    """One started task process and where its output goes."""

    job: str
    index: int
    process: subprocess.Popen
    log: Path
    stdout: Path

    @property
    def name(self) -> str:
        return f"{self.job}:{self.index}"


@dataclass
class LocalRun:
    """How a local cluster run ended: the chief's exit code and what it printed."""

    returncode: int
    chief_stdout: str
    chief_log: str  # what it printed on stderr
    logs: Path
    tasks: list[str] = field(default_factory=list)


def run_local_cluster(argv: Sequence[str], make_spec: Callable[[], dict[str, list[str]]], run_dir: Path,
                      on_start: Callable[[list[str], Path], None] | None = None) -> LocalRun:
    """Run ``ckpttools ARGV`` once per task of ``make_spec()``; return when the chief has finished.

    Raises ClusterError naming the task when one fails; on Ctrl-C returns the chief's code (130).
    ``on_start`` is called once the tasks are started (the first time, if the cluster is started again).
    """
    for attempt in range(START_ATTEMPTS - 1):
        try:
            return _run_once(argv, make_spec(), run_dir, on_start if attempt == 0 else None)
        except ClusterError as exc:
            if SERVER_START_FAILED not in str(exc):
                raise
    return _run_once(argv, make_spec(), run_dir, None)


def _run_once(argv: Sequence[str], spec: dict[str, list[str]], run_dir: Path,
              on_start: Callable[[list[str], Path], None] | None) -> LocalRun:
    logs = run_dir / LOGS
    logs.mkdir(parents=True, exist_ok=True)
    spec_path = logs / SPEC_FILE
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    order = [("ps", i) for i in range(len(spec["ps"]))] + [("worker", i) for i in range(len(spec["worker"]))]
    tasks: list[Task] = []
    try:
        for job, index in order:
            tasks.append(_start(argv, spec_path, job, index, logs))
        if on_start:
            on_start([task.name for task in tasks], logs)
        chief = next(task for task in tasks if task.job == "worker" and task.index == 0)
        return _ended(_wait(tasks, chief), chief, logs, tasks)
    except KeyboardInterrupt:
        chief = next((t for t in tasks if t.job == "worker" and t.index == 0), None)
        if chief is None:
            return LocalRun(EXIT_INTERRUPTED, "", "", logs, [t.name for t in tasks])
        return _ended(_interrupt(chief), chief, logs, tasks)
    finally:
        stop_all(tasks)


def _ended(code: int, chief: Task, logs: Path, tasks: list[Task]) -> LocalRun:
    return LocalRun(code, chief.stdout.read_text(errors="replace"), chief.log.read_text(errors="replace"), logs,
                    [task.name for task in tasks])


def _start(argv: Sequence[str], spec_path: Path, job: str, index: int, logs: Path) -> Task:
    log, stdout = logs / f"{job}-{index}.log", logs / f"{job}-{index}.out"
    command = [sys.executable, "-m", "ckpttools", *argv, "--cluster-spec", str(spec_path), "--job", job,
               "--task", str(index)]
    with open(log, "wb") as err, open(stdout, "wb") as out:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                   start_new_session=True, preexec_fn=_die_with_parent)
    return Task(job, index, process, log, stdout)


def _wait(tasks: list[Task], chief: Task) -> int:
    """Poll until the chief exits; a task that fails ends the run.

    Trainers are looked at before parameter servers: a failing trainer stops them (see ``distributed``),
    and the error to show is the trainer's.
    """
    while True:
        code = chief.process.poll()
        if code is not None:
            if code not in (0, EXIT_INTERRUPTED):
                raise _failure(chief, code)
            return code
        for task in sorted(tasks, key=lambda task: task.job == "ps"):
            code = task.process.poll()
            if code is None or code == 0 or task is chief:  # a worker or ps that is done exits 0
                continue
            raise _failure(task, code)
        time.sleep(POLL_SECONDS)


def _interrupt(chief: Task) -> int:
    """Ctrl-C: let the chief save a checkpoint (it handles SIGINT like a single-process run), then stop."""
    if chief.process.poll() is None:
        chief.process.send_signal(signal.SIGINT)
        try:
            chief.process.wait(SAVE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    code = chief.process.poll()
    return EXIT_INTERRUPTED if code in (None, 0) else code


def stop_all(tasks: Sequence[Task]) -> None:
    """SIGTERM every task still running, then SIGKILL what is left after a grace period."""
    running = [task for task in tasks if task.process.poll() is None]
    for task in running:
        _signal_group(task, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for task in running:
        try:
            task.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(task, signal.SIGKILL)
            task.process.wait()


def _signal_group(task: Task, signum: int) -> None:
    try:
        os.killpg(task.process.pid, signum)  # the task and anything it started
    except ProcessLookupError:
        pass


def _failure(task: Task, code: int) -> ClusterError:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
    reason = last_error_line(task.log)
    detail = f": {reason}" if reason else ""
    return ClusterError(f"task {task.name} {how}{detail} (log: {task.log})")


def last_error_line(log: Path) -> str:
    """The line of a task's log that says what went wrong (its ``Error:`` line, else the last line)."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("Error:")]
    line = (errors or lines or [""])[-1]
    return line if len(line) <= 300 else line[:297] + "..."


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM this child when the launcher dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
