"""GatedGeluFeedForward: T5.1.1's gated-GELU MLP without biases."""

import math

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import GatedGeluFeedForward
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.layer_checks import run_mixed_precision_check


def make_layer():
    layer = GatedGeluFeedForward(hidden_dim=8, intermediate_dim=16)
    layer.build((None, None, 8))
    return layer


def inputs():
    return np.random.default_rng(0).normal(size=(2, 3, 8)).astype("float32")


def gelu_tanh(x):
    return (
        0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    )


def test_matches_numpy_gated_gelu():
    layer = make_layer()
    x = inputs()
    wi_0 = ops.convert_to_numpy(layer.gate_dense.kernel)
    wi_1 = ops.convert_to_numpy(layer.input_dense.kernel)
    wo = ops.convert_to_numpy(layer.output_dense.kernel)
    expected = (gelu_tanh(x @ wi_0) * (x @ wi_1)) @ wo
    actual = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)


def test_has_three_kernels_and_no_biases():
    layer = make_layer()
    shapes = sorted(tuple(w.shape) for w in layer.weights)
    assert shapes == [(8, 16), (8, 16), (16, 8)]


def test_config_round_trip_gives_same_outputs():
    run_layer_serialization_check(make_layer(), args=(inputs(),))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_runs_under_mixed_precision(policy):
    run_mixed_precision_check(make_layer(), policy, args=(inputs(),))
