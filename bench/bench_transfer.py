"""Benchmark: does transfer help? Few-shot learning of new classes, from scratch vs from a pretrained model.

On Fashion-MNIST (the directory ``$FASHION_MNIST`` names; skipped when absent):
pretrain a model on classes 0-4 with all their data, then learn classes 5-9 from
only N images per class (default 100) three ways, each over several seeds:

  scratch   a fresh model
  frozen    transfer the early layers, frozen (cnn5: conv_block[1-3]; deep_mnist: conv1)
  finetune  transfer every conv layer and fine-tune everything
  lrmult    transfer every conv layer, fine-tune them at a tenth of the learning rate
  probe     transfer everything but the output layer, frozen: how good the features are as they are

All use the same steps, batch size and learning rate. Accuracy is on the full
test set of classes 5-9 (5,000 images). For scale, it also trains each model from
scratch on all 30,000 training images of classes 5-9 (the headroom above scratch).
It checks that the values ckpttools restores equal what TensorFlow's own
``init_from_checkpoint`` loads, and that frozen layers come out of fine-tuning
bitwise unchanged (``ckpttools.ops.diff``).

    python bench/bench_transfer.py [--seeds 3] [--steps 300] [--per-class 100] [--quick] [--fresh]
                                   [--pretrain-classes 0-4] [--new-classes 5-9]

Another split (``--pretrain-classes 0,1,2,5,7 --new-classes 3,4,6,8,9``) keeps its runs apart
under ``bench/out/transfer/split-...``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FASHION_MNIST", ROOT.parent / "shared" / "datasets" / "fashion-mnist"))
WORK = ROOT / "bench" / "out" / "transfer"
OLD, NEW = "0-4", "5-9"  # the split


@dataclass(frozen=True)
class Split:
    """Which classes the source is pretrained on, which are learnt few-shot, and where their runs live."""

    old_text: str
    new_text: str

    @property
    def old(self) -> tuple[int, ...]:
        from ckpttools.training.datasets import parse_classes
        return parse_classes(self.old_text)

    @property
    def new(self) -> tuple[int, ...]:
        from ckpttools.training.datasets import parse_classes
        return parse_classes(self.new_text)

    @property
    def work(self) -> Path:
        if (self.old_text, self.new_text) == (OLD, NEW):
            return WORK  # where the runs of the split have always been
        return WORK / f"split-{self.old_text}-to-{self.new_text}".replace(",", "_")


@dataclass(frozen=True)
class Layers:
    """A model's pretraining budget and the layer patterns each transfer method takes."""

    pretrain_epochs: float
    early: str  # frozen by "frozen"
    convs: str  # all conv layers: "finetune" and "lrmult"
    body: str  # everything but the output layer: "probe"
    full_data_epochs: float  # the all-data reference on the new classes


MODELS = {
    "cnn5": Layers(3.0, "conv_block[1-3]", "conv_block*", "conv_block*,dense", 10.0),
    "deep_mnist": Layers(2.0, "conv1", "conv*", "conv*,fc1", 3.0),
}
METHODS = {  # method -> (label, (scopes, freeze, lr_mult) from the model's Layers, or None for scratch)
    "scratch": ("from scratch", None),
    "frozen": ("transfer {early} frozen", lambda m: (m.early, (), ())),
    "finetune": ("transfer {convs}, fine-tune all", lambda m: (m.convs, None, ())),
    "lrmult": ("transfer {convs}, their lr x0.1", lambda m: (m.convs, None, ((m.convs, 0.1),))),
    "probe": ("transfer {body} frozen (probe)", lambda m: (m.body, (), ())),
}
CONTROL = "control: probe from the all-data model"  # same code, source features that fit the new classes
TARGET_POINTS = 5.0


@dataclass
class Outcome:
    model: str
    method: str
    accuracies: list[float]
    seconds: list[float]

    def row(self) -> str:
        accs = self.accuracies
        spread = statistics.pstdev(accs) if len(accs) > 1 else 0.0
        return (f"{self.model:<11} {self.method:<44} {statistics.mean(accs):>9.4f} {spread:>7.4f}  "
                f"{min(accs):.3f}-{max(accs):.3f}  {statistics.mean(self.seconds):>8.1f}s")


