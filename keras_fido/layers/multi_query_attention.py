"""T5 attention with grouped key/value heads and a decoding cache."""

import keras
from keras import ops

from keras_fido.layers.flat_matmul_projection import project_from_heads
from keras_fido.layers.flat_matmul_projection import project_to_heads
from keras_fido.utils.checks import check_keyword_arguments
from keras_fido.utils.checks import check_positive_int

# Added to the logits of masked positions. Finite so that a fully masked
# row (a passage that is all padding) gives a uniform distribution instead
# of NaN; exp() of it underflows to exactly 0 next to any unmasked logit.
MASK_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="keras_fido")
class MultiQueryAttention(keras.layers.Layer):
    """T5 self-attention whose query heads share fewer key/value heads.

    `num_key_value_heads` is the multi-query knob (Shazeer 2019,
    https://arxiv.org/abs/1911.02150): 1 is multi-query attention (one K/V
    head shared by all query heads), `num_query_heads` is standard
    multi-head attention, anything between that divides it is grouped-query
    attention (query head `i` reads K/V head `i // group_size`). Query heads
    are grouped by reshaping, and one einsum contracts each group against its
    K/V head: K/V are never copied per query head.

    As in T5 there are no biases and no `1/sqrt(d)` logit scaling (T5 folds
    it into the query initialization). Logits, bias, mask and softmax are
    computed in float32.

    Args:
        num_query_heads: int. Number of query heads.
        num_key_value_heads: int. Number of key/value heads; must divide
            `num_query_heads`.
        key_value_dim: int. Width of every head (T5's `d_kv`).
        dropout: float. Dropout on the attention probabilities.
        kernel_initializer: initializer for the projection kernels. Defaults
            to `None`, T5's scheme: normal with standard deviation
            `(d_in * key_value_dim) ** -0.5` for queries (which stands in
            for the missing logit scaling), `d_in ** -0.5` for keys and
            values, `(num_query_heads * key_value_dim) ** -0.5` for the
            output.
        **kwargs: other `keras.layers.Layer` arguments (`name`, `dtype`).

    Call arguments:
        hidden_states: `[B, T, hidden_dim]` query (and key/value) input.
        attention_mask: optional bool `[B, T, S]`, True where a query may
            attend a key.
        attention_bias: optional float `[1 or B, num_query_heads, T, S]`
            added to the logits (the relative position bias).
        cache: optional `[B, 2, num_key_value_heads, S_max, key_value_dim]`
            key/value cache. The new keys/values are written into it at
            `cache_update_index` and attention runs over the whole cache
            (the mask hides the future).
        cache_update_index: int or scalar tensor, where to write in `cache`.
        training: bool, whether dropout is active.

    Returns:
        The attention output `[B, T, hidden_dim]`, and the updated cache
        when a cache was passed.

    Examples:
    ```python
    attention = keras_fido.layers.MultiQueryAttention(
        num_query_heads=4, num_key_value_heads=1, key_value_dim=8)
    x = np.random.rand(2, 5, 16).astype("float32")
    attention(x).shape  # (2, 5, 16)
    ```
    """

    def __init__(
        self,
        num_query_heads,
        num_key_value_heads,
        key_value_dim,
        dropout=0.0,
        kernel_initializer=None,
        **kwargs,
    ):
        check_keyword_arguments(self, kwargs)
        super().__init__(**kwargs)
        check_positive_int("num_query_heads", num_query_heads)
        check_positive_int("num_key_value_heads", num_key_value_heads)
        check_positive_int("key_value_dim", key_value_dim)
        if num_query_heads % num_key_value_heads:
            raise ValueError(
                "`num_query_heads` must be divisible by `num_key_value_heads` "
                "(each K/V head serves an equal group of query heads). "
                f"Received: num_query_heads={num_query_heads}, "
                f"num_key_value_heads={num_key_value_heads}"
            )
        self.num_query_heads = num_query_heads
        self.num_key_value_heads = num_key_value_heads
        self.key_value_dim = key_value_dim
        self.dropout = dropout
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.group_size = num_query_heads // num_key_value_heads

    def _projection(self, equation, output_shape, name, stddev):
        initializer = self.kernel_initializer
        if initializer is None:
            initializer = keras.initializers.RandomNormal(stddev=stddev)
        return keras.layers.EinsumDense(
            equation,
            output_shape=output_shape,
            kernel_initializer=initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, hidden_states_shape):
        self._build_projections(hidden_states_shape, hidden_states_shape)

    def _build_projections(self, query_shape, source_shape):
        heads, kv_heads, dim = (
            self.num_query_heads,
            self.num_key_value_heads,
            self.key_value_dim,
        )
        self.hidden_dim = query_shape[-1]
        self.query_dense = self._projection(
            "btd,dnh->btnh",
            (None, heads, dim),
            "query",
            (query_shape[-1] * dim) ** -0.5,
        )
        self.query_dense.build(query_shape)
        # K/V are laid out head-major, [B, kv_heads, S, dim], so that each
        # decoding step reads every head's keys as one contiguous block.
        self.key_dense = self._projection(
            "bsd,dkh->bksh",
            (kv_heads, None, dim),
            "key",
            source_shape[-1] ** -0.5,
        )
        self.key_dense.build(source_shape)
        self.value_dense = self._projection(
            "bsd,dkh->bksh",
            (kv_heads, None, dim),
            "value",
            source_shape[-1] ** -0.5,
        )
        self.value_dense.build(source_shape)
        self.output_dense = self._projection(
            "btnh,nhd->btd",
            (None, self.hidden_dim),
            "output",
            (heads * dim) ** -0.5,
        )
        self.output_dense.build(tuple(query_shape[:-1]) + (heads, dim))
        self.dropout_layer = keras.layers.Dropout(
            self.dropout, dtype=self.dtype_policy, name="dropout"
        )
        self.built = True

    def compute_key_value(self, source):
        """Projects `source` `[B, S, d]` to its keys and values.

        Returns the pair `(key, value)`, each
        `[B, num_key_value_heads, S, key_value_dim]` and contiguous in that
        layout, which is how the attention reads them. Each projection is
        one flat matmul (see `flat_matmul_projection`).
        """
        return (
            project_to_heads(self.key_dense, source),
            project_to_heads(self.value_dense, source),
        )

    def attend(
        self,
        hidden_states,
        key,
        value,
        attention_mask=None,
        attention_bias=None,
        training=False,
    ):
        """Attention of `hidden_states` over `key` and `value`, each
        `[B, num_key_value_heads, S, key_value_dim]`.

        Returns the output `[B, T, hidden_dim]` and the attention
        probabilities `[B, num_key_value_heads, group_size, T, S]`.
        """
        query = self.query_dense(hidden_states)  # [B, T, H, D]
        batch, length = ops.shape(query)[0], ops.shape(query)[1]
        # Query head i reads K/V head i // group_size: one reshape groups
        # the query heads, and K/V are never copied per query head.
        query = ops.reshape(
            query,
            (
                batch,
                length,
                self.num_key_value_heads,
                self.group_size,
                self.key_value_dim,
            ),
        )
        logits = ops.einsum("btkgh,bksh->bkgts", query, key)
        logits = self._biased_and_masked(
            ops.cast(logits, "float32"), attention_bias, attention_mask
        )
        probabilities = _softmax(logits)
        weights = ops.cast(probabilities, self.compute_dtype)
        weights = self.dropout_layer(weights, training=training)
        output = self._weighted_sum(value, weights)
        output = ops.reshape(
            output,
            (batch, length, self.num_query_heads, self.key_value_dim),
        )
        return project_from_heads(self.output_dense, output), probabilities

    def _weighted_sum(self, value, weights):
        """`[B, T, kv, group, D]`: the values weighted by `weights`.

        The einsum's operand order decides which operand XLA:CPU or
        TensorFlow's einsum transposes, and so whether the whole value
        cache is copied at every decoding step. Timed per backend on the
        base decoder's shapes: JAX's XLA copies it with the weights first
        when the query heads are grouped (multi-query) and with the values
        first when they are not; TensorFlow (with or without XLA) copies it
        with the values first in both cases; torch is the same either way.
        """
        backend = keras.config.backend()
        if backend == "tensorflow" or (
            backend == "jax" and self.group_size == 1
        ):
            return ops.einsum("bkgts,bksh->btkgh", weights, value)
        return ops.einsum("bksh,bkgts->btkgh", value, weights)

    def _biased_and_masked(self, logits, attention_bias, attention_mask):
        """float32 `logits` `[B, kv, group, T, S]` plus the bias of each
        query head, with `MASK_LOGIT` wherever `attention_mask` is False."""
        if attention_bias is not None:
            bias = ops.cast(attention_bias, "float32")
            bias_shape = ops.shape(bias)
            logits = logits + ops.reshape(
                bias,
                (
                    bias_shape[0],
                    self.num_key_value_heads,
                    self.group_size,
                    bias_shape[2],
                    bias_shape[3],
                ),
            )
        if attention_mask is not None:
            mask = ops.cast(attention_mask, "bool")[:, None, None, :, :]
            logits = ops.where(mask, logits, MASK_LOGIT)
        return logits

    def call(
        self,
        hidden_states,
        attention_mask=None,
        attention_bias=None,
        cache=None,
        cache_update_index=None,
        training=False,
    ):
        key, value = self.compute_key_value(hidden_states)
        if cache is not None:
            if cache_update_index is None:
                raise ValueError(
                    "`cache_update_index` is required when a `cache` is "
                    "passed: it says where the new keys/values go."
                )
            start = [0, 0, 0, cache_update_index, 0]
            new = ops.cast(ops.stack([key, value], axis=1), cache.dtype)
            cache = ops.slice_update(cache, start, new)
            key, value = cache[:, 0], cache[:, 1]
        output, _ = self.attend(
            hidden_states,
            key,
            value,
            attention_mask=attention_mask,
            attention_bias=attention_bias,
            training=training,
        )
        if cache is not None:
            return output, cache
        return output

    def compute_output_shape(self, hidden_states_shape, *args, **kwargs):
        return hidden_states_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_query_heads": self.num_query_heads,
                "num_key_value_heads": self.num_key_value_heads,
                "key_value_dim": self.key_value_dim,
                "dropout": self.dropout,
                "kernel_initializer": _serialize(self.kernel_initializer),
            }
        )
        return config


def _softmax(logits):
    """Softmax over the keys, the last axis."""
    if logits.shape[-1] == 1:
        # One key (a single decoder token, no cache): softmax over one
        # logit, `exp(x - max x) / 1`, computed as such (1, or NaN for a
        # NaN logit); `ops.softmax` would warn that its axis has size 1.
        return ops.exp(logits - logits)
    return ops.softmax(logits, axis=-1)


def _serialize(initializer):
    if initializer is None:
        return None
    return keras.initializers.serialize(initializer)
