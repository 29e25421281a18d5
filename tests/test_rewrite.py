"""``ckpttools.rewrite`` judged by TensorFlow: sources written by TF, outputs read and restored by TF.

The rewrites run here, without TensorFlow; one TF subprocess (tests/rewrite_fixtures.py) writes the
sources and one reads every output (``tf.train.load_checkpoint``) and restores it (``Saver`` into the
TF1 graph under the renamed scope, ``tf.train.Checkpoint(model=...)`` with
``assert_existing_objects_matched()`` for Keras).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import ckpttools

pytestmark = pytest.mark.tf
SCRIPT = Path(__file__).resolve().parent / "rewrite_fixtures.py"
TIMEOUT = 600


def _tf(*args: str) -> dict:
    result = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode != 0:
        pytest.fail(f"TensorFlow subprocess failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return _tf("build", str(tmp_path_factory.mktemp("rewrite_sources")))


# name -> (source label, rewrite options, judge job)
CASES = {
    "tf1_strip_rename": ("tf1_3", dict(strip_optimizer=True, mapping=["net/=model/"]), {"restore": "tf1",
                                                                                        "scope": "model"}),
    "tf1_rename_shards": ("tf1_3", dict(mapping=["net/=model/"], num_shards=2), {"restore": "tf1",
                                                                                 "scope": "model"}),
    "v1_in": ("v1", dict(strip_optimizer=True), {"restore": "tf1"}),
    "tf1_cast": ("tf1_3", dict(strip_optimizer=True, cast=["float32=bfloat16"]), {"restore": "tf1",
                                                                                 "dtype": "bfloat16"}),
    "tf1_avg_ema": ("tf1_3", dict(average_last=3, use_ema=True, strip_optimizer=True, num_shards=3),
                    {"restore": "tf1"}),
    "tf1_set_step": ("tf1_3", dict(set_step=1000), {"restore": "tf1"}),
    "tf2_strip": ("tf2_3", dict(strip_optimizer=True), {"restore": "tf2"}),
    "tf2_cast": ("tf2_3", dict(cast=["float32=bfloat16"]), {"restore": "tf2", "dtype": "bfloat16"}),
    "tf2_avg_step": ("tf2_3", dict(average_last=3, set_step=7), {"restore": "tf2"}),
}


@pytest.fixture(scope="module")
def judged(sources: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("rewrite_outputs")
    jobs = {label: {"path": path} for label, path in sources.items()}
    reports = {}
    for name, (label, options, job) in CASES.items():
        (out / name).mkdir()
        reports[name] = ckpttools.rewrite(sources[label], str(out / name / "model.ckpt"), **options)
        jobs[name] = {"path": str(out / name / "model.ckpt"), **job}
    (out / "jobs.json").write_text(json.dumps(jobs))
    results = _tf("judge", str(out / "jobs.json"))
    return {"tf": results, "reports": reports, "out": out}


def values(result: dict) -> dict[str, object]:
    """TensorFlow's reading, decoded: numeric tensors as raw bytes, strings as lists of bytes."""
    return {key: _decode(t) for key, t in result["tensors"].items() if "error" not in t}


def _decode(encoded: dict) -> object:
    if "strings" in encoded:
        return [base64.b64decode(s) for s in encoded["strings"]]
    return base64.b64decode(encoded["bytes"])


def array(result: dict, key: str) -> np.ndarray:
    t = result["tensors"][key]
    dtype = ml_dtypes.bfloat16 if t["dtype"] == "bfloat16" else np.dtype(t["dtype"])
    return np.frombuffer(base64.b64decode(t["bytes"]), dtype).reshape(t["shape"])


def _restored(judged: dict, name: str) -> dict:
    result = judged["tf"][name]
    assert "restore_error" not in result, result["restore_error"]
    return result


MODEL_TF1 = ["net/counts", "net/dense/bias", "net/dense/kernel", "net/emb", "net/vocab"]
SHADOWS = [f"net/{name}/ExponentialMovingAverage" for name in ("dense/bias", "dense/kernel", "emb")]
STRIPPED = sorted(MODEL_TF1 + SHADOWS)  # --strip-optimizer keeps moving averages (--use-ema promotes them)


def test_strip_and_rename_restores_into_the_renamed_graph(judged: dict) -> None:
    result = _restored(judged, "tf1_strip_rename")
    source = values(judged["tf"]["tf1_3"])
    got = values(result)
    assert sorted(got) == sorted(name.replace("net/", "model/") for name in STRIPPED)
    for name in STRIPPED:
        assert got[name.replace("net/", "model/")] == source[name], name
        assert result["tensors"][name.replace("net/", "model/")]["dtype"] == judged["tf"]["tf1_3"]["tensors"][name][
            "dtype"]
    # the Saver restored the partitioned embedding part by part, bitwise
    emb = array(judged["tf"]["tf1_3"], "net/emb")
    parts = [result["restored"][f"model/emb/part_{i}"] for i in range(2)]
    assert b"".join(base64.b64decode(p["bytes"]) for p in parts) == emb.tobytes()
    report = judged["reports"]["tf1_strip_rename"]
    assert report.meta is None and any(".meta not copied" in note for note in report.notes)
    assert not (judged["out"] / "tf1_strip_rename" / "model.ckpt.meta").exists()


