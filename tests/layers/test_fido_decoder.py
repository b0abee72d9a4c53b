"""FiDODecoder: causal T5 decoder with layer-sparse cross-attention."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import FiDODecoder
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check

BATCH, TARGET, PASSAGES, LENGTH = 2, 5, 2, 5
WIDTH, SOURCE_WIDTH, HEADS, HEAD_DIM = 16, 12, 4, 8


def make_decoder(num_layers=4, interval=2, kv_heads=1):
    decoder = FiDODecoder(
        num_layers=num_layers,
        hidden_dim=WIDTH,
        intermediate_dim=32,
        num_heads=HEADS,
        num_key_value_heads=kv_heads,
        key_value_dim=HEAD_DIM,
        encoder_hidden_dim=SOURCE_WIDTH,
        cross_attention_interval=interval,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        name="decoder",
    )
    decoder.build((None, None, WIDTH))
    return decoder


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    encoder_mask = np.ones((BATCH, PASSAGES, LENGTH), "int32")
    encoder_mask[0, 1, -2:] = 0
    encoder_mask[1, 1, :] = 0  # a missing passage
    return {
        "token_embeddings": rng.normal(size=(BATCH, TARGET, WIDTH)).astype(
            "float32"
        ),
        "encoder_output": rng.normal(
            size=(BATCH, PASSAGES * LENGTH, SOURCE_WIDTH)
        ).astype("float32"),
        "encoder_padding_mask": encoder_mask,
    }


def cross_attention_layers_by_weights(decoder):
    """1-based indices of the blocks that hold cross-attention weights."""
    holders = set()
    for weight in decoder.weights:
        block, *rest = weight.path.split("/")[1:]
        if rest[0].startswith("cross_attention"):
            holders.add(int(block.removeprefix("layer_")))
    return sorted(holders)


@pytest.mark.parametrize(
    "interval, expected", [(1, [1, 2, 3, 4, 5, 6]), (2, [2, 4, 6]), (3, [3, 6])]
)
def test_cross_attention_only_in_every_interval_th_layer(interval, expected):
    decoder = make_decoder(num_layers=6, interval=interval)
    assert decoder.cross_attention_layer_indices == expected
    assert [
        i
        for i, layer in enumerate(decoder.transformer_layers, 1)
        if layer.cross_attention
    ] == expected
    # Only those layers hold cross-attention weights: 5 tensors each (a
    # norm scale and the Q, K, V, O kernels).
    assert cross_attention_layers_by_weights(decoder) == expected
    cross_weights = [w for w in decoder.weights if "/cross_attention" in w.path]
    assert len(cross_weights) == 5 * len(expected)


def test_sparse_decoder_has_fewer_weights_by_exactly_the_dropped_layers():
    dense = make_decoder(num_layers=6, interval=1).count_params()
    sparse = make_decoder(num_layers=6, interval=3).count_params()
    # Per cross-attention layer: a norm, Q and O (WIDTH x HEADS x HEAD_DIM)
    # and K, V from the encoder width with one K/V head.
    per_layer = (
        WIDTH + 2 * WIDTH * HEADS * HEAD_DIM + 2 * SOURCE_WIDTH * HEAD_DIM
    )
    assert dense - sparse == 4 * per_layer


@pytest.mark.parametrize("interval", [0, 5, -1])
def test_interval_outside_one_to_depth_is_refused_naming_the_value(interval):
    with pytest.raises(
        ValueError, match=f"cross_attention_interval={interval}"
    ):
        make_decoder(num_layers=4, interval=interval)


def test_cross_attention_cache_has_one_entry_per_cross_attending_layer():
    decoder = make_decoder(num_layers=4, interval=2, kv_heads=2)
    cache = decoder.compute_cross_attention_cache(inputs()["encoder_output"])
    # One (key, value) pair per cross-attending layer.
    shape = (BATCH, 2, PASSAGES * LENGTH, HEAD_DIM)
    pairs = [tuple(tuple(t.shape) for t in pair) for pair in cache]
    assert pairs == [(shape, shape)] * 2
    assert decoder.cross_attention_cache_shapes(BATCH, PASSAGES * LENGTH) == (
        pairs
    )


def test_incremental_decoding_equals_full_sequence():
    # Multi-query, with layers both with and without cross-attention (the
    # grouped-query cache is checked layer by layer in
    # test_multi_query_attention.py).
    decoder = make_decoder(num_layers=4, interval=2, kv_heads=1)
    data = inputs()
    full, full_scores = decoder(**data, return_attention_scores=True)

    cross_cache = decoder.compute_cross_attention_cache(data["encoder_output"])
    self_cache = decoder.init_self_attention_cache(BATCH, TARGET)
    steps, step_scores = [], []
    for t in range(TARGET):
        out, self_cache, scores = decoder(
            data["token_embeddings"][:, t : t + 1],
            encoder_padding_mask=data["encoder_padding_mask"],
            self_attention_cache=self_cache,
            cache_update_index=t,
            cross_attention_cache=cross_cache,
            return_attention_scores=True,
        )
        steps.append(ops.convert_to_numpy(out))
        step_scores.append([ops.convert_to_numpy(s) for s in scores])
    np.testing.assert_allclose(
        np.concatenate(steps, axis=1),
        ops.convert_to_numpy(full),
        atol=1e-5,
        rtol=1e-5,
    )
    for i, layer_scores in enumerate(full_scores):
        np.testing.assert_allclose(
            np.concatenate([s[i] for s in step_scores], axis=-2),
            ops.convert_to_numpy(layer_scores),
            atol=1e-5,
        )


def test_trailing_decoder_padding_changes_only_padded_positions():
    decoder = make_decoder()
    data = inputs()
    padding = np.ones((BATCH, TARGET), "int32")
    padding[0, -2:] = 0
    plain = ops.convert_to_numpy(decoder(**data))
    padded = ops.convert_to_numpy(decoder(**data, decoder_padding_mask=padding))
    # Real tokens only see earlier (real) keys, so they are unchanged ...
    np.testing.assert_allclose(padded[0, :-2], plain[0, :-2], atol=1e-6)
    np.testing.assert_allclose(padded[1], plain[1], atol=1e-6)
    # ... while padded queries no longer see the padded keys.
    assert not np.allclose(padded[0, -2:], plain[0, -2:], atol=1e-3)


def test_padded_source_tokens_are_not_attended():
    decoder = make_decoder()
    data = inputs()
    _, scores = decoder(**data, return_attention_scores=True)
    source_mask = data["encoder_padding_mask"].reshape(BATCH, -1)
    for layer_scores in scores:
        layer_scores = ops.convert_to_numpy(layer_scores)
        assert np.all(layer_scores[0, ..., source_mask[0] == 0] == 0)
        assert np.all(layer_scores[1, ..., source_mask[1] == 0] == 0)


def test_missing_encoder_output_and_cache_is_refused():
    decoder = make_decoder()
    data = inputs()
    with pytest.raises(ValueError, match="encoder_output"):
        decoder(data["token_embeddings"])


def test_config_round_trip_gives_same_outputs():
    run_layer_serialization_check(make_decoder(), kwargs=inputs())


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision_with_float32_scores(policy):
    run_mixed_precision_check(
        make_decoder(),
        policy,
        kwargs={**inputs(), "return_attention_scores": True},
        float32_outputs=(1, 2),
    )


def test_decode_always_returns_states_cache_and_scores():
    decoder = make_decoder(num_layers=4, interval=2)
    data = inputs()
    out = decoder.decode(**data)
    assert out.self_attention_cache is None
    assert len(out.attention_scores) == 2  # layers 2 and 4
    np.testing.assert_array_equal(
        ops.convert_to_numpy(out.hidden_states),
        ops.convert_to_numpy(decoder(**data)),
    )
    cache = decoder.init_self_attention_cache(BATCH, TARGET)
    step = decoder.decode(
        data["token_embeddings"][:, :1],
        data["encoder_output"],
        data["encoder_padding_mask"],
        self_attention_cache=cache,
        cache_update_index=0,
    )
    assert len(step.self_attention_cache) == 4
    assert len(step.attention_scores) == 2