def pretrain(model: str, epochs: float, fresh: bool, split: Split) -> tuple[str, str]:
    """Train on the old classes with all their data once, reuse the run afterwards; returns (run dir, report line)."""
    from ckpttools.tfcore import evaluate, train
    from ckpttools.training.runconfig import RunConfig

    out = split.work / f"pretrain-{model}"
    record = out / "bench.json"  # accuracy and time of the pretraining, for the report when the run is reused
    if (out / "run.json").exists() and not fresh:
        saved = json.loads(record.read_text()) if record.exists() else {}
        accuracy = saved["accuracy"] if "accuracy" in saved else evaluate(out).accuracy
        took = f"{saved['seconds']:.0f}s when trained" if "seconds" in saved else "time not recorded"
        return str(out), (f"{model}: reused {out.name}: test accuracy {accuracy:.4f} on classes {split.old_text} "
                          f"({took})")
    began = time.perf_counter()
    result = train(RunConfig(model=model, data=str(DATA), classes=split.old, epochs=epochs, checkpoint_every=100_000),
                   out, force=True)
    seconds = time.perf_counter() - began
    record.write_text(json.dumps({"accuracy": result.test.accuracy, "seconds": seconds}) + "\n")
    return str(out), (f"{model}: pretrained {epochs:g} epochs on classes {split.old_text}: test accuracy "
                      f"{result.test.accuracy:.4f}, {seconds:.0f}s")


def all_data_reference(model: str, epochs: float, fresh: bool, split: Split) -> float:
    """Test accuracy on the new classes after training from scratch on all their training data (cached)."""
    from ckpttools.tfcore import train
    from ckpttools.training.runconfig import RunConfig

    out = split.work / f"all-data-{model}"
    record = out / "bench.json"
    if record.exists() and not fresh:
        return json.loads(record.read_text())["accuracy"]
    began = time.perf_counter()
    result = train(RunConfig(model=model, data=str(DATA), classes=split.new, epochs=epochs, checkpoint_every=100_000,
                             summary_every=100_000, histogram_every=100_000), out, force=True)
    record.write_text(json.dumps({"accuracy": result.test.accuracy, "seconds": time.perf_counter() - began}) + "\n")
    print(f"{model}: all training images of classes {split.new_text}, {epochs:g} epochs: {result.test.accuracy:.4f}",
          file=sys.stderr)
    return result.test.accuracy


def learn_new_classes(model: str, method: str, source: str, seed: int, args: argparse.Namespace, split: Split,
                      tag: str = "") -> tuple[float, float]:
    """One few-shot run on the new classes; returns (test accuracy, seconds)."""
    from ckpttools.tfcore import train
    from ckpttools.tfcore.transfer import TransferOptions, transfer
    from ckpttools.training.runconfig import RunConfig

    config = RunConfig(model=model, data=str(DATA), classes=split.new, per_class=args.per_class, steps=args.steps,
                       batch_size=args.batch_size, seed=seed, checkpoint_every=100_000, summary_every=100_000,
                       histogram_every=100_000)
    out = split.work / f"{model}-{tag or method}-{seed}"
    began = time.perf_counter()
    choose = METHODS[method][1]
    if choose is None:
        result = train(config, out, force=True)
    else:
        scopes, freeze, lr_mult = choose(MODELS[model])
        options = TransferOptions(source, scopes=tuple(scopes.split(",")), freeze=freeze, lr_mult=lr_mult)
        result = transfer(config, out, options, force=True).train
    return result.test.accuracy, time.perf_counter() - began


def compare_with_tensorflow(source: str, split: Split) -> str:
    """Our --init-only values vs tf.compat.v1.train.init_from_checkpoint for cnn5's conv_block[1-3]."""
    import tensorflow as tf

    import ckpttools
    from ckpttools.tfcore.transfer import TransferOptions, transfer
    from ckpttools.training.runconfig import RunConfig

    out = split.work / "init-only"
    config = RunConfig(model="cnn5", data=str(DATA), classes=split.new, per_class=10, steps=1)
    transfer(config, out, TransferOptions(source, scopes=("conv_block[1-3]",)), force=True, init_only=True)
    names = [f"cnn/conv_block{k}/conv/{part}" for k in (1, 2, 3) for part in ("kernel", "bias")]
    with ckpttools.open_checkpoint(source) as ckpt, tf.Graph().as_default(), tf.compat.v1.Session() as session:
        variables = {name: tf.compat.v1.get_variable(name, ckpt.info(name).shape) for name in names}
        prefix = ckpt.prefix
        tf.compat.v1.train.init_from_checkpoint(prefix, {f"cnn/conv_block{k}/": f"cnn/conv_block{k}/"
                                                         for k in (1, 2, 3)})
        session.run(tf.compat.v1.global_variables_initializer())
        theirs = session.run(variables)
    with ckpttools.open_checkpoint(out / "model.ckpt-0") as ours:
        same = all(ours.get(name).tobytes() == theirs[name].tobytes() for name in names)
    return f"restored values identical to tf.compat.v1.train.init_from_checkpoint: {'yes' if same else 'NO'} " \
           f"({len(names)} variables)"


