"""Regenerate the Keras samples with real Keras 3: python sample_checkpoints/make_keras_samples.py

Writes ``keras/small_cnn.keras`` (``model.save``: config, metadata and weights with Adam state),
``keras/small_cnn.weights.h5`` (``model.save_weights``) and ``keras/small_cnn_legacy.h5`` (Keras'
legacy HDF5 writer, the layout Keras 2 used) of one small CNN trained for one epoch on random data.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent / "keras"


def main() -> int:
    import keras
    import numpy as np

    keras.utils.set_random_seed(0)
    layers = keras.layers
    images = keras.Input((28, 28, 1), name="images")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(images)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.MaxPooling2D(name="pool1")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling2D(name="pool2")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    logits = layers.Dense(10, name="logits")(x)
    model = keras.Model(images, logits, name="small_cnn")
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    model.fit(rng.normal(size=(32, 28, 28, 1)), rng.integers(0, 10, 32), epochs=1, batch_size=16, verbose=0)
    HERE.mkdir(exist_ok=True)
    model.save(HERE / "small_cnn.keras")
    model.save_weights(HERE / "small_cnn.weights.h5")
    model.save(HERE / "small_cnn_legacy.h5")
    for path in sorted(HERE.iterdir()):
        print(f"{path.relative_to(HERE.parent)}: {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
