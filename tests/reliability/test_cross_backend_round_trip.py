"""A reader saved under one backend loads under every other one and
computes the same outputs and generates the same tokens and answers."""

import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from keras_fido.models import FiDOSeq2SeqLM

HERE = os.path.dirname(os.path.abspath(__file__))
PRODUCER = os.path.join(HERE, "round_trip_artefacts.py")
sys.path.insert(0, HERE)
from round_trip_artefacts import EXAMPLES  # noqa: E402
from round_trip_artefacts import compute_outputs  # noqa: E402

BACKENDS = ("jax", "tensorflow", "torch")
OTHER_BACKENDS = tuple(b for b in BACKENDS if b != keras.config.backend())
# float32 sums run in a different order on each backend: outputs agree to
# 1e-5 of their scale (logits reach ~20, so their last bits differ ~1e-5).
TOLERANCE = 1e-5


def assert_close(actual, expected, message):
    scale = max(1.0, float(np.max(np.abs(expected))))
    error = float(np.max(np.abs(actual - expected)))
    print(f"{message}: max |difference| {error:.2g} (scale {scale:.3g})")
    assert error <= TOLERANCE * scale, (
        f"{message} is off by {error:.3g}, more than {TOLERANCE} of its "
        f"scale {scale:.3g}"
    )


@pytest.fixture(scope="session")
def saved_elsewhere(sentencepiece_proto, tmp_path_factory):
    """`{backend: directory}` of readers saved by the other two backends,
    each in its own subprocess (both at once: two cores)."""
    root = tmp_path_factory.mktemp("cross_backend")
    proto_path = root / "vocabulary.spm"
    proto_path.write_bytes(sentencepiece_proto)
    processes = {}
    for seed, backend in enumerate(OTHER_BACKENDS):
        env = {**os.environ, "KERAS_BACKEND": backend}
        if backend == "torch":
            env["OMP_NUM_THREADS"] = "1"
        processes[backend] = subprocess.Popen(
            [
                sys.executable,
                PRODUCER,
                str(root / backend),
                str(proto_path),
                str(seed),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for backend, process in processes.items():
        output, _ = process.communicate(timeout=900)
        assert process.returncode == 0, (
            f"Saving under {backend} failed:\n{output[-3000:]}"
        )
    return {backend: str(root / backend) for backend in OTHER_BACKENDS}


def load(directory, form):
    if form == "preset":
        return FiDOSeq2SeqLM.from_preset(os.path.join(directory, "preset"))
    with warnings.catch_warnings():
        # Keras notes that `compile()` is not restored; it defaults again.
        warnings.simplefilter("ignore", UserWarning)
        return keras.saving.load_model(os.path.join(directory, "reader.keras"))


@pytest.mark.large  # two subprocesses import and save (about 15 s)
@pytest.mark.parametrize("form", ["preset", "keras_file"])
def test_reader_saved_under_other_backends_loads_identically(
    saved_elsewhere, form
):
    for backend, directory in saved_elsewhere.items():
        reader = load(directory, form)
        assert type(reader) is FiDOSeq2SeqLM
        actual = compute_outputs(reader)
        for name, value in actual.items():
            expected = np.load(os.path.join(directory, f"{name}.npy"))
            message = f"{name} of a {form} saved under {backend}"
            if name == "generated_token_ids":
                # Varied tokens, or equality would prove little.
                assert len(np.unique(expected[:, 1:])) > 2, expected
                np.testing.assert_array_equal(value, expected, message)
            else:
                assert value.shape == expected.shape, message
                assert_close(value, expected, message)
        with open(os.path.join(directory, "answers.json")) as f:
            assert reader.generate(EXAMPLES) == json.load(f), backend
