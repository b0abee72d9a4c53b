"""A process SIGKILLed while it saves over a preset, a checkpoint or a file
leaves the previous one or the new one, loadable, never a damaged one."""

import os
import random
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.training.atomic_backup_and_restore import AtomicBackupAndRestore
from keras_fido.utils.atomic_write import atomic_directory
from keras_fido.utils.atomic_write import atomic_file
from keras_fido.utils.atomic_write import backup_path
from keras_fido.utils.atomic_write import restore_interrupted

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
ATOMIC_WRITE = os.path.join(ROOT, "keras_fido", "utils", "atomic_write.py")

# Loads the helper by path: a child without keras starts in milliseconds,
# so it can be killed at many points of its writes.
WRITER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("atomic_write", sys.argv[1])
atomic_write = importlib.util.module_from_spec(spec)
spec.loader.exec_module(atomic_write)
target, tag = sys.argv[2], 0
print("ready", flush=True)
while True:
    tag += 1
    with atomic_write.atomic_directory(target) as staging:
        for name in ("a.bin", "b.bin"):
            with open(f"{staging}/{name}", "wb") as f:
                for _ in range(64):
                    f.write(str(tag % 10).encode() * 16384)
"""


def read_tags(directory):
    tags = set()
    for name in ("a.bin", "b.bin"):
        with open(os.path.join(directory, name), "rb") as f:
            data = f.read()
        assert len(data) == 64 * 16384
        tags.update(set(data))
    return tags


def start(script, *args, env=None):
    child = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def kill(child, delay):
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def test_killed_directory_swaps_leave_a_whole_directory(tmp_path):
    target = str(tmp_path / "preset")
    with atomic_directory(target) as staging:
        for name in ("a.bin", "b.bin"):
            with open(os.path.join(staging, name), "wb") as f:
                f.write(b"0" * 64 * 16384)
    rng = random.Random(0)
    for _ in range(8):
        child = start(WRITER, ATOMIC_WRITE, target)
        kill(child, rng.uniform(0.0, 0.2))
        restore_interrupted(target)
        assert len(read_tags(target)) == 1  # Both files of one save.
        assert not os.path.exists(backup_path(target))


def test_swap_cut_between_its_renames_is_restored(tmp_path):
    target = tmp_path / "preset"
    target.mkdir()
    (target / "config.json").write_text("old")
    # The state a kill between the two renames leaves: only the backup.
    os.rename(target, backup_path(target))
    restore_interrupted(target)
    assert (target / "config.json").read_text() == "old"
    with atomic_directory(target) as staging:
        with open(os.path.join(staging, "config.json"), "w") as f:
            f.write("new")
    assert (target / "config.json").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["preset"]


def test_failed_save_keeps_the_old_directory_and_unwritten_files(tmp_path):
    target = tmp_path / "preset"
    target.mkdir()
    (target / "tokenizer.json").write_text("kept")
    (target / "config.json").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as staging:
            with open(os.path.join(staging, "config.json"), "w") as f:
                f.write("half")
            raise RuntimeError("killed")
    assert (target / "config.json").read_text() == "old"
    with atomic_directory(target) as staging:
        with open(os.path.join(staging, "config.json"), "w") as f:
            f.write("new")
    assert (target / "config.json").read_text() == "new"
    assert (target / "tokenizer.json").read_text() == "kept"
    assert sorted(os.listdir(tmp_path)) == ["preset"]


def test_failed_file_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "best.weights.h5"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_file(path) as temporary:
            assert temporary.endswith(".weights.h5")
            with open(temporary, "wb") as f:
                f.write(b"half")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["best.weights.h5"]


SAVER = """
import os, sys
sys.path.insert(0, sys.argv[1])
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone
tokenizer = FiDOTokenizer(proto=open(sys.argv[3], "rb").read())
backbone = tiny_backbone(
    "fid", vocabulary_size=tokenizer.vocabulary_size(), seed=1,
    encoder_intermediate_dim=1024, decoder_intermediate_dim=1024,
)
reader = FiDOSeq2SeqLM(backbone, FiDOSeq2SeqLMPreprocessor(tokenizer))
print("ready", flush=True)
while True:
    reader.save_to_preset(sys.argv[2])
"""


def weights_of(reader):
    return [keras.ops.convert_to_numpy(w) for w in reader.backbone.weights]


@pytest.mark.skipif(
    keras.config.backend() != "jax",
    reason="slow (a model-saving child per kill); the writes are the same "
    "files on every backend",
)
def test_killed_save_to_preset_leaves_the_old_or_new_preset(
    tmp_path, sentencepiece_proto
):
    proto = tmp_path / "vocabulary.spm"
    proto.write_bytes(sentencepiece_proto)
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    old = FiDOSeq2SeqLM(
        tiny_backbone("fid", vocabulary_size=tokenizer.vocabulary_size()),
        FiDOSeq2SeqLMPreprocessor(tokenizer),
    )
    preset = str(tmp_path / "preset")
    old.save_to_preset(preset)
    old_weights = weights_of(old)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    for delay in (0.3, 1.1):
        child = start(SAVER, ROOT, preset, str(proto), env=env)
        kill(child, delay)
        loaded = FiDOSeq2SeqLM.from_preset(preset)  # Not damaged.
        if loaded.backbone.encoder_intermediate_dim == 64:
            for a, b in zip(weights_of(loaded), old_weights):
                np.testing.assert_array_equal(a, b)  # The old preset.
        else:  # The new one, in full.
            assert loaded.backbone.encoder_intermediate_dim == 1024
    # The next save clears what the killed writers left.
    old.save_to_preset(preset)
    assert sorted(os.listdir(tmp_path)) == ["preset", "vocabulary.spm"]


def test_backup_and_restore_checkpoint_is_replaced_atomically(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    backup = AtomicBackupAndRestore(
        str(tmp_path / "backup"), delete_checkpoint=False
    )
    x, y = np.ones((4, 2), "float32"), np.ones((4, 1), "float32")
    model.fit(x, y, epochs=2, callbacks=[backup], verbose=0)
    assert sorted(os.listdir(tmp_path / "backup")) == [
        "latest.weights.h5",
        "training_metadata.json",
    ]
    resumed = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    resumed.compile(optimizer="sgd", loss="mse")
    history = resumed.fit(
        x,
        y,
        epochs=3,
        callbacks=[AtomicBackupAndRestore(str(tmp_path / "backup"))],
        verbose=0,
    )
    assert len(history.history["loss"]) == 1  # Resumed after epoch 2.
