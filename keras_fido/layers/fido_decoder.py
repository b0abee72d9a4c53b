"""The FiDO decoder: a T5 decoder with layer-sparse cross-attention."""

import keras
from keras import ops

from keras_fido.layers.attention_masks import causal_self_attention_mask
from keras_fido.layers.attention_masks import cross_attention_mask
from keras_fido.layers.cross_attention_schedule import (
    cross_attention_layer_indices,
)
from keras_fido.layers.fido_transformer_layer import LayerOutput
from keras_fido.layers.t5_stack import T5Stack


class DecoderOutput(LayerOutput):
    """What `FiDODecoder.decode` returns, always in this shape.

    `hidden_states` `[B, T, hidden_dim]`; `self_attention_cache`, the
    updated per-layer caches or `None` without a cache; `attention_scores`,
    one float32 `[B, kv, group, T, S]` tensor per cross-attending layer.
    """

    __slots__ = ()


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDODecoder(T5Stack):
    """Causal T5 decoder that cross-attends only in every K-th layer.

    The three FiDO knobs (de Jong et al., https://arxiv.org/abs/2212.08153)
    meet here: `cross_attention_interval=K` gives cross-attention to layers
    K, 2K, ... (1-based) and to no other layer (layer-sparse
    cross-attention); `num_key_value_heads` sets the K/V heads of both the
    self- and cross-attention (1 is multi-query); `encoder_hidden_dim` may
    differ from `hidden_dim` (asymmetric encoder and decoder). With K=1,
    `num_key_value_heads == num_heads` and equal widths this is exactly the
    T5.1.1 decoder that vanilla FiD uses.

    The same `call` serves training (whole target sequence, no cache) and
    incremental decoding (one token per call, with caches), so the two can
    never disagree.

    Args:
        num_layers: int. Decoder depth.
        hidden_dim: int. Width of the decoder.
        intermediate_dim: int. Width of the MLPs.
        num_heads: int. Query heads.
        num_key_value_heads: int. K/V heads; must divide `num_heads`.
        key_value_dim: int. Width of each head.
        encoder_hidden_dim: int. Width of the encoder output.
        cross_attention_interval: int. The LSA period K, in
            `[1, num_layers]`.
        relative_attention_num_buckets: int. Buckets of the position bias.
        relative_attention_max_distance: int. Largest distinguished distance.
        dropout: float. Dropout rate.
        layer_norm_epsilon: float. Epsilon of the RMS norms.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        token_embeddings: `[B, T, hidden_dim]` embedded target tokens.
        encoder_output: `[B, S, encoder_hidden_dim]`. Not needed when
            `cross_attention_cache` is given.
        encoder_padding_mask: `[B, S]` or `[B, P, L]` with `S = P*L`.
        decoder_padding_mask: optional `[B, T]`; ignored with a cache (the
            causal mask over the cache already hides unwritten positions).
        self_attention_cache: optional tuple, one
            `[B, 2, num_key_value_heads, T_max, key_value_dim]` tensor per
            layer (`init_self_attention_cache`).
        cache_update_index: int or scalar tensor, position of the first of
            the `T` tokens.
        cross_attention_cache: optional tuple of `(key, value)` pairs,
            one per cross-attending layer (`compute_cross_attention_cache`).
        return_attention_scores: bool. Also return a tuple of float32
            cross-attention probabilities, one per cross-attending layer,
            `[B, num_key_value_heads, group_size, T, S]`.
        training: bool, whether dropout is active.

    Returns:
        The hidden states `[B, T, hidden_dim]`, followed by the updated
        self-attention caches when a `self_attention_cache` was given and
        by the scores with `return_attention_scores`. `decode` always
        returns all three, as a `DecoderOutput`.

    Examples:
    ```python
    decoder = keras_fido.layers.FiDODecoder(
        num_layers=4, hidden_dim=24, intermediate_dim=48, num_heads=4,
        num_key_value_heads=1, key_value_dim=8, encoder_hidden_dim=16,
        cross_attention_interval=2)
    decoder.cross_attention_layer_indices  # [2, 4]
    out = decoder(np.random.rand(2, 3, 24).astype("float32"),
                  np.random.rand(2, 10, 16).astype("float32"),
                  np.ones((2, 10), "int32"))
    out.shape  # (2, 3, 24)
    ```
    """

    def __init__(
        self,
        num_layers,
        hidden_dim,
        intermediate_dim,
        num_heads,
        num_key_value_heads,
        key_value_dim,
        encoder_hidden_dim,
        cross_attention_interval=1,
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
        self.cross_attention_layer_indices = cross_attention_layer_indices(
            num_layers, cross_attention_interval
        )
        self.num_key_value_heads = num_key_value_heads
        self.encoder_hidden_dim = encoder_hidden_dim
        self.cross_attention_interval = cross_attention_interval
        self.create_sublayers(
            bidirectional=False,
            layer_numbers=range(1, num_layers + 1),
            block_options=lambda i: {
                "num_key_value_heads": num_key_value_heads,
                "cross_attention": i in self.cross_attention_layer_indices,
                "encoder_hidden_dim": encoder_hidden_dim,
            },
        )

    @property
    def cross_attention_layers(self):
        """The blocks that cross-attend, in order."""
        return [
            layer for layer in self.transformer_layers if layer.cross_attention
        ]

    def build(self, token_embeddings_shape, *args, **kwargs):
        self.build_sublayers((None, None, self.hidden_dim))

    def init_self_attention_cache(self, batch_size, max_length, dtype=None):
        """Zeroed self-attention K/V caches, one tensor per layer."""
        shape = (
            batch_size,
            2,
            self.num_key_value_heads,
            max_length,
            self.key_value_dim,
        )
        dtype = dtype or self.compute_dtype
        return tuple(ops.zeros(shape, dtype) for _ in self.transformer_layers)

    def compute_cross_attention_cache(self, encoder_output):
        """The cross-attention K/V of `encoder_output`, computed once.

        Only the cross-attending layers get an entry, so the cache holds
        `len(cross_attention_layer_indices)` `(key, value)` pairs, each
        tensor `[B, num_key_value_heads, S, key_value_dim]`.
        """
        encoder_output = ops.cast(encoder_output, self.compute_dtype)
        return tuple(
            layer.compute_cross_attention_cache(encoder_output)
            for layer in self.cross_attention_layers
        )

    def cross_attention_cache_shapes(self, batch_size, source_length):
        """Shapes of `compute_cross_attention_cache`'s `(key, value)`
        pairs, one pair per cross-attending layer."""
        shape = (
            batch_size,
            self.num_key_value_heads,
            source_length,
            self.key_value_dim,
        )
        return [(shape, shape) for _ in self.cross_attention_layers]

    def call(
        self,
        token_embeddings,
        encoder_output=None,
        encoder_padding_mask=None,
        decoder_padding_mask=None,
        self_attention_cache=None,
        cache_update_index=None,
        cross_attention_cache=None,
        return_attention_scores=False,
        training=False,
    ):
        out = self.decode(
            token_embeddings,
            encoder_output,
            encoder_padding_mask,
            decoder_padding_mask,
            self_attention_cache,
            cache_update_index,
            cross_attention_cache,
            training=training,
        )
        # The public edge: as many values as were asked for.
        return out.public_outputs(
            self_attention_cache is not None, return_attention_scores
        )

    def decode(
        self,
        token_embeddings,
        encoder_output=None,
        encoder_padding_mask=None,
        decoder_padding_mask=None,
        self_attention_cache=None,
        cache_update_index=None,
        cross_attention_cache=None,
        training=False,
    ):
        """The decoder pass, always as a `DecoderOutput`.

        Arguments as `call`'s. `self_attention_cache` is `None` in the
        result when none was given; `attention_scores` is always there.
        Library code that needs a fixed shape calls this on a built layer.
        """
        self_mask, bias = self.self_attention_inputs(
            ops.shape(token_embeddings)[1],
            self_attention_cache,
            cache_update_index,
            decoder_padding_mask,
        )
        encoder_output, cross_mask, cross_caches = self.cross_attention_inputs(
            encoder_output, encoder_padding_mask, cross_attention_cache
        )
        self_caches = self_attention_cache
        if self_attention_cache is None:
            self_caches = (None,) * self.num_layers
        x = self.dropout_layer(token_embeddings, training=training)
        outputs = []
        for i, layer in enumerate(self.transformer_layers, start=1):
            out = layer.transform(
                x,
                self_mask,
                bias,
                encoder_output,
                cross_mask,
                self_caches[i - 1],
                cache_update_index,
                cross_caches.get(i),
                training=training,
            )
            outputs.append(out)
            x = out.hidden_states
        x = self.final_output(x, training=training)
        if self_attention_cache is not None:
            self_caches = tuple(out.self_attention_cache for out in outputs)
        scores = tuple(out.attention_scores for out in outputs)
        return DecoderOutput(
            x,
            None if self_attention_cache is None else self_caches,
            tuple(s for s in scores if s is not None),
        )

    def self_attention_inputs(
        self,
        length,
        self_attention_cache=None,
        cache_update_index=None,
        decoder_padding_mask=None,
    ):
        """The causal mask and the position bias of `length` queries.

        Without a cache the queries attend each other; with one, they sit
        at `cache_update_index ...` and attend the whole cache, whose
        unwritten positions the causal mask hides (`decoder_padding_mask`
        is then ignored).
        """
        key_length, query_offset = length, 0
        if self_attention_cache is not None:
            if cache_update_index is None:
                raise ValueError(
                    "`cache_update_index` is required with a "
                    "`self_attention_cache`."
                )
            key_length = ops.shape(self_attention_cache[0])[3]
            query_offset = cache_update_index
            decoder_padding_mask = None
        mask = causal_self_attention_mask(
            length, key_length, query_offset, decoder_padding_mask
        )
        bias = self.relative_position_bias.compute_bias(
            length, key_length, query_offset
        )
        return mask, bias

    def cross_attention_inputs(
        self, encoder_output, encoder_padding_mask, cross_attention_cache
    ):
        """The encoder output, the cross-attention mask, and the K/V cache
        of each cross-attending layer, `{layer number: cache}` (empty
        without a `cross_attention_cache`: the layers then project
        `encoder_output` themselves)."""
        mask = cross_attention_mask(encoder_padding_mask)
        if cross_attention_cache is not None:
            caches = zip(
                self.cross_attention_layer_indices, cross_attention_cache
            )
            return encoder_output, mask, dict(caches)
        if encoder_output is None:
            raise ValueError(
                "The decoder needs `encoder_output` or a "
                "`cross_attention_cache` computed from it."
            )
        return ops.cast(encoder_output, self.compute_dtype), mask, {}

    def compute_output_shape(self, token_embeddings_shape, *args, **kwargs):
        return token_embeddings_shape

    def compute_output_spec(
        self,
        token_embeddings,
        encoder_output=None,
        *args,
        return_attention_scores=False,
        **kwargs,
    ):
        if return_attention_scores and kwargs.get("self_attention_cache"):
            return super().compute_output_spec(
                token_embeddings,
                encoder_output,
                *args,
                return_attention_scores=return_attention_scores,
                **kwargs,
            )
        x = keras.KerasTensor(token_embeddings.shape, self.compute_dtype)
        if not return_attention_scores:
            return x
        # The functional graph's case: no cache, scores per cross layer.
        batch, length = token_embeddings.shape[0], token_embeddings.shape[1]
        source = None if encoder_output is None else encoder_output.shape[1]
        shape = (
            batch,
            self.num_key_value_heads,
            self.num_heads // self.num_key_value_heads,
            length,
            source,
        )
        scores = tuple(
            keras.KerasTensor(shape, "float32")
            for _ in self.cross_attention_layers
        )
        return x, scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_key_value_heads": self.num_key_value_heads,
                "encoder_hidden_dim": self.encoder_hidden_dim,
                "cross_attention_interval": self.cross_attention_interval,
            }
        )
        return config
