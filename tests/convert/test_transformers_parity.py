"""Vanilla FiD in keras_fido equals HuggingFace T5.1.1 run FiD-style."""

import numpy as np
import pytest
from keras import ops

pytest.importorskip("transformers", reason="the reference needs transformers")

from keras_fido.convert import from_transformers  # noqa: E402
from keras_fido.testing.t5_reference import fid_forward  # noqa: E402
from keras_fido.testing.t5_reference import random_fid_inputs  # noqa: E402
from keras_fido.testing.t5_reference import tiny_t5  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module")
def pair():
    t5 = tiny_t5()
    return t5, from_transformers(t5)


def test_converted_backbone_is_vanilla_fid(pair):
    _, backbone = pair
    assert backbone.cross_attention_layer_indices == [1, 2, 3]
    assert backbone.decoder_num_key_value_heads == backbone.decoder_num_heads


def test_encoder_decoder_and_logits_match_transformers(pair):
    t5, backbone = pair
    inputs = random_fid_inputs()
    ref_encoder, ref_decoder, ref_logits = fid_forward(t5, **inputs)
    outputs = backbone(inputs)
    encoder = ops.convert_to_numpy(outputs["encoder_sequence_output"])
    decoder = ops.convert_to_numpy(outputs["decoder_sequence_output"])
    logits = ops.convert_to_numpy(
        backbone.token_logits(outputs["decoder_sequence_output"])
    )
    np.testing.assert_allclose(encoder, ref_encoder, atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(decoder, ref_decoder, atol=ATOL, rtol=1e-4)
    np.testing.assert_allclose(logits, ref_logits, atol=ATOL, rtol=1e-4)


def test_fully_padded_passage_gives_no_nan(pair):
    _, backbone = pair
    inputs = random_fid_inputs()
    inputs["encoder_padding_mask"][0] = 0
    inputs["encoder_padding_mask"][0, 0, 0] = 1
    outputs = backbone(inputs)
    for value in outputs.values():
        assert np.isfinite(ops.convert_to_numpy(value)).all()


def test_relu_t5_is_refused_naming_the_feature():
    t5 = tiny_t5(seed=1)
    t5.config.feed_forward_proj = "relu"
    with pytest.raises(ValueError, match="feed_forward_proj='relu'"):
        from_transformers(t5)
