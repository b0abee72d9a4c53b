"""Training across 2 processes x 2 CPU devices on localhost matches one
process, resumes after a kill, saves what one process loads, and refuses
bad settings in one line."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from keras_fido.training import processes
from keras_fido.training.input_shards import shard_batch_size

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TOLERANCE = dict(rtol=1e-5, atol=1e-5)
LIMIT = 240  # seconds a job may take before the test fails
CHECKS = [sys.executable, "-m", "keras_fido.testing.multi_process_checks"]


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """One JAX compilation cache for every process these tests start: a
    job run again (a restart, the reference run) reads the programs the
    first run compiled instead of compiling them again."""
    cache = tmp_path_factory.mktemp("jax_compilation_cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JAX_COMPILATION_CACHE_DIR", str(cache))
        patch.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        patch.setenv("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
        yield cache


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_env(backend, process_id, num_processes, port):
    env = dict(os.environ, KERAS_BACKEND=backend, TIMEOUT="60")
    if backend == "jax":
        # Less optimized XLA programs compile faster, on every process
        # and for the one-device reference alike.
        env["XLA_FLAGS"] = (
            "--xla_force_host_platform_device_count=2 "
            "--xla_backend_optimization_level=0 "
            "--xla_llvm_disable_expensive_passes=true"
        )
        env[processes.ADDRESSES] = f"127.0.0.1:{port}"
        env[processes.NUM_PROCESSES] = str(num_processes)
        env[processes.PROCESS_ID] = str(process_id)
    else:
        workers = [f"127.0.0.1:{port + i}" for i in range(num_processes)]
        env["TF_CONFIG"] = json.dumps(
            {
                "cluster": {"worker": workers},
                "task": {"type": "worker", "index": process_id},
            }
        )
    return env


def start_job(backend, output_dir, modes, num_processes=2, only=None, **env):
    """Starts the processes of one job of `multi_process_checks`, running
    `modes` ("step", "train") in turn; `only` maps a process id to more
    environment for that process alone."""
    port = free_port()
    command = [sys.executable, "-m", "keras_fido.testing.multi_process_checks"]
    return [
        subprocess.Popen(
            [*command, str(output_dir), *modes.split()],
            env={
                **process_env(backend, i, num_processes, port),
                **env,
                **(only or {}).get(i, {}),
            },
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=open(output_dir / f"log{i}.txt", "w"),
        )
        for i in range(num_processes)
    ]


def wait_all(job, stop_on_failure=True):
    """Waits for every process; kills the job if one fails (unless told
    not to) or it runs past `LIMIT` (a scheduler restarts the whole job
    the same way)."""
    deadline = time.monotonic() + LIMIT
    while True:
        codes = [p.poll() for p in job]  # every one: `any` would stop early
        if None not in codes:
            break
        failed = any(code not in (None, 0) for code in codes)
        if (failed and stop_on_failure) or time.monotonic() > deadline:
            for p in job:
                if p.poll() is None:
                    p.send_signal(signal.SIGKILL)
                    p.wait()
            break
        time.sleep(0.5)
    return [p.returncode for p in job]


def logs(output_dir):
    return [(output_dir / f"log{i}.txt").read_text() for i in range(2)]


def run_job(backend, output_dir, modes, **env):
    codes = wait_all(start_job(backend, output_dir, modes, **env))
    assert codes == [0, 0], "\n".join(log[-3000:] for log in logs(output_dir))


def assert_same_weights(expected, received):
    """`received`: an `.npz` file, or weights by path."""
    expected = np.load(expected)
    if isinstance(received, os.PathLike):
        received = np.load(received)
    assert sorted(received) == sorted(expected)
    for path in expected:
        np.testing.assert_allclose(
            received[path], expected[path], err_msg=path, **TOLERANCE
        )


@pytest.fixture(scope="module")
def jax_job(tmp_path_factory):
    """The JAX runs the tests below share (process starts and compiling
    are most of their time):

    1. a job of 2 processes x 2 devices takes the one-step checks
       (`step`); the chief trains `EPOCHS` x `STEPS` steps on one device
       uninterrupted (`reference`); both train model parallel, stopped
       mid-epoch 1 and resumed in the same processes (`train_model`);
       then both start the data-parallel training (`train`) with
       `KILL_AT=1,1`: process 1 SIGKILLs itself mid-epoch 1, and the job
       is stopped as a scheduler would;
    2. the training command is run again, unchanged, and finishes.
    """
    output_dir = tmp_path_factory.mktemp("job")
    modes = "step reference train_model train"
    killed = wait_all(start_job("jax", output_dir, modes, KILL_AT="1,1"))
    state = {
        "killed": killed,
        "marker": (output_dir / "killed").exists(),
        "finished_before_restart": (output_dir / "final.npz").exists(),
        "logs": logs(output_dir),
    }
    codes = wait_all(start_job("jax", output_dir, "train", KILL_AT="1,1"))
    state["restarted"] = codes
    return output_dir, state


@pytest.mark.large
def test_jax_two_processes_step_matches_one_device(jax_job):
    output_dir, state = jax_job
    assert (output_dir / "figures.json").exists(), state["logs"][0][-3000:]
    figures = json.loads((output_dir / "figures.json").read_text())
    for name, engine in (("data", "DataParallel"), ("model", "ModelParallel")):
        assert figures[name]["engine"] == engine
        assert figures[name]["processes"] == 2
        np.testing.assert_allclose(
            figures[name]["loss"], figures["single"]["loss"], **TOLERANCE
        )
        assert_same_weights(
            output_dir / "single.npz", output_dir / f"{name}.npz"
        )


@pytest.mark.large
def test_job_killed_mid_epoch_resumes_to_the_same_weights(jax_job):
    output_dir, state = jax_job
    assert state["killed"][1] == -signal.SIGKILL, state["logs"][1][-3000:]
    assert state["marker"] and not state["finished_before_restart"]
    assert state["restarted"] == [0, 0], "\n".join(
        log[-3000:] for log in logs(output_dir)
    )
    steps = json.loads((output_dir / "final.json").read_text())["steps"]
    expected = json.loads((output_dir / "reference.json").read_text())
    assert steps == expected["steps"] == 6
    assert_same_weights(output_dir / "reference.npz", output_dir / "final.npz")


@pytest.mark.large
def test_model_parallel_training_resumes_to_the_same_weights(jax_job):
    """Stopped mid-epoch 1, every weight split between the processes, and
    resumed from the backup (weights and momentum laid out again)."""
    output_dir, state = jax_job
    assert (output_dir / "model_final.json").exists(), state["logs"][0][-3000:]
    resumed = json.loads((output_dir / "model_epochs.json").read_text())
    assert resumed == [1, 2]  # epoch 0 came from the backup
    final = json.loads((output_dir / "model_final.json").read_text())
    assert final["steps"] == 6
    assert_same_weights(
        output_dir / "reference.npz", output_dir / "model_final.npz"
    )


@pytest.mark.large
def test_model_parallel_saves_load_in_one_process(jax_job):
    """The chief's checkpoint, preset and `.keras` file of the
    model-parallel job, each weight split between the processes while it
    trained, load here (one device) with the uninterrupted run's
    weights."""
    import keras

    from keras_fido.models import FiDOBackbone
    from keras_fido.testing.multi_process_checks import compiled_reader

    output_dir, _ = jax_job
    expected = output_dir / "reference.npz"
    checkpoint = compiled_reader()
    checkpoint.load_weights(output_dir / "backup_model_final/latest.weights.h5")
    preset = FiDOBackbone.from_preset(str(output_dir / "model_preset"))
    saved = keras.saving.load_model(output_dir / "model_final.keras")
    for model in (checkpoint, preset, saved):
        weights = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
        assert_same_weights(expected, weights)


@pytest.mark.large
def test_tensorflow_two_workers_step_matches_one_device(tmp_path):
    run_job("tensorflow", tmp_path, "step")
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["data"]["engine"] == "MultiWorkerMirroredStrategy"
    assert figures["data"]["processes"] == 2
    np.testing.assert_allclose(
        figures["data"]["loss"], figures["single"]["loss"], **TOLERANCE
    )
    assert_same_weights(tmp_path / "single.npz", tmp_path / "data.npz")


@pytest.mark.large
def test_worker_with_another_architecture_fails_in_one_line(tmp_path):
    start = time.monotonic()
    job = start_job("jax", tmp_path, "train", only={1: {"DECODER_LAYERS": "3"}})
    assert wait_all(job, stop_on_failure=False) == [1, 1]
    for process, log in enumerate(logs(tmp_path)):
        last = log.strip().splitlines()[-1]
        assert last.startswith(
            "error: backbone decoder_num_layers differs between the 2 "
            f"processes (process {process} has {process + 2})"
        ), log[-3000:]
    assert time.monotonic() - start < LIMIT


@pytest.mark.large
def test_unreachable_coordinator_fails_in_one_line(tmp_path):
    env = process_env("jax", 1, 2, free_port())  # nobody listens there
    env["TIMEOUT"] = "3"
    start = time.monotonic()
    result = subprocess.run(
        [*CHECKS, str(tmp_path), "step"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --coordinator 127.0.0.1:")
    assert "within 3 s" in last
    assert time.monotonic() - start < 60


@pytest.mark.parametrize(
    "env, message",
    [
        ({processes.NUM_PROCESSES: "two"}, "must be an int"),
        ({processes.NUM_PROCESSES: "2"}, "--process-id"),
        (
            {processes.NUM_PROCESSES: "2", processes.PROCESS_ID: "2"},
            r"--process-id .* must be in \[0, 2\)",
        ),
        (
            {processes.NUM_PROCESSES: "2", processes.PROCESS_ID: "1"},
            "--coordinator",
        ),
    ],
)
def test_process_group_names_the_bad_setting(monkeypatch, env, message):
    monkeypatch.setattr("keras.backend.backend", lambda: "jax")
    for name in (processes.NUM_PROCESSES, processes.PROCESS_ID):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(processes.ADDRESSES, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        processes.process_group()


@pytest.mark.parametrize(
    "tf_config, message",
    [
        (None, "TF_CONFIG .* not set"),
        ("{cluster", "TF_CONFIG is malformed"),
        ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG is malformed"),
        (
            '{"cluster": {"worker": ["a:1", "b:1"]}, '
            '"task": {"type": "worker", "index": 2}}',
            "not in its cluster",
        ),
        ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "list"),
    ],
)
def test_tf_config_is_checked_in_one_line(monkeypatch, tf_config, message):
    monkeypatch.setattr("keras.backend.backend", lambda: "tensorflow")
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message) as error:
        processes.process_group(num_processes=2)
    assert "\n" not in str(error.value)


def test_tf_config_gives_each_worker_its_index(monkeypatch):
    monkeypatch.setattr("keras.backend.backend", lambda: "tensorflow")
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {
                "cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                "task": {"type": "worker", "index": 1},
            }
        ),
    )
    group = processes.process_group()
    assert (group.num_processes, group.process_id, group.chief) == (3, 2, False)


def test_batch_not_divisible_by_processes_names_both():
    import keras

    class FakeDataParallel(keras.distribution.DataParallel):
        num_processes = 2
        num_model_replicas = 2
        data_shard_id = 1

    engine = FakeDataParallel(devices=["cpu:0"])
    assert shard_batch_size(engine, 8) == 4
    with pytest.raises(ValueError, match="--batch-size 7 .* 2 processes"):
        shard_batch_size(engine, 7)
