"""Model-level checks every backbone, reader and preprocessor test can
call in a line.

In the spirit of keras-hub's `run_backbone_test` / `run_task_test` /
`run_preprocessing_layer_test` / `run_preset_test`: each check builds
nothing itself, takes a model and its inputs, and asserts what every FiD /
FiDO model must keep: named outputs, config, `.keras` and preset round
trips that change no output.
"""

import copy
import os

import keras
import numpy as np
from keras import ops

from keras_fido.models.fido_backbone import FiDOBackbone

BACKBONE_OUTPUTS = ("encoder_sequence_output", "decoder_sequence_output")
# Name -> dtype of what a preprocessor packs.
PACKED_INPUTS = {
    "encoder_token_ids": "int32",
    "encoder_padding_mask": "bool",
    "decoder_token_ids": "int32",
    "decoder_padding_mask": "bool",
}


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

    run_preset_check(backbone, inputs, directory)
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

    run_preset_check(reader, examples, directory)
    return answers


def run_preset_check(model, inputs, directory, loader=None):
    """`save_to_preset` then `from_preset`: nothing changes.

    Args:
        model: a `FiDOBackbone`, or a `FiDOSeq2SeqLM` (with or without a
            preprocessor).
        inputs: the backbone's four input tensors, or what the reader's
            `generate` takes.
        directory: a writable directory; the preset goes to its
            `backbone_preset` or `reader_preset` folder.
        loader: the `from_preset` to load with (e.g.
            `keras_hub.models.Seq2SeqLM.from_preset`). Defaults to the
            model class's own.

    Returns:
        The restored model.
    """
    is_backbone = isinstance(model, FiDOBackbone)
    name = "backbone_preset" if is_backbone else "reader_preset"
    preset = os.path.join(str(directory), name)
    model.save_to_preset(preset)
    restored = (loader or type(model).from_preset)(preset)
    assert_restored(restored, model, inputs)
    return restored


def assert_restored(restored, model, inputs):
    """`restored` is `model` again: class, config, weights and outputs
    (`generate(inputs)` for a reader, with its preprocessor's class and
    config, and its tokenizer's class)."""
    assert type(restored) is type(model)
    if isinstance(model, FiDOBackbone):
        assert restored.get_config() == model.get_config()
        _assert_same(restored(inputs), model(inputs), atol=0)
        return
    assert restored.backbone.get_config() == model.backbone.get_config()
    for weight, original in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(weight, original)
    preprocessor = model.preprocessor
    if preprocessor is not None:
        assert type(restored.preprocessor) is type(preprocessor)
        assert type(restored.preprocessor.tokenizer) is type(
            preprocessor.tokenizer
        )
        assert restored.preprocessor.get_config() == preprocessor.get_config()
    expected = model.generate(inputs)
    if isinstance(expected, dict):  # Token ids in, token ids out.
        _assert_same(restored.generate(inputs), expected, atol=0)
    else:
        assert restored.generate(inputs) == expected


def run_preprocessor_check(preprocessor, examples, proto):
    """Packed names, shapes and dtypes, and a config round trip.

    Args:
        preprocessor: a `FiDOSeq2SeqLMPreprocessor` with its tokenizer.
        examples: one FiD example dict (outputs without a batch axis) or
            a list of them; with targets, labels and sample weights are
            checked too.
        proto: the tokenizer's SentencePiece model. It is an asset, not
            config: the restored preprocessor gets it before its outputs
            are compared with the original's.

    Returns:
        The preprocessor restored from its config.
    """
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(
        preprocessor(examples)
    )
    batch = () if isinstance(examples, dict) else (len(examples),)
    encoder = (preprocessor.num_passages, preprocessor.passage_length)
    decoder = (preprocessor.decoder_sequence_length,)
    assert set(x) == set(PACKED_INPUTS)
    for name, dtype in PACKED_INPUTS.items():
        shape = encoder if name.startswith("encoder") else decoder
        assert ops.is_tensor(x[name]), name
        assert tuple(x[name].shape) == batch + shape, name
        assert keras.backend.standardize_dtype(x[name].dtype) == dtype, name
    for value, dtype in ((y, "int32"), (sample_weight, "bool")):
        if value is not None:
            assert tuple(value.shape) == batch + decoder
            assert keras.backend.standardize_dtype(value.dtype) == dtype

    config = preprocessor.get_config()
    restored = type(preprocessor).from_config(copy.deepcopy(config))
    assert restored.get_config() == config
    restored.tokenizer.set_proto(proto)
    original = _numpy(x)
    reloaded = _numpy(
        keras.utils.unpack_x_y_sample_weight(restored(examples))[0]
    )
    for name in original:
        np.testing.assert_array_equal(reloaded[name], original[name])
    return restored