def test_rename_into_two_shards_keeps_every_tensor_bitwise(judged: dict) -> None:
    """Unchanged tensors are copied file to file, alternating between the output's shards."""
    result = _restored(judged, "tf1_rename_shards")
    source = values(judged["tf"]["tf1_3"])
    assert values(result) == {name.replace("net/", "model/", 1): value for name, value in source.items()}
    assert len(judged["reports"]["tf1_rename_shards"].files) == 3  # 2 data shards and the index


def test_v1_source_becomes_v2(judged: dict) -> None:
    result = _restored(judged, "v1_in")
    source = judged["tf"]["v1"]["tensors"]
    assert "error" in source["net/emb"]  # TensorFlow reads a V1 partitioned variable only by restoring it
    got = values(result)
    assert sorted(got) == STRIPPED
    assert all(got[name] == _decode(source[name]) for name in STRIPPED if "error" not in source[name])
    assert got["net/emb"] == values(judged["tf"]["tf1_3"])["net/emb"]  # saved by the same session
    assert (judged["out"] / "v1_in" / "model.ckpt.index").exists()


def test_cast_equals_ml_dtypes_conversion(judged: dict) -> None:
    result = _restored(judged, "tf1_cast")
    source = judged["tf"]["tf1_3"]
    for name in ("net/dense/kernel", "net/dense/bias", "net/emb"):
        assert result["tensors"][name]["dtype"] == "bfloat16"
        expected = array(source, name).astype(ml_dtypes.bfloat16)
        assert array(result, name).tobytes() == expected.tobytes(), name
    assert result["tensors"]["net/counts"]["dtype"] == "int32"  # integers are never cast unless named
    assert values(result)["net/counts"] == values(source)["net/counts"]


def test_average_of_ema_shadows_is_numpy_float64_mean(judged: dict) -> None:
    result = _restored(judged, "tf1_avg_ema")
    inputs = [judged["tf"][f"tf1_{n}"] for n in (3, 2, 1)]
    for name in ("net/dense/kernel", "net/dense/bias", "net/emb"):
        shadows = [array(src, name + "/ExponentialMovingAverage") for src in inputs]
        expected = np.mean(np.stack(shadows).astype(np.float64), axis=0).astype(np.float32)
        assert array(result, name).tobytes() == expected.tobytes(), name
    newest = values(inputs[0])
    got = values(result)
    assert got["net/counts"] == newest["net/counts"] and got["net/vocab"] == newest["net/vocab"]
    assert not any("ExponentialMovingAverage" in key or "Adam" in key for key in got)
    assert len(judged["reports"]["tf1_avg_ema"].files) == 4  # 3 data shards and the index


def test_set_step_keeps_everything_else_and_copies_the_meta(judged: dict) -> None:
    result = _restored(judged, "tf1_set_step")
    source = values(judged["tf"]["tf1_3"])
    got = values(result)
    assert array(result, "global_step").tolist() == 1000
    assert sorted(got) == sorted(source)
    assert all(got[key] == source[key] for key in source if key != "global_step")
    meta = judged["out"] / "tf1_set_step" / "model.ckpt.meta"
    source_meta = Path(judged["tf"]["tf1_3"] and judged["reports"]["tf1_set_step"].plan.source + ".meta")
    assert meta.read_bytes() == source_meta.read_bytes()


def test_tf2_strip_optimizer_restores_into_the_model(judged: dict) -> None:
    result = _restored(judged, "tf2_strip")
    got = values(result)
    assert not any(key.startswith("optimizer/_") and "_trainable_variables" not in key for key in got)
    source = values(judged["tf"]["tf2_3"])
    for key in got:
        if key != "_CHECKPOINTABLE_OBJECT_GRAPH":
            assert got[key] == source[key], key
    assert len(result["restored"]) == 4


def test_tf2_cast_restores_into_a_bfloat16_model(judged: dict) -> None:
    result = _restored(judged, "tf2_cast")
    source = judged["tf"]["tf2_3"]
    floats = [key for key, t in source["tensors"].items() if t["dtype"] == "float32"]
    assert floats
    for key in floats:
        assert array(result, key).tobytes() == array(source, key).astype(ml_dtypes.bfloat16).tobytes(), key
    assert result["tensors"]["save_counter/.ATTRIBUTES/VARIABLE_VALUE"]["dtype"] == "int64"


def test_tf2_average_and_set_step(judged: dict) -> None:
    result = _restored(judged, "tf2_avg_step")
    inputs = [judged["tf"][f"tf2_{n}"] for n in (3, 2, 1)]
    assert array(result, "save_counter/.ATTRIBUTES/VARIABLE_VALUE").tolist() == 7
    iterations = "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    assert values(result)[iterations] == values(inputs[0])[iterations]  # integers from the newest
    for key, t in inputs[0]["tensors"].items():
        if t["dtype"] == "float32":
            expected = np.mean(np.stack([array(src, key) for src in inputs]).astype(np.float64), axis=0)
            assert array(result, key).tobytes() == expected.astype(np.float32).tobytes(), key
