"""MultiQueryCrossAttention: decoder-to-passages attention, shared K/V."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import MultiQueryCrossAttention
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check

# Decoder width 16, encoder width 12 (FiDO's asymmetric sizes).
BATCH, TARGET, SOURCE, WIDTH, SOURCE_WIDTH = 2, 5, 10, 16, 12
HEADS, HEAD_DIM = 4, 8


def make_layer(kv_heads):
    layer = MultiQueryCrossAttention(
        num_query_heads=HEADS,
        num_key_value_heads=kv_heads,
        key_value_dim=HEAD_DIM,
    )
    layer.build((None, None, WIDTH), (None, None, SOURCE_WIDTH))
    return layer


def decoder_states(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, TARGET, WIDTH)).astype("float32")


def encoder_output(seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, SOURCE, SOURCE_WIDTH)).astype("float32")


def padding_mask():
    """`[B, 1, S]`: the second sample's last 4 source tokens are padding."""
    mask = np.ones((BATCH, 1, SOURCE), bool)
    mask[1, :, -4:] = False
    return mask


def kernels(layer):
    return [
        ops.convert_to_numpy(dense.kernel)
        for dense in (
            layer.query_dense,
            layer.key_dense,
            layer.value_dense,
            layer.output_dense,
        )
    ]


def numpy_cross_attention(x, source, wq, wk, wv, wo, mask):
    """Plain multi-head cross-attention, T5 style (no biases or scaling)."""
    q = np.einsum("btd,dnh->btnh", x, wq)
    k = np.einsum("bsd,dnh->bsnh", source, wk)
    v = np.einsum("bsd,dnh->bsnh", source, wv)
    logits = np.einsum("btnh,bsnh->bnts", q, k)
    logits = np.where(mask[:, None], logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights = weights / weights.sum(-1, keepdims=True)
    heads = np.einsum("bnts,bsnh->btnh", weights, v)
    return np.einsum("btnh,nhd->btd", heads, wo)


def call_args():
    return (decoder_states(), encoder_output(), padding_mask())


@pytest.mark.parametrize("kv_heads", [1, 2, HEADS])
def test_runs_with_source_wider_or_narrower_than_queries(kv_heads):
    layer = make_layer(kv_heads)
    out = layer(*call_args())
    assert tuple(out.shape) == (BATCH, TARGET, WIDTH)
    shapes = {w.path.split("/")[-2]: tuple(w.shape) for w in layer.weights}
    # K/V are projected from the encoder width, with kv_heads heads only.
    assert shapes == {
        "query": (WIDTH, HEADS, HEAD_DIM),
        "key": (SOURCE_WIDTH, kv_heads, HEAD_DIM),
        "value": (SOURCE_WIDTH, kv_heads, HEAD_DIM),
        "output": (HEADS, HEAD_DIM, WIDTH),
    }


def test_multi_head_equals_numpy_reference():
    layer = make_layer(HEADS)
    x, source, mask = call_args()
    expected = numpy_cross_attention(x, source, *kernels(layer), mask)
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x, source, mask)),
        expected,
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("kv_heads", [1, 2])
def test_grouped_equals_multi_head_with_kv_repeated_per_group(kv_heads):
    grouped = make_layer(kv_heads)
    group_size = HEADS // kv_heads
    wq, wk, wv, wo = kernels(grouped)
    x, source, mask = call_args()
    expected = numpy_cross_attention(
        x,
        source,
        wq,
        np.repeat(wk, group_size, axis=1),
        np.repeat(wv, group_size, axis=1),
        wo,
        mask,
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(grouped(x, source, mask)),
        expected,
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("kv_heads", [1, 2])
def test_precomputed_key_value_cache_equals_encoder_output(kv_heads):
    layer = make_layer(kv_heads)
    x, source, mask = call_args()
    cache = layer.compute_key_value(source)
    assert [tuple(t.shape) for t in cache] == [
        (BATCH, kv_heads, SOURCE, HEAD_DIM)
    ] * 2
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x, attention_mask=mask, cache=cache)),
        ops.convert_to_numpy(layer(x, source, mask)),
        atol=1e-6,
    )


def test_attention_scores_are_grouped_probabilities_over_real_tokens():
    layer = make_layer(2)
    _, scores = layer(*call_args(), return_attention_scores=True)
    scores = ops.convert_to_numpy(scores)
    assert scores.shape == (BATCH, 2, HEADS // 2, TARGET, SOURCE)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(scores[1, ..., -4:], 0.0)


def test_missing_encoder_output_and_cache_is_refused():
    layer = make_layer(1)
    with pytest.raises(ValueError, match="encoder_output"):
        layer(decoder_states())


def test_heads_not_divisible_by_kv_heads_is_refused_naming_both():
    with pytest.raises(ValueError) as error:
        MultiQueryCrossAttention(
            num_query_heads=4, num_key_value_heads=3, key_value_dim=8
        )
    assert "num_query_heads=4" in str(error.value)
    assert "num_key_value_heads=3" in str(error.value)


def test_config_round_trip_gives_same_outputs():
    run_layer_serialization_check(
        make_layer(1),
        args=call_args(),
        kwargs={"return_attention_scores": True},
    )


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision_with_float32_scores(policy):
    # Output in the compute dtype; the softmax probabilities in float32.
    run_mixed_precision_check(
        make_layer(1),
        policy,
        args=call_args(),
        kwargs={"return_attention_scores": True},
        float32_outputs=(1,),
    )


@pytest.mark.parametrize("kv_heads", [1, 4])
def test_several_query_rows_per_sample_share_its_cache(kv_heads):
    # Beam search: r consecutive rows of queries per sample attend to the
    # sample's one K/V copy, exactly as if the copy were repeated r times.
    layer = make_layer(kv_heads)
    beams = 3
    cache = layer.compute_key_value(encoder_output())
    rng = np.random.default_rng(2)
    states = rng.normal(size=(BATCH * beams, 1, WIDTH)).astype("float32")
    shared = layer(states, attention_mask=padding_mask(), cache=cache)
    repeated = layer(
        states,
        attention_mask=np.repeat(padding_mask(), beams, axis=0),
        cache=tuple(ops.repeat(t, beams, axis=0) for t in cache),
    )
    assert tuple(ops.shape(shared)) == (BATCH * beams, 1, WIDTH)
    np.testing.assert_allclose(
        ops.convert_to_numpy(shared), ops.convert_to_numpy(repeated), atol=1e-5
    )
