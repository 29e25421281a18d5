"""Small graph-mode layers built on ``tf.compat.v1.get_variable``, so variable names are exactly ours.

Each layer opens its own variable scope (``conv1/kernel``, ``conv1/bias``) and reuses variables when the
model is built a second time (the evaluation copy of the training graph).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .session import tf

Activation = Callable[[Any], Any] | None


def truncated_normal(stddev: float) -> Any:
    return tf.compat.v1.truncated_normal_initializer(stddev=stddev)


def he_normal() -> Any:
    """He et al. 2015: variance 2/fan_in, as slim's ``variance_scaling_initializer()`` and Keras ``he_normal``."""
    return tf.compat.v1.variance_scaling_initializer(scale=2.0, mode="fan_in", distribution="truncated_normal")


def glorot_uniform() -> Any:
    return tf.compat.v1.glorot_uniform_initializer()


def conv2d(x: Any, filters: int, size: int, ctx: Any, *, name: str = "conv", padding: str = "SAME",
           activation: Activation = tf.nn.relu, initializer: Any = None, bias_init: float = 0.0,
           names: tuple[str, str] = ("kernel", "bias")) -> Any:
    """A stride-1 convolution with bias and activation; L2-decays its kernel when ``ctx`` asks for it."""
    with tf.compat.v1.variable_scope(name):
        kernel = _weights(names[0], [size, size, int(x.shape[-1]), filters], initializer, ctx)
        bias = tf.compat.v1.get_variable(names[1], [filters], initializer=tf.compat.v1.constant_initializer(bias_init))
        y = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding=padding), bias)
        return ctx.record(activation(y) if activation else y)


def dense(x: Any, units: int, ctx: Any, *, name: str = "dense", activation: Activation = tf.nn.relu,
          initializer: Any = None, bias_init: float = 0.0, names: tuple[str, str] = ("kernel", "bias")) -> Any:
    """A fully connected layer; flattens its input first."""
    x = flatten(x)
    with tf.compat.v1.variable_scope(name):
        kernel = _weights(names[0], [int(x.shape[-1]), units], initializer, ctx)
        bias = tf.compat.v1.get_variable(names[1], [units], initializer=tf.compat.v1.constant_initializer(bias_init))
        y = tf.matmul(x, kernel) + bias
        return ctx.record(activation(y) if activation else y)


def max_pool(x: Any, size: int = 2, padding: str = "SAME", name: str = "pool") -> Any:
    return tf.nn.max_pool2d(x, ksize=size, strides=size, padding=padding, name=name)


def flatten(x: Any) -> Any:
    if x.shape.rank == 2:
        return x
    return tf.reshape(x, [-1, int(tf.TensorShape(x.shape[1:]).num_elements())])


def leaky_relu(x: Any) -> Any:
    return tf.nn.leaky_relu(x, alpha=0.1)


def _weights(name: str, shape: list[int], initializer: Any, ctx: Any) -> Any:
    kernel = tf.compat.v1.get_variable(name, shape, initializer=initializer or glorot_uniform())
    ctx.decay(kernel)
    return kernel
