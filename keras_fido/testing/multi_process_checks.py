"""Training across processes on localhost, for the distribution tests.

Each process of a job runs

    KERAS_DISTRIBUTION_JOB_ADDRESSES=127.0.0.1:PORT \\
    KERAS_DISTRIBUTION_NUM_PROCESSES=2 KERAS_DISTRIBUTION_PROCESS_ID=I \\
    XLA_FLAGS=--xla_force_host_platform_device_count=2 KERAS_BACKEND=jax \\
        python -m keras_fido.testing.multi_process_checks OUT step [train]

(TensorFlow: `TF_CONFIG` instead of the `KERAS_DISTRIBUTION_*`
variables.) The processes meet with `keras_fido.training.processes`, train
under `distribution_context` and read their shard of the examples with
`keras_fido.training.input_shards`, as the recipes do; the modes named
run in turn. Before building anything distributed, the processes compare
their architecture (`processes.check_same_settings`); `DECODER_LAYERS=3`
on one process makes every process end with one line naming
`backbone decoder_num_layers`.

- `step`: one SGD step of `fit` on one device alone, then from the same
  weights across the processes (`data`, and on JAX `model` with the
  model axis within each process). The chief writes
  `OUT/<name>.npz` (weights after the step) and `OUT/figures.json`.
- `reference`: `train` on one device, by the chief alone, uninterrupted;
  it writes `OUT/reference.npz` and `OUT/reference.json`.
- `train`: `EPOCHS` epochs of `STEPS` steps, data parallel, with
  `ChiefBackupAndRestore` in `OUT/backup_final`; the chief writes
  `OUT/final.npz` and `OUT/final.json` (steps counted). With
  `KILL_AT=EPOCH,STEP`, process 1 kills itself (SIGKILL) before that step
  unless `OUT/killed` exists, which it creates first: the same command
  run again trains to the end.
- `train_model`: the same training, model parallel with the model axis
  over all 4 devices (each sharded weight split between the processes),
  backed up in `OUT/backup_model_final` (kept). Every process stops
  before step 1 of epoch 1 (an exception); a new reader then resumes
  from the backup and trains to the end. The chief writes
  `OUT/model_final.npz`, `OUT/model_final.json` (steps counted),
  `OUT/model_epochs.json` (the epochs the resumed run trained), and saves
  `OUT/model_preset` (`save_to_preset`) and `OUT/model_final.keras`.
"""

import json
import os
import signal
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.testing.distribution_checks import BATCH_SIZE
from keras_fido.testing.distribution_checks import tiny_batch
from keras_fido.testing.fido_models import TINY_FIDO_CONFIG
from keras_fido.testing.fido_models import reseed_weights
from keras_fido.training import processes
from keras_fido.training.chief_backup_and_restore import ChiefBackupAndRestore
from keras_fido.training.distribution import distribution_context
from keras_fido.training.gathered_weights import gathered_weights
from keras_fido.training.input_shards import shard_batch_size
from keras_fido.training.input_shards import shard_examples
from keras_fido.training.processes import written_by_chief

EPOCHS = 3
STEPS = 2
MODEL_PARALLEL = 2  # within each process's 2 devices
MODEL_PARALLEL_ACROSS = 4  # over both processes' 2 devices


def examples(steps=1):
    """`steps` global batches of token ids, as unbatched examples."""
    parts = [tiny_batch(seed) for seed in range(steps)]
    merged = tf.nest.map_structure(lambda *a: np.concatenate(a), *parts)
    return tf.data.Dataset.from_tensor_slices(merged)


def batches(engine, steps=1):
    """This process's part of `steps` global batches of `BATCH_SIZE`."""
    dataset = shard_examples(examples(steps), engine)
    return dataset.batch(shard_batch_size(engine, BATCH_SIZE))


def architecture():
    """The tiny reader's backbone settings (`distribution_checks`'
    `tiny_reader`); `DECODER_LAYERS` changes one, to start a worker with
    another architecture."""
    return dict(
        vocabulary_size=128,
        encoder_num_layers=1,
        decoder_num_layers=int(os.environ.get("DECODER_LAYERS", 2)),
        encoder_num_heads=4,
    )


def check_architecture(group, engine):
    """Every process builds the same architecture, or all end in one line
    naming the setting (as the recipes check their flags)."""
    settings = {f"backbone {k}": v for k, v in architecture().items()}
    try:
        processes.check_same_settings(settings, group, engine)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def compiled_reader(initial_weights=None):
    backbone = FiDOBackbone(**{**TINY_FIDO_CONFIG, **architecture()})
    with gathered_weights(backbone):  # reseeding reads every weight
        reseed_weights(backbone, seed=0)
    reader = FiDOSeq2SeqLM(backbone, None)
    if initial_weights is not None:
        reader.set_weights(initial_weights)
    # Momentum: optimizer state, sharded as the weights are, that a
    # resumed run must restore too.
    optimizer = keras.optimizers.SGD(learning_rate=0.5, momentum=0.5)
    reader.compile(optimizer=optimizer)
    return reader


def numpy_weights(reader):
    """Every weight by path, whole on every process."""
    with gathered_weights(reader):
        return {v.path: keras.ops.convert_to_numpy(v) for v in reader.weights}


