"""Small rules behind the real-file fixes: roles of Keras state, text-proto unescaping, bounded quotes."""

from __future__ import annotations

import pytest

from ckpttools.errors import bounded
from ckpttools.info import MODEL, OPTIMIZER, TRAINING
from ckpttools.resolve import unescape_text_proto
from ckpttools.roles import classify


@pytest.mark.parametrize(("name", "role"), [
    ("keras_api/metrics/0/count", TRAINING),
    ("keras_api/metrics/1/true_positives/.ATTRIBUTES/VARIABLE_VALUE", TRAINING),
    ("metrics/acc/total", TRAINING),
    ("metrics/acc/count_1", TRAINING),
    ("learning_rate", OPTIMIZER),
    ("Adam/learning_rate", OPTIMIZER),
    ("optimizer/_learning_rate", OPTIMIZER),
    ("iteration", OPTIMIZER),
    ("adam/sequential_dense_kernel_momentum", OPTIMIZER),
    ("count", MODEL),  # a bare name stays a model variable: metrics are told by their scope
    ("model/metrics_head/kernel", MODEL),
    ("encoder/iteration/kernel", MODEL),
])  # fmt: skip
def test_keras_state_roles(name: str, role: str) -> None:
    assert classify(name) == role


@pytest.mark.parametrize(("quoted", "text"), [
    (r"C:\\Users\\\346\241\214\351\235\242\\ckpt-1", "C:\\Users\\桌面\\ckpt-1"),
    (r"/runs/mod\303\250le/model.ckpt-5", "/runs/modèle/model.ckpt-5"),
    (r"a\"b\'c\n\t\x41\101", "a\"b'c\n\tAA"),
    ("plain/ütf8-already", "plain/ütf8-already"),
])  # fmt: skip
def test_text_proto_unescaping(quoted: str, text: str) -> None:
    assert unescape_text_proto(quoted) == text


def test_bounded_is_one_printable_line() -> None:
    assert bounded("short") == "short"
    quoted = bounded("line\nnext\x00\x1b[31m" + "z" * 1000, limit=50)
    assert "\n" not in quoted and "\x1b" not in quoted and "\x00" not in quoted
    assert quoted.endswith("(1,015 characters)") and len(quoted) < 80


@pytest.mark.parametrize(("pattern", "name", "selected"), [
    ("linear//weight", "linear//weight", True),
    ("linear//weight", "linear/weight", False),
    ("linear//weight", "dnn/linear//weight", True),
    ("/linear//weight", "dnn/linear//weight", False),
    ("a//b//c", "a//b//c", True),
    ("a/*/b", "a//b", True),  # `*` matches an empty component
    ("a/**/c", "a//b//c", True),
    ("a/**/c", "a/b/c", True),
    ("linear", "linear//weight", True),
    ("weight", "linear//weight", True),
])  # fmt: skip
def test_patterns_with_empty_components(pattern: str, name: str, selected: bool) -> None:
    from ckpttools.patterns import compile_pattern

    assert compile_pattern(pattern).matches(name) is selected


def test_a_listing_that_would_hide_a_tensor_is_refused(tmp_path) -> None:
    """A zip may hold two members of one name: ls and diff refuse it rather than show one of them."""
    import io
    import warnings
    import zipfile

    import numpy as np
    from click.testing import CliRunner

    from ckpttools.cli import main

    def npy(array: np.ndarray) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    path = tmp_path / "twice.npz"
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w") as archive:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        archive.writestr("w.npy", npy(np.zeros(3)))
        archive.writestr("w.npy", npy(np.ones(4)))
    for args in (["ls", str(path)], ["diff", str(path), str(path)]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 4 and "refusing a listing that would hide one" in result.stderr
