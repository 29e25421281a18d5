"""TensorBoard summaries: cheap scalars every few steps, histograms and images now and then.

Tags are shared by ``summaries/train`` and ``summaries/test`` (``loss``, ``accuracy``) so TensorBoard
draws both runs in one chart. Summary ops read the batch the same ``session.run`` trains on, so writing
them never consumes input or changes what a run computes.
"""

from __future__ import annotations

from typing import Any

from .session import tf

MAX_IMAGES = 3  # input examples shown per summary step
MAX_FILTERS = 32


def scalars(loss: Any, accuracy: Any, learning_rate: Any) -> Any:
    """Merged op for ``loss``, ``accuracy`` and ``learning_rate`` on the training batch."""
    return tf.compat.v1.summary.merge([
        tf.compat.v1.summary.scalar("loss", loss, collections=[]),
        tf.compat.v1.summary.scalar("accuracy", accuracy, collections=[]),
        tf.compat.v1.summary.scalar("learning_rate", learning_rate, collections=[]),
    ])


def details(images: Any, activations: list[Any]) -> Any:
    """Merged op for weight and activation histograms, input images and first-layer filters."""
    ops = [tf.compat.v1.summary.image("inputs", images, max_outputs=MAX_IMAGES, collections=[])]
    kernels = [v for v in tf.compat.v1.trainable_variables() if v.shape.rank == 4]
    if kernels:
        ops.append(tf.compat.v1.summary.image("filters", filter_images(kernels[0]), max_outputs=MAX_FILTERS,
                                              collections=[]))
    for variable in tf.compat.v1.trainable_variables():
        ops.append(tf.compat.v1.summary.histogram(f"weights/{variable.op.name}", variable, collections=[]))
    for tensor in activations:
        ops.append(tf.compat.v1.summary.histogram(f"activations/{tensor.op.name}", tensor, collections=[]))
    return tf.compat.v1.summary.merge(ops)


def filter_images(kernel: Any) -> Any:
    """A (height, width, in, out) kernel as ``out`` small images; the first input channel unless RGB."""
    images = tf.transpose(kernel, [3, 0, 1, 2])
    return images if images.shape[-1] in (1, 3) else images[..., :1]


def scalar_event(values: dict[str, float]) -> Any:
    """A ``Summary`` proto of plain scalars (for numbers computed outside the graph, like test accuracy)."""
    return tf.compat.v1.Summary(value=[tf.compat.v1.Summary.Value(tag=tag, simple_value=float(value))
                                       for tag, value in values.items()])
