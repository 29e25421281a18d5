"""The training input pipeline: tf.data, shuffled afresh each epoch, batched, prefetched, resumable.

The examples are fed once, when the iterator is initialised (placeholders, so they never end up in the
graph or the ``.meta`` file). The order is a pure function of the seed: epoch ``e`` visits the examples in
``stateless_shuffle(range(n), seed=(seed, e))`` order, and batches run on across epoch ends. The position
in that stream is just "examples seen so far", a variable saved in every checkpoint, so a resumed run
starts its iterator exactly where the stopped one left off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .session import tf

_MAX_EPOCHS = 2**40  # "forever": the training loop, not the data, decides when to stop


@dataclass
class InputPipeline:
    """Placeholders to initialise the iterator with, and the batch tensors it yields."""

    images_in: Any  # placeholder (N, H, W, C) uint8
    labels_in: Any  # placeholder (N,) int32
    start: Any  # placeholder: examples already seen (resume position)
    initializer: Any
    images: Any  # float32 batch in [0, 1]
    labels: Any  # int32 batch

    def initialize(self, session: Any, images: np.ndarray, labels: np.ndarray, start: int) -> None:
        """Load the examples and position the stream after ``start`` examples."""
        images = images.reshape((len(images), *self.images_in.shape[1:]))
        session.run(self.initializer, {self.images_in: images, self.labels_in: labels.astype(np.int32),
                                       self.start: start})


def input_pipeline(num_examples: int, image_shape: tuple[int, int, int], batch_size: int,
                   seed: int) -> InputPipeline:
    """Build the shuffled, batched, prefetched stream of training batches (graph mode)."""
    with tf.name_scope("input"):
        images_in = tf.compat.v1.placeholder(tf.uint8, [num_examples, *image_shape], name="all_images")
        labels_in = tf.compat.v1.placeholder(tf.int32, [num_examples], name="all_labels")
        start = tf.compat.v1.placeholder(tf.int64, [], name="start")

        def epoch_order(epoch: Any) -> Any:
            order = tf.random.experimental.stateless_shuffle(
                tf.range(num_examples, dtype=tf.int64), seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
            return tf.data.Dataset.from_tensor_slices(order)

        def gather(indices: Any) -> tuple[Any, Any]:
            images = tf.cast(tf.gather(images_in, indices), tf.float32) / 255.0
            return images, tf.gather(labels_in, indices)

        dataset = (tf.data.Dataset.range(start // num_examples, _MAX_EPOCHS)
                   .flat_map(epoch_order)
                   .skip(start % num_examples)
                   .batch(batch_size, drop_remainder=True)  # the stream never ends: every batch is full
                   .map(gather)
                   .prefetch(2))
        iterator = tf.compat.v1.data.make_initializable_iterator(dataset)
        images, labels = iterator.get_next()
    return InputPipeline(images_in, labels_in, start, iterator.initializer, images, labels)
