"""The FiD encoder: a T5 encoder applied to every passage on its own."""

import keras
from keras import ops

from keras_fido.layers.attention_masks import passage_self_attention_mask
from keras_fido.layers.t5_stack import T5Stack


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDOEncoder(T5Stack):
    """Encodes each retrieved passage separately and fuses the results.

    Fusion-in-Decoder (Izacard & Grave, https://arxiv.org/abs/2007.01282)
    folds the passages into the batch, `[B, P, L] -> [B*P, L]`, so that
    attention never crosses passages and its cost grows linearly with `P`;
    the outputs are then laid end to end, `[B, P*L, d]`, for the decoder to
    attend to all of them at once. The stack is T5.1.1's: pre-norm blocks
    of bidirectional multi-head self-attention and gated-GELU MLPs, one
    relative position bias shared by all blocks, a final RMS norm.

    A passage whose mask is all False (padding for a missing passage) still
    yields finite values: its attention falls back to a uniform average.

    Args:
        num_layers: int. Number of blocks.
        hidden_dim: int. Width of the stack.
        intermediate_dim: int. Width of the MLPs.
        num_heads: int. Attention heads.
        key_value_dim: int. Width of each head.
        relative_attention_num_buckets: int. Buckets of the position bias.
        relative_attention_max_distance: int. Largest distinguished distance.
        dropout: float. Dropout rate.
        layer_norm_epsilon: float. Epsilon of the RMS norms.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        token_embeddings: `[B, P, L, hidden_dim]` embedded passage tokens.
        padding_mask: `[B, P, L]`, 1/True on real tokens.
        training: bool, whether dropout is active.

    Returns:
        `[B, P*L, hidden_dim]`, the fused encoder output.

    Examples:
    ```python
    encoder = keras_fido.layers.FiDOEncoder(
        num_layers=2, hidden_dim=16, intermediate_dim=32, num_heads=2,
        key_value_dim=8)
    embeddings = np.random.rand(1, 3, 5, 16).astype("float32")
    encoder(embeddings, np.ones((1, 3, 5), "int32")).shape  # (1, 15, 16)
    ```
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
        super().__init__(
            num_layers=num_layers,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            num_heads=num_heads,
            key_value_dim=key_value_dim,
            relative_attention_num_buckets=relative_attention_num_buckets,
            relative_attention_max_distance=relative_attention_max_distance,
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            **kwargs,
        )
        self.create_sublayers(
            bidirectional=True,
            layer_numbers=range(num_layers),
            block_options=lambda i: {"num_key_value_heads": num_heads},
        )

    def build(self, token_embeddings_shape, padding_mask_shape=None):
        self.build_sublayers((None, token_embeddings_shape[2], self.hidden_dim))

    def call(self, token_embeddings, padding_mask, training=False):
        shape = ops.shape(token_embeddings)
        batch, passages, length = shape[0], shape[1], shape[2]
        x = ops.reshape(token_embeddings, (-1, length, self.hidden_dim))
        attention_mask = passage_self_attention_mask(padding_mask)
        bias = self.relative_position_bias.compute_bias(length, length)
        x = self.dropout_layer(x, training=training)
        for layer in self.transformer_layers:
            x = layer(
                x,
                self_attention_mask=attention_mask,
                self_attention_bias=bias,
                training=training,
            )
        x = self.final_output(x, training=training)
        return ops.reshape(x, (batch, passages * length, self.hidden_dim))

    def compute_output_shape(self, token_embeddings_shape, *args, **kwargs):
        b, p, n = token_embeddings_shape[:3]
        fused = None if p is None or n is None else p * n
        return (b, fused, self.hidden_dim)
