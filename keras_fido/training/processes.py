"""Several processes training one model: who they are, how they meet.

JAX meets with `keras.distribution.initialize` (one coordinator, the
process count and this process's id, from flags or Keras' own
`KERAS_DISTRIBUTION_*` variables); TensorFlow with the `TF_CONFIG` that
`tf.distribute.MultiWorkerMirroredStrategy` reads. Every setting is
checked before anything waits on the network, and the wait itself is
bounded, so a misconfigured job ends with one line naming the setting.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import threading
import zlib

import keras

ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class ProcessGroup:
    """The processes of one training job, seen from one of them.

    Attributes:
        num_processes: int. Processes in the job (hosts, usually).
        process_id: int. This process, from 0; process 0 is the chief.
        coordinator: str. JAX: `host:port` of process 0, where the others
            connect. TensorFlow: `None` (`TF_CONFIG` lists every worker).
        chief: bool. Whether this process writes checkpoints and presets.
    """

    num_processes: int
    process_id: int
    coordinator: str = None
    chief: bool = True


def process_group(num_processes=None, process_id=None, coordinator=None):
    """The job's processes, from flags, else the environment.

    JAX: `num_processes`, `process_id` and `coordinator` (a `host:port`,
    or Keras' comma-separated job addresses), each defaulting to its
    `KERAS_DISTRIBUTION_*` variable. TensorFlow: `TF_CONFIG`; flags given
    too must agree with it.

    Returns:
        A `ProcessGroup`, or `None` for a single process.

    Raises:
        ValueError: one line naming the flag or variable that is missing,
            malformed or inconsistent.
    """
    if keras.backend.backend() == "tensorflow":
        return _tf_config_group(num_processes, process_id)
    num_processes = _int_setting(
        "--num-processes", num_processes, NUM_PROCESSES
    )
    if num_processes in (None, 1):
        return None
    process_id = _int_setting("--process-id", process_id, PROCESS_ID)
    coordinator = coordinator or os.environ.get(ADDRESSES)
    if num_processes < 1:
        raise ValueError(
            f"--num-processes ({NUM_PROCESSES}) must be a positive int. "
            f"Received: {num_processes}"
        )
    if process_id is None or not 0 <= process_id < num_processes:
        raise ValueError(
            f"--process-id ({PROCESS_ID}) must be in [0, {num_processes}) "
            f"for --num-processes {num_processes}. Received: {process_id}"
        )
    host, _, port = (coordinator or "").split(",")[0].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(
            f"--coordinator ({ADDRESSES}) must be process 0's host:port "
            f"for --num-processes {num_processes}. Received: {coordinator!r}"
        )
    return ProcessGroup(
        num_processes, process_id, f"{host}:{port}", chief=process_id == 0
    )


def _int_setting(flag, value, variable):
    if value is not None:
        return value
    text = os.environ.get(variable)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(
            f"{variable} (--{flag.lstrip('-')}) must be an int. "
            f"Received: {variable}={text!r}"
        ) from None


def _tf_config_group(num_processes, process_id):
    text = os.environ.get("TF_CONFIG")
    if text is None:
        if num_processes not in (None, 1):
            raise ValueError(
                f"--num-processes {num_processes} on TensorFlow needs "
                "TF_CONFIG (MultiWorkerMirroredStrategy), which is not set: "
                'export TF_CONFIG=\'{"cluster": {"worker": ["host:port", '
                '...]}, "task": {"type": "worker", "index": I}}\''
            )
        return None
    cluster, task_type, index = parse_tf_config(text)
    workers = [
        (kind, i)
        for kind in ("chief", "worker")
        for i in range(len(cluster.get(kind, [])))
    ]
    if (task_type, index) not in workers:
        raise ValueError(
            f"TF_CONFIG task {task_type}:{index} is not in its cluster, "
            f"whose training tasks are {workers}. Received: TF_CONFIG={text}"
        )
    group = ProcessGroup(
        len(workers),
        workers.index((task_type, index)),
        chief=(task_type, index) == workers[0],
    )
    for flag, value, expected in (
        ("--num-processes", num_processes, group.num_processes),
        ("--process-id", process_id, group.process_id),
    ):
        if value is not None and value != expected:
            raise ValueError(
                f"{flag} {value} disagrees with TF_CONFIG, which makes it "
                f"{expected}: set one or the other. TF_CONFIG={text}"
            )
    return group if group.num_processes > 1 else None


def parse_tf_config(text):
    """`(cluster, task type, task index)` of a `TF_CONFIG` string.

    Raises:
        ValueError: one line naming TF_CONFIG and what it lacks.
    """
    expected = (
        'expected {"cluster": {"worker": ["host:port", ...]}, '
        '"task": {"type": "worker", "index": 0}}'
    )
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], int(task["index"])
        workers = [*cluster.get("chief", []), *cluster.get("worker", [])]
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"TF_CONFIG is malformed ({type(error).__name__}: {error}): "
            f"{expected}. Received: TF_CONFIG={text!r}"
        ) from None
    bad = [a for a in workers if not isinstance(a, str) or ":" not in a]
    if not workers or bad:
        raise ValueError(
            f"TF_CONFIG's cluster must list host:port addresses: {expected}."
            f" Received: TF_CONFIG={text!r}"
        )
    return cluster, task_type, index


def initialize(group, timeout=300):
    """Connects this process to the others (JAX), within `timeout` s.

    Call before any JAX computation: `keras.distribution.initialize`
    makes every process's devices one global list, and CPU collectives
    go over gloo. TensorFlow needs nothing here: its strategy connects
    the workers from `TF_CONFIG` (`distribution_context` bounds that
    wait the same way).
    """
    if group is None or keras.backend.backend() != "jax":
        return
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    with deadline(
        timeout, f"--coordinator {group.coordinator} ({ADDRESSES})", group
    ):
        keras.distribution.initialize(
            job_addresses=group.coordinator,
            num_processes=group.num_processes,
            process_id=group.process_id,
        )


@contextlib.contextmanager
def deadline(timeout, setting, group):
    """Ends the process with one line naming `setting` unless the block
    finishes within `timeout` seconds.

    For the waits on other processes that nothing else bounds: JAX's
    connection (its own limit is five minutes) and TensorFlow's
    `MultiWorkerMirroredStrategy`, which waits for every worker forever.
    Both block in native code, where an exception raised from another
    thread never arrives, so the process exits from the watchdog thread.
    """
    watchdog = threading.Timer(timeout, _give_up, (timeout, setting, group))
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        watchdog.cancel()


def _give_up(timeout, setting, group):
    print(
        f"error: {setting}: process {group.process_id} of "
        f"{group.num_processes} did not meet the others within {timeout} s;"
        " start every process with the same settings, and check that "
        "the addresses are reachable.",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)


@contextlib.contextmanager
def written_by_chief(path, chief):
    """Yields where this process writes `path`: `path` itself on the
    chief, a scratch copy (deleted afterwards) on every other process.

    Every process must run the same saving code: on JAX across processes,
    a weight split over processes is gathered from every process
    (`gathered_weights`), and even a variable that Keras creates while
    saving (`save_weights` makes a reference optimizer) is a collective.
    A save run by the chief alone would leave the others one collective
    behind, and the job fails or hangs at the next one. So all save, and
    only the chief's copy stays.
    """
    if chief:
        yield path
        return
    scratch = tempfile.mkdtemp(prefix="keras_fido_not_chief_")
    try:
        yield os.path.join(scratch, os.path.basename(os.path.normpath(path)))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_same_settings(settings, group, engine=None):
    """Ends every process with one line naming the first setting that
    differs between them, e.g. an architecture flag given to one worker
    only (which would otherwise hang or fail deep in a collective).

    Call right after the processes meet (JAX: after `initialize`;
    TensorFlow: with the strategy, inside `distribution_context`) and
    before building anything distributed. Costs one or two tiny
    collectives of hashes.

    Args:
        settings: dict. Setting name (e.g. `"--preset"`) to a value with a
            stable `repr` (str, int, float, bool, None, or lists and dicts
            of them).
        group: `ProcessGroup`, or `None` (one process: nothing to check).
        engine: the `tf.distribute` strategy (TensorFlow). Unused on JAX.

    Raises:
        ValueError: naming the setting and this process's value.
    """
    if group is None:
        return
    names = sorted(settings)
    values = [_crc(settings[name]) for name in names]
    summary = [_crc(names), _crc(values)]
    if _same_everywhere(summary, engine):
        return
    if not _same_everywhere([summary[0]], engine):
        raise ValueError(
            f"Process {group.process_id} of {group.num_processes} checks "
            f"other settings than process 0 ({', '.join(names)}): run the "
            "same version of the code on every process."
        )
    differs = _same_everywhere(values, engine, each=True)
    name = names[differs.index(False)]
    raise ValueError(
        f"{name} differs between the {group.num_processes} processes "
        f"(process {group.process_id} has {settings[name]!r}): start every "
        "process with the same settings."
    )


def _crc(value):
    return zlib.crc32(repr(value).encode()) & 0x7FFFFFFF


def _same_everywhere(hashes, engine, each=False):
    """Whether every process holds the same `hashes` (per element when
    `each`). One all-gather, made by every process."""
    import numpy as np

    hashes = np.asarray(hashes, "int32")[None]
    if keras.backend.backend() == "jax":
        from jax.experimental import multihost_utils

        gathered = multihost_utils.process_allgather(hashes, tiled=True)
    else:
        import tensorflow as tf

        # One row per replica: the rows of one worker are equal.
        rows = engine.experimental_distribute_values_from_function(
            lambda _: tf.constant(hashes)
        )
        gathered = engine.gather(rows, axis=0)
    gathered = np.asarray(gathered)
    same = np.all(gathered == gathered[:1], axis=0)
    return [bool(s) for s in same] if each else bool(np.all(same))
