"""Benchmark the training core: deep_mnist on the full Fashion-MNIST, and how fast it trains.

1. Quality: ``ckpttools.tfcore.train`` trains ``deep_mnist`` on the full Fashion-MNIST (60,000 training
   images) and reports test accuracy (target: >= 0.91, the published two-layer CNN level) and wall time.
2. Speed: training throughput (images/s after warm-up) of ``ckpttools.tfcore.train`` against the same
   architecture trained (a) by the classic feed_dict loop (tf.compat.v1 graph, numpy batches fed every
   step, as in the "Deep MNIST for experts" tutorial) and (b) by Keras 3 ``model.fit`` on the same arrays;
   same batch size, optimizer and learning rate. The three are timed in interleaved rounds (a fresh model
   each round, the same steps timed after the same warm-up) and the best round of each is compared, since
   on a shared machine other processes slow whichever happens to be running. Ratios > 1 mean ckpttools
   is faster (target: >= 1 against both). The quality run's own steady-state rate is printed too.

Usage:
    python bench/bench_train.py            # full: ~10 epochs, about 15 minutes on 2 CPU cores
    python bench/bench_train.py --quick    # 1 epoch and shorter speed runs: a smoke run of a few minutes
    options: --data DIR (default: $FASHION_MNIST)  --epochs E  --batch-size N  --workdir DIR

Exits 0 (it is a report) and skips with a message when the data set is absent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("FASHION_MNIST", ROOT.parent / "shared" / "datasets" / "fashion-mnist"))
TARGET_ACCURACY = 0.91


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="1 epoch and short speed runs")
    parser.add_argument("--epochs", type=float, default=None, help="default: 10 (1 with --quick)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out" / "train")
    return parser.parse_args()


def fresh(directory: Path) -> Path:
    """An empty scratch run directory (the bench's own, under --workdir)."""
    shutil.rmtree(directory, ignore_errors=True)
    return directory


def train_ckpttools(args: argparse.Namespace, epochs: float) -> tuple[object, float]:
    """The quality run, through the public API; returns (TrainResult, wall seconds)."""
    from ckpttools.tfcore import train
    from ckpttools.training.runconfig import RunConfig

    steps_per_epoch = 60000 // args.batch_size
    config = RunConfig(model="deep_mnist", data=str(args.data), epochs=epochs, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, decay_steps=steps_per_epoch, decay_rate=0.8,
                       checkpoint_every=max(1, int(epochs * steps_per_epoch // 4)), histogram_every=5000)
    began = time.perf_counter()
    result = train(config, fresh(args.workdir / "deep_mnist"))
    return result, time.perf_counter() - began


def ckpttools_throughput(args: argparse.Namespace, warmup: int, steps: int, round_: int) -> float:
    """Our training loop as users run it (scalar summaries on), timed between ``on_step`` calls."""
    from ckpttools.tfcore import train
    from ckpttools.training.runconfig import RunConfig

    stamps: dict[int, float] = {}
    config = RunConfig(model="deep_mnist", data=str(args.data), steps=warmup + steps + 1, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, checkpoint_every=10**9)
    train(config, fresh(args.workdir / "speed"),
          on_step=lambda info: stamps.__setitem__(info.step, time.perf_counter()))
    return steps * args.batch_size / (stamps[warmup + steps] - stamps[warmup])


def feed_dict_throughput(images: np.ndarray, labels: np.ndarray, batch_size: int, learning_rate: float,
                         warmup: int, steps: int) -> float:
    """The classic loop: a graph with placeholders, numpy batches fed each step."""
    from ckpttools.tfcore import get_model, graph_session, tf
    from ckpttools.tfcore.models import ModelContext, build_logits

    x_all = (images.astype(np.float32) / 255.0)[..., None]  # the tutorial's DataSet kept floats in memory
    with graph_session(0) as (_, session):
        x = tf.compat.v1.placeholder(tf.float32, [None, 28, 28, 1])
        y = tf.compat.v1.placeholder(tf.int32, [None])
        step = tf.compat.v1.train.get_or_create_global_step()
        logits = build_logits(get_model("deep_mnist"), x, ModelContext(10, 0.5, True, step=step.read_value()))
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
        train_op = tf.compat.v1.train.AdamOptimizer(learning_rate).minimize(loss, global_step=step)
        session.run(tf.compat.v1.global_variables_initializer())
        order = np.random.default_rng(0).permutation(len(labels))
        began = 0.0
        for i in range(warmup + steps):
            if i == warmup:
                began = time.perf_counter()
            start = (i * batch_size) % (len(labels) - batch_size)
            batch = order[start:start + batch_size]
            session.run(train_op, {x: x_all[batch], y: labels[batch].astype(np.int32)})
        return steps * batch_size / (time.perf_counter() - began)


def keras_throughput(images: np.ndarray, labels: np.ndarray, batch_size: int, learning_rate: float,
                     warmup: int, steps: int) -> float:
    """Keras 3 ``model.fit`` of the same architecture on the same arrays (timed from batch ``warmup``)."""
    import keras

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 5, padding="same", activation="relu"), keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Conv2D(64, 5, padding="same", activation="relu"), keras.layers.MaxPooling2D(2, padding="same"),
        keras.layers.Flatten(), keras.layers.Dense(1024, activation="relu"), keras.layers.Dropout(0.5),
        keras.layers.Dense(10),
    ])
    model.compile(keras.optimizers.Adam(learning_rate), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])

    class Clock(keras.callbacks.Callback):
        began = 0.0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch == warmup - 1:
                Clock.began = time.perf_counter()

    x = (images.astype(np.float32) / 255.0)[..., None]
    model.fit(x, labels.astype(np.int32), batch_size=batch_size, epochs=1, steps_per_epoch=warmup + steps,
              callbacks=[Clock()], verbose=0)
    return steps * batch_size / (time.perf_counter() - Clock.began)