def run_step(output_dir, group):
    distributions = ["data"]
    if keras.backend.backend() == "jax":
        distributions.append("model")
    # Engines first: TensorFlow's collectives must be configured before
    # any other TensorFlow op runs.
    contexts = {
        name: distribution_context(
            name,
            model_parallel=MODEL_PARALLEL if name == "model" else 1,
            batch_size=BATCH_SIZE,
            group=group,
        )
        for name in distributions
    }
    keras.utils.set_random_seed(0)
    single = compiled_reader()
    initial = single.get_weights()
    history = single.fit(batches(None), verbose=0)
    figures = {"single": {"loss": history.history["loss"][0]}}
    weights = {"single": numpy_weights(single)}
    for name, context in contexts.items():
        with context as engine:
            if name == "data":
                check_architecture(group, engine)
            reader = compiled_reader(initial)
            history = reader.fit(batches(engine), verbose=0)
        weights[name] = numpy_weights(reader)
        figures[name] = {
            "loss": history.history["loss"][0],
            "engine": type(engine).__name__,
            "processes": group.num_processes,
        }
    if group.chief:
        for name, values in weights.items():
            np.savez(os.path.join(output_dir, f"{name}.npz"), **values)
        with open(os.path.join(output_dir, "figures.json"), "w") as f:
            json.dump(figures, f, indent=1)


class KillOnce(keras.callbacks.Callback):
    """SIGKILLs this process before step `step` of epoch `epoch`, once."""

    def __init__(self, epoch, step, marker):
        super().__init__()
        self.epoch, self.step, self.marker = epoch, step, marker

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current_epoch, batch) != (self.epoch, self.step):
            return
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)


class Interrupted(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises `Interrupted` before step `step` of epoch `epoch`."""

    def __init__(self, epoch, step):
        super().__init__()
        self.epoch, self.step = epoch, step

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if (self.current_epoch, batch) == (self.epoch, self.step):
            raise Interrupted


def fit_with_backup(engine, backup, chief, callbacks=(), keep=False):
    """A new reader trained `EPOCHS` x `STEPS` steps, resuming from the
    `ChiefBackupAndRestore` in `backup`; returns it and its history."""
    reader = compiled_reader()
    history = reader.fit(
        batches(engine, STEPS),
        epochs=EPOCHS,
        callbacks=[
            ChiefBackupAndRestore(backup, chief, delete_checkpoint=not keep),
            *callbacks,
        ],
        verbose=0,
    )
    return reader, history


def run_train(output_dir, group, name="final"):
    keras.utils.set_random_seed(0)
    context = distribution_context(
        "data" if group else "none", batch_size=BATCH_SIZE, group=group
    )
    chief = group is None or group.chief
    with context as engine:
        check_architecture(group, engine)
        callbacks = []
        kill_at = os.environ.get("KILL_AT")
        if kill_at and group and group.process_id == 1:
            epoch, step = map(int, kill_at.split(","))
            marker = os.path.join(output_dir, "killed")
            callbacks.append(KillOnce(epoch, step, marker))
        backup = os.path.join(output_dir, f"backup_{name}")
        reader, _ = fit_with_backup(engine, backup, chief, callbacks)
        weights = numpy_weights(reader)
    if chief:
        save_figures(output_dir, name, reader, weights)


def run_train_model(output_dir, group):
    """`train` model parallel over every device (each sharded weight split
    between the processes): stopped mid-epoch 1 on every process, then
    resumed by a new reader from the backup, which is kept; then saved."""
    keras.utils.set_random_seed(0)
    context = distribution_context(
        "model",
        model_parallel=MODEL_PARALLEL_ACROSS,
        batch_size=BATCH_SIZE,
        group=group,
    )
    backup = os.path.join(output_dir, "backup_model_final")
    with context as engine:
        check_architecture(group, engine)
        try:
            fit_with_backup(
                engine, backup, group.chief, [InterruptAt(1, 1)], keep=True
            )
        except Interrupted:
            pass
        reader, history = fit_with_backup(
            engine, backup, group.chief, keep=True
        )
        weights = numpy_weights(reader)
        save_model_files(reader, output_dir, group.chief)
    if group.chief:
        save_figures(output_dir, "model_final", reader, weights)
        with open(os.path.join(output_dir, "model_epochs.json"), "w") as f:
            json.dump(history.epoch, f)  # the epochs the resumed run ran


def save_figures(output_dir, name, reader, weights):
    np.savez(os.path.join(output_dir, f"{name}.npz"), **weights)
    steps = int(keras.ops.convert_to_numpy(reader.optimizer.iterations))
    with open(os.path.join(output_dir, f"{name}.json"), "w") as f:
        json.dump({"steps": steps}, f)


def save_model_files(reader, output_dir, chief):
    """The preset and the `.keras` file, saved by every process, kept by
    the chief (as the recipes save)."""
    preset = os.path.join(output_dir, "model_preset")
    with gathered_weights(reader), written_by_chief(preset, chief) as own:
        reader.save_to_preset(own)
    path = os.path.join(output_dir, "model_final.keras")
    with gathered_weights(reader), written_by_chief(path, chief) as own:
        reader.save(own)


def run_reference(output_dir, group):
    """`train` uninterrupted on one device, by the chief alone (the other
    processes go on, and wait for it at their next collective)."""
    if group is None or group.chief:
        run_train(output_dir, None, name="reference")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    modes = {
        "step": run_step,
        "reference": run_reference,
        "train": run_train,
        "train_model": run_train_model,
    }
    if len(argv) < 2 or not set(argv[1:]) <= set(modes):
        raise SystemExit(
            "usage: python -m keras_fido.testing.multi_process_checks "
            "OUTPUT_DIR {step,reference,train,train_model}..."
        )
    group = processes.process_group()
    processes.initialize(group, timeout=int(os.environ.get("TIMEOUT", 60)))
    for mode in argv[1:]:
        modes[mode](argv[0], group)


if __name__ == "__main__":
    main()
