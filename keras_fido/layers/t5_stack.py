"""What the FiDO encoder and decoder share: a stack of T5.1.1 blocks."""

import keras

from keras_fido.layers.fido_transformer_layer import FiDOTransformerLayer
from keras_fido.layers.relative_position_bias import RelativePositionBias
from keras_fido.layers.t5_layer_norm import T5LayerNorm
from keras_fido.utils.checks import check_keyword_arguments


class T5Stack(keras.layers.Layer):
    """The base of `FiDOEncoder` and `FiDODecoder`: their sizes and config,
    and the sublayers both have.

    A T5.1.1 stack is dropout, `num_layers` pre-norm blocks that share one
    relative position bias, a final RMS norm and dropout again. The
    encoder's bias is bidirectional and its blocks never cross-attend; the
    decoder's is causal and its blocks cross-attend on FiDO's schedule.
    Each subclass sets its own attributes, then calls `create_sublayers`.

    Args: as `FiDOEncoder`'s, which takes no others.
    """

    def __init__(
        self,
        num_layers,
        hidden_dim,
        intermediate_dim,
        num_heads,
        key_value_dim,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        dropout=0.0,
        layer_norm_epsilon=1e-6,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.key_value_dim = key_value_dim
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

    def create_sublayers(self, bidirectional, layer_numbers, block_options):
        """Position bias, blocks, final norm and dropout, in this order
        (the order of the weights).

        Args:
            bidirectional: bool. Whether the position bias looks both ways.
            layer_numbers: the blocks' numbers, which name them `layer_{i}`.
            block_options: `i -> dict` of the `FiDOTransformerLayer`
                arguments of block `i` beyond the stack's sizes.
        """
        self.relative_position_bias = RelativePositionBias(
            num_heads=self.num_heads,
            num_buckets=self.relative_attention_num_buckets,
            max_distance=self.relative_attention_max_distance,
            bidirectional=bidirectional,
            dtype=self.dtype_policy,
            name="relative_position_bias",
        )
        self.transformer_layers = [
            FiDOTransformerLayer(
                hidden_dim=self.hidden_dim,
                intermediate_dim=self.intermediate_dim,
                num_heads=self.num_heads,
                key_value_dim=self.key_value_dim,
                dropout=self.dropout,
                layer_norm_epsilon=self.layer_norm_epsilon,
                dtype=self.dtype_policy,
                name=f"layer_{i}",
                **block_options(i),
            )
            for i in layer_numbers
        ]
        self.final_norm = T5LayerNorm(
            self.layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
        )
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )

    def build_sublayers(self, block_input_shape):
        self.relative_position_bias.build()
        for layer in self.transformer_layers:
            layer.build(block_input_shape)
        self.final_norm.build(block_input_shape)
        self.built = True

    def final_output(self, x, training=False):
        """The last blocks' output, normalized, then dropout."""
        return self.dropout_layer(self.final_norm(x), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "key_value_dim": self.key_value_dim,
                "relative_attention_num_buckets": (
                    self.relative_attention_num_buckets
                ),
                "relative_attention_max_distance": (
                    self.relative_attention_max_distance
                ),
                "dropout": self.dropout,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
