"""Training on TensorFlow's parameter-server runtime: between-graph replication, the classic TF1 way.

Every task is a ``tf.distribute.Server``. Parameter servers (``ps``) hold the variables and serve until
every trainer says it is done, or one says it failed, or not every trainer connected in time: a cluster
that cannot train does not leave servers running. Each trainer (the chief and the workers) builds the
same graph under ``replica_device_setter``: variables go to the parameter servers round-robin, large ones
optionally split across all of them (``fixed_size_partitioner``), compute stays on the trainer. Each
trainer reads its own order of the data and draws its own dropout masks (its seed is the run's plus its
replica index). The chief initialises (or restores, or warm-starts) the variables, writes checkpoints
with a sharded Saver (one data shard per parameter server) and TensorBoard summaries; workers wait until
the chief is ready.

Asynchronous by default (each trainer applies its own updates); ``sync=True`` wraps the optimizer in
``SyncReplicasOptimizer``, which averages one gradient from each trainer per global step.

A resumed run restores the chief's latest checkpoint, so it continues from the saved weights and
step. It is not bitwise the same as an unstopped run, even synchronously: the accumulator sums the
trainers' gradients in the order they arrive, and floating-point addition is not associative;
asynchronously, which stale weights each update saw depends on timing.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ClusterError
from ..training import datasets, rundir
from ..training.cluster import (
    ClusterRun,
    ClusterTask,
    check_resume_cluster,
    cluster_record,
    server_start_error,
    wait_for_tasks,
)
from ..training.runconfig import RunConfig, save_run
from .graph import build_train
from .loop import (
    Loop,
    StepCallback,
    StopFlag,
    TrainHooks,
    TrainResult,
    check_resumable,
    resolve_config,
    restore,
    sigint_flag,
)
from .models import get_model
from .session import quiet_tf_logs, tf, versions

READY_WAIT_SECONDS = 0.5  # how often a worker (or a ps) checks whether the others are there
_CHIEF_READY = "cluster/chief_ready"  # set by the chief once variables are initialised or restored
# Queues on every parameter server: each trainer puts its name in ARRIVED once connected, and one DONE
# in ENDED when it has finished, or (failing) enough failure notes to end the ps at once.
_ARRIVED, _ENDED, _DONE = "arrived", "ended", "done"
_QUEUE_ROOM = 64  # entries per trainer in each of those queues


def run_task(config: RunConfig, out: str | os.PathLike, run: ClusterRun, *, resume: bool = False,
             force: bool = False, on_step: StepCallback | None = None, handle_sigint: bool = True,
             hooks: TrainHooks | None = None, init_only: bool = False) -> TrainResult | None:
    """Run this process's task of the cluster: serve (ps), or train (chief and workers).

    Returns the chief's TrainResult; None for the other tasks.
    """
    if run.task.job == "ps":
        serve(run)
        return None
    return _Replica(config, Path(out), run.task, run.sync, run.partition_min_bytes, hooks or TrainHooks(),
                    run.timeout).train(resume=resume, force=force, on_step=on_step, handle_sigint=handle_sigint,
                                       init_only=init_only)


def serve(run: ClusterRun) -> None:
    """A parameter server: hold the variables until every trainer has finished.

    ClusterError when a trainer does not connect within ``run.timeout`` (as trainers wait for the parameter
    servers), or says it failed: on a real cluster nobody else would stop this process.
    """
    cluster = run.task
    server = _server(cluster)
    graph = tf.Graph()
    with graph.as_default():
        arrived = _queue(_ARRIVED, cluster.task, cluster.num_replicas)
        arrivals, close, names = arrived.size(), arrived.close(), arrived.dequeue_up_to(cluster.num_replicas)
        ended = _queue(_ENDED, cluster.task, cluster.num_replicas).dequeue_many(cluster.num_replicas)
    with tf.compat.v1.Session(server.target, graph=graph, config=_session_config(cluster)) as session:
        deadline = time.monotonic() + run.timeout
        while session.run(arrivals) < cluster.num_replicas:
            if time.monotonic() > deadline:
                session.run(close)  # now the names that did arrive can be read (the queue holds fewer)
                came = {name.decode() for name in session.run(names)} if session.run(arrivals) else set()
                missing = ", ".join(sorted(set(cluster.trainers()) - came))
                raise ClusterError(f"task {cluster.name}: task {missing} did not connect within {run.timeout:g} s; "
                                   f"check that it is running, or give --cluster-timeout more time")
            time.sleep(READY_WAIT_SECONDS)
        endings = [ending.decode() for ending in session.run(ended)]
    failed = [ending for ending in endings if ending != _DONE]
    if failed:
        raise ClusterError(f"task {cluster.name}: stopped because {failed[0]}")


@dataclass
class _Built:
    """A trainer's finalized graph and the handles the session needs."""

    graph: Any
    ops: Any  # TrainOps
    saver: Any
    init: Any
    ready: Any  # the variables (and the chief's ready marker) still uninitialised
    marker: Any
    sync_optimizer: Any  # SyncReplicasOptimizer, or None when asynchronous
    arrive: list[Any]  # one "this trainer is connected" enqueue per parameter server
    end: list[Any]  # one enqueue of ``endings`` per parameter server
    endings: Any  # placeholder: DONE, or failure notes
    sync_start_tokens: Any = None  # chief, synchronous: the first step's tokens
    sync_tokens: Any = None  # chief, synchronous: one token per trainer, stamped with the current step
    sync_queue_size: Any = None  # chief, synchronous: tokens waiting in the token queue


