"""TF2 checkpoints written by real TensorFlow for the URL tests: one whose data shard is much larger than its
index, for byte counting (listing must not touch the tensor bytes), and one of many medium-sized tensors, for
counting the requests of reading them all. Run: python tests/tf_remote_fixtures.py OUTDIR (prints the
medium prefix, then the big one).
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_big_tf2(out: Path) -> str:
    """tf.train.Checkpoint of a tf.Module with a 4 MiB kernel, a few small variables and an int64 step."""
    import numpy as np
    import tensorflow as tf

    class Net(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            rng = np.random.default_rng(14)
            self.kernel = tf.Variable(rng.standard_normal((1024, 1024)).astype("float32"), name="kernel")
            self.bias = tf.Variable(np.arange(1024, dtype="float32"), name="bias")
            self.scale = tf.Variable(np.float64(0.5), name="scale")
            self.step = tf.Variable(np.int64(7), name="step")

    ckpt = tf.train.Checkpoint(net=Net())
    return ckpt.write(str(out / "big" / "ckpt-1"))


def write_medium_tf2(out: Path) -> str:
    """A list of 24 float32 variables of 64 KiB with a string (6th) and a bfloat16 (13th) variable among them,
    and an int64 step, beside the big checkpoint (``big/medium-1``). TensorFlow stores the list in its order
    (``net/layers/0``, ``1``, ``2``...), not in the order of the names (``0``, ``1``, ``10``...)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(15)
    layers = [tf.Variable(rng.standard_normal(16384).astype("float32")) for _ in range(24)]
    layers.insert(6, tf.Variable("a string stored between two runs"))
    layers.insert(13, tf.Variable(tf.constant(rng.standard_normal(16384), dtype=tf.bfloat16)))
    net = tf.Module()
    net.layers = layers
    net.step = tf.Variable(np.int64(3))
    return tf.train.Checkpoint(net=net).write(str(out / "big" / "medium-1"))


if __name__ == "__main__":
    print(write_medium_tf2(Path(sys.argv[1])))
    print(write_big_tf2(Path(sys.argv[1])))
