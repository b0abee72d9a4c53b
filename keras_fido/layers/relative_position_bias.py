"""T5's bucketed relative position bias."""

import math

import keras
from keras import ops

from keras_fido.utils.checks import check_keyword_arguments


@keras.saving.register_keras_serializable(package="keras_fido")
class RelativePositionBias(keras.layers.Layer):
    """Learned per-head attention bias from bucketed relative positions.

    T5 has no position embeddings: instead each attention head adds a scalar,
    learned per bucket of relative distance `key_position - query_position`,
    to its attention logits. Small distances get a bucket each; larger ones
    share logarithmically wider buckets up to `max_distance`. One instance is
    shared by every layer of a stack (T5 computes the bias in the first layer
    and reuses it).

    Args:
        num_heads: int. Number of attention (query) heads.
        num_buckets: int. Number of distance buckets. T5 uses 32.
        max_distance: int. Distances at or above this share the last bucket.
            T5 uses 128.
        bidirectional: bool. `True` for the encoder (keys may be on either
            side of the query: half the buckets for each side); `False` for
            the causal decoder (only keys at or before the query count).
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments (of `compute_bias`, which the stacks call; `__call__`
    takes the same arguments by keyword):
        query_length: int or scalar tensor, number of query positions.
        key_length: int or scalar tensor, number of key positions.
        query_offset: int or scalar tensor, position of the first query (the
            decoding step when decoding one token at a time). Defaults to 0.

    Returns:
        A float32 tensor `[1, num_heads, query_length, key_length]`.

    Examples:
    ```python
    bias = keras_fido.layers.RelativePositionBias(num_heads=4)
    bias.build()
    bias.compute_bias(query_length=3, key_length=5).shape  # (1, 4, 3, 5)
    ```
    """

    def __init__(
        self,
        num_heads,
        num_buckets=32,
        max_distance=128,
        bidirectional=True,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        if num_buckets < 2 or (bidirectional and num_buckets < 4):
            raise ValueError(
                "`num_buckets` must be at least 2 (4 when bidirectional). "
                f"Received: num_buckets={num_buckets}"
            )
        self.num_heads = num_heads
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_buckets, self.num_heads),
            initializer=keras.initializers.RandomNormal(stddev=0.05),
        )
        self.built = True

    def bucket(self, relative_position):
        """Maps `key_position - query_position` (int32) to bucket ids."""
        num_buckets = self.num_buckets
        buckets = ops.zeros_like(relative_position)
        if self.bidirectional:
            num_buckets //= 2
            buckets = buckets + ops.cast(relative_position > 0, "int32") * (
                num_buckets
            )
            distance = ops.abs(relative_position)
        else:
            distance = ops.maximum(-relative_position, 0)
        max_exact = num_buckets // 2
        # Logarithmic buckets for distances >= max_exact. The log of 0 is
        # never used (those distances are exact), but is kept finite so no
        # backend sees -inf cast to an integer.
        safe = ops.cast(ops.maximum(distance, 1), "float32")
        log_ratio = ops.log(safe / max_exact) / math.log(
            self.max_distance / max_exact
        )
        large = max_exact + ops.cast(
            log_ratio * (num_buckets - max_exact), "int32"
        )
        large = ops.minimum(large, num_buckets - 1)
        return buckets + ops.where(distance < max_exact, distance, large)

    def call(self, query_length, key_length, query_offset=0):
        return self.compute_bias(query_length, key_length, query_offset)

    def compute_bias(self, query_length, key_length, query_offset=0):
        """The bias itself; lengths may be Python ints or scalar tensors.

        Stacks call this method directly (lengths are not tensors, which a
        Keras `__call__` would require of positional arguments).
        """
        query_positions = ops.arange(query_length, dtype="int32") + ops.cast(
            query_offset, "int32"
        )
        key_positions = ops.arange(key_length, dtype="int32")
        relative = key_positions[None, :] - query_positions[:, None]
        values = ops.take(
            ops.cast(self.embeddings, "float32"), self.bucket(relative), axis=0
        )  # [q, k, heads]
        return ops.expand_dims(ops.transpose(values, (2, 0, 1)), 0)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
            }
        )
        return config
