"""`ckpttools show`: values as TensorFlow reads them, printed as numpy prints them, and as JSON."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from ckpttools.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "sample_checkpoints"
CNN = str(SAMPLES / "tf1_cnn")
EVERY_FORMAT = ["all_dtypes", "exotic_dtypes", "sharded", "partitioned", "v1", "v1_sharded", "tf2_keras",
                "tf2_module", "saved_model"]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def tf() -> Any:
    return pytest.importorskip("tensorflow")


def tf_reader(tf: Any, tf_ckpts: Any, label: str) -> tuple[Any, str]:
    path = tf_ckpts[label]
    path = os.path.join(path, "variables", "variables") if label == "saved_model" else path
    return tf.train.load_checkpoint(path), path


def tf_value(tf: Any, reader: Any, path: str, key: str) -> np.ndarray:
    """TF's own value; V1 partitioned variables through the Restore op (its reader refuses them)."""
    try:
        value = reader.get_tensor(key)
    except tf.errors.UnimplementedError:
        dtype = reader.get_variable_to_dtype_map()[key]
        value = tf.raw_ops.Restore(file_pattern=path, tensor_name=key, dt=dtype).numpy()
    return np.asarray(value, dtype=object) if isinstance(value, bytes) else np.asarray(value)


def from_json(values: Any, expected: np.ndarray) -> np.ndarray:
    """Rebuild an array of ``expected``'s dtype from show's JSON, following the documented encoding."""
    if expected.dtype == object:
        def decode(item: Any) -> bytes:
            return base64.b64decode(item["base64"]) if isinstance(item, dict) else item.encode("utf-8")
        flat = [decode(item) for item in np.array(values, dtype=object).reshape(-1)] if expected.size else []
        out = np.empty(len(flat), dtype=object)
        out[:] = flat
        return out.reshape(expected.shape)
    special = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}
    def number(item: Any) -> Any:
        return special[item] if isinstance(item, str) else item
    nested = np.vectorize(number, otypes=[object])(np.array(values, dtype=object)) if expected.size else []
    if expected.dtype.kind == "c":
        pairs = np.array(nested, dtype=np.float64).reshape(expected.shape + (2,))
        return (pairs[..., 0] + 1j * pairs[..., 1]).astype(expected.dtype)
    wide = np.float64 if expected.dtype.kind not in "biu" else expected.dtype
    return np.array(nested, dtype=wide).reshape(expected.shape).astype(expected.dtype)


def blocks(out: str) -> list[tuple[str, str]]:
    """(header, values text) per tensor: a header is the one kind of line with tabs (numpy escapes them)."""
    found: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if "\t" in line:
            found.append((line, []))
        else:
            found[-1][1].append(line)
    return [(header, "\n".join(lines).removesuffix("\n")) for header, lines in found]


def same_bits(ours: np.ndarray, theirs: np.ndarray, key: str) -> None:
    assert ours.shape == theirs.shape, key
    if theirs.dtype == object:
        assert ours.tolist() == theirs.tolist(), key
    elif theirs.dtype.name in ("int4", "uint4", "int2", "uint2"):  # TF keeps sign bits beyond the element's
        assert ours.astype(np.int64).tolist() == theirs.astype(np.int64).tolist(), key
    else:
        assert ours.tobytes() == theirs.tobytes(), key


