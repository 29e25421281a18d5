"""The distributed-training options shared by ``train`` and ``transfer``, and ``--cluster local``.

``--cluster local`` starts the whole cluster here: this same command line is run again once per task
(``--cluster-spec FILE --job J --task I`` appended), and what the chief prints becomes this command's
output. ``--cluster TF_CONFIG`` (or ``--cluster-spec`` with ``--job``/``--task``) runs one task of a real
cluster, once per machine.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import EXIT_INTERRUPTED, CkptError, ConfigError
from ..training import cluster as clusters
from ..training.cluster import ClusterRun
from .text import plural
from .tfimport import import_tfcore

ARGV_KEY = "ckpttools.argv"  # the group stores the raw command line here (see cli/__init__.py)
LOCAL_ONLY = ("--cluster", "--workers", "--ps")  # options the launcher consumes

CLUSTER_OPTIONS = [
    click.option("--cluster", "cluster_mode", type=click.Choice(["local", "TF_CONFIG"]),
                 help="train on TensorFlow's parameter-server runtime: 'local' starts every task here; "
                      "'TF_CONFIG' runs this machine's task of the cluster in $TF_CONFIG"),
    click.option("--workers", type=int, default=2, show_default=True, help="with --cluster local: trainers"),
    click.option("--ps", "num_ps", type=int, default=1, show_default=True,
                 help="with --cluster local: parameter servers"),
    click.option("--sync", is_flag=True, help="synchronous updates (SyncReplicasOptimizer) instead of asynchronous"),
    click.option("--partition-min-bytes", type=int, metavar="BYTES",
                 help="split variables of at least BYTES across every parameter server  [default: never]"),
    click.option("--cluster-spec", type=click.Path(dir_okay=False), metavar="FILE",
                 help='JSON {"ps": ["host:port", ...], "worker": [...]}: run task --job/--task of it'),
    click.option("--job", type=click.Choice(clusters.JOBS), help="with --cluster-spec: this task's job"),
    click.option("--task", "task_index", type=int, metavar="N", help="with --cluster-spec: this task's index"),
    click.option("--cluster-timeout", type=float, default=120.0, show_default=True, metavar="SECONDS",
                 help="how long to wait for the other tasks to come up"),
]
_NAMES = ("cluster_mode", "workers", "num_ps", "sync", "partition_min_bytes", "cluster_spec", "job", "task_index",
          "cluster_timeout")


def cluster_options(command: Any) -> Any:
    """Add the distributed-training options to a click command."""
    for option in reversed(CLUSTER_OPTIONS):
        command = option(command)
    return command


@dataclass(frozen=True)
class ClusterSettings:
    """The distributed-training flags as given."""

    mode: str | None
    workers: int
    num_ps: int
    sync: bool
    partition_min_bytes: int | None
    spec_file: str | None
    job: str | None
    task: int | None
    timeout: float

    @property
    def local(self) -> bool:
        return self.mode == "local"

    def run(self) -> ClusterRun | None:
        """This process's task (TF_CONFIG or --cluster-spec), or None for a single-process run."""
        if self.mode == "TF_CONFIG":
            task = clusters.from_tf_config(clusters.tf_config_from_env())
        elif self.spec_file is not None:
            task = clusters.from_spec_file(self.spec_file, self.job, self.task)
        else:
            if self.sync or self.partition_min_bytes is not None:
                raise ConfigError("--sync and --partition-min-bytes need --cluster (local or TF_CONFIG)")
            return None
        return ClusterRun(task, self.sync, self.partition_min_bytes, self.timeout)


