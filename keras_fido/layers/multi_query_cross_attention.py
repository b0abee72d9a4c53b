"""Cross-attention from the decoder to all passages, with shared K/V heads."""

import keras
from keras import ops

from keras_fido.layers.multi_query_attention import MultiQueryAttention


@keras.saving.register_keras_serializable(package="keras_fido")
class MultiQueryCrossAttention(MultiQueryAttention):
    """Decoder-to-encoder attention over the fused passages of FiD.

    Queries come from the decoder (`hidden_dim` wide); keys and values are
    projected from the encoder output, whose width may differ (FiDO's
    asymmetric encoder and decoder). With `num_key_value_heads=1` this is
    the multi-query cross-attention of FiDO: the K/V that every decoding
    step must reload shrink by a factor of `num_query_heads`.

    The K/V of the encoder output do not change while decoding, so
    `compute_key_value(encoder_output)` is called once per generation and
    its `(key, value)` pair passed back as `cache` at every step. The two
    are separate tensors, each contiguous in the layout the attention
    reads: sliced out of one stacked tensor, they would be copied at every
    step by XLA:CPU under TensorFlow and by torch's `einsum`.

    Args:
        num_query_heads, num_key_value_heads, key_value_dim, dropout,
        kernel_initializer: as `MultiQueryAttention`.

    Call arguments:
        hidden_states: `[B, T, hidden_dim]` decoder states.
        encoder_output: `[B, S, source_dim]`; ignored when `cache` is given.
        attention_mask: optional bool `[B, T, S]` (or `[B, 1, S]`).
        cache: optional `(key, value)` pair, each
            `[B, num_key_value_heads, S, key_value_dim]`: the precomputed
            K/V of `encoder_output` (`compute_key_value`). `hidden_states`
            may hold `r * B` rows (`r` consecutive rows per sample, e.g. beams):
            they all attend to their sample's K/V, which is not copied.
        return_attention_scores: bool, also return the float32 attention
            probabilities `[B, num_key_value_heads, group_size, r * T, S]`
            (`r` as above, usually 1).
        training: bool, whether dropout is active.

    Examples:
    ```python
    attention = keras_fido.layers.MultiQueryCrossAttention(
        num_query_heads=4, num_key_value_heads=1, key_value_dim=8)
    x = np.random.rand(2, 3, 16).astype("float32")
    passages = np.random.rand(2, 20, 12).astype("float32")
    attention(x, passages).shape  # (2, 3, 16)
    ```
    """

    def build(self, hidden_states_shape, encoder_output_shape):
        self._build_projections(hidden_states_shape, encoder_output_shape)

    def call(
        self,
        hidden_states,
        encoder_output=None,
        attention_mask=None,
        cache=None,
        return_attention_scores=False,
        training=False,
    ):
        if cache is None:
            if encoder_output is None:
                raise ValueError(
                    "Cross-attention needs `encoder_output` or a `cache` "
                    "computed from it. Received neither."
                )
            cache = self.compute_key_value(encoder_output)
        # With `r` rows of queries per row of K/V (the beams of a beam
        # search), each sample's rows become one longer query sequence over
        # its single K/V copy; with `r = 1` the reshapes change nothing.
        key, value = cache
        shape = ops.shape(hidden_states)
        hidden_states = ops.reshape(
            hidden_states, (ops.shape(key)[0], -1, shape[-1])
        )
        output, scores = self.attend(
            hidden_states,
            key,
            value,
            attention_mask=attention_mask,
            training=training,
        )
        output = ops.reshape(output, (shape[0], shape[1], -1))
        if return_attention_scores:
            return output, scores
        return output
