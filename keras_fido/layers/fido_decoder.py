"""The FiDO decoder: a T5 decoder with layer-sparse cross-attention."""

import collections

import keras
from keras import ops

from keras_fido.layers.cross_attention_schedule import (
    cross_attention_layer_indices,
)
from keras_fido.layers.fido_transformer_layer import FiDOTransformerLayer
from keras_fido.layers.relative_position_bias import RelativePositionBias
from keras_fido.layers.t5_layer_norm import T5LayerNorm
from keras_fido.utils.checks import check_keyword_arguments


class DecoderOutput(
    collections.namedtuple(
        "DecoderOutput",
        ["hidden_states", "self_attention_cache", "attention_scores"],
    )
):
    """What `FiDODecoder.decode` returns, always in this shape.

    `hidden_states` `[B, T, hidden_dim]`; `self_attention_cache`, the
    updated per-layer caches or `None` without a cache; `attention_scores`,
    one float32 `[B, kv, group, T, S]` tensor per cross-attending layer.
    """


def causal_self_attention_mask(
    length, key_length, query_offset=0, padding_mask=None
):
    """`[1 or B, T, key_length]` bool: a query sees itself and the past.

    Queries sit at `query_offset ...`; `padding_mask` `[B, key_length]`
    also hides padded keys (training only: with a cache, the causal mask
    already hides the unwritten positions).
    """
    queries = ops.arange(length, dtype="int32") + ops.cast(
        query_offset, "int32"
    )
    keys = ops.arange(key_length, dtype="int32")
    mask = (keys[None, :] <= queries[:, None])[None, :, :]
    if padding_mask is not None:
        keys_valid = ops.cast(padding_mask, "bool")[:, None, :]
        mask = ops.logical_and(mask, keys_valid)
    return mask


def cross_attention_mask(encoder_padding_mask):
    """`[B, 1, S]` bool over the passages' tokens, or `None`.

    `encoder_padding_mask` is `[B, S]` or `[B, P, L]`, `S = P*L`; its batch
    is the samples' own (with beams, one row per sample).
    """
    if encoder_padding_mask is None:
        return None
    mask = ops.cast(encoder_padding_mask, "bool")
    return ops.reshape(mask, (ops.shape(mask)[0], 1, -1))


