"""Build a run's graph from its config: the model twice (training copy, evaluation copy), loss,
learning rate, optimizer, step counters and summaries.

Both copies share variables; only the training copy has dropout, weight decay and activation
histograms. The evaluation copy reads placeholders ``eval/images`` (uint8) and ``eval/labels``, so a
run's ``.meta`` graph can also be used for inference by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..training.runconfig import RunConfig
from . import summaries
from .data import InputPipeline, input_pipeline
from .models import ModelContext, ModelSpec, build_logits
from .session import tf

EXAMPLES_SEEN = "input/examples_seen"  # the data position, saved with every checkpoint


@dataclass
class EvalOps:
    """Feed ``images``/``labels``; fetch ``predictions`` and per-example ``losses``."""

    images: Any
    labels: Any
    logits: Any
    predictions: Any
    losses: Any


@dataclass
class TrainOps:
    """Everything the training loop runs."""

    pipeline: InputPipeline
    global_step: Any
    examples_seen: Any
    loss: Any
    accuracy: Any
    learning_rate: Any
    train_op: Any
    scalar_summary: Any
    detail_summary: Any
    eval: EvalOps


def build_eval(spec: ModelSpec, config: RunConfig) -> EvalOps:
    """The inference copy of the model: dropout off, fed through placeholders."""
    with tf.name_scope("eval"):
        images = tf.compat.v1.placeholder(tf.uint8, [None, *config.input_shape], name="images")
        labels = tf.compat.v1.placeholder(tf.int32, [None], name="labels")
    ctx = ModelContext(config.num_classes, seed=config.seed)
    logits = build_logits(spec, tf.cast(images, tf.float32) / 255.0, ctx)
    with tf.name_scope("eval"):
        predictions = tf.argmax(logits, axis=1, output_type=tf.int32, name="predictions")
        losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits, name="losses")
    return EvalOps(images, labels, logits, predictions, losses)


LearningRateScale = Callable[[Any], float]


def build_train(spec: ModelSpec, config: RunConfig, num_train: int,
                trainable: Callable[[list[Any]], list[Any]] | None = None,
                lr_scale: LearningRateScale | None = None,
                wrap_optimizer: Callable[[Any], Any] | None = None) -> TrainOps:
    """The training graph for ``config`` (resolved: ``num_classes`` and ``input_shape`` set).

    ``trainable`` picks, from the model's trainable variables, those the optimizer may change (freezing);
    ``lr_scale(variable)`` gives a variable's learning-rate multiplier (per-layer rates for fine-tuning);
    ``wrap_optimizer`` wraps the optimizer (synchronous distributed training: ``SyncReplicasOptimizer``).
    """
    pipeline = input_pipeline(num_train, config.input_shape, config.batch_size, config.seed)
    global_step = tf.compat.v1.train.get_or_create_global_step()
    examples_seen = tf.compat.v1.get_variable(EXAMPLES_SEEN, [], tf.int64, trainable=False,
                                              initializer=tf.compat.v1.zeros_initializer())
    weight_decay = spec.weight_decay if config.weight_decay is None else config.weight_decay
    ctx = ModelContext(config.num_classes, config.keep_prob, True, weight_decay, config.seed,
                       step=global_step.read_value())
    logits = build_logits(spec, pipeline.images, ctx)
    with tf.name_scope("train"):
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=pipeline.labels, logits=logits))
        if ctx.decay_terms:
            loss = tf.add(loss, tf.add_n(ctx.decay_terms), name="total_loss")
        correct = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), pipeline.labels)
        accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
        learning_rate = _learning_rate(config, global_step)
        variables = tf.compat.v1.trainable_variables()
        var_list = trainable(variables) if trainable else variables
        if not var_list:
            raise ConfigError(f"model '{spec.name}': every variable is frozen; nothing left to train")
        minimize = _minimize(config, loss, var_list, learning_rate, global_step, lr_scale, wrap_optimizer)
        with tf.control_dependencies([minimize]):
            train_op = examples_seen.assign_add(config.batch_size, read_value=False)
    scalar_summary = summaries.scalars(loss, accuracy, learning_rate)
    detail_summary = summaries.details(pipeline.images, ctx.activations)
    eval_ops = build_eval(spec, config)
    return TrainOps(pipeline, global_step, examples_seen, loss, accuracy, learning_rate, train_op,
                    scalar_summary, detail_summary, eval_ops)


def model_variables(spec: ModelSpec) -> list[Any]:
    """The model's own variables (what ``eval`` restores): everything under its scope."""
    return tf.compat.v1.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES, scope=spec.scope + "/")


def _learning_rate(config: RunConfig, global_step: Any) -> Any:
    if not config.decay_steps:
        return tf.constant(config.learning_rate, tf.float32, name="learning_rate")
    return tf.compat.v1.train.exponential_decay(config.learning_rate, global_step, config.decay_steps,
                                                config.decay_rate, staircase=config.staircase,
                                                name="learning_rate")


def _minimize(config: RunConfig, loss: Any, var_list: list[Any], learning_rate: Any, global_step: Any,
              lr_scale: LearningRateScale | None, wrap_optimizer: Callable[[Any], Any] | None = None) -> Any:
    """One optimizer, or one per learning-rate multiplier: scaling gradients would not do, since Adam
    divides them by their own running RMS. ``global_step`` advances once, after every update, so a
    decayed learning rate is read identically by all groups."""
    optimizer = _optimizer(config, learning_rate)
    if wrap_optimizer is not None:
        if lr_scale is not None:
            raise ConfigError("--sync cannot be combined with --lr-mult (one synchronous optimizer per run)")
        optimizer = wrap_optimizer(optimizer)
    if lr_scale is None:
        return optimizer.minimize(loss, global_step=global_step, var_list=var_list)
    pairs = optimizer.compute_gradients(loss, var_list=var_list)
    groups: dict[float, list[tuple[Any, Any]]] = {}
    for gradient, variable in pairs:
        groups.setdefault(float(lr_scale(variable)), []).append((gradient, variable))
    updates = []
    for factor in sorted(groups, reverse=True):  # a fixed order: the same graph every time
        group_optimizer = optimizer if factor == 1.0 else _optimizer(config, learning_rate * factor)
        updates.append(group_optimizer.apply_gradients(groups[factor]))
    with tf.control_dependencies(updates):
        return global_step.assign_add(1)


def _optimizer(config: RunConfig, learning_rate: Any) -> Any:
    if config.optimizer == "adam":
        return tf.compat.v1.train.AdamOptimizer(learning_rate)
    if config.optimizer == "momentum":
        return tf.compat.v1.train.MomentumOptimizer(learning_rate, config.momentum)
    return tf.compat.v1.train.GradientDescentOptimizer(learning_rate)