def main() -> int:
    args = parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ckpttools.errors import CkptError
    from ckpttools.training.datasets import load_dataset

    try:
        data = load_dataset(args.data)
    except CkptError as exc:
        print(f"skipped: the full Fashion-MNIST is needed ({exc})")
        return 0
    epochs = args.epochs if args.epochs is not None else (1.0 if args.quick else 10.0)
    warmup, steps, rounds = (20, 100, 2) if args.quick else (30, 200, 3)
    print(f"deep_mnist on {args.data} ({len(data.train):,} train / {len(data.test):,} test images), "
          f"batch {args.batch_size}, Adam lr {args.learning_rate}, {epochs:g} epochs, {os.cpu_count()} CPUs")
    sys.stdout.flush()

    result, seconds = train_ckpttools(args, epochs)
    verdict = "ok" if result.test.accuracy >= TARGET_ACCURACY else "BELOW TARGET"
    print(f"quality:  test accuracy {result.test.accuracy:.4f} (target >= {TARGET_ACCURACY}: {verdict}), "
          f"loss {result.test.loss:.4f}, {result.step:,} steps, wall time {seconds:.0f} s")
    sys.stdout.flush()

    methods = {
        "ckpttools train (tf.data)": lambda r: ckpttools_throughput(args, warmup, steps, r),
        "classic feed_dict loop": lambda r: feed_dict_throughput(data.train.images, data.train.labels,
                                                                 args.batch_size, args.learning_rate, warmup, steps),
        "Keras 3 model.fit": lambda r: keras_throughput(data.train.images, data.train.labels, args.batch_size,
                                                        args.learning_rate, warmup, steps),
    }
    rates: dict[str, list[float]] = {name: [] for name in methods}
    for round_ in range(rounds):
        names = list(methods)[round_ % 3:] + list(methods)[: round_ % 3]  # rotate who goes first
        for name in names:
            rates[name].append(methods[name](round_))
    print(f"speed: images/s over {steps} steps after {warmup} warm-up steps, batch {args.batch_size}, "
          f"{rounds} interleaved rounds (best / median):")
    best = {name: max(values) for name, values in rates.items()}
    ours = best["ckpttools train (tf.data)"]
    for name, values in rates.items():
        ratio = "" if name.startswith("ckpttools") else f"   ratio ckpttools/this = {ours / best[name]:.2f}"
        print(f"  {name:28s} {best[name]:7,.0f} / {float(np.median(values)):7,.0f}{ratio}")
    print(f"  (the quality run's own steady-state rate: {result.images_per_sec:,.0f} images/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
