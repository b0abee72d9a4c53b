"""Which T5 checkpoint weight each `FiDOBackbone` variable holds, and how.

A T5 checkpoint stores every projection as a PyTorch `Linear` weight
`[d_out, d_in]`; the backbone stores `EinsumDense` kernels with explicit
head axes. Each `T5Weight` names the T5 weight of one backbone variable and
the layout that relates the two, so one table serves loading, pooling
(uptraining) and exporting alike.
"""

import collections

import numpy as np

# `layout` values:
#   "same":        identical arrays (embeddings, norm scales, biases tables).
#   "transpose":   Linear [d_out, d_in] <-> Dense kernel [d_in, d_out].
#   "heads_in":    Linear [n*dim, d_in] <-> EinsumDense [d_in, n, dim]
#                  (query, key, value projections).
#   "heads_out":   Linear [d_out, n*dim] <-> EinsumDense [n, dim, d_out]
#                  (attention output projection).
T5Weight = collections.namedtuple(
    "T5Weight", ["variable", "name", "layout", "stack"]
)
T5Weight.__doc__ = """One backbone variable and the T5 weight it holds.

Fields:
    variable: the `keras.Variable`.
    name: the T5 state-dict name, e.g.
        `"decoder.block.0.layer.1.EncDecAttention.k.weight"`.
    layout: how the arrays relate: `"same"`, `"transpose"`, `"heads_in"`
        or `"heads_out"`.
    stack: `"encoder"`, `"decoder"` or `None` (the output projection and
        a token embedding shared by both stacks).
"""


def t5_weight_map(backbone):
    """Lists every weight of `backbone` with its T5 checkpoint name.

    Names follow HuggingFace `T5ForConditionalGeneration`. A T5 decoder
    block always holds its sublayers as `layer.0` (self-attention),
    `layer.1` (cross-attention) and `layer.2` (feed-forward); a FiDO decoder
    block without cross-attention keeps those numbers and simply has no
    `layer.1` weights, so the same names address a T5 checkpoint whatever
    the backbone's `cross_attention_interval`.

    Args:
        backbone: a built `keras_fido.models.FiDOBackbone`.

    Returns:
        A list of `T5Weight(variable, name, layout, stack)`.
    """
    weights = []

    def add(variable, name, layout, stack):
        weights.append(T5Weight(variable, name, layout, stack))

    shared = backbone.encoder_token_embedding is backbone.token_embedding
    add(
        backbone.token_embedding.embeddings,
        "shared.weight",
        "same",
        None if shared else "decoder",
    )
    if not shared:
        # An encoder narrower than the decoder has its own input embedding;
        # in a T5 checkpoint it is the (tied) encoder embedding.
        add(
            backbone.encoder_token_embedding.embeddings,
            "encoder.embed_tokens.weight",
            "same",
            "encoder",
        )
    if not backbone.tie_embedding_weights:
        add(
            backbone.token_embedding.reverse_embeddings,
            "lm_head.weight",
            "transpose",
            None,
        )
    for stack_name, stack in (
        ("encoder", backbone.encoder),
        ("decoder", backbone.decoder),
    ):
        add(
            stack.relative_position_bias.embeddings,
            f"{stack_name}.block.0.layer.0.SelfAttention."
            "relative_attention_bias.weight",
            "same",
            stack_name,
        )
        feed_forward_index = 2 if stack_name == "decoder" else 1
        for i, block in enumerate(stack.transformer_layers):
            prefix = f"{stack_name}.block.{i}.layer"
            add(
                block.self_attention_norm.scale,
                f"{prefix}.0.layer_norm.weight",
                "same",
                stack_name,
            )
            _add_attention(
                add,
                block.self_attention,
                f"{prefix}.0.SelfAttention",
                stack_name,
            )
            if block.cross_attention:
                add(
                    block.cross_attention_norm.scale,
                    f"{prefix}.1.layer_norm.weight",
                    "same",
                    stack_name,
                )
                _add_attention(
                    add,
                    block.cross_attention_layer,
                    f"{prefix}.1.EncDecAttention",
                    stack_name,
                )
            ff = f"{prefix}.{feed_forward_index}"
            add(
                block.feed_forward_norm.scale,
                f"{ff}.layer_norm.weight",
                "same",
                stack_name,
            )
            feed_forward = block.feed_forward
            for variable, name in (
                (feed_forward.gate_dense.kernel, "wi_0"),
                (feed_forward.input_dense.kernel, "wi_1"),
                (feed_forward.output_dense.kernel, "wo"),
            ):
                add(
                    variable,
                    f"{ff}.DenseReluDense.{name}.weight",
                    "transpose",
                    stack_name,
                )
        add(
            stack.final_norm.scale,
            f"{stack_name}.final_layer_norm.weight",
            "same",
            stack_name,
        )
    return weights


def _add_attention(add, layer, prefix, stack):
    add(layer.query_dense.kernel, f"{prefix}.q.weight", "heads_in", stack)
    add(layer.key_dense.kernel, f"{prefix}.k.weight", "heads_in", stack)
    add(layer.value_dense.kernel, f"{prefix}.v.weight", "heads_in", stack)
    add(layer.output_dense.kernel, f"{prefix}.o.weight", "heads_out", stack)


def to_keras_layout(array, layout, shape):
    """A T5 array in the layout of a backbone variable of `shape`.

    Returns `None` when the T5 array cannot take that shape (the caller
    names the weight in its error).
    """
    array = np.asarray(array)
    if layout == "same":
        out = array
    elif layout == "transpose":
        out = array.T
    elif layout == "heads_in":
        if array.ndim != 2 or len(shape) != 3:
            return None
        d_in, heads, dim = shape
        if array.shape != (heads * dim, d_in):
            return None
        out = array.T.reshape(d_in, heads, dim)
    elif layout == "heads_out":
        if array.ndim != 2 or len(shape) != 3:
            return None
        heads, dim, d_out = shape
        if array.shape != (d_out, heads * dim):
            return None
        out = array.T.reshape(heads, dim, d_out)
    else:
        raise ValueError(f"Unknown layout {layout!r}.")
    if tuple(out.shape) != tuple(shape):
        return None
    return out


def to_t5_layout(array, layout):
    """A backbone variable's value as the T5 checkpoint array."""
    array = np.asarray(array)
    if layout == "same":
        return array
    if layout == "transpose":
        return np.ascontiguousarray(array.T)
    if layout == "heads_in":
        d_in, heads, dim = array.shape
        return np.ascontiguousarray(array.reshape(d_in, heads * dim).T)
    if layout == "heads_out":
        heads, dim, d_out = array.shape
        return np.ascontiguousarray(array.reshape(heads * dim, d_out).T)
    raise ValueError(f"Unknown layout {layout!r}.")
