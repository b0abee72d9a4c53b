"""One pre-norm T5 block: self-attention, optional cross-attention, MLP."""

import collections

import keras
from keras import ops

from keras_fido.layers.float16_range import clip_to_float16
from keras_fido.layers.gated_gelu_feed_forward import GatedGeluFeedForward
from keras_fido.layers.multi_query_attention import MultiQueryAttention
from keras_fido.layers.multi_query_cross_attention import (
    MultiQueryCrossAttention,
)
from keras_fido.layers.t5_layer_norm import T5LayerNorm
from keras_fido.utils.checks import check_keyword_arguments


class LayerOutput(
    collections.namedtuple(
        "LayerOutput",
        ["hidden_states", "self_attention_cache", "attention_scores"],
    )
):
    """What a decoder-side pass returns, always these three fields.

    `hidden_states` `[B, T, hidden_dim]`; `self_attention_cache`, the
    updated cache, or `None` when the pass was given none;
    `attention_scores`, the float32 cross-attention probabilities, or
    `None` where there are none.
    """

    __slots__ = ()

    def public_outputs(self, with_cache, with_scores):
        """The public `call`'s return: the hidden states alone, or a
        tuple of them, the cache (`with_cache`) and the scores
        (`with_scores`), in that order."""
        outputs = (self.hidden_states,)
        if with_cache:
            outputs += (self.self_attention_cache,)
        if with_scores:
            outputs += (self.attention_scores,)
        return outputs[0] if len(outputs) == 1 else outputs


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOTransformerLayer(keras.layers.Layer):
    """A T5.1.1 block, the unit of both the FiDO encoder and decoder.

    Each sublayer is pre-normalized with `T5LayerNorm` and added back
    residually: self-attention, then (only when `cross_attention=True`)
    cross-attention to the encoder output, then the gated-GELU MLP. A block
    built without cross-attention holds no cross-attention weights; that is
    how layer-sparse cross-attention saves memory and bandwidth.

    Under a float16 compute dtype each residual sum is formed in float32
    and clipped to float16's range before the cast back (T5.1.1's
    activations outgrow float16; see `keras_fido.layers.float16_range`),
    so an overflow saturates instead of becoming `inf` and then `nan` in
    the next norm. Other dtypes add in the compute dtype, unchanged.

    Args:
        hidden_dim: int. Width of the residual stream.
        intermediate_dim: int. Width of the gated MLP.
        num_heads: int. Query heads of both attentions.
        num_key_value_heads: int. K/V heads of both attentions.
        key_value_dim: int. Width of each head.
        cross_attention: bool. Whether the block cross-attends.
        encoder_hidden_dim: int. Width of the encoder output; required when
            `cross_attention=True`.
        dropout: float. Dropout on each sublayer's output and attention.
        layer_norm_epsilon: float. Epsilon of the RMS norms.
        kernel_initializer: initializer for all kernels; `None` (default)
            uses T5's fan-in scaled normal initializers.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        hidden_states: `[B, T, hidden_dim]`.
        self_attention_mask: optional bool `[B, T, S_self]`.
        self_attention_bias: optional float `[1, num_heads, T, S_self]`.
        encoder_output: `[B, S, encoder_hidden_dim]`, for cross-attention.
        cross_attention_mask: optional bool `[B, 1, S]` or `[B, T, S]`.
        self_attention_cache: optional self-attention K/V cache (see
            `MultiQueryAttention`); with it the block also returns the
            updated cache.
        cache_update_index: where the new K/V go in the cache.
        cross_attention_cache: optional precomputed cross-attention K/V.
        return_attention_scores: bool. Also return the float32
            cross-attention probabilities (`None` in a block that does not
            cross-attend).
        training: bool, whether dropout is active.

    Returns:
        `hidden_states`, followed by the updated cache when a
        `self_attention_cache` was given and by the scores with
        `return_attention_scores`; `transform` always returns all three
        as a `LayerOutput`.
    """

    def __init__(
        self,
        hidden_dim,
        intermediate_dim,
        num_heads,
        num_key_value_heads,
        key_value_dim,
        cross_attention=False,
        encoder_hidden_dim=None,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        kernel_initializer=None,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        if cross_attention and encoder_hidden_dim is None:
            raise ValueError(
                "`encoder_hidden_dim` is required when `cross_attention=True`."
            )
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_key_value_heads = num_key_value_heads
        self.key_value_dim = key_value_dim
        self.cross_attention = cross_attention
        self.encoder_hidden_dim = encoder_hidden_dim
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        self.self_attention_norm = self._norm("self_attention_norm")
        self.self_attention = self._attention(
            MultiQueryAttention, "self_attention"
        )
        if cross_attention:
            self.cross_attention_norm = self._norm("cross_attention_norm")
            self.cross_attention_layer = self._attention(
                MultiQueryCrossAttention, "cross_attention"
            )
        self.feed_forward_norm = self._norm("feed_forward_norm")
        self.feed_forward = GatedGeluFeedForward(
            hidden_dim,
            intermediate_dim,
            dropout=dropout,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="feed_forward",
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    def _norm(self, name):
        return T5LayerNorm(
            self.layer_norm_epsilon, dtype=self.dtype_policy, name=name
        )

    def _attention(self, attention_class, name):
        return attention_class(
            num_query_heads=self.num_heads,
            num_key_value_heads=self.num_key_value_heads,
            key_value_dim=self.key_value_dim,
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, hidden_states_shape):
        self.self_attention_norm.build(hidden_states_shape)
        self.self_attention.build(hidden_states_shape)
        if self.cross_attention:
            self.cross_attention_norm.build(hidden_states_shape)
            self.cross_attention_layer.build(
                hidden_states_shape, (None, None, self.encoder_hidden_dim)
            )
        self.feed_forward_norm.build(hidden_states_shape)
        self.feed_forward.build(hidden_states_shape)
        self.built = True

    def compute_cross_attention_cache(self, encoder_output):
        """The K/V of `encoder_output` for this block's cross-attention."""
        return self.cross_attention_layer.compute_key_value(encoder_output)

    def call(
        self,
        hidden_states,
        self_attention_mask=None,
        self_attention_bias=None,
        encoder_output=None,
        cross_attention_mask=None,
        self_attention_cache=None,
        cache_update_index=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        training=False,
    ):
        out = self.transform(
            hidden_states,
            self_attention_mask,
            self_attention_bias,
            encoder_output,
            cross_attention_mask,
            self_attention_cache,
            cache_update_index,
            cross_attention_cache,
            training=training,
        )
        return out.public_outputs(
            self_attention_cache is not None, return_attention_scores
        )

    def transform(
        self,
        hidden_states,
        self_attention_mask=None,
        self_attention_bias=None,
        encoder_output=None,
        cross_attention_mask=None,
        self_attention_cache=None,
        cache_update_index=None,
        cross_attention_cache=None,
        training=False,
    ):
        """The block's pass, always as a `LayerOutput`.

        Arguments as `call`'s. `self_attention_cache` is `None` in the
        result when none was given, `attention_scores` when the block does
        not cross-attend. The decoder calls this on its built blocks.
        """
        x = hidden_states
        attended = self.self_attention(
            self.self_attention_norm(x),
            attention_mask=self_attention_mask,
            attention_bias=self_attention_bias,
            cache=self_attention_cache,
            cache_update_index=cache_update_index,
            training=training,
        )
        if self_attention_cache is not None:
            attended, self_attention_cache = attended
        x = self.add_residual(
            x, self.dropout_layer(attended, training=training)
        )

        scores = None
        if self.cross_attention:
            attended, scores = self.cross_attention_layer(
                self.cross_attention_norm(x),
                encoder_output,
                attention_mask=cross_attention_mask,
                cache=cross_attention_cache,
                return_attention_scores=True,
                training=training,
            )
            x = self.add_residual(
                x, self.dropout_layer(attended, training=training)
            )

        mlp = self.feed_forward(self.feed_forward_norm(x), training=training)
        x = self.add_residual(x, self.dropout_layer(mlp, training=training))
        return LayerOutput(x, self_attention_cache, scores)

    def add_residual(self, x, update):
        """`x + update`; under float16, summed in float32 and clipped."""
        if self.compute_dtype != "float16":
            return x + update
        return clip_to_float16(
            ops.cast(x, "float32") + ops.cast(update, "float32")
        )

    def compute_output_shape(self, hidden_states_shape, *args, **kwargs):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "key_value_dim": self.key_value_dim,
                "cross_attention": self.cross_attention,
                "encoder_hidden_dim": self.encoder_hidden_dim,
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "kernel_initializer": (
                    None
                    if self.kernel_initializer is None
                    else keras.initializers.serialize(self.kernel_initializer)
                ),
            }
        )
        return config
