"""The command-line side of a training job: the engine and process flags
the recipes share, and the checks that the processes of one job agree.

A recipe adds the flags with `add_engine_flags`, connects with
`start_engine` before it builds anything, and, inside the engine's
context, calls `check_job_settings` before it builds the model: a worker
started with another architecture, vocabulary or schedule then ends the
job in one line naming the flag, instead of hanging in a collective.
"""

import hashlib
import os

from keras_fido.training import processes
from keras_fido.training.distribution import DISTRIBUTIONS
from keras_fido.training.distribution import distribution_context

# Flags that may differ between the processes of one job.
PER_PROCESS = (
    "process_id",
    "verbose",
    "connect_timeout",
    "coordinator",
    "tfds_data_dir",
)
# Flags naming files whose content must be the same on every process.
FILES = ("preset", "tokenizer")


def add_engine_flags(p):
    """`--distribution`, `--model-parallel`, `--tpu` and the flags of a
    job of several processes (JAX; TensorFlow reads TF_CONFIG)."""
    p.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default="none",
        help="none: one device; data: data parallel (JAX DataParallel, "
        "TensorFlow MirroredStrategy, MultiWorkerMirroredStrategy or "
        "TPUStrategy); model: weights sharded over --model-parallel "
        "devices (JAX ModelParallel)",
    )
    p.add_argument(
        "--model-parallel",
        type=int,
        default=1,
        metavar="N",
        help="devices each weight is sharded over (--distribution model)",
    )
    p.add_argument(
        "--tpu",
        default=None,
        metavar="ADDRESS",
        help="Cloud TPU name or grpc:// address (TensorFlow, "
        "--distribution data)",
    )
    p.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="processes in the job (default: "
        f"{processes.NUM_PROCESSES}, or TF_CONFIG on TensorFlow)",
    )
    p.add_argument(
        "--process-id",
        type=int,
        default=None,
        help=f"this process, from 0 (default: {processes.PROCESS_ID})",
    )
    p.add_argument(
        "--coordinator",
        default=None,
        metavar="HOST:PORT",
        help=f"process 0's address (JAX; default: {processes.ADDRESSES})",
    )
    p.add_argument(
        "--connect-timeout",
        type=int,
        default=300,
        metavar="SECONDS",
        help="how long to wait for the other processes",
    )


def start_engine(args):
    """Connects the job's processes, then makes the engine.

    Call before building anything. Returns `(group, context)`: the
    `processes.ProcessGroup` (`None` for one process) and the
    `distribution_context` to build and train in.

    Raises:
        SystemExit: one line naming the flag, on any bad setting.
    """
    try:
        group = processes.process_group(
            args.num_processes, args.process_id, args.coordinator
        )
        processes.initialize(group, args.connect_timeout)
        context = distribution_context(
            args.distribution,
            tpu=args.tpu,
            model_parallel=args.model_parallel,
            batch_size=args.batch_size,
            group=group,
            timeout=args.connect_timeout,
        )
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return group, context


def job_settings(args):
    """What must agree between the processes: every flag but the
    per-process ones (`PER_PROCESS`), and the content of the files that
    `--preset` (a directory) and `--tokenizer` name, which may differ
    between hosts that do not share a filesystem."""
    settings = {
        f"--{name.replace('_', '-')}": value
        for name, value in sorted(vars(args).items())
        if name not in PER_PROCESS
    }
    for name in FILES:
        path = getattr(args, name, None)
        if path and os.path.exists(path):
            flag = f"--{name}"
            settings[f"{flag} (its content)"] = _content_hash(path)
    return settings


def check_job_settings(args, group, engine, **more):
    """Ends the job in one line if its processes were started with
    different settings (`job_settings(args)`, and `more`: name to value,
    e.g. the vocabulary a process trained).

    Call inside the engine's context, before building the model.

    Raises:
        SystemExit: naming the first setting that differs.
    """
    settings = {**job_settings(args), **more}
    try:
        processes.check_same_settings(settings, group, engine)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def _content_hash(path):
    digest = hashlib.sha256()
    paths = [path]
    if os.path.isdir(path):
        paths = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names
            if name.endswith((".json", ".spm", ".model", ".txt"))
        )
    for name in paths:
        digest.update(os.path.relpath(name, path).encode())
        with open(name, "rb") as file:
            digest.update(file.read())
    return digest.hexdigest()
