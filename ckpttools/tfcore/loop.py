"""The training loop shared by one-process training (``train``) and the tasks of a cluster (``distributed``):
what a run reports (``StepInfo``, ``Score``, ``TrainResult``), fine-tuning hooks, the step loop with its
summaries and checkpoints, resuming, and Ctrl-C."""


from __future__ import annotations

import dataclasses
import math
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, DataError
from ..training import datasets, rundir
from ..training.datasets import DataSet
from ..training.runconfig import RunConfig, load_run
from .evaluate import run_eval
from .graph import TrainOps
from .session import quiet_tf_logs, tf
from .summaries import scalar_event

CHECKPOINT_NAME = "model.ckpt"  # files are model.ckpt-STEP.index / .data-00000-of-00001 / .meta
WARMUP_STEPS = 5  # left out of the throughput figure: graph optimisation and caches settle first
RATE_WINDOW = 20  # steps averaged for the images/s shown while training


@dataclass(frozen=True)
class StepInfo:
    """One finished training step, as reported to ``on_step``."""

    step: int
    total_steps: int
    epoch: int  # 1-based: the epoch the step's last example belongs to
    epochs: int  # how many epochs the run touches
    epoch_fraction: float  # how far through ``epoch`` (0, 1]
    loss: float
    accuracy: float  # on this training batch
    learning_rate: float
    images_per_sec: float


@dataclass(frozen=True)
class Score:
    """Accuracy and mean cross-entropy on one split."""

    accuracy: float
    loss: float


@dataclass(frozen=True)
class TrainResult:
    """How a call to ``train`` ended."""

    run_dir: Path
    config: RunConfig  # as resolved from the data (num_classes, input_shape, class_names)
    step: int
    checkpoint: str | None  # prefix of the last checkpoint written or restored
    interrupted: bool  # stopped by Ctrl-C (a checkpoint was saved at ``step``)
    test: Score | None  # None when interrupted
    validation: Score | None
    images_per_sec: float | None  # steady-state training throughput, None for very short runs
    seconds: float
    resumed_from: int | None = None
    moved_to: Path | None = None  # where --force moved an older run's files
    already_done: bool = False  # resume of a run already at its last step: nothing trained or evaluated


StepCallback = Callable[[StepInfo], None]


@dataclass(frozen=True)
class TrainHooks:
    """Extension points for fine-tuning (``transfer`` builds on these); all optional.

    ``on_graph(ops)`` runs once the graph is built and may add ops (e.g. assignments for a warm start);
    ``warm_start(session)`` runs after fresh variables are initialised, never on ``resume`` (the
    checkpoint wins); ``trainable(variables)`` returns the variables the optimizer may change, so the
    others stay frozen. Pass the same ``trainable`` when resuming: the optimizer slots must match.
    ``lr_scale(variable)`` gives a variable's learning-rate multiplier (1.0 = the run's rate).
    """

    on_graph: Callable[[TrainOps], None] | None = None
    warm_start: Callable[[Any], None] | None = None
    trainable: Callable[[list[Any]], list[Any]] | None = None
    lr_scale: Callable[[Any], float] | None = None


def resolve_config(config: RunConfig, data: DataSet) -> RunConfig:
    """Fill in what the data decides: number of classes, input shape, class names, absolute data path."""
    num_classes = config.num_classes or data.num_classes
    if num_classes < data.num_classes:
        raise ConfigError(f"num_classes={num_classes} but the data has {data.num_classes} classes")
    input_shape = tuple(config.input_shape) if config.input_shape else data.image_shape
    if input_shape != data.image_shape:
        raise DataError(f"{data.source}: images are {'x'.join(map(str, data.image_shape))}, but input_shape is "
                        f"{'x'.join(map(str, input_shape))}")
    names = data.class_names + tuple(str(label) for label in range(data.num_classes, num_classes))
    data_dir = str(Path(config.data).resolve()) if config.data is not None else None
    return dataclasses.replace(config, num_classes=num_classes, input_shape=input_shape, class_names=names,
                               data=data_dir)