class _Replica:
    """One trainer's graph, session and loop."""

    def __init__(self, config: RunConfig, out: Path, cluster: ClusterTask, sync: bool,
                 partition_min_bytes: int | None, hooks: TrainHooks, timeout: float) -> None:
        self.config, self.out, self.cluster, self.sync = config, out, cluster, sync
        self.partition_min_bytes, self.hooks, self.timeout = partition_min_bytes, hooks, timeout

    def train(self, *, resume: bool, force: bool, on_step: StepCallback | None, handle_sigint: bool,
              init_only: bool) -> TrainResult | None:
        began = time.perf_counter()
        cluster, chief = self.cluster, self.cluster.is_chief
        moved_to = rundir.prepare_out_dir(self.out, resume=resume, force=force) if chief else None
        config = self.config
        data = datasets.prepare(config.data, config.classes, config.per_class, config.validation, config.seed)
        config = resolve_config(config, data)
        if chief and resume:
            check_resumable(self.out, config)
            check_resume_cluster(self.out, self.record(), cluster.name)
        server = _server(cluster)
        built = self._build(config, len(data.train))
        with built.graph.as_default():
            session = self._connect(server, built)
            ending = _DONE
            try:
                with _lost_cluster(cluster):
                    result = self._train(session, built, config, data, resume, on_step, handle_sigint, init_only)
            except BaseException as exc:  # the parameter servers stop too: nobody would stop them on a real cluster
                ending = _failure_note(cluster, exc)
                raise
            finally:
                self._finish(session, built, ending)
        if result is None:
            return None
        return dataclasses.replace(result, seconds=time.perf_counter() - began, moved_to=moved_to)

    def _train(self, session: Any, built: _Built, config: RunConfig, data: Any, resume: bool,
               on_step: StepCallback | None, handle_sigint: bool, init_only: bool) -> TrainResult | None:
        """Initialise (chief) or wait for the chief (workers), then train; the chief's result."""
        cluster, chief = self.cluster, self.cluster.is_chief
        restored = self._initialise(session, built, resume) if chief else self._wait_for_chief(session, built)
        step, seen = (int(v) for v in session.run([built.ops.global_step, built.ops.examples_seen]))
        built.ops.pipeline.initialize(session, data.train.images, data.train.labels, seen // cluster.num_replicas)
        total = step if init_only else config.total_steps(len(data.train))
        with sigint_flag(handle_sigint and chief) as stop:
            if not chief:
                _worker_loop(session, built.ops, total, stop)
                return None
            save_run(self.out, config, versions(), cluster=self.record())
            loop = _ChiefLoop(session, built.ops, built.saver, config, data, self.out, on_step)
            loop.last_checkpoint = restored
            interrupted = loop.run(step, total, stop, resumed=bool(restored))
        test, validation = (None, None) if interrupted else _scores(loop, data)
        loop.close()
        return TrainResult(self.out, config, loop.step, loop.last_checkpoint, interrupted, test, validation,
                           loop.throughput(), 0.0, step if restored else None)

    def _connect(self, server: Any, built: _Built) -> Any:
        """A session on this task's server, once every parameter server accepts connections; tell them.

        Checked with plain sockets first: TensorFlow itself would wait for an absent task forever.
        """
        wait_for_tasks(self.cluster, "ps", self.timeout)
        session = tf.compat.v1.Session(server.target, graph=built.graph, config=_session_config(self.cluster))
        with _lost_cluster(self.cluster):
            session.run(built.arrive)
        return session

    def record(self) -> dict[str, Any]:
        return cluster_record(self.cluster.shape(), self.sync, self.partition_min_bytes)

    def _build(self, config: RunConfig, num_train: int) -> _Built:
        cluster = self.cluster
        graph = tf.Graph()
        with graph.as_default(), quiet_tf_logs():  # SyncReplicasOptimizer's deprecation notices
            config = _own_seed(config, cluster)
            tf.compat.v1.set_random_seed(config.seed)
            setter = tf.compat.v1.train.replica_device_setter(
                cluster=tf.train.ClusterSpec(cluster.spec()), worker_device=f"/job:{cluster.job}/task:{cluster.task}")
            sync_optimizer: list[Any] = []
            wrap = (lambda optimizer: _sync_optimizer(optimizer, cluster, sync_optimizer)) if self.sync else None
            with tf.compat.v1.device(setter), _partitioned(cluster.num_ps, self.partition_min_bytes):
                ops = build_train(get_model(config.model), config, num_train, self.hooks.trainable,
                                  self.hooks.lr_scale, wrap)
                if self.hooks.on_graph:
                    self.hooks.on_graph(ops)
                saver = tf.compat.v1.train.Saver(max_to_keep=config.max_to_keep, save_relative_paths=True,
                                                 sharded=True)
                init = tf.compat.v1.global_variables_initializer()
                marker = tf.compat.v1.get_variable(_CHIEF_READY, [], tf.bool, trainable=False,
                                                   initializer=tf.compat.v1.constant_initializer(True),
                                                   collections=[])  # neither saved nor in global init
                ready = None if cluster.is_chief else tf.compat.v1.report_uninitialized_variables(
                    tf.compat.v1.global_variables() + [marker])
            endings = tf.compat.v1.placeholder(tf.string, [None], name="cluster_endings")
            arrive = [_queue(_ARRIVED, index, cluster.num_replicas).enqueue(cluster.name)
                      for index in range(cluster.num_ps)]
            end = [_queue(_ENDED, index, cluster.num_replicas).enqueue_many([endings])
                   for index in range(cluster.num_ps)]
            built = _Built(graph, ops, saver, init, ready, marker, (sync_optimizer or [None])[0], arrive, end,
                           endings)
            if built.sync_optimizer is not None:  # its own readiness check, which we do ourselves
                getattr(built.sync_optimizer.ready_for_local_init_op, "mark_used", lambda: None)()
            if built.sync_optimizer is not None and cluster.is_chief:
                with tf.compat.v1.device(setter):
                    built.sync_start_tokens = built.sync_optimizer.get_init_tokens_op()
                    built.sync_tokens = built.sync_optimizer.get_init_tokens_op(cluster.num_replicas)
                    built.sync_queue_size = built.sync_optimizer._sync_token_queue.size()
            graph.finalize()
        return built

    def _initialise(self, session: Any, built: _Built, resume: bool) -> str | None:
        """Chief: restore or initialise (then warm-start) the variables, then tell the workers to start."""
        options = tf.compat.v1.RunOptions(timeout_in_ms=int(self.timeout * 1000))
        sync_optimizer = built.sync_optimizer
        try:
            restored = restore(session, built.saver, self.out) if resume else None
            if restored is None:
                session.run(built.init, options=options)
                if self.hooks.warm_start:
                    self.hooks.warm_start(session)
        except tf.errors.DeadlineExceededError as exc:
            raise ClusterError(f"task {self.cluster.name}: parameter servers unreachable after {self.timeout:g} s "
                               f"({_first_line(exc)})") from None
        if sync_optimizer is not None:
            session.run(sync_optimizer.chief_init_op)
            session.run(built.sync_start_tokens)
            coordinator = tf.train.Coordinator()
            sync_optimizer.get_chief_queue_runner().create_threads(session, coord=coordinator, daemon=True,
                                                                   start=True)
            threading.Thread(target=_refill_tokens, args=(session, built, coordinator), daemon=True).start()
        session.run(built.marker.initializer)
        return restored

    def _wait_for_chief(self, session: Any, built: _Built) -> None:
        """Worker: wait until the chief has initialised every variable (and the ready marker)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                if not session.run(built.ready).size:
                    break
            except tf.errors.UnavailableError:
                pass  # a parameter server is not up yet
            if time.monotonic() > deadline:
                raise ClusterError(f"task {self.cluster.name}: the chief did not initialise the variables within "
                                   f"{self.timeout:g} s")
            time.sleep(READY_WAIT_SECONDS)
        if built.sync_optimizer is not None:
            session.run(built.sync_optimizer.local_step_init_op)

    def _finish(self, session: Any, built: _Built, ending: str) -> None:
        """Release workers blocked on a synchronous step; tell the parameter servers this trainer is done.

        A failure note is sent once per trainer, so that the parameter servers stop at once.
        """
        notes = [ending] * (1 if ending == _DONE else self.cluster.num_replicas)

        def signal_done() -> None:
            try:
                if built.sync_optimizer is not None and self.cluster.is_chief:
                    session.run(built.sync_tokens)
                session.run(built.end, {built.endings: notes})
            except tf.errors.OpError:
                pass  # the cluster is already going away

        thread = threading.Thread(target=signal_done, daemon=True)  # never hang on a dead cluster
        thread.start()
        thread.join(10)
        # The session is left open: closing it waits for the synchronous queue runner, blocked for good on
        # gradients that will not come. The process ends right after (the CLI exits hard: ``end_task``).


class _ChiefLoop(Loop):
    """The single-process loop, reading the global step that every trainer advances."""

    def step_after(self, next_step: int) -> int:
        return int(self.session.run(self.ops.global_step))

    def checkpoint_due(self) -> bool:
        every = self.config.checkpoint_every
        return self.step // every > (self.saved_step() or 0) // every


def _scores(loop: _ChiefLoop, data: Any) -> tuple[Any, Any]:
    validation = loop.score("validation", data.validation) if data.validation is not None else None
    return loop.score("test", data.test), validation


def _worker_loop(session: Any, ops: Any, total: int, stop: StopFlag) -> None:
    step = int(session.run(ops.global_step))
    while step < total and not stop.requested:
        _, step = session.run([ops.train_op, ops.global_step])


def _sync_optimizer(optimizer: Any, cluster: ClusterTask, keep: list[Any]) -> Any:
    replicas = cluster.num_replicas
    wrapped = tf.compat.v1.train.SyncReplicasOptimizer(optimizer, replicas_to_aggregate=replicas,
                                                       total_num_replicas=replicas)
    keep.append(wrapped)
    return wrapped


@contextmanager
def _partitioned(num_ps: int, min_bytes: int | None) -> Iterator[None]:
    """Split variables of at least ``min_bytes`` into ``num_ps`` slices along their first axis."""
    if min_bytes is None or num_ps < 2:
        yield
        return
    fixed = tf.compat.v1.fixed_size_partitioner(num_ps)

    def partitioner(shape: Any, dtype: Any) -> list[int]:
        if shape.num_elements() * dtype.size < min_bytes or shape[0] < num_ps:
            return [1] * shape.ndims
        return fixed(shape, dtype=dtype)

    with tf.compat.v1.variable_scope(tf.compat.v1.get_variable_scope(), partitioner=partitioner):
        yield


def _queue(kind: str, ps_index: int, num_replicas: int) -> Any:
    """Parameter server ``ps_index``'s queue of trainers' names (ARRIVED) or endings (ENDED), shared by name.

    Room to spare, so no enqueue waits: a failing trainer's notes come on top of others' endings, and a
    trainer restarted against running parameter servers arrives again (arrivals are counted, not taken).
    """
    with tf.device(f"/job:ps/task:{ps_index}"):
        return tf.queue.FIFOQueue(_QUEUE_ROOM * num_replicas, tf.string, shapes=[],
                                  shared_name=f"ckpttools_{kind}_{ps_index}", name=f"{kind}_queue_{ps_index}")


@contextmanager
def _lost_cluster(cluster: ClusterTask) -> Iterator[None]:
    """TensorFlow's errors for a task gone away, as one ClusterError naming this task."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as exc:
        raise ClusterError(f"task {cluster.name}: lost the cluster ({_first_line(exc)})") from exc


def _failure_note(cluster: ClusterTask, exc: BaseException) -> str:
    """What a failing trainer tells the parameter servers (they say it when they stop)."""
    text = str(exc).strip()
    return f"task {cluster.name} failed: {text.splitlines()[0] if text else type(exc).__name__}"[:300]


def _own_seed(config: RunConfig, cluster: ClusterTask) -> RunConfig:
    """A trainer's own data order and dropout masks: the run's seed plus its replica index (the chief: the run's)."""
    return dataclasses.replace(config, seed=config.seed + cluster.replica_index)


def _server(cluster: ClusterTask) -> Any:
    try:
        return tf.distribute.Server(tf.train.ClusterSpec(cluster.spec()), job_name=cluster.job,
                                    task_index=cluster.task, config=_session_config(cluster))
    except (tf.errors.UnknownError, tf.errors.InvalidArgumentError, tf.errors.InternalError) as exc:
        raise server_start_error(cluster, _first_line(exc)) from None


def _session_config(cluster: ClusterTask) -> Any:
    """Each trainer talks only to the parameter servers and itself, a parameter server only to itself.

    Without filters a session waits until every task of the cluster answers, for good if one never starts.
    """
    own = f"/job:{cluster.job}/task:{cluster.task}"
    return tf.compat.v1.ConfigProto(device_filters=[own] if cluster.job == "ps" else ["/job:ps", own])


def _refill_tokens(session: Any, built: _Built, coordinator: Any, every: float = 2.0) -> None:
    """Chief, synchronous: when no step was made and the token queue is empty, add one token per trainer.

    ``SyncReplicasOptimizer`` hands out one token per gradient, but drops gradients computed from a stale
    step; each drop costs a token for good, and once the queue runs dry every trainer waits for a token
    while the accumulators wait for gradients. Fresh tokens (stamped with the current step) end that wait.
    """
    last = None
    while not coordinator.should_stop():
        time.sleep(every)
        try:
            step, waiting = session.run([built.ops.global_step, built.sync_queue_size])
            if step == last and waiting == 0:
                session.run(built.sync_tokens)
            last = step
        except tf.errors.OpError:
            return  # the cluster is going away


def _first_line(exc: Exception) -> str:
    """The line of a TensorFlow error that says what happened (not "Graph execution error:")."""
    lines = [line.strip() for line in str(getattr(exc, "message", exc)).strip().splitlines() if line.strip()]
    useful = [line for line in lines if not line.endswith(":") and not line.startswith(("Detected at", "File ", "="))]
    return ((useful or lines or [type(exc).__name__])[0])[:300]
