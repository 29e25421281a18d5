"""Train a registered model on an IDX data set: checkpoints, summaries, resume, Ctrl-C.

``train(config, out)`` never prints; it reports each step to an ``on_step`` callback so a command
line (or a notebook) can draw progress its own way. A run is a pure function of its config: the
weights start from the seed, the data order and dropout masks follow from (seed, position), and the
position is saved in every checkpoint, so a run stopped at step N and resumed ends with the same
weights as one that never stopped.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ..training import datasets, rundir
from ..training.cluster import ClusterRun
from ..training.runconfig import RunConfig, save_run
from .graph import build_train
from .loop import (
    CHECKPOINT_NAME,
    Loop,
    StepCallback,
    TrainHooks,
    TrainResult,
    check_resumable,
    finished_step,
    resolve_config,
    restore,
    sigint_flag,
)
from .models import get_model
from .session import graph_session, quiet_tf_logs, tf, versions


def train(config: RunConfig, out: str | os.PathLike, *, resume: bool = False, force: bool = False,
          on_step: StepCallback | None = None, handle_sigint: bool = True,
          hooks: TrainHooks | None = None, init_only: bool = False,
          cluster: ClusterRun | None = None) -> TrainResult | None:
    """Train ``config`` into the run directory ``out``; returns once ``config``'s steps are done.

    Args:
        config: what to train (model, data, hyperparameters); ``steps``/``epochs`` give the total.
        out: run directory for ``run.json``, checkpoints and ``summaries/``.
        resume: continue the run in ``out`` from its latest checkpoint (same settings required).
        force: start over in a directory holding another run (its files are moved, never deleted).
        on_step: called after every step with a ``StepInfo``.
        handle_sigint: on Ctrl-C, save a checkpoint and return (``interrupted=True``).
        hooks: warm start and freezing for fine-tuning (see ``TrainHooks``).
        init_only: write the initial (e.g. warm-started) checkpoint at step 0 and evaluate it; no training.
        cluster: run this process's task of a parameter-server cluster (see ``distributed``); only the
            chief returns a result, the other tasks None.

    Example:
        >>> result = train(RunConfig(model="lenet5", classes=(5, 6, 7, 8, 9), steps=200), "runs/lenet")
        >>> result.checkpoint
        'runs/lenet/model.ckpt-200'
        >>> print(f"{result.test.accuracy:.3f}")   # on the bundled test images of classes 5-9
    """
    if cluster is not None:
        from .distributed import run_task

        return run_task(config, out, cluster, resume=resume, force=force, on_step=on_step,
                        handle_sigint=handle_sigint, hooks=hooks, init_only=init_only)
    began = time.perf_counter()
    spec = get_model(config.model)
    out = Path(out)
    if resume:
        rundir.check_resume(out)  # before anything is created: a failed command leaves no directory behind
    data = datasets.prepare(config.data, config.classes, config.per_class, config.validation, config.seed)
    config = resolve_config(config, data)
    if resume:
        check_resumable(out, config)
        done = finished_step(out, config.total_steps(len(data.train)))
        if done is not None and not init_only:
            return TrainResult(out, config, done, str(out / f"{CHECKPOINT_NAME}-{done}"), False, None, None, None,
                               time.perf_counter() - began, done, already_done=True)
    moved_to = rundir.prepare_out_dir(out, resume=resume, force=force)
    with graph_session(config.seed) as (graph, session):
        hooks = hooks or TrainHooks()
        ops = build_train(spec, config, len(data.train), hooks.trainable, hooks.lr_scale)
        if hooks.on_graph:
            hooks.on_graph(ops)
        saver = tf.compat.v1.train.Saver(max_to_keep=config.max_to_keep, save_relative_paths=True)
        init = tf.compat.v1.global_variables_initializer()
        graph.finalize()  # the loop must not add ops (a classic slow leak)
        with quiet_tf_logs():  # the saver's deprecation notices on restore
            restored = restore(session, saver, out) if resume else None
        if restored is None:
            session.run(init)
            if hooks.warm_start:
                hooks.warm_start(session)
        step, examples_seen = session.run([ops.global_step, ops.examples_seen])
        ops.pipeline.initialize(session, data.train.images, data.train.labels, examples_seen)
        save_run(out, config, versions())
        loop = Loop(session, ops, saver, config, data, out, on_step)
        loop.last_checkpoint = restored
        with sigint_flag(handle_sigint) as stop:
            total = int(step) if init_only else config.total_steps(len(data.train))
            interrupted = loop.run(int(step), total, stop, resumed=bool(restored))
        test = validation = None
        if not interrupted:
            test = loop.score("test", data.test)
            validation = loop.score("validation", data.validation) if data.validation is not None else None
        loop.close()
    return TrainResult(out, config, loop.step, loop.last_checkpoint, interrupted, test, validation, loop.throughput(),
                       time.perf_counter() - began, int(step) if restored else None, moved_to)
