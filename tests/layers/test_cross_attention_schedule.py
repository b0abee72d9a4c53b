"""cross_attention_layer_indices: which decoder layers cross-attend."""

import pytest

from keras_fido.layers import cross_attention_layer_indices


@pytest.mark.parametrize(
    "num_layers, interval, expected",
    [
        (24, 6, [6, 12, 18, 24]),
        (6, 3, [3, 6]),
        (4, 1, [1, 2, 3, 4]),
        (7, 3, [3, 6]),
        (5, 5, [5]),
    ],
)
def test_every_interval_th_layer_one_based(num_layers, interval, expected):
    assert cross_attention_layer_indices(num_layers, interval) == expected


@pytest.mark.parametrize("interval", [0, 7, 2.0, True])
def test_interval_outside_one_to_depth_is_refused_naming_it(interval):
    with pytest.raises(ValueError) as error:
        cross_attention_layer_indices(6, interval)
    assert f"cross_attention_interval={interval!r}" in str(error.value)


def test_non_positive_depth_is_refused():
    with pytest.raises(ValueError, match="num_layers=0"):
        cross_attention_layer_indices(0, 1)
