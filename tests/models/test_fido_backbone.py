"""FiDOBackbone: the functional FiD / FiDO encoder-decoder."""

import os

import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_fido.models import FiDOBackbone
from keras_fido.testing.model_checks import run_backbone_check
from keras_fido.testing.model_checks import run_preset_check


def fid_inputs(batch=1, passages=3, length=8, target=4, seed=0):
    rng = np.random.default_rng(seed)
    encoder_mask = np.ones((batch, passages, length), "int32")
    encoder_mask[0, -1, length // 2 :] = 0  # a short passage
    decoder_mask = np.ones((batch, target), "int32")
    return {
        "encoder_token_ids": rng.integers(
            2, 500, size=(batch, passages, length)
        ).astype("int32")
        * encoder_mask,
        "encoder_padding_mask": encoder_mask,
        "decoder_token_ids": rng.integers(2, 500, size=(batch, target)).astype(
            "int32"
        ),
        "decoder_padding_mask": decoder_mask,
    }


def to_numpy(outputs):
    return {name: ops.convert_to_numpy(x) for name, x in outputs.items()}


def assert_same_outputs(actual, expected, atol=1e-6):
    assert sorted(actual) == sorted(expected)
    for name in expected:
        np.testing.assert_allclose(
            ops.convert_to_numpy(actual[name]),
            ops.convert_to_numpy(expected[name]),
            atol=atol,
            err_msg=name,
        )


@pytest.fixture(scope="module")
def fido_tiny():
    return FiDOBackbone.from_preset("fido_tiny")


@pytest.fixture(scope="module")
def fid_tiny():
    return FiDOBackbone.from_preset("fid_tiny")


@pytest.mark.parametrize(
    "preset, encoder_dim, decoder_dim",
    [("fid_tiny", 64, 64), ("fido_tiny", 64, 96)],
)
def test_outputs_are_named_and_shaped(
    preset, encoder_dim, decoder_dim, request
):
    backbone = request.getfixturevalue(preset)
    outputs = backbone(fid_inputs(passages=3, length=8, target=4))
    assert sorted(outputs) == [
        "decoder_sequence_output",
        "encoder_sequence_output",
    ]
    assert tuple(outputs["encoder_sequence_output"].shape) == (
        1,
        24,
        encoder_dim,
    )
    assert tuple(outputs["decoder_sequence_output"].shape) == (
        1,
        4,
        decoder_dim,
    )


def test_batch_passages_lengths_and_targets_vary_between_calls(fido_tiny):
    # Nothing is fixed when the model is built: a second call with every
    # dimension changed works on the same model.
    for batch, passages, length, target in [(1, 3, 8, 4), (2, 4, 3, 6)]:
        outputs = fido_tiny(fid_inputs(batch, passages, length, target))
        assert tuple(outputs["encoder_sequence_output"].shape) == (
            batch,
            passages * length,
            64,
        )
        assert tuple(outputs["decoder_sequence_output"].shape) == (
            batch,
            target,
            96,
        )


def test_fido_tiny_preset_has_sparse_multi_query_decoder(fido_tiny):
    assert fido_tiny.cross_attention_layer_indices == [3, 6]
    assert fido_tiny.decoder_num_key_value_heads == 1
    for layer in fido_tiny.decoder.transformer_layers:
        assert tuple(layer.self_attention.key_dense.kernel.shape) == (96, 1, 16)
    for layer in fido_tiny.decoder.cross_attention_layers:
        # Cross-attention K/V read the 64-wide encoder output, one head.
        key = layer.cross_attention_layer.key_dense.kernel
        assert tuple(key.shape) == (64, 1, 16)


def test_fid_tiny_preset_is_vanilla_fid(fid_tiny):
    assert fid_tiny.cross_attention_layer_indices == [1, 2]
    assert fid_tiny.decoder_num_key_value_heads == fid_tiny.decoder_num_heads
    # Equal widths: encoder and decoder share one input embedding.
    assert fid_tiny.encoder_token_embedding is fid_tiny.token_embedding


def test_padded_encoder_tokens_do_not_change_the_decoder(fido_tiny):
    inputs = fid_inputs()
    before = to_numpy(fido_tiny(inputs))
    mask = inputs["encoder_padding_mask"]
    inputs["encoder_token_ids"] = np.where(
        mask == 1, inputs["encoder_token_ids"], 7
    ).astype("int32")
    after = to_numpy(fido_tiny(inputs))
    np.testing.assert_allclose(
        after["decoder_sequence_output"],
        before["decoder_sequence_output"],
        atol=1e-5,
    )


def test_token_logits_cover_the_vocabulary(fido_tiny):
    outputs = fido_tiny(fid_inputs())
    logits = fido_tiny.token_logits(outputs["decoder_sequence_output"])
    assert tuple(logits.shape) == (1, 4, fido_tiny.vocabulary_size)


def test_encoder_token_ids_of_rank_two_are_refused(fido_tiny):
    inputs = fid_inputs()
    inputs["encoder_token_ids"] = inputs["encoder_token_ids"][:, 0]
    with pytest.raises(ValueError) as error:
        fido_tiny(inputs)
    message = str(error.value)
    assert "`encoder_token_ids`" in message
    assert "(1, 8)" in message


@pytest.mark.parametrize(
    "mask, shape",
    [("encoder_padding_mask", (1, 3, 7)), ("decoder_padding_mask", (1, 5))],
)
def test_mismatched_mask_shape_is_refused(fido_tiny, mask, shape):
    inputs = fid_inputs()
    inputs[mask] = np.ones(shape, "int32")
    with pytest.raises(ValueError) as error:
        fido_tiny(inputs)
    assert f"`{mask}`" in str(error.value)
    assert str(shape) in str(error.value)


def test_missing_input_is_refused_naming_it(fido_tiny):
    inputs = fid_inputs()
    del inputs["decoder_padding_mask"]
    with pytest.raises(ValueError, match="decoder_padding_mask"):
        fido_tiny(inputs)


def test_unknown_preset_is_refused_listing_known_presets():
    with pytest.raises(ValueError) as error:
        FiDOBackbone.from_preset("fido_huge")
    message = str(error.value)
    assert "'fido_huge'" in message
    for known in ("fid_tiny", "fido_tiny", "fido_base_xl"):
        assert known in message


def test_preset_directory_without_config_is_refused(tmp_path):
    with pytest.raises(ValueError) as error:
        FiDOBackbone.from_preset(str(tmp_path))
    assert "config.json" in str(error.value)
    assert str(tmp_path) in str(error.value)


def test_preset_directory_without_weights_is_refused(fid_tiny, tmp_path):
    fid_tiny.save_to_preset(str(tmp_path))
    os.remove(tmp_path / "model.weights.h5")
    with pytest.raises(ValueError) as error:
        FiDOBackbone.from_preset(str(tmp_path))
    assert "model.weights.h5" in str(error.value)
    assert str(tmp_path) in str(error.value)
    # Without weights to load, the config alone is enough.
    backbone = FiDOBackbone.from_preset(str(tmp_path), load_weights=False)
    assert backbone.get_config() == fid_tiny.get_config()


@pytest.mark.parametrize("preset", ["fid_tiny", "fido_tiny"])
def test_config_keras_file_and_preset_round_trips_change_nothing(
    preset, tmp_path
):
    backbone = FiDOBackbone.from_preset(preset)
    run_backbone_check(backbone, fid_inputs(), tmp_path)
    restored = FiDOBackbone.from_preset(str(tmp_path / "backbone_preset"))
    expected = backbone.cross_attention_layer_indices
    assert restored.cross_attention_layer_indices == expected
    assert expected == ([3, 6] if preset == "fido_tiny" else [1, 2])


def test_keras_hub_backbone_from_preset_returns_a_fido_backbone(
    fid_tiny, tmp_path
):
    restored = run_preset_check(
        fid_tiny,
        fid_inputs(),
        tmp_path,
        loader=keras_hub.models.Backbone.from_preset,
    )
    assert isinstance(restored, FiDOBackbone)
