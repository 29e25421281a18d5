"""Make the small Fashion-MNIST subset bundled in ckpttools/data/fashion-mnist-small/.

A deterministic, class-balanced sample (by default 500 training and 100 test images per class)
of the full data set, written as gzipped IDX files plus the license notice. Rerunning it gives
byte-identical files.

Usage: python scripts/make_bundled_data.py [--source ../shared/datasets/fashion-mnist]
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import numpy as np

from ckpttools.training import datasets, idx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "datasets" / "fashion-mnist"
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
SEED = 20170825  # Fashion-MNIST's release date: any fixed number would do

LICENSE = """The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""

README = """# Fashion-MNIST, small subset (bundled with ckpttools)

A deterministic, class-balanced subset of Fashion-MNIST so that `ckpttools train` works offline
with no arguments: {train_per_class} training and {test_per_class} test images per class
({train_total} + {test_total}), 28x28 grayscale, in the MNIST IDX format (gzipped). Made by
`scripts/make_bundled_data.py` (seed {seed}) from the full data set; the images keep their order in the
original files. Class names are in `classes.txt`, one per line, in label order.

Fashion-MNIST: Han Xiao, Kashif Rasul, Roland Vollgraf, "Fashion-MNIST: a Novel Image Dataset for
Benchmarking Machine Learning Algorithms", arXiv:1708.07747 (2017),
https://github.com/zalandoresearch/fashion-mnist

Copyright 2017 Zalando SE, MIT (Expat) license: see `LICENSE` beside this file. The files may be
redistributed with that notice.

sha256:
```
{checksums}
```
"""


def balanced_indices(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of each label, returned in file order."""
    chosen = [rng.choice(np.flatnonzero(labels == label), per_class, replace=False) for label in range(10)]
    return np.sort(np.concatenate(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the full Fashion-MNIST directory")
    parser.add_argument("--out", type=Path, default=datasets.BUNDLED)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=100)
    args = parser.parse_args()

    rng = np.random.default_rng(SEED)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for split, prefix, per_class in (("train", "train", args.train_per_class), ("test", "t10k", args.test_per_class)):
        images, labels = idx.load_pair(args.source, split)
        keep = balanced_indices(labels, per_class, rng)
        written.append(idx.write_idx(args.out / f"{prefix}-images-idx3-ubyte.gz", images[keep]))
        written.append(idx.write_idx(args.out / f"{prefix}-labels-idx1-ubyte.gz", labels[keep].astype(np.uint8)))
    (args.out / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n", encoding="utf-8")
    (args.out / "LICENSE").write_text(LICENSE, encoding="utf-8")
    checksums = "\n".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in written)
    (args.out / "README.md").write_text(README.format(
        train_per_class=args.train_per_class, test_per_class=args.test_per_class, seed=SEED, checksums=checksums,
        train_total=10 * args.train_per_class, test_total=10 * args.test_per_class), encoding="utf-8")
    total = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"wrote {args.out} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
