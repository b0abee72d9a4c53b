"""Model-level checks every backbone and reader test can call in a line.

In the spirit of keras-hub's `run_backbone_test` / `run_task_test` /
`run_preset_test`: each check builds nothing itself, takes a model and its
inputs, and asserts what every FiD / FiDO model must keep: named outputs,
config, `.keras` and preset round trips that change no output.
"""

import os

import keras
import numpy as np
from keras import ops

from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM

BACKBONE_OUTPUTS = ("encoder_sequence_output", "decoder_sequence_output")


def _numpy(outputs):
    if isinstance(outputs, dict):
        return {k: ops.convert_to_numpy(v) for k, v in outputs.items()}
    return ops.convert_to_numpy(outputs)


def _assert_same(actual, expected, atol):
    actual, expected = _numpy(actual), _numpy(expected)
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected)
        for name in expected:
            np.testing.assert_allclose(
                actual[name], expected[name], atol=atol, err_msg=name
            )
    else:
        np.testing.assert_allclose(actual, expected, atol=atol)


def run_backbone_check(backbone, inputs, directory):
    """Outputs, config, `.keras` and preset round trips of a backbone.

    Args:
        backbone: a built `FiDOBackbone`.
        inputs: dict of the four standard input tensors `[B, P, L]` /
            `[B, T]`.
        directory: a writable directory (e.g. pytest's `tmp_path`).

    Returns:
        The backbone's outputs on `inputs`, as numpy.
    """
    outputs = _numpy(backbone(inputs))
    batch, passages, length = np.shape(inputs["encoder_token_ids"])
    target = np.shape(inputs["decoder_token_ids"])[1]
    assert outputs["encoder_sequence_output"].shape == (
        batch,
        passages * length,
        backbone.encoder_hidden_dim,
    )
    assert outputs["decoder_sequence_output"].shape == (
        batch,
        target,
        backbone.decoder_hidden_dim,
    )
    assert set(BACKBONE_OUTPUTS) <= set(outputs)

    rebuilt = FiDOBackbone.from_config(backbone.get_config())
    assert rebuilt.get_config() == backbone.get_config()
    assert [w.path for w in rebuilt.weights] == [
        w.path for w in backbone.weights
    ]
    rebuilt.set_weights(backbone.get_weights())
    _assert_same(rebuilt(inputs), outputs, atol=0)

    path = os.path.join(str(directory), "backbone.keras")
    backbone.save(path)
    _assert_same(keras.saving.load_model(path)(inputs), outputs, atol=0)

    preset = os.path.join(str(directory), "backbone_preset")
    backbone.save_to_preset(preset)
    restored = FiDOBackbone.from_preset(preset)
    assert isinstance(restored, FiDOBackbone)
    _assert_same(restored(inputs), outputs, atol=0)
    return outputs


def run_task_check(reader, examples, directory):
    """`fit` one step, `generate` strings, and a preset round trip.

    Args:
        reader: a `FiDOSeq2SeqLM` with a preprocessor.
        examples: a list of FiD example dicts (with `target` or
            `answers`).
        directory: a writable directory.

    Returns:
        The answers `generate` gave before the round trip.
    """
    reader.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = reader.fit(examples, batch_size=len(examples), epochs=1)
    assert np.isfinite(history.history["loss"][-1])
    answers = reader.generate(examples)
    assert len(answers) == len(examples)
    assert all(isinstance(a, str) for a in answers)

    preset = os.path.join(str(directory), "reader_preset")
    reader.save_to_preset(preset)
    restored = FiDOSeq2SeqLM.from_preset(preset)
    assert restored.backbone.get_config() == reader.backbone.get_config()
    assert restored.generate(examples) == answers
    return answers
