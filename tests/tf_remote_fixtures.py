"""A TF2 checkpoint whose data shard is much larger than its index, written by real TensorFlow, for the
URL tests' byte counting (listing must not touch the tensor bytes). Run: python tests/tf_remote_fixtures.py OUTDIR
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


if __name__ == "__main__":
    print(write_big_tf2(Path(sys.argv[1])))