class Loop:
    """The step loop and its bookkeeping: summaries, checkpoints, throughput."""

    def __init__(self, session: Any, ops: TrainOps, saver: Any, config: RunConfig, data: DataSet, out: Path,
                 on_step: StepCallback | None) -> None:
        self.session, self.ops, self.saver, self.config, self.data, self.out = session, ops, saver, config, data, out
        self.on_step = on_step
        self.step = 0
        self.last_checkpoint: str | None = None
        self.writers: dict[str, Any] = {}
        self.durations: deque[float] = deque(maxlen=RATE_WINDOW)
        self.steady_images, self.steady_seconds, self.timed_steps = 0, 0.0, 0
        self.signatures: set[frozenset[str]] = set()

    def run(self, step: int, total: int, stop: StopFlag, resumed: bool) -> bool:
        """Train from ``step`` to ``total``; True when Ctrl-C stopped it early."""
        self.step = step
        train_writer = self.writer("train")
        if resumed:  # TensorBoard drops events a crashed run wrote after this step
            train_writer.add_session_log(tf.compat.v1.SessionLog(status=tf.compat.v1.SessionLog.START), step)
        clock = time.perf_counter()
        while self.step < total and not stop.requested:
            self.train_step(total, clock)
            clock = time.perf_counter()
            if self.checkpoint_due() and self.step < total:
                self.save()
                self.score("test", self.data.test)
                clock = time.perf_counter()  # checkpoints are not training time
        if self.step != self.saved_step():
            self.save()
        return stop.requested

    def train_step(self, total: int, clock: float) -> None:
        ops, config, next_step = self.ops, self.config, self.step + 1
        fetches = {"train": ops.train_op, "loss": ops.loss, "accuracy": ops.accuracy, "lr": ops.learning_rate}
        if next_step % config.summary_every == 0 or next_step == total:
            fetches["scalars"] = ops.scalar_summary
        if next_step % config.histogram_every == 0 or next_step == total:
            fetches["details"] = ops.detail_summary
        values = self.session.run(fetches)
        self.step = self.step_after(next_step)
        for key in ("scalars", "details"):
            if key in values:
                self.writer("train").add_summary(values[key], self.step)
        signature = frozenset(fetches)
        self.record_time(time.perf_counter() - clock, warm=signature in self.signatures)
        self.signatures.add(signature)
        if self.on_step:
            self.on_step(self.step_info(total, values))

    def step_after(self, next_step: int) -> int:
        """The global step after a training step (other processes may advance it too: see ``distributed``)."""
        return next_step

    def checkpoint_due(self) -> bool:
        return self.step % self.config.checkpoint_every == 0

    def step_info(self, total: int, values: dict[str, Any]) -> StepInfo:
        n, seen = len(self.data.train), self.step * self.config.batch_size
        epoch = max(1, math.ceil(seen / n))
        rate = self.config.batch_size * len(self.durations) / max(sum(self.durations), 1e-9)
        return StepInfo(self.step, total, epoch, math.ceil(total * self.config.batch_size / n),
                        (seen - (epoch - 1) * n) / n, float(values["loss"]), float(values["accuracy"]),
                        float(values["lr"]), rate)

    def record_time(self, seconds: float, warm: bool) -> None:
        self.durations.append(seconds)
        self.timed_steps += 1
        if self.timed_steps > WARMUP_STEPS and warm:  # a new set of fetches first builds its executor
            self.steady_images += self.config.batch_size
            self.steady_seconds += seconds

    def throughput(self) -> float | None:
        return self.steady_images / self.steady_seconds if self.steady_seconds else None

    def save(self) -> None:
        with quiet_tf_logs():  # the saver logs a deprecation notice when it prunes old checkpoints
            self.last_checkpoint = self.saver.save(self.session, str(self.out / CHECKPOINT_NAME),
                                                   global_step=self.step)

    def saved_step(self) -> int | None:
        return int(self.last_checkpoint.rsplit("-", 1)[1]) if self.last_checkpoint else None

    def score(self, split: str, examples: datasets.Examples) -> Score:
        """Evaluate on ``split`` (dropout off) and log it to ``summaries/<split>``."""
        accuracy, loss, _ = run_eval(self.session, self.ops.eval, examples, self.config.num_classes)
        self.writer(split).add_summary(scalar_event({"accuracy": accuracy, "loss": loss}), self.step)
        return Score(accuracy, loss)

    def writer(self, split: str) -> Any:
        if split not in self.writers:
            graph = self.session.graph if split == "train" else None
            self.writers[split] = tf.compat.v1.summary.FileWriter(str(self.out / rundir.SUMMARIES / split), graph)
        return self.writers[split]

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def check_resumable(out: Path, config: RunConfig) -> None:
    differences = load_run(out).differences(config)
    if differences:
        raise ConfigError(f"--resume: {out} was trained with other settings ({'; '.join(differences)}); "
                          f"resume with the run's own settings, or start a new run with another --out")


def finished_step(out: Path, total: int) -> int | None:
    """The run's last checkpointed step when it is already at ``total`` or beyond, else None."""
    step = rundir.latest_step(out)
    return step if step is not None and step >= total else None


def restore(session: Any, saver: Any, out: Path) -> str | None:
    state = tf.train.get_checkpoint_state(str(out))
    if state is None or not state.model_checkpoint_path:
        return None  # the run was stopped before its first checkpoint: start it again
    try:
        saver.restore(session, state.model_checkpoint_path)
    except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError, tf.errors.DataLossError) as exc:
        first_line = str(exc.message).strip().splitlines()[0]
        raise DataError(f"{state.model_checkpoint_path}: cannot resume from it ({first_line})") from None
    saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))  # so max_to_keep spans sessions
    return state.model_checkpoint_path


class StopFlag:
    requested = False


@contextmanager
def sigint_flag(enabled: bool) -> Iterator[StopFlag]:
    """While training, the first Ctrl-C asks the loop to save and stop; a second one stops at once.

    A process told to ignore SIGINT (a shell's background job) keeps ignoring it, as Python itself does.
    """
    flag = StopFlag()
    main_thread = threading.current_thread() is threading.main_thread()
    if not enabled or not main_thread or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
