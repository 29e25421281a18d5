"""The model registry and the four classic MNIST-style networks.

A model is a function ``build(images, ctx) -> logits`` registered under a name. ``images`` is a float
batch (N, H, W, C) in [0, 1]; ``ctx`` (a ``ModelContext``) says how many classes to predict, whether this
is the training copy (dropout on) and collects activations and weight-decay terms. Building runs inside
the model's variable scope, so variables are named like ``cnn/conv_block1/conv/kernel``.

Example (register your own):
    >>> @register_model("tiny", scope="tiny")
    ... def tiny(images, ctx):
    ...     x = layers.conv2d(images, 4, 3, ctx, name="conv")
    ...     return layers.dense(x, ctx.num_classes, ctx, name="logits", activation=None)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from . import layers
from .layers import conv2d, dense, he_normal, leaky_relu, max_pool, truncated_normal
from .session import tf


@dataclass
class ModelContext:
    """What a model function needs besides its input, and what it reports back."""

    num_classes: int
    keep_prob: float = 1.0
    training: bool = False
    weight_decay: float = 0.0  # L2 factor on kernels (slim's l2_regularizer: factor * sum(w**2) / 2)
    seed: int = 0
    step: Any = None  # the global step tensor: dropout masks are a function of (seed, step), so resumable
    activations: list[Any] = field(default_factory=list)
    decay_terms: list[Any] = field(default_factory=list)
    _dropouts: int = field(default=0, init=False, repr=False)

    def dropout(self, x: Any, name: str = "dropout") -> Any:
        """Drop units with probability ``1 - keep_prob`` while training; identity in evaluation."""
        if not self.training or self.keep_prob >= 1.0:
            return x
        self._dropouts += 1  # a different stream per dropout layer
        seed = tf.stack([tf.constant(self.seed * 1000 + self._dropouts, tf.int64), tf.cast(self.step, tf.int64)])
        return tf.nn.experimental.stateless_dropout(x, rate=1.0 - self.keep_prob, seed=seed, name=name)

    def record(self, x: Any) -> Any:
        """Keep a layer output for the activation histograms (training copy only)."""
        if self.training:
            self.activations.append(x)
        return x

    def decay(self, kernel: Any) -> None:
        if self.training and self.weight_decay > 0:
            self.decay_terms.append(self.weight_decay * tf.nn.l2_loss(kernel))


ModelFn = Callable[[Any, ModelContext], Any]


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its build function, variable scope and default L2 weight decay."""

    name: str
    build: ModelFn
    scope: str
    weight_decay: float = 0.0
    description: str = ""


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, *, scope: str | None = None, weight_decay: float = 0.0,
                   description: str = "") -> Callable[[ModelFn], ModelFn]:
    """Decorator: make ``build(images, ctx) -> logits`` trainable as ``--model name``."""
    def add(build: ModelFn) -> ModelFn:
        MODELS[name] = ModelSpec(name, build, scope or name, weight_decay, description or (build.__doc__ or "").strip())
        return build
    return add


def get_model(name: str) -> ModelSpec:
    """The registered model called ``name``; ConfigError with the closest names when there is none."""
    if name in MODELS:
        return MODELS[name]
    close = difflib.get_close_matches(name, MODELS, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"unknown model '{name}'{hint} (models: {', '.join(sorted(MODELS))})")


def build_logits(spec: ModelSpec, images: Any, ctx: ModelContext) -> Any:
    """Build ``spec`` on ``images`` in its variable scope, reusing variables built before."""
    with tf.compat.v1.variable_scope(spec.scope, reuse=tf.compat.v1.AUTO_REUSE):
        logits = spec.build(images, ctx)
    if logits.shape.rank != 2 or logits.shape[-1] != ctx.num_classes:
        raise ConfigError(f"model '{spec.name}' returned logits of shape {logits.shape.as_list()}; "
                          f"expected [batch, {ctx.num_classes}]")
    return logits


@register_model("deep_mnist", description="TensorFlow's 'Deep MNIST for experts' CNN (3.3M parameters)")
def deep_mnist(images: Any, ctx: ModelContext) -> Any:
    """conv 5x5x32 + pool, conv 5x5x64 + pool, fc 1024 + dropout, logits; N(0.1) weights, 0.1 biases."""
    init = {"initializer": truncated_normal(0.1), "bias_init": 0.1}
    x = max_pool(conv2d(images, 32, 5, ctx, name="conv1", **init))
    x = max_pool(conv2d(x, 64, 5, ctx, name="conv2", **init))
    x = ctx.dropout(dense(x, 1024, ctx, name="fc1", **init))
    return dense(x, ctx.num_classes, ctx, name="logits", activation=None, **init)


@register_model("lenet5", description="LeNet-5 (LeCun et al. 1998) with ReLU and max-pooling (62k parameters)")
def lenet5(images: Any, ctx: ModelContext) -> Any:
    """Input zero-padded by 2 (28 -> 32), conv 5x5x6 VALID, pool, conv 5x5x16 VALID, pool, fc 120, 84, logits."""
    x = tf.pad(images, [[0, 0], [2, 2], [2, 2], [0, 0]])
    x = max_pool(conv2d(x, 6, 5, ctx, name="conv1", padding="VALID"), padding="VALID")
    x = max_pool(conv2d(x, 16, 5, ctx, name="conv2", padding="VALID"), padding="VALID")
    x = dense(dense(x, 120, ctx, name="fc1"), 84, ctx, name="fc2")
    return dense(x, ctx.num_classes, ctx, name="logits", activation=None)


@register_model("slim_cnn", weight_decay=4e-5,  # slim's usual L2 factor (inception/resnet arg scopes)
                description="TF-Slim style CNN: convolutions all the way, L2 weight decay (3.3M parameters)")
def slim_cnn(images: Any, ctx: ModelContext) -> Any:
    """conv 32 5x5, pool, conv 64 5x5, pool, 7x7 VALID conv as fc 1024, dropout, 1x1 conv logits, squeeze."""
    slim = {"initializer": he_normal(), "names": ("weights", "biases")}
    x = max_pool(conv2d(images, 32, 5, ctx, name="conv1", **slim), name="pool1")
    x = max_pool(conv2d(x, 64, 5, ctx, name="conv2", **slim), name="pool2")
    x = conv2d(x, 1024, int(x.shape[1]), ctx, name="fc3", padding="VALID", **slim)  # covers the whole map
    x = ctx.dropout(x, name="dropout3")
    x = conv2d(x, ctx.num_classes, 1, ctx, name="logits", activation=None, **slim)
    return tf.squeeze(x, [1, 2], name="SpatialSqueeze")


@register_model("cnn5", scope="cnn", description="Five 3x3x8 conv blocks, global average pooling (4k parameters)")
def cnn5(images: Any, ctx: ModelContext) -> Any:
    """conv_block1..5 (3x3 conv, 8 filters, leaky ReLU, He init, 2x2 max-pool SAME), GAP, dense 32, output."""
    x = images
    for block in range(1, 6):
        with tf.compat.v1.variable_scope(f"conv_block{block}"):
            x = max_pool(conv2d(x, 8, 3, ctx, name="conv", activation=leaky_relu, initializer=he_normal()))
    x = tf.reduce_mean(x, axis=[1, 2], name="global_average_pool")
    x = dense(x, 32, ctx, name="dense", initializer=he_normal())
    return dense(x, ctx.num_classes, ctx, name="output", activation=None)


__all__ = ["MODELS", "ModelContext", "ModelSpec", "build_logits", "get_model", "layers", "register_model"]
