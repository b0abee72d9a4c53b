"""Training faults: a pretraining run killed with SIGKILL resumes from its
last checkpoint, and damaged weights files are refused with a clear error.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import keras
import numpy as np
import pytest

from keras_fido.data import corpus_lines

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
PRETRAIN = os.path.join(ROOT, "recipes", "pretrain.py")


def pretrain_command(text_file, output, steps):
    return [
        sys.executable,
        PRETRAIN,
        "--preset",
        "fido_tiny",
        "--data",
        "text",
        "--text",
        str(text_file),
        "--train-tokenizer",
        "300",
        "--extra-ids",
        "10",
        "--input-length",
        "16",
        "--batch-size",
        "2",
        "--steps",
        str(steps),
        "--save-every",
        "2",
        "--output",
        str(output),
    ]


def run(command, timeout=600):
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def weights(path):
    """Every array of a Keras weights file, by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as file:
        file.visititems(
            lambda name, item: (
                arrays.__setitem__(name, item[()])
                if isinstance(item, h5py.Dataset)
                else None
            )
        )
    return arrays


@pytest.mark.large
@pytest.mark.skipif(
    keras.config.backend() != "jax",
    reason="three recipe processes per run: one backend keeps CI in its "
    "30-minute budget; checkpoint save and resume themselves are tested on "
    "every backend by tests/recipes/test_pretrain.py",
)
def test_sigkilled_pretraining_resumes_from_its_last_checkpoint(tmp_path):
    """Kills `recipes/pretrain.py` with SIGKILL once a checkpoint exists,
    runs the same command again, and checks that no completed step was
    lost: the killed run's checkpoint (weights after `k` steps) equals,
    within 1e-6, the checkpoint of an uninterrupted run of `k` steps with
    the same seed, and the resumed run starts at step `k` and ends at the
    last step.

    The resumed run's final weights are not compared with those of an
    uninterrupted run of all steps: by design (see the recipe's
    docstring) a resumed run reads the data in a new order, seeded by
    `--seed` and the step (skipping the `k * batch` documents already seen
    would mean reading them again), and the dropout random state is not
    part of a Keras checkpoint. Both runs start from the same checkpoint,
    which is what is compared.
    """
    text_file = tmp_path / "corpus.txt"
    text_file.write_text("\n".join(corpus_lines()[:200]), encoding="utf-8")
    output = tmp_path / "killed"
    command = pretrain_command(text_file, output, steps=400)
    progress = output / "backup" / "step.json"
    log = open(tmp_path / "killed.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT)
    deadline = time.monotonic() + 600
    while not progress.exists() and process.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 600 s"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    log.close()
    assert process.returncode == -signal.SIGKILL, (
        tmp_path / "killed.log"
    ).read_text()[-2000:]
    step = json.loads(progress.read_text())["step"]
    assert step >= 2 and step % 2 == 0
    checkpoint = tmp_path / "checkpoint.weights.h5"
    shutil.copy(output / "backup" / "latest.weights.h5", checkpoint)

    # The same command again, with --steps lowered to end soon after.
    resumed = run(pretrain_command(text_file, output, steps=step + 2))
    assert f"Resuming at step {step} of {step + 2}" in resumed
    assert f"Step {step + 2} of {step + 2}" in resumed
    assert (output / "preset" / "model.weights.h5").exists()

    # An uninterrupted run of `step` steps with the same seed.
    reference = tmp_path / "reference"
    run(pretrain_command(text_file, reference, steps=step))
    expected = weights(reference / "backup" / "latest.weights.h5")
    actual = weights(checkpoint)
    assert sorted(actual) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(
            actual[name], value, atol=1e-6, rtol=0, err_msg=name
        )


def damage(path, how):
    data = path.read_bytes()
    middle = len(data) // 2
    damaged = {
        "truncated_to_half": data[:middle],
        "truncated_after_the_signature": data[:64],
        "zeroed_in_the_middle": data[:middle]
        + bytes(4096)
        + data[middle + 4096 :],
    }[how]
    path.write_bytes(damaged)


DAMAGES = [
    "truncated_to_half",
    "truncated_after_the_signature",
    "zeroed_in_the_middle",
]


@pytest.fixture(scope="module")
def saved_preset(tmp_path_factory):
    from keras_fido.testing.fido_models import tiny_backbone

    path = tmp_path_factory.mktemp("preset") / "tiny"
    tiny_backbone("fido", vocabulary_size=64).save_to_preset(str(path))
    return path


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("loader", ["FiDOBackbone", "FiDOSeq2SeqLM"])
def test_damaged_preset_weights_are_refused_naming_the_file(
    saved_preset, tmp_path, how, loader
):
    import keras_fido.models

    preset = tmp_path / "preset"
    shutil.copytree(saved_preset, preset)
    damage(preset / "model.weights.h5", how)
    cls = getattr(keras_fido.models, loader)
    with pytest.raises(ValueError, match=r"model\.weights\.h5' is truncated"):
        cls.from_preset(str(preset))


def test_damaged_keras_file_is_refused_naming_the_file(tmp_path):
    """A `.keras` file is loaded by Keras itself: a truncated zip is a
    `ValueError` naming the file (Keras calls it not found)."""
    import keras

    from keras_fido.testing.fido_models import tiny_backbone

    path = tmp_path / "model.keras"
    tiny_backbone("fido", vocabulary_size=64).save(str(path))
    damage(path, "truncated_to_half")
    with pytest.raises(ValueError, match=r"model\.keras"):
        keras.saving.load_model(str(path))
