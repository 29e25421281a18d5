"""Cluster shapes for distributed training: which tasks exist, and which one this process is.

TensorFlow's parameter-server runtime names every process ``/job:NAME/task:INDEX``. A cluster spec
maps each job to its tasks' ``host:port`` addresses; this process is one task of it. The spec comes
from one of the places TensorFlow's own tools read it:

* ``TF_CONFIG`` (environment): ``{"cluster": {"ps": [...], "worker": [...]}, "task": {"type": "worker",
  "index": 0}}``; a ``chief`` job, when present, is the chief, else ``worker:0`` is;
* a JSON file (``--cluster-spec FILE``) holding ``{"ps": [...], "worker": [...]}``, with ``--job``/``--task``;
* ``local_cluster(workers, ps)``: every task on 127.0.0.1 at free ports, for ``--cluster local``.

No TensorFlow here: the launcher and the checks run before TensorFlow is imported.
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ClusterError, ConfigError, NotFoundError
from .runconfig import load_cluster

JOBS = ("chief", "worker", "ps")
TRAINING_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class ClusterTask:
    """One task of a cluster: the spec, and which task this process runs."""

    jobs: dict[str, tuple[str, ...]]  # job name -> task addresses, e.g. {"ps": ("host:2222",), ...}
    job: str
    task: int

    def __post_init__(self) -> None:
        check_spec(self.jobs)
        if self.job not in self.jobs:
            raise ConfigError(f"--job {self.job}: the cluster has no such job (it has {', '.join(self.jobs)})")
        if not 0 <= self.task < len(self.jobs[self.job]):
            raise ConfigError(f"--task {self.task}: job '{self.job}' has tasks 0..{len(self.jobs[self.job]) - 1}")

    @property
    def name(self) -> str:
        """``worker:1`` style, as log lines and errors name tasks."""
        return f"{self.job}:{self.task}"

    @property
    def num_ps(self) -> int:
        return len(self.jobs.get("ps", ()))

    @property
    def num_replicas(self) -> int:
        """Processes that train: the chief (if a separate job) and the workers."""
        return sum(len(self.jobs.get(job, ())) for job in TRAINING_JOBS)

    def trainers(self) -> list[str]:
        """Every trainer's name (``chief:0``, ``worker:0``...): what a parameter server waits for."""
        return [f"{job}:{index}" for job in TRAINING_JOBS for index in range(len(self.jobs.get(job, ())))]

    @property
    def is_chief(self) -> bool:
        """The chief initialises, saves checkpoints and writes summaries."""
        if "chief" in self.jobs:
            return self.job == "chief"
        return self.job == "worker" and self.task == 0

    @property
    def replica_index(self) -> int:
        """0 for the chief, then the workers in order: seeds and data shards follow it."""
        offset = 1 if "chief" in self.jobs and self.job == "worker" else 0
        return self.task + offset if self.job != "chief" else 0

    def shape(self) -> dict[str, int]:
        """How many tasks each job has: what ``run.json`` records and ``--resume`` checks."""
        return {job: len(addresses) for job, addresses in self.jobs.items()}

    def spec(self) -> dict[str, list[str]]:
        return {job: list(addresses) for job, addresses in self.jobs.items()}


@dataclass(frozen=True)
class ClusterRun:
    """How to train on a cluster: this process's task and the distributed settings."""

    task: ClusterTask
    sync: bool = False  # SyncReplicasOptimizer: one averaged update per global step
    partition_min_bytes: int | None = None  # split variables this large across every ps; None: never
    timeout: float = 120.0  # seconds to wait for the other tasks to come up


def cluster_record(shape: dict[str, int], sync: bool, partition_min_bytes: int | None) -> dict[str, Any]:
    """What ``run.json`` records of a distributed run, and what ``--resume`` must match."""
    return {"shape": dict(shape), "sync": sync, "partition_min_bytes": partition_min_bytes}


def check_resume_cluster(out: Path, cluster: dict[str, Any], task: str | None = None) -> None:
    """``--resume`` needs the cluster the run was started with (its variables live on those ps tasks).

    ``task`` names the task refusing (``worker:0``) when one process of a cluster checks it.
    """
    recorded = load_cluster(out) or {}
    if {key: recorded.get(key) for key in cluster} != cluster:
        was = describe_cluster(recorded) if recorded else "one process"
        who = f"task {task}: " if task else ""
        raise ConfigError(f"{who}--resume: {out} was trained on {was}, not {describe_cluster(cluster)}; resume it "
                          f"on the same cluster shape")


def describe_cluster(record: dict[str, Any]) -> str:
    """``2 ps, 2 workers, synchronous`` from a run.json cluster record."""
    shape = record.get("shape") or {}
    words = [f"{count} {job}{'s' if count != 1 and job != 'ps' else ''}" for job, count in sorted(shape.items())]
    if record.get("sync"):
        words.append("synchronous")
    if record.get("partition_min_bytes") is not None:
        words.append(f"variables of {record['partition_min_bytes']} bytes or more partitioned")
    return ", ".join(words)