def begin_task(cluster: ClusterSettings, run_dir: Path, resume: bool) -> ClusterRun | None:
    """This process's task (None: one process), checked before TensorFlow loads; a parameter server serves here.

    A taken port, or a resume on another cluster shape, fails at once rather than after TensorFlow's import.
    A parameter server needs no data, plan or run directory (on a real cluster it has none): it serves the
    variables, then the process ends.
    """
    run = cluster.run()
    if run is None:
        return None
    clusters.check_port_free(run.task)
    if resume and run.task.is_chief:
        record = clusters.cluster_record(run.task.shape(), run.sync, run.partition_min_bytes)
        clusters.check_resume_cluster(run_dir, record, run.task.name)
    import_tfcore()  # TensorFlow, quietly; or exit 6 with the install hint
    if run.task.job == "ps":
        from ..tfcore.distributed import serve

        with exit_hard_on_error(run):
            serve(run)
        end_task(run)
    return run


@contextmanager
def exit_hard_on_error(run: ClusterRun | None) -> Iterator[None]:
    """In a cluster task, report an error and end the process at once.

    TensorFlow cannot stop a ``tf.distribute.Server`` (its gRPC server has no shutdown), so a task whose
    cluster is gone would hang at interpreter exit instead of exiting with the error's code.
    """
    if run is None:
        yield
        return
    try:
        yield
    except CkptError as exc:
        if click.get_current_context().find_root().params.get("debug"):
            raise
        click.echo(f"Error: {exc}", err=True)
        end_task(run, exc.exit_code)


def end_task(run: ClusterRun | None, code: int = 0) -> None:
    """End a cluster task's process now that its output is written (see ``exit_hard_on_error``)."""
    if run is None:
        if code:
            raise SystemExit(code)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def pop_cluster_settings(settings: dict[str, Any]) -> ClusterSettings:
    """Take the cluster flags out of a command's keyword arguments."""
    values = [settings.pop(name) for name in _NAMES]
    return ClusterSettings(*values)


def run_local(cluster: ClusterSettings, run_dir: Path, resume: bool, force: bool) -> int:
    """Start every task of a local cluster, relay the chief's output, return its exit code."""
    from ..training import rundir
    from ..training.launcher import run_local_cluster

    if cluster.spec_file or cluster.job or cluster.task is not None:
        raise ConfigError("--cluster local starts its own tasks: leave out --cluster-spec, --job and --task")
    def make_spec() -> dict[str, list[str]]:
        return clusters.local_cluster(cluster.workers, cluster.num_ps)

    spec = make_spec()  # checks --workers and --ps
    rundir.prepare_out_dir(run_dir, resume=resume, force=force)  # refuse before starting anything
    if resume:
        shape = {job: len(addresses) for job, addresses in spec.items()}
        clusters.check_resume_cluster(run_dir, clusters.cluster_record(shape, cluster.sync,
                                                                       cluster.partition_min_bytes))
    argv = child_argv(click.get_current_context().find_root().meta.get(ARGV_KEY, []), force)

    def started(tasks: list[str], logs: Path) -> None:
        click.echo(f"note: started {len(tasks)} tasks on 127.0.0.1 ({cluster.num_ps} ps, "
                   f"{plural(cluster.workers, 'worker')}{', synchronous' if cluster.sync else ''}); their logs are "
                   f"in {logs}{os.sep}", err=True)

    result = run_local_cluster(argv, make_spec, run_dir, on_start=started)
    click.echo(result.chief_stdout, nl=False)
    if result.returncode == EXIT_INTERRUPTED:
        said = [line for line in result.chief_log.splitlines() if line.startswith("Interrupted at step")]
        if said:  # the chief's "saved ...; continue with: ckpttools ... --resume", plus this cluster's flags
            flags = f" --cluster local --workers {cluster.workers} --ps {cluster.num_ps}"
            click.echo(said[-1] + flags + (" --sync" if cluster.sync else ""), err=True)
    return result.returncode


def child_argv(argv: Sequence[str], force: bool) -> list[str]:
    """The command line each task runs: the launcher's own options left out (and --force, already done)."""
    out: list[str] = []
    skip_value = False
    for arg in argv:
        if skip_value:
            skip_value = False
            continue
        name = arg.split("=", 1)[0]
        if name in LOCAL_ONLY:
            skip_value = "=" not in arg
            continue
        if force and arg == "--force":
            continue
        out.append(arg)
    return out
