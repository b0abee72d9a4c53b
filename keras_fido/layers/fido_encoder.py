"""The FiD encoder: a T5 encoder applied to every passage on its own,
optionally split into a passage-memory part and a live part (LUMEN)."""

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

    With `live_layers=n` below `num_layers` the stack is split as LUMEN
    (de Jong et al., https://arxiv.org/abs/2301.10448) splits it: the
    first `num_layers - n` blocks (the memory encoder) run over each
    passage's own tokens alone, and over the question's tokens alone, so
    a passage's output, its memory, depends on nothing else and can be
    computed once and stored (`encode_memory`); the last `n` blocks (the
    live encoder) run over the question's states joined to each passage's
    memory (`encode_live`). Every sequence is then laid out as a block of
    `question_length` question positions followed by the passage's: the
    question block of passage slot 0 is the question encoded once per
    sample.

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
        live_layers: int or None. Blocks run over question and passage
            together, in `[1, num_layers]`; `None` (the default) runs
            every block over the whole sequence (FiD).
        question_length: int. With `live_layers`, the positions of the
            question block at the start of every sequence; `None`
            otherwise.
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
        live_layers=None,
        question_length=None,
        **kwargs,
    ):
        self.live_layers, self.question_length = check_live_layers(
            live_layers, question_length, num_layers
        )
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

    @property
    def memory_layers(self):
        """The blocks of the memory encoder (none without `live_layers`)."""
        live = self.live_layers or self.num_layers
        return self.transformer_layers[: self.num_layers - live]

    def _run_blocks(self, layers, x, padding_mask, training):
        """`[..., N, d]` states through `layers`, each sequence alone."""
        shape = ops.shape(x)
        length = shape[-2]
        x = ops.reshape(x, (-1, length, self.hidden_dim))
        attention_mask = passage_self_attention_mask(padding_mask)
        bias = self.relative_position_bias.compute_bias(length, length)
        for layer in layers:
            x = layer(
                x,
                self_attention_mask=attention_mask,
                self_attention_bias=bias,
                training=training,
            )
        return ops.reshape(x, shape)

    def encode_memory(self, token_embeddings, padding_mask, training=False):
        """The memory encoder: `[..., N, d]` embedded tokens of passages
        (or questions), each sequence alone, -> `[..., N, d]` states.

        With `live_layers=None`, or as many live layers as blocks, the
        memory is the dropped-out embeddings themselves.
        """
        x = self.dropout_layer(token_embeddings, training=training)
        return self._run_blocks(self.memory_layers, x, padding_mask, training)

    def encode_live(
        self, question_memory, passage_memory, padding_mask, training=False
    ):
        """The live encoder over the question joined to every passage.

        Args:
            question_memory: `[B, 1 or P, question_length, d]`, the memory
                encoder's states of the question block.
            passage_memory: `[B, P, L - question_length, d]`, each passage's
                memory (`encode_memory`, or read from a store).
            padding_mask: `[B, P, L]`, of the joined sequences.

        Returns:
            `[B, P*L, hidden_dim]`, the fused encoder output.
        """
        shape = ops.shape(passage_memory)
        question_memory = ops.broadcast_to(
            question_memory,
            (shape[0], shape[1], self.question_length, self.hidden_dim),
        )
        x = ops.concatenate(
            [
                ops.cast(question_memory, self.compute_dtype),
                ops.cast(passage_memory, self.compute_dtype),
            ],
            axis=2,
        )
        live = self.transformer_layers[len(self.memory_layers) :]
        x = self._run_blocks(live, x, padding_mask, training)
        x = self.final_output(x, training=training)
        length = self.question_length + shape[2]
        return ops.reshape(x, (shape[0], shape[1] * length, self.hidden_dim))

    def call(self, token_embeddings, padding_mask, training=False):
        shape = ops.shape(token_embeddings)
        batch, passages, length = shape[0], shape[1], shape[2]
        if self.live_layers is None:
            x = self.dropout_layer(token_embeddings, training=training)
            x = self._run_blocks(
                self.transformer_layers, x, padding_mask, training
            )
            x = self.final_output(x, training=training)
            return ops.reshape(x, (batch, passages * length, self.hidden_dim))
        split = self.question_length
        question = self.encode_memory(
            token_embeddings[:, :1, :split],
            padding_mask[:, :1, :split],
            training,
        )
        memory = self.encode_memory(
            token_embeddings[:, :, split:],
            padding_mask[:, :, split:],
            training,
        )
        return self.encode_live(question, memory, padding_mask, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "live_layers": self.live_layers,
                "question_length": self.question_length,
            }
        )
        return config

    def compute_output_shape(self, token_embeddings_shape, *args, **kwargs):
        b, p, n = token_embeddings_shape[:3]
        fused = None if p is None or n is None else p * n
        return (b, fused, self.hidden_dim)


def check_live_layers(live_layers, question_length, num_layers, prefix=""):
    """`(live_layers, question_length)`, checked against the depth.

    `live_layers` is `None` (every block live, and then no
    `question_length`) or an int in `[1, num_layers]` with a positive
    `question_length`. Errors name the arguments with `prefix` (e.g.
    `"encoder_"` for the backbone's).
    """
    live_name = f"{prefix}live_layers"
    question_name = f"{prefix}question_length"
    if live_layers is None:
        if question_length is not None:
            raise ValueError(
                f"`{question_name}` splits the sequence of a memory "
                f"encoder; it needs `{live_name}`. Received: "
                f"{question_name}={question_length!r}, {live_name}=None"
            )
        return None, None
    if (
        isinstance(live_layers, bool)
        or not isinstance(live_layers, int)
        or not 1 <= live_layers <= num_layers
    ):
        raise ValueError(
            f"`{live_name}` must be an int in [1, {num_layers}] (the "
            "encoder's depth), or None for every layer. Received: "
            f"{live_name}={live_layers!r}"
        )
    if (
        isinstance(question_length, bool)
        or not isinstance(question_length, int)
        or question_length < 1
    ):
        raise ValueError(
            f"With `{live_name}`, `{question_name}` (the question "
            "block's positions) must be a positive int. Received: "
            f"{question_name}={question_length!r}"
        )
    return live_layers, question_length
