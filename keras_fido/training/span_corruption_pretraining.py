"""Resumable span-corruption pretraining of a reader, as T5 and FiDO do.

`pretrain_span_corruption` is the training loop of `recipes/pretrain.py`
and `recipes/uptrain_fido.py`: span corruption over a stream of
documents, `AdafactorAdam` on T5's inverse square root schedule, a
checkpoint every `save_every` steps from which the same call continues.
"""

import json
import math
import os

import keras
import tensorflow as tf

from keras_fido.data import span_corruption_dataset
from keras_fido.data import span_corruption_lengths
from keras_fido.training.chief_backup_and_restore import ChiefBackupAndRestore
from keras_fido.training.gathered_weights import gathered_weights
from keras_fido.training.input_shards import shard_batch_size
from keras_fido.training.input_shards import shard_examples
from keras_fido.training.optimizer import pretraining_optimizer
from keras_fido.training.pretraining_documents import documents_dataset
from keras_fido.training.processes import written_by_chief
from keras_fido.training.run_config import check_run_config
from keras_fido.training.run_config import run_config
from keras_fido.utils.atomic_write import write_text_atomically


def resume_point(backup_dir):
    """`(epoch, step)` of the last checkpoint, `(0, 0)` for a new run."""
    epoch = step = 0
    metadata = os.path.join(backup_dir, "training_metadata.json")
    if os.path.exists(metadata):
        with open(metadata) as file:
            epoch = int(json.load(file)["epoch"])
    progress = os.path.join(backup_dir, "step.json")
    if epoch and os.path.exists(progress):
        with open(progress) as file:
            step = int(json.load(file)["step"])
    return epoch, step


class StepProgress(keras.callbacks.Callback):
    """Stops at `total` optimizer steps, or at the first checkpoint after
    `run` steps of this run, and records the step of each checkpoint.

    Keras' `BackupAndRestore` (run before this callback) restores the
    epoch; `step.json` says which optimizer step that epoch ended at, so
    a later run knows how many steps are left even when the last epoch
    was cut short or `save_every` changed.
    """

    def __init__(self, backup_dir, total, run=None, chief=True):
        super().__init__()
        self.backup_dir, self.total, self.run = backup_dir, total, run
        self.chief = chief
        self.first = None
        self.interrupted = False

    def step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_begin(self, batch, logs=None):
        if self.first is None:
            self.first = self.step()

    def on_train_batch_end(self, batch, logs=None):
        if self.step() >= self.total:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.chief:
            write_text_atomically(
                os.path.join(self.backup_dir, "step.json"),
                json.dumps({"epoch": epoch + 1, "step": self.step()}),
            )
        if self.run is not None and self.step() - self.first >= self.run:
            self.interrupted = self.step() < self.total
            self.model.stop_training = True


def _training_batches(
    tokenizer, source, seed, paragraphs, engine, batch_size, input_length
):
    """This process' span-corruption batches, in an order seeded by
    `seed`: the same document order on every process, each keeping its own
    part, `batch_size` split between the processes."""
    documents = shard_examples(
        documents_dataset(source, seed, paragraphs), engine
    )
    return span_corruption_dataset(
        documents,
        tokenizer,
        input_length=input_length,
        batch_size=shard_batch_size(engine, batch_size),
        seed=seed,
        drop_remainder=True,
    ).prefetch(tf.data.AUTOTUNE)


def _fit(model, train, epochs, save_every, progress, chief):
    """`fit` for `epochs` of `save_every` steps, a checkpoint after each
    (in `progress`'s backup directory)."""
    backup = ChiefBackupAndRestore(
        progress.backup_dir, chief, save_freq="epoch", delete_checkpoint=False
    )
    return model.fit(
        train,
        epochs=epochs,
        steps_per_epoch=save_every,
        callbacks=[backup, progress],
        shuffle=False,  # The documents are shuffled in tf.data.
        verbose=1,
    )


def pretrain_span_corruption(
    model,
    source,
    output,
    steps,
    batch_size,
    input_length,
    warmup_steps=10000,
    save_every=1000,
    stop_after=None,
    seed=0,
    paragraphs=False,
    engine=None,
    chief=True,
):
    """Pretrains `model` with span corruption; resumes from `output`.

    Args:
        model: a `FiDOSeq2SeqLM` with a preprocessor (its tokenizer has
            T5's sentinels).
        source: `("c4", builder)` or `("text", paths)`, see
            `keras_fido.training.pretraining_documents`.
        output: the run directory: `run_config.json`, `backup/` (the
            checkpoints) and, at the end, `preset/`.
        steps: int, the optimizer steps of the whole run.
        batch_size, input_length: ints; the targets' length follows.
        warmup_steps: int, steps at the constant rate 1/sqrt(warmup).
        save_every: int, the checkpoint period (one Keras epoch).
        stop_after: int or `None`: stop this call after about this many
            steps (rounded up to a checkpoint), to continue later.
        seed: int. A resumed run reads the data in a new order, seeded by
            `seed` and the step, rather than from its start.
        paragraphs: bool, for text files: a document per paragraph.
        engine: the distribution engine the model was built in
            (`keras_fido.training.distribution_context`), or `None`. With
            several processes, each reads its own part of the documents
            and `batch_size` stays the global batch.
        chief: bool. Whether this process writes the run's files (the
            run config, checkpoints, progress and preset); in a job of
            several processes, only process 0 does. Defaults to `True`.

    Returns:
        A dict: `start_step`, `step`, the last `loss`, `input_length`,
        `target_length` and `preset` (`None` when stopped early).

    Raises:
        ValueError: `output` holds a run of another architecture or
            vocabulary.
    """
    os.makedirs(output, exist_ok=True)
    check_run_config(output, run_config(model, preprocessing=False), chief)
    backup_dir = os.path.join(output, "backup")
    start_epoch, start_step = resume_point(backup_dir)
    if start_step:
        print(f"Resuming at step {start_step} of {steps}")
    # One Keras epoch per checkpoint, as many as the steps left need.
    epochs = start_epoch + math.ceil(max(steps - start_step, 0) / save_every)
    _, target_length = span_corruption_lengths(input_length)
    train = _training_batches(
        model.preprocessor.tokenizer,
        source,
        seed + start_step,
        paragraphs,
        engine,
        batch_size,
        input_length,
    )
    model.compile(optimizer=pretraining_optimizer(warmup_steps=warmup_steps))
    progress = StepProgress(backup_dir, steps, stop_after, chief)
    history = _fit(model, train, epochs, save_every, progress, chief)
    step = progress.step()
    losses = history.history.get("loss") or [None]
    summary = dict(
        start_step=start_step,
        step=step,
        loss=None if losses[-1] is None else float(losses[-1]),
        input_length=input_length,
        target_length=target_length,
        preset=None,
    )
    if progress.interrupted:
        print(f"Stopped at step {step} of {steps}.")
        return summary
    summary["preset"] = os.path.join(output, "preset")
    # Every process saves: see written_by_chief and gathered_weights.
    with gathered_weights(model):
        with written_by_chief(summary["preset"], chief) as preset:
            model.save_to_preset(preset)
    print(f"Step {step} of {steps}; saved the model to {summary['preset']}")
    return summary
