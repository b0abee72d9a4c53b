"""Training backups written by one process and read by all."""

from keras_fido.training.atomic_backup_and_restore import AtomicBackupAndRestore
from keras_fido.training.gathered_weights import gathered_weights
from keras_fido.training.processes import written_by_chief


class ChiefBackupAndRestore(AtomicBackupAndRestore):
    """`AtomicBackupAndRestore` for a job of several processes.

    Every process restores from `backup_dir` when training starts, so a
    job restarted with the same command resumes after its last finished
    epoch on every process. Only the chief's backup is kept (and, at the
    end, deleted): the weights are the same on every process, and two
    processes writing one shared directory would race. The other
    processes still run the same save, into a scratch directory that they
    delete: saving takes part in the processes' collectives
    (`processes.written_by_chief`). Weights that `--distribution model`
    splits over processes are gathered for each save
    (`gathered_weights`), and a restore lays the saved values out again
    as the variables' layouts say.

    Args:
        backup_dir: str. A directory every process reads (a shared
            filesystem on several hosts).
        chief: bool. Whether this process writes. Defaults to `True`.
        **kwargs: the other arguments of `keras.callbacks.BackupAndRestore`.
    """

    def __init__(self, backup_dir, chief=True, **kwargs):
        kwargs.setdefault("delete_checkpoint", True)
        kwargs["delete_checkpoint"] = kwargs["delete_checkpoint"] and chief
        super().__init__(backup_dir, **kwargs)
        self.chief = chief

    def _save_model(self):
        with gathered_weights(self.model):
            if self.chief:
                super()._save_model()
                return
            with written_by_chief(self._weights_path, chief=False) as scratch:
                self.model.save_weights(filepath=scratch, overwrite=True)
