"""Which decoder layers cross-attend: the layer-sparse cross-attention rule."""

from keras_fido.utils.checks import check_positive_int


def cross_attention_layer_indices(num_layers, cross_attention_interval):
    """1-based indices of the decoder layers that hold cross-attention.

    Layer-sparse cross-attention (LSA) keeps cross-attention only in every
    `cross_attention_interval`-th layer: with 24 layers and an interval of 6
    these are layers 6, 12, 18 and 24. An interval of 1 is vanilla FiD
    (every layer cross-attends).

    Args:
        num_layers: int. Depth of the decoder.
        cross_attention_interval: int in `[1, num_layers]`.

    Returns:
        A list of ints, the 1-based layer indices.
    """
    check_positive_int("num_layers", num_layers)
    # `bool` is an `int`: `True` must not pass as an interval of 1.
    interval = cross_attention_interval
    if (
        isinstance(interval, bool)
        or not isinstance(interval, int)
        or not 1 <= interval <= num_layers
    ):
        raise ValueError(
            "`cross_attention_interval` must be an int between 1 and the "
            f"decoder depth ({num_layers}), so that at least one layer "
            "cross-attends to the passages. "
            f"Received: cross_attention_interval={interval!r}"
        )
    return [i for i in range(1, num_layers + 1) if i % interval == 0]