def frozen_unchanged(model: str, source: str, seeds: int, split: Split) -> str:
    """Whether the frozen layers of every 'frozen' run equal the pretrained ones bitwise after fine-tuning."""
    from ckpttools.ops.diff import diff

    early = MODELS[model].early
    results = [diff(source, str(split.work / f"{model}-frozen-{seed}"), scopes=[early]) for seed in range(seeds)]
    same = all(result.equal and result.values for result in results)
    return f"{model}: {early} unchanged by fine-tuning in the frozen runs: {'yes' if same else 'NO'} " \
           f"({len(results[0].values)} variables x {seeds} runs)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, help="default 3 (1 with --quick)")
    parser.add_argument("--steps", type=int, help="fine-tuning steps, default 300 (150 with --quick)")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--quick", action="store_true", help="cnn5 only, 1 seed, 150 steps: a smoke run")
    parser.add_argument("--fresh", action="store_true", help="pretrain again")
    parser.add_argument("--pretrain-classes", default=OLD, help=f"classes the source learns (default {OLD})")
    parser.add_argument("--new-classes", default=NEW, help=f"classes learnt few-shot (default {NEW})")
    args = parser.parse_args(argv)
    split = Split(args.pretrain_classes, args.new_classes)
    if set(split.old) & set(split.new):
        parser.error("--pretrain-classes and --new-classes must not share a class")
    if args.quick:
        args.models = ["cnn5"]
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.steps = args.steps or (150 if args.quick else 300)
    if not (DATA / "train-images-idx3-ubyte.gz").exists():
        print(f"skipped: the full Fashion-MNIST is not at {DATA}")
        return 0
    split.work.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    sources: dict[str, str] = {}
    pretrained: list[str] = []
    full_data: dict[str, float] = {}
    for model in args.models:
        sources[model], line = pretrain(model, MODELS[model].pretrain_epochs, args.fresh, split)
        pretrained.append(line)
        print(line, file=sys.stderr)
        full_data[model] = all_data_reference(model, MODELS[model].full_data_epochs, args.fresh, split)
        source = sources[model]
        for method in METHODS:
            runs = [learn_new_classes(model, method, source, seed, args, split) for seed in range(args.seeds)]
            outcomes.append(Outcome(model, method, [a for a, _ in runs], [s for _, s in runs]))
            print(f"  {outcomes[-1].row()}", file=sys.stderr)
        control = str(split.work / f"all-data-{model}")
        runs = [learn_new_classes(model, "probe", control, seed, args, split, tag="control")
                for seed in range(args.seeds)]
        outcomes.append(Outcome(model, CONTROL, [a for a, _ in runs], [s for _, s in runs]))
    print("\n" + "\n".join(pretrained))
    print(f"\nclasses {split.new_text} from {args.per_class} images per class; {args.steps} steps, "
          f"batch {args.batch_size}, Adam lr 0.001, {args.seeds} seeds; accuracy on all test images of those classes\n")
    print(f"{'model':<11} {'method':<44} {'acc(mean)':>9} {'±std':>7}  {'min-max':<11} {'time/run':>9}")
    for outcome in outcomes:
        if outcome.method in METHODS:
            outcome.method = METHODS[outcome.method][0].format(**asdict(MODELS[outcome.model]))
        print(outcome.row())
    print()
    for model in args.models:
        mine = [o for o in outcomes if o.model == model]
        scratch = statistics.mean(mine[0].accuracies)
        best = max((o for o in mine[1:] if o.method != CONTROL), key=lambda o: statistics.mean(o.accuracies))
        gain = 100 * (statistics.mean(best.accuracies) - scratch)
        verdict = "PASS" if gain >= TARGET_POINTS else "FAIL"
        print(f"{model}: transfer beats from-scratch by {gain:+.1f} points (target >= {TARGET_POINTS:.0f}): "
              f"{verdict}  (best: {best.method})")
        print(f"  {' ' * len(model)}the target needs {scratch + TARGET_POINTS / 100:.4f}; from scratch on all "
              f"training images of classes {split.new_text} the model reaches {full_data[model]:.4f}")
    print()
    for model in args.models:
        print(frozen_unchanged(model, sources[model], args.seeds, split))
    if "cnn5" in args.models:
        print(compare_with_tensorflow(sources["cnn5"], split))
    return 0


if __name__ == "__main__":
    sys.exit(main())
