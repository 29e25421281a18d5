"""Distributed training on TensorFlow's parameter-server runtime, with real clusters of processes on 127.0.0.1.

The cluster tests start TensorFlow processes (16 in all, a few seconds of CPU each): they are marked
``cluster``, so ``python -m pytest -m "not cluster"`` leaves them out. The spec and command-line tests
need no TensorFlow (what can be refused before it loads is refused there), but for the two marked ``tf``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ckpttools.cli.cluster import child_argv
from ckpttools.errors import ClusterError, ConfigError, NotFoundError
from ckpttools.training import cluster as clusters

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "ckpttools"]


# --- cluster specs (no TensorFlow) ------------------------------------------------------------------------


def test_tf_config_names_the_task_and_the_chief() -> None:
    config = {"cluster": {"ps": ["h0:2222"], "worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker", "index": 1}}
    task = clusters.from_tf_config(json.dumps(config))
    assert (task.name, task.is_chief, task.num_ps, task.num_replicas) == ("worker:1", False, 1, 2)
    assert task.replica_index == 1
    config["cluster"]["chief"] = ["h3:2222"]
    config["task"] = {"type": "chief", "index": 0}
    chief = clusters.from_tf_config(json.dumps(config))
    assert (chief.is_chief, chief.num_replicas, chief.shape()) == (True, 3, {"ps": 1, "worker": 2, "chief": 1})


@pytest.mark.parametrize("text, message", [
    (None, "TF_CONFIG environment variable is not set"),
    ("{not json", "TF_CONFIG is not a cluster description"),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "worker", "index": 0}}', "no 'ps' tasks"),
    ('{"cluster": {"ps": ["h:1"], "worker": ["h:1"]}, "task": {"type": "worker", "index": 3}}', "tasks 0..0"),
    ('{"cluster": {"ps": ["nohostport"], "worker": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "host:port"),
    ('{"cluster": {"ps": ["h:1"], "evaluator": ["h:2"]}, "task": {"type": "ps", "index": 0}}', "unknown job"),
])
def test_bad_tf_config_is_one_clear_error(text: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        clusters.from_tf_config(text)


def test_spec_file_needs_job_and_task(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such cluster spec file"):
        clusters.from_spec_file(str(tmp_path / "nope.json"), "ps", 0)
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"ps": ["127.0.0.1:1"], "worker": ["127.0.0.1:2"]}))
    with pytest.raises(ConfigError, match="needs --job and --task"):
        clusters.from_spec_file(str(path), None, None)
    assert clusters.from_spec_file(str(path), "ps", 0).name == "ps:0"


def test_unreachable_task_is_named_after_the_timeout() -> None:
    port = clusters.free_ports(1)[0]  # free now: nobody listens there
    task = clusters.ClusterTask({"ps": (f"127.0.0.1:{port}",), "worker": ("127.0.0.1:1",)}, "worker", 0)
    with pytest.raises(ClusterError, match=rf"task ps:0 at 127.0.0.1:{port} is unreachable"):
        clusters.wait_for_tasks(task, "ps", timeout=0.3)


def test_local_cluster_ports_differ_and_children_drop_the_launcher_options() -> None:
    spec = clusters.local_cluster(workers=2, ps=2)
    addresses = spec["ps"] + spec["worker"]
    assert len(set(addresses)) == 4 and all(a.startswith("127.0.0.1:") for a in addresses)
    argv = ["--debug", "train", "--cluster", "local", "--workers=3", "--ps", "2", "--sync", "--force", "--steps", "9"]
    assert child_argv(argv, force=True) == ["--debug", "train", "--sync", "--steps", "9"]
    with pytest.raises(ConfigError, match="at least 1"):
        clusters.local_cluster(workers=0, ps=1)


def test_resume_on_another_cluster_shape_is_refused_before_starting(tmp_path: Path) -> None:
    from ckpttools.training.runconfig import RunConfig, save_run

    save_run(tmp_path, RunConfig(), cluster=clusters.cluster_record({"ps": 2, "worker": 2}, True, None))
    result = subprocess.run([*CLI, "train", "--cluster", "local", "--workers", "2", "--ps", "1", "--sync",
                             "--resume", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"Error: --resume: {tmp_path} was trained on 2 ps, 2 workers, synchronous, not "
                                     f"1 ps, 2 workers, synchronous; resume it on the same cluster shape")
    assert not (tmp_path / "logs").exists()


def test_a_tf_config_chief_resuming_another_cluster_shape_names_itself(tmp_path: Path) -> None:
    from ckpttools.training.runconfig import RunConfig, save_run

    save_run(tmp_path, RunConfig(), cluster=clusters.cluster_record({"ps": 2, "worker": 2}, False, None))
    ports = clusters.free_ports(2)
    config = {"cluster": {"ps": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{ports[1]}"]},
              "task": {"type": "worker", "index": 0}}
    result = subprocess.run([*CLI, "train", "--cluster", "TF_CONFIG", "--resume", "--out", str(tmp_path)],
                            env={**os.environ, "TF_CONFIG": json.dumps(config)}, capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stderr.strip()) == (2, (
        f"Error: task worker:0: --resume: {tmp_path} was trained on 2 ps, 2 workers, not 1 ps, 1 worker; resume it "
        f"on the same cluster shape"))
    assert "tensorflow" not in result.stderr.lower()  # refused before TensorFlow loads


def test_a_task_whose_port_is_taken_says_so_before_loading_tensorflow(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        spec = tmp_path / "spec.json"
        spec.write_text(json.dumps({"ps": [f"127.0.0.1:{port}"], "worker": ["127.0.0.1:1"]}))
        began = time.monotonic()
        result = subprocess.run([*CLI, "train", "--cluster-spec", str(spec), "--job", "ps", "--task", "0",
                                 "--out", str(tmp_path / "run")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 8
    assert result.stderr.strip() == (f"Error: task ps:0: cannot start a server at 127.0.0.1:{port} (port {port}: "
                                     f"Address already in use)")
    assert time.monotonic() - began < 30  # no TensorFlow import (seconds of CPU) before saying so


@pytest.mark.tf
def test_tensorflow_refusing_a_taken_port_reads_the_same(tmp_path: Path) -> None:
    """The port can be taken after the check above: TensorFlow's own refusal is the same error."""
    import socket

    pytest.importorskip("tensorflow")
    from ckpttools.tfcore.distributed import _server

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        task = clusters.ClusterTask({"ps": (f"127.0.0.1:{port}",), "worker": ("127.0.0.1:1",)}, "ps", 0)
        with pytest.raises(ClusterError, match=rf"^task ps:0: cannot start a server at 127.0.0.1:{port} \(.+\)$"):
            _server(task)