def check_spec(jobs: Mapping[str, object]) -> None:
    """A spec must have parameter servers and something that trains, each a list of ``host:port``."""
    unknown = sorted(set(jobs) - set(JOBS))
    if unknown:
        raise ConfigError(f"cluster spec: unknown job {', '.join(unknown)} (jobs are {', '.join(JOBS)})")
    if not jobs.get("ps"):
        raise ConfigError("cluster spec: no 'ps' tasks; parameter-server training needs at least one")
    if not any(jobs.get(job) for job in TRAINING_JOBS):
        raise ConfigError("cluster spec: no 'worker' (or 'chief') tasks")
    for job, addresses in jobs.items():
        if not isinstance(addresses, (list, tuple)) or not all(_is_address(a) for a in addresses):
            raise ConfigError(f"cluster spec: job '{job}' must be a list of 'host:port' strings; "
                              f"received {_short(addresses)}")
    if len(jobs.get("chief", ())) > 1:
        raise ConfigError("cluster spec: at most one 'chief' task")


def from_tf_config(text: str | None) -> ClusterTask:
    """The task described by a ``TF_CONFIG`` value (the environment variable TensorFlow's tools read)."""
    if not text:
        raise ConfigError("--cluster TF_CONFIG: the TF_CONFIG environment variable is not set")
    try:
        document = json.loads(text)
        cluster, task = document["cluster"], document["task"]
        job, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"TF_CONFIG is not a cluster description ({type(exc).__name__}: {exc}); expected "
                          '{"cluster": {"ps": [...], "worker": [...]}, "task": {"type": "worker", "index": 0}}'
                          ) from None
    return _task(cluster, job, index, "TF_CONFIG")


def from_spec_file(path: str, job: str | None, task: int | None) -> ClusterTask:
    """The task ``job:task`` of the cluster spec in the JSON file ``path``."""
    if job is None or task is None:
        raise ConfigError("--cluster-spec needs --job and --task (which task this process is)")
    try:
        with open(path, encoding="utf-8") as f:
            cluster = json.load(f)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such cluster spec file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a JSON cluster spec ({exc})") from None
    return _task(cluster, job, task, path)


def local_cluster(workers: int, ps: int, host: str = "127.0.0.1") -> dict[str, list[str]]:
    """A spec with ``workers`` workers and ``ps`` parameter servers on ``host``, each at a free port."""
    if workers < 1 or ps < 1:
        raise ConfigError(f"--workers and --ps must be at least 1; received --workers {workers} --ps {ps}")
    ports = free_ports(workers + ps, host)
    return {"ps": [f"{host}:{port}" for port in ports[:ps]],
            "worker": [f"{host}:{port}" for port in ports[ps:]]}


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free now, below the kernel's ephemeral range where the system allows it.

    The tasks bind them seconds later (after importing TensorFlow). A port from the ephemeral range
    could meanwhile become the local end of some outgoing connection (the tasks' own gRPC clients make
    many), and the task's server would then not be reachable; ports below that range are never handed
    out that way.
    """
    low, _ = _ephemeral_range()
    candidates = random.Random().sample(range(_LOWEST_PORT, low), min(_TRIES, max(0, low - _LOWEST_PORT)))
    sockets: list[socket.socket] = []
    try:
        for port in candidates + [0] * count:  # port 0: let the kernel choose, if too few were free below
            if len(sockets) == count:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


_LOWEST_PORT = 20000
_TRIES = 200


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux's default where unreadable)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(value) for value in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


SERVER_START_FAILED = "cannot start a server at"  # how the error reads; the launcher retries on other ports


def server_start_error(task: ClusterTask, reason: str) -> ClusterError:
    """The one-line error of a task whose server cannot start (its port taken, an address not of this machine)."""
    return ClusterError(f"task {task.name}: {SERVER_START_FAILED} {task.jobs[task.job][task.task]} ({reason})")


def check_port_free(task: ClusterTask) -> None:
    """Fail now, not after TensorFlow's import, when this task's port is taken.

    TensorFlow's server listens on every interface at the port of this task's address, so that is what is
    tried here. A port that frees up in between is no harm; one taken in between fails in TensorFlow.
    """
    port = int(task.jobs[task.job][task.task].rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # SO_REUSEADDR, as the server sets it: a closed connection's TIME_WAIT does not make the port taken
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError as exc:
            raise server_start_error(task, f"port {port}: {exc.strerror or exc}") from None


def wait_for_tasks(task: ClusterTask, job: str, timeout: float) -> None:
    """Wait until every task of ``job`` accepts TCP connections; ClusterError naming the first that does not."""
    deadline = time.monotonic() + timeout
    for index, address in enumerate(task.jobs.get(job, ())):
        host, _, port = address.rpartition(":")
        while True:
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
                    break
            except OSError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(f"task {task.name}: task {job}:{index} at {address} is unreachable "
                                       f"({exc.strerror or exc}) after {timeout:g} s; check that it is running, "
                                       f"or give --cluster-timeout more time") from None
                time.sleep(0.2)


def _task(cluster: object, job: object, index: int, source: str) -> ClusterTask:
    if not isinstance(cluster, dict):
        raise ConfigError(f"{source}: the cluster must be a JSON object of job -> addresses")
    try:
        jobs = {str(name): tuple(addresses) for name, addresses in cluster.items()}
    except TypeError:
        raise ConfigError(f"{source}: each job must be a list of 'host:port' strings") from None
    return ClusterTask(jobs, str(job), index)


def _is_address(value: object) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def _short(value: object) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def tf_config_from_env() -> str | None:
    return os.environ.get("TF_CONFIG")
