"""IDX files: round trips, every way a file can be malformed, and the bundled data set."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from ckpttools.errors import DataError, NotFoundError
from ckpttools.training import idx
from ckpttools.training.datasets import BUNDLED, load_dataset

IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


def write_pair(directory: Path, images: np.ndarray, labels: np.ndarray, split: str = "train") -> None:
    prefix = idx.SPLITS[split]
    idx.write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
    idx.write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("name", ["data-idx3-ubyte", "data-idx3-ubyte.gz"])
def test_round_trip(tmp_path: Path, dtype: str, name: str) -> None:
    array = (np.arange(24) - 7).reshape(2, 3, 4).astype(dtype)
    idx.write_idx(tmp_path / name, array)
    back = idx.read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_header_is_big_endian_mnist_layout(tmp_path: Path) -> None:
    idx.write_idx(tmp_path / "raw", np.array([1, 2, 3], np.int32))
    assert (tmp_path / "raw").read_bytes() == bytes.fromhex("00000c01 00000003 00000001 00000002 00000003")


def test_gzip_is_recognised_by_content_not_name(tmp_path: Path) -> None:
    idx.write_idx(tmp_path / "a.gz", IMAGES)
    (tmp_path / "a.gz").rename(tmp_path / "plain-name")
    np.testing.assert_array_equal(idx.read_idx(tmp_path / "plain-name"), IMAGES)


def test_gzipped_files_are_reproducible(tmp_path: Path) -> None:
    idx.write_idx(tmp_path / "a.gz", IMAGES)
    idx.write_idx(tmp_path / "b.gz", IMAGES)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


@pytest.mark.parametrize("content, message", [
    (b"", "not an IDX file (magic number 0xempty; expected 0x0000 then a type code 08/09/0B/0C/0D/0E and the "
          "number of dimensions)"),
    (b"\x89PNG\r\n\x1a\n", "not an IDX file (magic number 0x89504e47; expected 0x0000 then a type code "
                           "08/09/0B/0C/0D/0E and the number of dimensions)"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01x", "not an IDX file (magic number 0x00000701; expected 0x0000 then a type "
                                            "code 08/09/0B/0C/0D/0E and the number of dimensions)"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header (8 bytes; 3 dimensions need 16)"),
])
def test_bad_headers(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "f").write_bytes(content)
    with pytest.raises(DataError) as error:
        idx.read_idx(tmp_path / "f")
    assert str(error.value) == f"{tmp_path / 'f'}: {message}"


def test_truncated_data(tmp_path: Path) -> None:
    idx.write_idx(tmp_path / "f", IMAGES)
    (tmp_path / "f").write_bytes((tmp_path / "f").read_bytes()[:-1])
    with pytest.raises(DataError, match=r": truncated: header says 2x3x4 uint8 = 24 bytes of data, file has 23$"):
        idx.read_idx(tmp_path / "f")


def test_trailing_bytes(tmp_path: Path) -> None:
    idx.write_idx(tmp_path / "f", IMAGES)
    (tmp_path / "f").write_bytes((tmp_path / "f").read_bytes() + b"xy")
    with pytest.raises(DataError, match=r": 2 unexpected bytes after the data: header says 2x3x4 uint8 = 24 bytes"):
        idx.read_idx(tmp_path / "f")


def test_damaged_gzip(tmp_path: Path) -> None:
    payload = gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x10" + bytes(range(16)))
    (tmp_path / "f.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match=r"f\.gz: damaged gzip data \(.+\); re-download the file$"):
        idx.read_idx(tmp_path / "f.gz")


def test_write_refuses_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="IDX cannot store dtype int64"):
        idx.write_idx(tmp_path / "f", np.zeros(3, np.int64))


def test_missing_file_names_the_directory_and_the_layout(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError) as error:
        idx.load_pair(tmp_path, "train")
    assert str(error.value) == (
        f"{tmp_path}: no train-images-idx3-ubyte or train-images-idx3-ubyte.gz (a data directory holds "
        "MNIST-format IDX files: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte, optionally gzipped)")


def test_dotted_names_and_raw_files_are_found(tmp_path: Path) -> None:
    idx.write_idx(tmp_path / "t10k-images.idx3-ubyte", IMAGES)
    idx.write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([3, 1], np.uint8))
    images, labels = idx.load_pair(tmp_path, "test")
    assert images.shape == (2, 3, 4) and labels.tolist() == [3, 1] and labels.dtype == np.int64


def test_count_mismatch_between_images_and_labels(tmp_path: Path) -> None:
    write_pair(tmp_path, IMAGES, np.array([1, 2, 3], np.uint8))
    with pytest.raises(DataError) as error:
        idx.load_pair(tmp_path, "train")
    assert str(error.value) == (f"train split: train-images-idx3-ubyte.gz has 2 images but "
                                f"train-labels-idx1-ubyte.gz has 3 labels (in {tmp_path})")


def test_labels_must_be_one_integer_per_example(tmp_path: Path) -> None:
    write_pair(tmp_path, IMAGES, np.zeros((2, 2), np.uint8))
    with pytest.raises(DataError, match=r"labels must be one integer per example; this file holds 2x2 uint8$"):
        idx.load_pair(tmp_path, "train")


def test_images_must_have_three_or_four_dimensions(tmp_path: Path) -> None:
    write_pair(tmp_path, np.zeros((2, 784), np.uint8), np.zeros(2, np.uint8))
    with pytest.raises(DataError, match=r"images must have 3 dimensions .* this file has shape 2x784$"):
        idx.load_pair(tmp_path, "train")


def test_bundled_data_is_a_balanced_fashion_mnist_subset() -> None:
    data = load_dataset()
    assert data.source == "bundled"
    assert data.train.images.shape == (5000, 28, 28) and data.train.images.dtype == np.uint8
    assert data.test.images.shape == (1000, 28, 28)
    assert data.train.class_counts(10) == [500] * 10 and data.test.class_counts(10) == [100] * 10
    assert data.class_names == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                "Sneaker", "Bag", "Ankle boot")
    assert "Zalando SE" in (BUNDLED / "LICENSE").read_text() and "MIT" in (BUNDLED / "README.md").read_text()
    assert sum(p.stat().st_size for p in BUNDLED.iterdir()) < 4_000_000
