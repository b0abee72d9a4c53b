"""Keras' `BackupAndRestore` with checkpoints that a kill cannot damage."""

import json
import os

import keras

from keras_fido.utils.atomic_write import atomic_file
from keras_fido.utils.atomic_write import write_text_atomically


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose files are replaced
    atomically.

    Keras writes the checkpoint's weights over the previous ones in
    place, so a process killed mid-write leaves a truncated file and the
    next run cannot resume. Here the weights and the training metadata
    are each written to a temporary sibling and renamed into place
    (`keras_fido.utils.atomic_write`): after a kill the backup directory
    holds the previous checkpoint or the new one. The weights are
    replaced first, so a kill between the two files repeats an epoch
    from the newer weights rather than skipping one.

    Same arguments and behaviour as `keras.callbacks.BackupAndRestore`
    (it overrides that class's `_save_model`, the one method that
    writes).
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for current, previous in (
                (self._weights_path, self._prev_weights_path),
                (
                    self._training_metadata_path,
                    self._prev_training_metadata_path,
                ),
            ):
                if os.path.exists(current):
                    with open(current, "rb") as file:
                        data = file.read()
                    with atomic_file(previous) as temporary:
                        with open(temporary, "wb") as file:
                            file.write(data)
        with atomic_file(self._weights_path) as temporary:
            self.model.save_weights(filepath=temporary, overwrite=True)
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
        }
        write_text_atomically(
            self._training_metadata_path, json.dumps(metadata)
        )
