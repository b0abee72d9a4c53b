"""T5LayerNorm: scale-only RMS normalization with a float32 statistic."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import T5LayerNorm
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check


def make_layer(seed=0):
    layer = T5LayerNorm(epsilon=1e-6)
    layer.build((None, 8))
    # A non-trivial scale, so a dropped or misplaced scale shows.
    scale = np.random.default_rng(seed).uniform(0.5, 1.5, size=(8,))
    layer.scale.assign(scale.astype("float32"))
    return layer


def inputs(seed=1):
    return np.random.default_rng(seed).normal(size=(2, 3, 8)).astype("float32")


def test_divides_by_root_mean_square_and_scales():
    layer = make_layer()
    x = inputs()
    scale = ops.convert_to_numpy(layer.scale)
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-6)
    expected = expected * scale
    actual = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)


def test_subtracts_no_mean():
    layer = T5LayerNorm()
    # An all-positive constant row: a mean-subtracting norm would give 0.
    actual = ops.convert_to_numpy(layer(np.full((1, 4), 3.0, "float32")))
    np.testing.assert_allclose(actual, np.ones((1, 4)), atol=1e-5)


def test_config_round_trip_gives_same_outputs():
    run_layer_serialization_check(make_layer(), args=(inputs(),))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision(policy):
    run_mixed_precision_check(make_layer(), policy, args=(inputs(),))


def test_float16_statistic_does_not_overflow():
    # 1000**2 overflows float16 (max 65504): the mean square must be taken
    # in float32 for the output to stay finite and right.
    x = np.full((1, 8), 1000.0, "float32")
    run_mixed_precision_check(make_layer(), "mixed_float16", args=(x,))