@keras.saving.register_keras_serializable(package="keras_fido")
class FiDODecoder(keras.layers.Layer):
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
            layer (`init_self_attention_cache`). With it the call returns
            `(outputs, updated_self_attention_cache)`.
        cache_update_index: int or scalar tensor, position of the first of
            the `T` tokens.
        cross_attention_cache: optional tuple of K/V tensors, one per
            cross-attending layer (`compute_cross_attention_cache`).
        return_attention_scores: bool. Also return a tuple of float32
            cross-attention probabilities, one per cross-attending layer,
            `[B, num_key_value_heads, group_size, T, S]`.
        training: bool, whether dropout is active.

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
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        self.cross_attention_layer_indices = cross_attention_layer_indices(
            num_layers, cross_attention_interval
        )
        self.num_layers = num_layers
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.num_heads = num_heads
        self.num_key_value_heads = num_key_value_heads
        self.key_value_dim = key_value_dim
        self.encoder_hidden_dim = encoder_hidden_dim
        self.cross_attention_interval = cross_attention_interval
        self.relative_attention_num_buckets = relative_attention_num_buckets
        self.relative_attention_max_distance = relative_attention_max_distance
        self.dropout = dropout
        self.layer_norm_epsilon = layer_norm_epsilon

        self.relative_position_bias = RelativePositionBias(
            num_heads=num_heads,
            num_buckets=relative_attention_num_buckets,
            max_distance=relative_attention_max_distance,
            bidirectional=False,
            dtype=self.dtype_policy,
            name="relative_position_bias",
        )
        self.transformer_layers = [
            FiDOTransformerLayer(
                hidden_dim=hidden_dim,
                intermediate_dim=intermediate_dim,
                num_heads=num_heads,
                num_key_value_heads=num_key_value_heads,
                key_value_dim=key_value_dim,
                cross_attention=i in self.cross_attention_layer_indices,
                encoder_hidden_dim=encoder_hidden_dim,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=self.dtype_policy,
                name=f"layer_{i}",
            )
            for i in range(1, num_layers + 1)
        ]
        self.final_norm = T5LayerNorm(
            layer_norm_epsilon, dtype=self.dtype_policy, name="final_norm"
        )
        self.dropout_layer = keras.layers.Dropout(
            dropout, dtype=self.dtype_policy, name="dropout"
        )

    @property
    def cross_attention_layers(self):
        """The blocks that cross-attend, in order."""
        return [
            layer for layer in self.transformer_layers if layer.cross_attention
        ]

    def build(self, token_embeddings_shape, *args, **kwargs):
        shape = (None, None, self.hidden_dim)
        self.relative_position_bias.build()
        for layer in self.transformer_layers:
            layer.build(shape)
        self.final_norm.build(shape)
        self.built = True

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
        `len(cross_attention_layer_indices)` tensors of shape
        `[B, 2, num_key_value_heads, S, key_value_dim]`.
        """
        encoder_output = ops.cast(encoder_output, self.compute_dtype)
        return tuple(
            layer.compute_cross_attention_cache(encoder_output)
            for layer in self.cross_attention_layers
        )

    def cross_attention_cache_shapes(self, batch_size, source_length):
        """Shapes of `compute_cross_attention_cache`'s tensors."""
        return [
            (
                batch_size,
                2,
                self.num_key_value_heads,
                source_length,
                self.key_value_dim,
            )
            for _ in self.cross_attention_layers
        ]

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
        outputs = (out.hidden_states,)
        if self_attention_cache is not None:
            outputs += (out.self_attention_cache,)
        if return_attention_scores:
            outputs += (out.attention_scores,)
        return outputs[0] if len(outputs) == 1 else outputs

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
        x = token_embeddings
        use_cache = self_attention_cache is not None
        if use_cache and cache_update_index is None:
            raise ValueError(
                "`cache_update_index` is required with a "
                "`self_attention_cache`."
            )
        length = ops.shape(x)[1]
        key_length, query_offset = length, 0
        if use_cache:
            key_length = ops.shape(self_attention_cache[0])[3]
            query_offset = cache_update_index
        self_mask = causal_self_attention_mask(
            length,
            key_length,
            query_offset,
            None if use_cache else decoder_padding_mask,
        )
        bias = self.relative_position_bias.compute_bias(
            length, key_length, query_offset
        )
        cross_mask = cross_attention_mask(encoder_padding_mask)
        if cross_attention_cache is None:
            if encoder_output is None:
                raise ValueError(
                    "The decoder needs `encoder_output` or a "
                    "`cross_attention_cache` computed from it."
                )
            encoder_output = ops.cast(encoder_output, self.compute_dtype)
            cross_attention_cache = (None,) * len(
                self.cross_attention_layer_indices
            )
        x = self.dropout_layer(x, training=training)
        x, new_self_cache, scores = self._run_layers(
            x,
            (self_mask, bias, cross_mask),
            encoder_output,
            self_attention_cache,
            cache_update_index,
            cross_attention_cache,
            training,
        )
        x = self.dropout_layer(self.final_norm(x), training=training)
        return DecoderOutput(x, new_self_cache, scores)

    def _run_layers(
        self,
        x,
        masks,
        encoder_output,
        self_attention_cache,
        cache_update_index,
        cross_attention_cache,
        training,
    ):
        """The blocks in order: `(x, self caches or None, cross scores)`."""
        self_mask, bias, cross_mask = masks
        use_cache = self_attention_cache is not None
        new_self_cache, scores = [], []
        cross_caches = iter(cross_attention_cache)
        for i, layer in enumerate(self.transformer_layers):
            out = layer(
                x,
                self_attention_mask=self_mask,
                self_attention_bias=bias,
                encoder_output=encoder_output,
                cross_attention_mask=cross_mask,
                self_attention_cache=(
                    self_attention_cache[i] if use_cache else None
                ),
                cache_update_index=cache_update_index,
                cross_attention_cache=(
                    next(cross_caches) if layer.cross_attention else None
                ),
                return_attention_scores=True,
                training=training,
            )
            if use_cache:
                x, layer_cache, layer_scores = out
                new_self_cache.append(layer_cache)
            else:
                x, layer_scores = out
            if layer.cross_attention:
                scores.append(layer_scores)
        return x, tuple(new_self_cache) if use_cache else None, tuple(scores)

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
                "num_layers": self.num_layers,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "num_heads": self.num_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "key_value_dim": self.key_value_dim,
                "encoder_hidden_dim": self.encoder_hidden_dim,
                "cross_attention_interval": self.cross_attention_interval,
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
