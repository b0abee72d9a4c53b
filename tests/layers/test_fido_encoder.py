"""FiDOEncoder: passages encoded independently, then laid end to end."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import FiDOEncoder
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check

BATCH, PASSAGES, LENGTH, WIDTH = 2, 3, 5, 16


def make_encoder():
    encoder = FiDOEncoder(
        num_layers=2,
        hidden_dim=WIDTH,
        intermediate_dim=32,
        num_heads=4,
        key_value_dim=8,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
    )
    encoder.build((None, None, None, WIDTH))
    return encoder


def embeddings(seed=0):
    rng = np.random.default_rng(seed)
    shape = (BATCH, PASSAGES, LENGTH, WIDTH)
    return rng.normal(size=shape).astype("float32")


def padding_mask():
    """A short passage, and in the second sample a missing one."""
    mask = np.ones((BATCH, PASSAGES, LENGTH), "int32")
    mask[0, 1, -2:] = 0
    mask[1, 2, :] = 0
    return mask


def test_fuses_passages_end_to_end():
    encoder = make_encoder()
    out = encoder(embeddings(), padding_mask())
    assert tuple(out.shape) == (BATCH, PASSAGES * LENGTH, WIDTH)


def test_each_passage_is_encoded_as_if_alone():
    encoder = make_encoder()
    x, mask = embeddings(), padding_mask()
    fused = ops.convert_to_numpy(encoder(x, mask))
    for p in range(PASSAGES):
        alone = encoder(x[:, p : p + 1], mask[:, p : p + 1])
        np.testing.assert_allclose(
            fused[:, p * LENGTH : (p + 1) * LENGTH],
            ops.convert_to_numpy(alone),
            atol=1e-5,
            rtol=1e-5,
        )


def test_padded_tokens_do_not_change_real_tokens():
    encoder = make_encoder()
    x, mask = embeddings(), padding_mask()
    before = ops.convert_to_numpy(encoder(x, mask))
    noisy = np.where(mask[..., None] == 1, x, 100.0).astype("float32")
    after = ops.convert_to_numpy(encoder(noisy, mask))
    real = mask.reshape(BATCH, PASSAGES * LENGTH) == 1
    np.testing.assert_allclose(after[real], before[real], atol=1e-5)


def test_fully_padded_passage_gives_finite_outputs():
    encoder = make_encoder()
    mask = padding_mask()
    mask[0] = 0  # the first sample has no real token at all
    out = ops.convert_to_numpy(encoder(embeddings(), mask))
    assert np.isfinite(out).all()


def test_config_round_trip_gives_same_outputs():
    run_layer_serialization_check(
        make_encoder(), args=(embeddings(), padding_mask())
    )


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision(policy):
    run_mixed_precision_check(
        make_encoder(), policy, args=(embeddings(), padding_mask())
    )
