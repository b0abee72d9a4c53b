"""RelativePositionBias: T5's bucketed relative position bias."""

import math

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import RelativePositionBias
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check

# Buckets of relative positions -8..8 (key minus query) for 8 buckets and
# max distance 20, worked out by hand from the T5 rule. Bidirectional: 4
# buckets a side, exact for distances 0 and 1, then log-spaced over
# [2, 20): distances 2..6 share bucket 2, 7 and more bucket 3; keys after
# the query are shifted by 4.
RELATIVE = np.arange(-8, 9)
BIDIRECTIONAL_8_20 = [3, 3, 2, 2, 2, 2, 2, 1, 0, 5, 6, 6, 6, 6, 6, 7, 7]
# Causal: 8 buckets for past keys only, exact for distances 0..3, then
# log-spaced over [4, 20): 4-5 -> 4, 6-8 -> 5, 9-13 -> 6, 14+ -> 7. Future
# keys (masked anyway) fall in bucket 0.
CAUSAL_RELATIVE = np.arange(-15, 3)
CAUSAL_8_20 = [7, 7, 6, 6, 6, 6, 6, 5, 5, 5, 4, 4, 3, 2, 1, 0, 0, 0]


def t5_bucket(relative, bidirectional, num_buckets, max_distance):
    """T5's bucketing rule, written out in numpy (float64)."""
    relative = np.asarray(relative)
    offset = np.zeros_like(relative)
    if bidirectional:
        num_buckets //= 2
        offset = np.where(relative > 0, num_buckets, 0)
        distance = np.abs(relative)
    else:
        distance = np.maximum(-relative, 0)
    max_exact = num_buckets // 2
    # Only distances >= max_exact use the log; 1 keeps the rest finite.
    log_position = (
        np.log(np.maximum(distance, 1) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    )
    large = np.minimum(
        max_exact + np.floor(log_position).astype(int), num_buckets - 1
    )
    small = distance < max_exact
    # Where the float64 log lands on an integer (a bucket edge) and is not
    # clamped, float32 rounding decides the bucket.
    edge = (
        ~small
        & (np.abs(log_position - np.round(log_position)) < 1e-4)
        & (log_position > 0.5)
        & (max_exact + np.round(log_position) < num_buckets)
    )
    return offset + np.where(small, distance, large), edge


def layer_buckets(layer, relative):
    return ops.convert_to_numpy(
        layer.bucket(ops.convert_to_tensor(relative, "int32"))
    )


def make_layer(bidirectional=True, num_heads=3, num_buckets=8):
    layer = RelativePositionBias(
        num_heads=num_heads,
        num_buckets=num_buckets,
        max_distance=20,
        bidirectional=bidirectional,
    )
    layer.build()
    return layer


def test_bidirectional_buckets_match_hand_table():
    layer = make_layer(bidirectional=True)
    np.testing.assert_array_equal(
        layer_buckets(layer, RELATIVE), BIDIRECTIONAL_8_20
    )


def test_causal_buckets_match_hand_table():
    layer = make_layer(bidirectional=False)
    np.testing.assert_array_equal(
        layer_buckets(layer, CAUSAL_RELATIVE), CAUSAL_8_20
    )


def test_hand_tables_follow_the_numpy_rule():
    # Guards the hand tables themselves against a slip.
    rule, _ = t5_bucket(RELATIVE, True, 8, 20)
    np.testing.assert_array_equal(rule, BIDIRECTIONAL_8_20)
    rule, _ = t5_bucket(CAUSAL_RELATIVE, False, 8, 20)
    np.testing.assert_array_equal(rule, CAUSAL_8_20)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_default_buckets_follow_t5_rule_over_long_range(bidirectional):
    layer = RelativePositionBias(num_heads=2, bidirectional=bidirectional)
    relative = np.arange(-300, 301)
    expected, on_edge = t5_bucket(relative, bidirectional, 32, 128)
    # Distances exactly on a bucket edge (16, 32 and 64 when bidirectional)
    # depend on the last bit of a float32 log, which differs between
    # backends; compare everywhere else.
    assert on_edge.sum() <= 6
    actual = layer_buckets(layer, relative)
    np.testing.assert_array_equal(actual[~on_edge], expected[~on_edge])


@pytest.mark.parametrize("bidirectional", [True, False])
def test_bias_is_embedding_of_bucket_per_head(bidirectional):
    layer = make_layer(bidirectional=bidirectional)
    bias = ops.convert_to_numpy(layer.compute_bias(4, 6))
    assert bias.shape == (1, 3, 4, 6)
    table = ops.convert_to_numpy(layer.embeddings)  # [buckets, heads]
    relative = np.arange(6)[None, :] - np.arange(4)[:, None]
    buckets, _ = t5_bucket(relative, bidirectional, 8, 20)
    expected = np.transpose(table[buckets], (2, 0, 1))[None]
    np.testing.assert_allclose(bias, expected, atol=0, rtol=0)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_query_offset_equals_slicing_a_larger_table(bidirectional):
    layer = make_layer(bidirectional=bidirectional)
    full = ops.convert_to_numpy(layer.compute_bias(9, 9))
    for offset in (0, 3, 8):
        rows = ops.convert_to_numpy(
            layer.compute_bias(1, 9, query_offset=offset)
        )
        np.testing.assert_array_equal(rows, full[:, :, offset : offset + 1])
    block = ops.convert_to_numpy(layer.compute_bias(3, 9, query_offset=4))
    np.testing.assert_array_equal(block, full[:, :, 4:7])


def test_call_equals_compute_bias():
    layer = make_layer()
    # Keras only takes tensors positionally: Python ints go by keyword.
    called = layer(query_length=2, key_length=5, query_offset=1)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(called),
        ops.convert_to_numpy(layer.compute_bias(2, 5, query_offset=1)),
    )


def test_too_few_buckets_is_refused_naming_the_value():
    with pytest.raises(ValueError, match="num_buckets=3"):
        RelativePositionBias(num_heads=2, num_buckets=3, bidirectional=True)


def test_config_round_trip_gives_same_outputs():
    layer = make_layer(bidirectional=False)
    run_layer_serialization_check(
        layer, args=(4, 6), kwargs={"query_offset": 2}, method="compute_bias"
    )


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_bias_stays_float32_under_mixed_precision(policy):
    # The bias is added to float32 logits, so it is float32 whatever the
    # policy, and exactly the float32 layer's.
    run_mixed_precision_check(
        make_layer(),
        policy,
        args=(4, 6),
        method="compute_bias",
        float32_outputs=(0,),
        tolerance=0.0,
    )
