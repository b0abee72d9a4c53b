"""Weight mapping between HuggingFace T5.1.1 and `FiDOBackbone`.

A T5.1.1 checkpoint is vanilla FiD: `cross_attention_interval=1`, a
multi-head decoder and equal encoder/decoder sizes. The mapping works on a
plain `{name: numpy array}` state dict, so it serves an in-memory
`transformers` model and a checkpoint read from disk alike.
"""

import numpy as np

from keras_fido.models.fido_backbone import FiDOBackbone


def backbone_config_from_t5_config(t5_config):
    """`FiDOBackbone` kwargs for a T5 config (a dict or a `T5Config`)."""
    c = t5_config if isinstance(t5_config, dict) else t5_config.to_dict()
    # transformers >= 5 always ties the parameters in memory and records
    # T5 v1.0's logit rescaling separately; v1.1 checkpoints neither rescale
    # nor share the output projection.
    tied = c.get("scale_decoder_outputs", c.get("tie_word_embeddings", False))
    projection = c.get("feed_forward_proj", "relu")
    if projection not in ("gated-gelu", "gated-gelu_new"):
        raise ValueError(
            "Only T5.1.1 checkpoints (gated-GELU feed-forward) can be "
            "converted. Received: feed_forward_proj="
            f"{projection!r} (original T5 uses 'relu', which FiDO's "
            "GatedGeluFeedForward does not implement)."
        )
    return dict(
        vocabulary_size=c["vocab_size"],
        encoder_num_layers=c["num_layers"],
        encoder_hidden_dim=c["d_model"],
        encoder_intermediate_dim=c["d_ff"],
        encoder_num_heads=c["num_heads"],
        decoder_num_layers=c.get("num_decoder_layers") or c["num_layers"],
        decoder_hidden_dim=c["d_model"],
        decoder_intermediate_dim=c["d_ff"],
        decoder_num_heads=c["num_heads"],
        decoder_num_key_value_heads=c["num_heads"],
        key_value_dim=c["d_kv"],
        cross_attention_interval=1,
        relative_attention_num_buckets=c["relative_attention_num_buckets"],
        relative_attention_max_distance=c.get(
            "relative_attention_max_distance", 128
        ),
        dropout=c.get("dropout_rate", 0.1),
        layer_norm_epsilon=c.get("layer_norm_epsilon", 1e-6),
        tie_embedding_weights=bool(tied),
    )


def _weight_pairs(backbone):
    """Yields `(keras_variable, t5_name, transform)` for every weight.

    `transform` turns the T5 (PyTorch layout) array into the Keras layout.
    """

    def transposed(array):
        return array.T

    def attention(layer, prefix):
        heads = layer.num_query_heads
        kv_heads = layer.num_key_value_heads
        dim = layer.key_value_dim

        def to_heads(n):
            # torch Linear [n*dim, d_in] -> EinsumDense [d_in, n, dim]
            return lambda a: a.T.reshape(a.shape[1], n, dim)

        def from_heads(a):
            # torch Linear [d_out, heads*dim] -> EinsumDense [heads, dim, d]
            return a.T.reshape(heads, dim, a.shape[0])

        yield layer.query_dense.kernel, f"{prefix}.q.weight", to_heads(heads)
        yield layer.key_dense.kernel, f"{prefix}.k.weight", to_heads(kv_heads)
        yield layer.value_dense.kernel, f"{prefix}.v.weight", to_heads(kv_heads)
        yield layer.output_dense.kernel, f"{prefix}.o.weight", from_heads

    def feed_forward(layer, prefix):
        yield layer.gate_dense.kernel, f"{prefix}.wi_0.weight", transposed
        yield layer.input_dense.kernel, f"{prefix}.wi_1.weight", transposed
        yield layer.output_dense.kernel, f"{prefix}.wo.weight", transposed

    def identity(array):
        return array

    yield backbone.token_embedding.embeddings, "shared.weight", identity
    if not backbone.tie_embedding_weights:
        yield (
            backbone.token_embedding.reverse_embeddings,
            "lm_head.weight",
            transposed,
        )
    for stack_name, stack in (
        ("encoder", backbone.encoder),
        ("decoder", backbone.decoder),
    ):
        yield (
            stack.relative_position_bias.embeddings,
            f"{stack_name}.block.0.layer.0.SelfAttention."
            "relative_attention_bias.weight",
            identity,
        )
        for i, block in enumerate(stack.transformer_layers):
            p = f"{stack_name}.block.{i}.layer"
            yield (
                block.self_attention_norm.scale,
                f"{p}.0.layer_norm.weight",
                identity,
            )
            yield from attention(block.self_attention, f"{p}.0.SelfAttention")
            ff = 1
            if block.cross_attention:
                yield (
                    block.cross_attention_norm.scale,
                    f"{p}.1.layer_norm.weight",
                    identity,
                )
                yield from attention(
                    block.cross_attention_layer, f"{p}.1.EncDecAttention"
                )
                ff = 2
            yield (
                block.feed_forward_norm.scale,
                f"{p}.{ff}.layer_norm.weight",
                identity,
            )
            yield from feed_forward(
                block.feed_forward, f"{p}.{ff}.DenseReluDense"
            )
        yield (
            stack.final_norm.scale,
            f"{stack_name}.final_layer_norm.weight",
            identity,
        )


def load_t5_state(backbone, state):
    """Assigns a T5 state dict (`{name: np.ndarray}`) to `backbone`.

    Raises a `ValueError` naming the weight when one is missing or has the
    wrong shape. Returns the T5 names that were not used (e.g. the
    decoder's duplicate `embed_tokens`).
    """
    used = set()
    for variable, name, transform in _weight_pairs(backbone):
        if name not in state:
            raise ValueError(
                f"The T5 checkpoint has no weight `{name}`, needed for "
                f"`{variable.path}`."
            )
        value = transform(np.asarray(state[name], dtype="float32"))
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(
                f"Weight `{name}` has shape {tuple(state[name].shape)}, "
                f"which maps to {tuple(value.shape)}; `{variable.path}` "
                f"expects {tuple(variable.shape)}."
            )
        variable.assign(value)
        used.add(name)
    return sorted(set(state) - used)


def _state_to_numpy(state):
    return {
        name: tensor.detach().to("cpu").float().numpy()
        if hasattr(tensor, "detach")
        else np.asarray(tensor)
        for name, tensor in state.items()
    }


def from_transformers(model, dtype=None):
    """A `FiDOBackbone` holding a transformers T5.1.1 model's weights.

    Args:
        model: a `transformers.T5ForConditionalGeneration` (T5.1.1, i.e.
            `feed_forward_proj="gated-gelu"`), in memory.
        dtype: optional dtype policy for the new backbone.

    Returns:
        A vanilla-FiD `FiDOBackbone` (`cross_attention_interval=1`,
        multi-head decoder) whose outputs equal the T5 model's when it is
        run FiD-style (each passage encoded separately).

    Examples:
    ```python
    t5 = transformers.T5ForConditionalGeneration(transformers.T5Config(
        vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2,
        num_heads=4, feed_forward_proj="gated-gelu",
        tie_word_embeddings=False))
    backbone = keras_fido.convert.from_transformers(t5)
    ```
    """
    config = backbone_config_from_t5_config(model.config)
    backbone = FiDOBackbone(**config, dtype=dtype)
    load_t5_state(backbone, _state_to_numpy(model.state_dict()))
    return backbone