@pytest.mark.tf
def test_the_launcher_starts_again_on_other_ports_when_a_port_was_taken(tmp_path: Path) -> None:
    """A port picked free, then taken by another program before its task binds it, costs one more start."""
    import socket

    from ckpttools.training import launcher

    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = f"127.0.0.1:{thief.getsockname()[1]}"
        specs = [{"ps": [taken], "worker": [taken]}, clusters.local_cluster(workers=1, ps=1)]
        given = []

        def make_spec() -> dict[str, list[str]]:
            given.append(specs[len(given)])
            return given[-1]

        # second start: the chief gets past its port check and stops at the next one (nothing to resume)
        with pytest.raises(ClusterError, match=r"^task worker:0 exited with code 2: Error: task worker:0: --resume: "):
            launcher.run_local_cluster(["train", "--resume", "--out", str(tmp_path)], make_spec, tmp_path)
    assert given == specs
    assert json.loads((tmp_path / "logs" / "cluster.json").read_text()) == specs[1]


# --- real clusters ----------------------------------------------------------------------------------------


def _ckpttools_processes(marker: str) -> list[int]:
    """PIDs of live processes whose command line mentions ``marker`` (the run directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker in cmdline and "ckpttools" in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def _task_pid(run: Path, job: str, index: int) -> int:
    for pid in _ckpttools_processes(str(run)):
        if f"--job {job} --task {index}" in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
            return pid
    raise AssertionError(f"no process for task {job}:{index} of {run}")


def _stop_endless_cluster(run: Path, workers: int, stop: Callable[[subprocess.Popen], None]) -> tuple[int, str]:
    """Start a local cluster (1 ps) training far longer than any test waits; once the chief has written run.json
    (every task up, the chief in its loop), ``stop(launcher)``. Returns the launcher's exit code and stderr."""
    launcher = subprocess.Popen([*CLI, "train", "--cluster", "local", "--workers", str(workers), "--ps", "1",
                                 "--steps", "100000", "--out", str(run)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while not (run / "run.json").exists():
            assert launcher.poll() is None, launcher.communicate()[1][-2000:]
            assert time.monotonic() < deadline, f"{run}: the cluster did not start training within 240 s"
            time.sleep(0.2)
        stop(launcher)
        stderr = launcher.communicate(timeout=180)[1]
        return launcher.returncode, stderr
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.communicate()


def _train(run: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "train", "--cluster", "local", "--out", str(run), *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


DIST_ARGS = ["--workers", "2", "--ps", "2", "--sync", "--partition-min-bytes", "2000", "--checkpoint-every", "10",
             "--summary-every", "5", "--json"]


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """2 workers and 2 parameter servers, synchronous, with partitioned variables: 20 steps."""
    run = tmp_path_factory.mktemp("cluster") / "dist"
    trained = _train(run, *DIST_ARGS, "--steps", "20")
    assert trained.returncode == 0, trained.stderr[-2000:]
    return run, json.loads(trained.stdout)


@pytest.mark.tf
@pytest.mark.cluster
def test_local_cluster_writes_a_distributed_run_that_one_process_evaluates(distributed_run: tuple[Path, dict]) -> None:
    import tensorflow as tf

    from ckpttools import open_checkpoint
    from ckpttools.tfcore import evaluate

    run, result = distributed_run
    assert (result["schema"], result["step"], result["checkpoint"]) == ("ckpttools.train/1", 20, f"{run}/model.ckpt-20")
    # a real distributed checkpoint: one data shard per parameter server, big variables in slices on both
    assert sorted(p.name for p in run.glob("model.ckpt-20.*")) == [
        "model.ckpt-20.data-00000-of-00002", "model.ckpt-20.data-00001-of-00002", "model.ckpt-20.index",
        "model.ckpt-20.meta"]
    assert 'model_checkpoint_path: "model.ckpt-20"' in (run / "checkpoint").read_text()  # relative
    record = json.loads((run / "run.json").read_text())["cluster"]
    assert record == {"shape": {"ps": 2, "worker": 2}, "sync": True, "partition_min_bytes": 2000}
    assert sorted(p.name for p in (run / "logs").glob("*.log")) == ["ps-0.log", "ps-1.log", "worker-0.log",
                                                                    "worker-1.log"]
    assert list((run / "summaries" / "train").glob("events.out.tfevents.*"))
    listed = subprocess.run([*CLI, "ls", "--slices", str(run), "--scopes", "cnn/conv_block2/conv/kernel"],
                            capture_output=True, text=True, timeout=60)
    assert [line.split("\t")[4] for line in listed.stdout.splitlines()] == ["0", "1"]  # the shard of each slice
    with open_checkpoint(run) as ckpt:
        kernel = ckpt.info("cnn/conv_block2/conv/kernel")
        assert kernel.partitioned and {s.shard for s in kernel.slices} == {0, 1}
        reader = tf.train.load_checkpoint(str(run / "model.ckpt-20"))
        for info in ckpt:
            np.testing.assert_array_equal(ckpt.get(info.name), reader.get_tensor(info.key))
    # one process restores it and scores what the chief scored
    assert evaluate(run).accuracy == result["test"]["accuracy"]
    assert _ckpttools_processes(str(run)) == []


@pytest.mark.tf
@pytest.mark.cluster
def test_a_distributed_transfer_keeps_frozen_layers(distributed_run: tuple[Path, dict], tmp_path: Path) -> None:
    source, _ = distributed_run  # partitioned, in two shards: the plan reads it whole
    fine_tuned = tmp_path / "ft"
    result = subprocess.run([*CLI, "transfer", "--from", f"{source}/model.ckpt-20", "--scopes", "conv_block[1-3]",
                             "--freeze", "--lr-mult", "conv_block4=0.1", "--cluster", "local", "--workers", "2",
                             "--ps", "1", "--steps", "10", "--out", str(fine_tuned), "--json"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["schema"] == "ckpttools.transfer/1" and document["train"]["step"] >= 10  # async: may pass it
    same = subprocess.run([*CLI, "diff", f"{source}/model.ckpt-20", str(fine_tuned), "--scopes", "conv_block[1-3]",
                           "-q"], capture_output=True, text=True, timeout=60)
    assert same.returncode == 0, same.stdout  # frozen: bitwise unchanged by distributed fine-tuning
    assert _ckpttools_processes(str(fine_tuned)) == []


@pytest.mark.tf
@pytest.mark.cluster
def test_a_killed_worker_fails_the_run_and_stops_every_task(tmp_path: Path) -> None:
    run = tmp_path / "killed"
    code, stderr = _stop_endless_cluster(run, 2, lambda launcher: os.kill(_task_pid(run, "worker", 1), signal.SIGKILL))
    assert code == 8, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]  # the log's last line may follow: what the task said, if anything
    assert last.startswith("Error: task worker:1 was killed by signal 9") and last.endswith(
        f"(log: {run}/logs/worker-1.log)"), last
    assert _ckpttools_processes(str(run)) == []  # the launcher waited for every task it stopped


@pytest.mark.tf
@pytest.mark.cluster
def test_ctrl_c_saves_a_checkpoint_and_stops_every_task_then_tf_config_tasks_resume(tmp_path: Path) -> None:
    run = tmp_path / "stopped"
    code, stderr = _stop_endless_cluster(run, 1, lambda launcher: launcher.send_signal(signal.SIGINT))
    assert code == 130, stderr[-2000:]
    hint = next(line for line in stderr.splitlines() if line.startswith("Interrupted at step"))
    step = int(hint.split()[3].rstrip(":"))
    assert hint == (f"Interrupted at step {step}: saved {run}/model.ckpt-{step}; continue with: ckpttools train "
                    f"--out {run} --resume --cluster local --workers 1 --ps 1")
    assert _ckpttools_processes(str(run)) == []
    # the whole cluster was stopped: resume it with one task per process from TF_CONFIG, as on real machines
    ports = clusters.free_ports(2)
    spec = {"ps": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{ports[1]}"]}
    args = ("--resume", "--steps", str(step + 3), "--out", str(run), "--json")
    processes = [_tf_config_task(spec, job, *args) for job in ("ps", "worker")]
    outputs = _outputs(processes)
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert outputs[0] == ("", "")  # the ps serves quietly, and ends once the chief is done
    result = json.loads(outputs[1][0])
    assert (result["resumed_from"], result["step"]) == (step, step + 3)
    assert sorted(p.name for p in run.glob(f"model.ckpt-{step + 3}.data-*")) == [
        f"model.ckpt-{step + 3}.data-00000-of-00001"]


@pytest.mark.tf
@pytest.mark.cluster
def test_tf_config_tasks_whose_peers_never_come_name_them_and_stop(tmp_path: Path) -> None:
    """A worker whose ps never starts, and (another cluster) a ps whose worker never starts: both stop, exit 8."""
    ports = clusters.free_ports(4)
    alone = [{"ps": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{ports[1]}"]},
             {"ps": [f"127.0.0.1:{ports[2]}"], "worker": [f"127.0.0.1:{ports[3]}"]}]
    args = ("--cluster-timeout", "3", "--steps", "12", "--out", str(tmp_path / "run"))
    processes = [_tf_config_task(alone[0], "worker", *args), _tf_config_task(alone[1], "ps", *args)]
    outputs = _outputs(processes)
    assert [p.returncode for p in processes] == [8, 8], outputs
    assert [out[1].strip().splitlines()[-1] for out in outputs] == [
        f"Error: task worker:0: task ps:0 at {alone[0]['ps'][0]} is unreachable (Connection refused) after 3 s; "
        f"check that it is running, or give --cluster-timeout more time",
        "Error: task ps:0: task worker:0 did not connect within 3 s; check that it is running, or give "
        "--cluster-timeout more time"]


def _outputs(processes: list[subprocess.Popen], timeout: float = 300) -> list[tuple[str, str]]:
    """Each task's (stdout, stderr) once it ends; tasks still running after ``timeout`` are killed (never left
    behind to train on while the rest of the suite runs) and the test fails with what they printed."""
    try:
        return [p.communicate(timeout=timeout) for p in processes]
    except subprocess.TimeoutExpired:
        for p in processes:
            p.kill()
        printed = [p.communicate() for p in processes]
        pytest.fail(f"TF_CONFIG tasks still running after {timeout} s: {printed}")


def _tf_config_task(spec: dict[str, list[str]], job: str, *args: str, index: int = 0) -> subprocess.Popen:
    env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": spec, "task": {"type": job, "index": index}})}
    return subprocess.Popen([*CLI, "train", "--cluster", "TF_CONFIG", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT)
