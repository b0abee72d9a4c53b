"""MultiQueryAttention: T5 self-attention with grouped K/V heads + cache."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import MultiQueryAttention
from keras_fido.layers.flat_matmul_projection import project_from_heads
from keras_fido.layers.flat_matmul_projection import project_to_heads
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check

BATCH, LENGTH, WIDTH, HEADS, HEAD_DIM = 2, 5, 16, 4, 8


def make_layer(kv_heads):
    layer = MultiQueryAttention(
        num_query_heads=HEADS,
        num_key_value_heads=kv_heads,
        key_value_dim=HEAD_DIM,
    )
    layer.build((None, None, WIDTH))
    return layer


def hidden_states(seed=0, length=LENGTH):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(BATCH, length, WIDTH)).astype("float32")


def causal_mask(length=LENGTH):
    mask = np.tril(np.ones((length, length), bool))
    return np.broadcast_to(mask, (BATCH, length, length)).copy()


def position_bias(seed=1, heads=HEADS, length=LENGTH):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(1, heads, length, length)).astype("float32")


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


def numpy_multi_head_attention(x, source, wq, wk, wv, wo, mask, bias):
    """Plain multi-head attention, T5 style (no biases, no 1/sqrt(d))."""
    q = np.einsum("btd,dnh->btnh", x, wq)
    k = np.einsum("bsd,dnh->bsnh", source, wk)
    v = np.einsum("bsd,dnh->bsnh", source, wv)
    logits = np.einsum("btnh,bsnh->bnts", q, k)
    if bias is not None:
        logits = logits + bias
    if mask is not None:
        logits = np.where(mask[:, None], logits, -np.inf)
    logits = logits - logits.max(-1, keepdims=True)
    weights = np.exp(logits)
    weights = weights / weights.sum(-1, keepdims=True)
    heads = np.einsum("bnts,bsnh->btnh", weights, v)
    return np.einsum("btnh,nhd->btd", heads, wo)


def set_kernels(layer, values):
    for dense, value in zip(
        (
            layer.query_dense,
            layer.key_dense,
            layer.value_dense,
            layer.output_dense,
        ),
        values,
    ):
        dense.kernel.assign(value)


@pytest.mark.parametrize("kv_heads", [1, 2, HEADS])
def test_runs_with_multi_query_grouped_and_multi_head(kv_heads):
    layer = make_layer(kv_heads)
    out = layer(hidden_states(), attention_mask=causal_mask())
    assert tuple(out.shape) == (BATCH, LENGTH, WIDTH)
    assert np.isfinite(ops.convert_to_numpy(out)).all()


@pytest.mark.parametrize("kv_heads", [1, 2, HEADS])
def test_key_value_kernels_hold_only_kv_heads(kv_heads):
    # No per-query-head copies of K/V anywhere in the weights.
    layer = make_layer(kv_heads)
    shapes = {w.path.split("/")[-2]: tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "query": (WIDTH, HEADS, HEAD_DIM),
        "key": (WIDTH, kv_heads, HEAD_DIM),
        "value": (WIDTH, kv_heads, HEAD_DIM),
        "output": (HEADS, HEAD_DIM, WIDTH),
    }
    key, value = layer.compute_key_value(hidden_states())
    assert tuple(key.shape) == (BATCH, kv_heads, LENGTH, HEAD_DIM)
    assert tuple(value.shape) == (BATCH, kv_heads, LENGTH, HEAD_DIM)


def test_multi_head_equals_numpy_reference():
    layer = make_layer(kv_heads=HEADS)
    x, mask, bias = hidden_states(), causal_mask(), position_bias()
    actual = layer(x, attention_mask=mask, attention_bias=bias)
    expected = numpy_multi_head_attention(x, x, *kernels(layer), mask, bias)
    np.testing.assert_allclose(
        ops.convert_to_numpy(actual), expected, atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("kv_heads", [1, 2])
def test_grouped_equals_multi_head_with_kv_repeated_per_group(kv_heads):
    # Query head i reads K/V head i // group_size: repeating each K/V head
    # group_size times in a row (not tiling) gives the same multi-head layer.
    grouped = make_layer(kv_heads)
    group_size = HEADS // kv_heads
    wq, wk, wv, wo = kernels(grouped)
    multi_head = make_layer(HEADS)
    set_kernels(
        multi_head,
        [
            wq,
            np.repeat(wk, group_size, axis=1),
            np.repeat(wv, group_size, axis=1),
            wo,
        ],
    )
    x, mask, bias = hidden_states(), causal_mask(), position_bias()
    np.testing.assert_allclose(
        ops.convert_to_numpy(grouped(x, mask, bias)),
        ops.convert_to_numpy(multi_head(x, mask, bias)),
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.parametrize("kv_heads", [1, 2, HEADS])
def test_cache_one_position_at_a_time_equals_full_sequence(kv_heads):
    layer = make_layer(kv_heads)
    x, bias = hidden_states(), position_bias()
    full = ops.convert_to_numpy(layer(x, causal_mask(), bias))
    cache = np.zeros((BATCH, 2, kv_heads, LENGTH, HEAD_DIM), "float32")
    mask = causal_mask()
    steps = []
    for t in range(LENGTH):
        out, cache = layer(
            x[:, t : t + 1],
            attention_mask=mask[:, t : t + 1],
            attention_bias=bias[:, :, t : t + 1],
            cache=cache,
            cache_update_index=t,
        )
        steps.append(ops.convert_to_numpy(out))
    np.testing.assert_allclose(
        np.concatenate(steps, axis=1), full, atol=1e-5, rtol=1e-5
    )
    # The cache ends up holding exactly the full sequence's K/V.
    np.testing.assert_allclose(
        ops.convert_to_numpy(cache),
        ops.convert_to_numpy(ops.stack(layer.compute_key_value(x), axis=1)),
        atol=1e-6,
    )


def test_cache_without_update_index_is_refused():
    layer = make_layer(1)
    cache = np.zeros((BATCH, 2, 1, LENGTH, HEAD_DIM), "float32")
    with pytest.raises(ValueError, match="cache_update_index"):
        layer(hidden_states(length=1), cache=cache)


def test_heads_not_divisible_by_kv_heads_is_refused_naming_both():
    with pytest.raises(ValueError) as error:
        MultiQueryAttention(
            num_query_heads=6, num_key_value_heads=4, key_value_dim=8
        )
    assert "num_query_heads=6" in str(error.value)
    assert "num_key_value_heads=4" in str(error.value)


def test_config_round_trip_gives_same_outputs():
    layer = make_layer(kv_heads=2)
    restored = run_layer_serialization_check(
        layer, args=(hidden_states(), causal_mask(), position_bias())
    )
    assert restored.num_key_value_heads == 2


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("kv_heads", [1, HEADS])
def test_runs_under_mixed_precision(policy, kv_heads):
    run_mixed_precision_check(
        make_layer(kv_heads),
        policy,
        args=(hidden_states(), causal_mask(), position_bias()),
    )


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_flat_projections_equal_the_einsum_layers(kv_heads):
    # K/V and output projections run as flat matmuls over the layers'
    # own kernels (no per-step kernel transposes on XLA:CPU); they must
    # compute exactly what the EinsumDense layers compute.
    layer = make_layer(kv_heads)
    x = ops.convert_to_tensor(hidden_states())
    for dense in (layer.key_dense, layer.value_dense):
        np.testing.assert_allclose(
            ops.convert_to_numpy(project_to_heads(dense, x)),
            ops.convert_to_numpy(dense(x)),
            atol=1e-5,
        )
    heads = ops.convert_to_tensor(
        np.random.default_rng(1)
        .normal(size=(BATCH, LENGTH, HEADS, HEAD_DIM))
        .astype("float32")
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(project_from_heads(layer.output_dense, heads)),
        ops.convert_to_numpy(layer.output_dense(heads)),
        atol=1e-5,
    )


def test_quantized_projections_go_through_the_layers():
    layer = make_layer(1)
    x = hidden_states()
    before = ops.convert_to_numpy(layer(x))
    # As `keras.Model.quantize` does it: every EinsumDense in turn.
    for dense in (
        layer.query_dense,
        layer.key_dense,
        layer.value_dense,
        layer.output_dense,
    ):
        dense.quantize("int8")
    assert layer.key_dense.quantization_mode == "int8"
    after = ops.convert_to_numpy(layer(x))
    # The int8 kernels are used (a small change), not the float ones.
    assert not np.array_equal(before, after)
    np.testing.assert_allclose(after, before, atol=0.1 * np.abs(before).max())