# --- judged by TensorFlow ----------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.parametrize("label", EVERY_FORMAT)
def test_json_values_are_what_tensorflow_reads(tf: Any, tf_ckpts: Any, label: str) -> None:
    reader, path = tf_reader(tf, tf_ckpts, label)
    dtypes = reader.get_variable_to_dtype_map()
    keys = sorted(dtypes)
    code, out, err = run("show", tf_ckpts[label], *keys, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == "ckpttools.show/1"
    by_key = {item["key"]: item for item in document["tensors"]}
    assert sorted(by_key) == keys
    for key in keys:
        theirs = tf_value(tf, reader, path, key)
        item = by_key[key]
        assert (item["dtype"], item["shape"]) == (dtypes[key].name, list(theirs.shape)), key
        same_bits(from_json(item["values"], theirs), theirs, key)


@pytest.mark.tf
def test_text_is_numpy_printing_of_tensorflow_values(tf: Any, tf_ckpts: Any) -> None:
    reader, path = tf_reader(tf, tf_ckpts, "all_dtypes")
    keys = ["dtypes/float32_big", "dtypes/bfloat16", "dtypes/string", "scalars/int64", "dtypes/complex64",
            "dtypes/float32_special", "empty/float32_3x0"]
    for options, printopts in [((), {}), (("--precision", "3"), {"precision": 3}),
                               (("--full",), {"threshold": 10**9})]:
        code, out, err = run("show", tf_ckpts["all_dtypes"], *keys, *options)
        assert code == 0, err
        shown = blocks(out)
        assert len(shown) == len(keys)
        for key, (header, text) in zip(keys, shown):
            theirs = tf_value(tf, reader, path, key)
            shape = "[" + ", ".join(str(d) for d in theirs.shape) + "]"
            assert header == f"{key}\t{reader.get_variable_to_dtype_map()[key].name}\t{shape}"
            with np.printoptions(**printopts):
                assert text == np.array2string(theirs), key
    summary = run("show", tf_ckpts["all_dtypes"], "dtypes/float32_big")[1]
    assert "..." in summary and len(summary.splitlines()) < 20
    full = run("show", tf_ckpts["all_dtypes"], "dtypes/float32_big", "--full")[1]
    assert "..." not in full


@pytest.mark.tf
def test_strings_are_text_or_base64(tf: Any, tf_ckpts: Any) -> None:
    reader, _ = tf_reader(tf, tf_ckpts, "all_dtypes")
    document = json.loads(run("show", tf_ckpts["all_dtypes"], "dtypes/string", "scalars/string", "--json")[1])
    values, scalar = (item["values"] for item in document["tensors"])
    for ours, theirs in zip(values, reader.get_tensor("dtypes/string").tolist()):
        try:
            assert ours == theirs.decode("utf-8")
        except UnicodeDecodeError:
            assert ours == {"base64": base64.b64encode(theirs).decode()}
    assert scalar == {"base64": base64.b64encode(reader.get_tensor("scalars/string")).decode()}


@pytest.mark.tf
def test_npz_and_safetensors_show_tensorflow_values(tf: Any, tmp_path: Path) -> None:
    reader = tf.train.load_checkpoint(os.path.join(CNN, "model.ckpt-20"))
    for name in ("w.npz", "w.safetensors"):
        out = tmp_path / name
        assert run("extract", CNN, "-o", str(out))[0] == 0
        document = json.loads(run("show", str(out), "--scopes", "conv_block1", "--json")[1])
        assert len(document["tensors"]) == 6
        for item in document["tensors"]:
            theirs = reader.get_tensor(item["name"])
            same_bits(from_json(item["values"], theirs), theirs, item["name"])


# --- choosing tensors ----------------------------------------------------------------------------------


def test_mistyped_name_gets_did_you_mean() -> None:
    code, out, err = run("show", CNN, "cnn/logits/bias", "cnn/logit/kernel")
    assert code == 3 and out == ""
    assert err.strip().splitlines()[-1] == (
        "Error: sample_checkpoints/tf1_cnn/model.ckpt-20: no variable 'cnn/logit/kernel'; "
        "did you mean 'cnn/logits/kernel'?"
    ).replace("sample_checkpoints/", f"{SAMPLES}/")


def test_scopes_select_model_variables_unless_all() -> None:
    code, out, _ = run("show", CNN, "--scopes", "logits", "--scopes", "conv_block1/conv")
    assert code == 0
    headers = [header.split("\t")[0] for header, _ in blocks(out)]
    assert headers == ["cnn/conv_block1/conv/bias", "cnn/conv_block1/conv/kernel", "cnn/logits/bias",
                       "cnn/logits/kernel"]
    code, _, err = run("show", CNN, "--scopes", "Adam", "--scopes", "nothing_here")
    assert code == 3
    assert "pattern 'nothing_here' matched no variable" in err
    assert "pattern 'Adam' matches only optimizer/training state (add --all)" in err
    code, out, _ = run("show", CNN, "--scopes", "logits/bias/Adam", "--all", "cnn/logits/bias/Adam")
    assert code == 0 and out.count("\t") == 2  # named and matched: shown once


def test_names_show_any_role_and_no_selection_is_a_usage_error() -> None:
    code, out, _ = run("show", CNN, "global_step")
    assert code == 0 and out == "global_step\tint64\t[]\n20\n"
    code, _, err = run("show", CNN)
    assert code == 2 and "give a variable NAME or --scopes PATTERN" in err


def test_help_has_example_and_exit_codes() -> None:
    code, out, _ = run("show", "--help")
    assert code == 0 and "Example:" in out and "Exit codes:" in out
