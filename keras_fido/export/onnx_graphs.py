"""The three ONNX graphs of a FiD / FiDO reader, from its weights.

- `encoder`: `encoder_token_ids`, `encoder_padding_mask` int64
  `[B, P, L]` -> `encoder_output` float32 `[B, P*L, d_enc]`;
- `cross_key_value`: `encoder_output` -> `cross_key_J`, `cross_value_J`
  `[B, K, P*L, D]` for the cross-attending decoder layers only (`J`
  counts them), with the decoder's `K` K/V heads;
- `decoder_step`: one cached step. `decoder_token_ids` int64 `[B, 1]`,
  `encoder_padding_mask` `[B, P, L]`, `past_key_I`, `past_value_I`
  `[B, K, t, D]` for every decoder layer `I` (`t` tokens so far; their
  length is the step index), and the cross K/V -> `logits` float32
  `[B, V]`, `next_token` int64 `[B]` (the argmax) and `present_key_I`,
  `present_value_I` `[B, K, t + 1, D]`.

Batch, passage count, passage length and past length are dynamic.
"""

import numpy as np
from keras import ops

from keras_fido.export.onnx_builder import BOOL
from keras_fido.export.onnx_builder import FLOAT
from keras_fido.export.onnx_builder import INT64
from keras_fido.export.onnx_builder import GraphBuilder
from keras_fido.export.onnx_builder import attention
from keras_fido.export.onnx_builder import gated_gelu
from keras_fido.export.onnx_builder import project_heads
from keras_fido.export.onnx_builder import relative_bias
from keras_fido.export.onnx_builder import rms_norm


def _array(variable):
    return np.asarray(ops.convert_to_numpy(variable)).astype(np.float32)


def _kernel(dense, path):
    if dense.quantization_mode is not None:
        raise ValueError(
            "ONNX export reads float kernels, but the reader is quantized "
            f"with keras: `{path}` has quantization_mode="
            f"{dense.quantization_mode!r}. Export the float reader and "
            "pass `quantize='int8'` to `export_onnx` instead."
        )
    kernel = _array(dense.kernel)
    if kernel.ndim == 3 and path.endswith("/output"):
        return kernel.reshape(-1, kernel.shape[-1])  # [H, D, d]
    return kernel.reshape(kernel.shape[0], -1)  # [d, H, D] or [d, f]


def _attention_weights(layer, path):
    return {
        name: _kernel(getattr(layer, f"{name}_dense"), f"{path}/{name}")
        for name in ("query", "key", "value", "output")
    }


def _block_weights(block, path):
    ff = block.feed_forward
    weights = {
        "path": path,
        "self_norm": _array(block.self_attention_norm.scale),
        "self": _attention_weights(block.self_attention, f"{path}/self"),
        "ff_norm": _array(block.feed_forward_norm.scale),
        "ff": {
            "gate": _kernel(ff.gate_dense, f"{path}/ff/gate"),
            "input": _kernel(ff.input_dense, f"{path}/ff/input"),
            "output": _kernel(ff.output_dense, f"{path}/ff/ff_output"),
        },
        "cross": None,
    }
    if block.cross_attention:
        weights["cross_norm"] = _array(block.cross_attention_norm.scale)
        weights["cross"] = _attention_weights(
            block.cross_attention_layer, f"{path}/cross"
        )
    return weights


def bias_table(layer):
    """`[2R+1, H]`: the bias of every relative position in `[-R, R]`,
    `R = max_distance + 1`, bucketed by the layer's own `bucket`."""
    radius = layer.max_distance + 1
    relative = np.arange(-radius, radius + 1, dtype="int32")
    buckets = ops.convert_to_numpy(
        layer.bucket(ops.convert_to_tensor(relative))
    )
    return _array(layer.embeddings)[np.asarray(buckets)], radius


def reader_weights(backbone):
    """Every weight the graphs need, as float32 numpy, and the sizes."""
    config = backbone.get_config()
    encoder, decoder = backbone.encoder, backbone.decoder
    enc_table, radius = bias_table(encoder.relative_position_bias)
    dec_table, _ = bias_table(decoder.relative_position_bias)
    embedding = backbone.token_embedding
    weights = {
        "config": config,
        "radius": radius,
        "encoder_embedding": _array(
            backbone.encoder_token_embedding.embeddings
        ),
        "decoder_embedding": _array(embedding.embeddings),
        "encoder_bias": enc_table,
        "decoder_bias": dec_table,
        "encoder_layers": [
            _block_weights(block, f"encoder/layer_{i}")
            for i, block in enumerate(encoder.transformer_layers)
        ],
        "decoder_layers": [
            _block_weights(block, f"decoder/layer_{i}")
            for i, block in enumerate(decoder.transformer_layers)
        ],
        "encoder_final_norm": _array(encoder.final_norm.scale),
        "decoder_final_norm": _array(decoder.final_norm.scale),
    }
    if not config["tie_embedding_weights"]:
        weights["output_projection"] = _array(embedding.reverse_embeddings)
    return weights


def _attention_block(g, x, layer, kind, dims, kv, bias=None, mask=None):
    """A pre-norm attention sublayer (`kind` "self" or "cross") added back
    to `x`. `kv` is `(key, value)`, or a function of the normed `x` that
    returns them; returns the new `x` and the `(key, value)` used."""
    prefix = f"{layer['path']}/{kind}"
    weights = layer[kind]
    norm = (f"{prefix}_norm", layer[f"{kind}_norm"])
    h = rms_norm(g, x, norm, g.epsilon)
    query = g.op("MatMul", [h, g.weight(f"{prefix}/query", weights["query"])])
    if callable(kv):
        kv = kv(h)
    out = attention(g, query, kv[0], kv[1], dims, bias=bias, mask=mask)
    output = g.weight(f"{prefix}/output", weights["output"])
    return g.op("Add", [x, g.op("MatMul", [out, output])]), kv


def _project(g, h, layer, kind, name, kv_heads, dim):
    prefix = f"{layer['path']}/{kind}/{name}"
    return project_heads(g, h, layer[kind][name], prefix, kv_heads, dim)


def _feed_forward(g, x, layer):
    prefix = f"{layer['path']}/ff"
    h = rms_norm(g, x, (f"{prefix}_norm", layer["ff_norm"]), g.epsilon)
    return g.op("Add", [x, gated_gelu(g, h, layer["ff"], prefix)])


def encoder_graph(weights):
    c = weights["config"]
    g = GraphBuilder("fido_encoder")
    g.epsilon = c["layer_norm_epsilon"]
    shape = ["batch", "passages", "passage_length"]
    ids = g.input("encoder_token_ids", INT64, shape)
    mask = g.input("encoder_padding_mask", INT64, shape)
    width = c["encoder_hidden_dim"]
    batch, length = g.dim(ids, 0), g.dim(ids, 2)
    table = g.weight("encoder_embedding", weights["encoder_embedding"])
    x = g.reshape(g.op("Gather", [table, ids]), [-1, length, width])
    keep = g.op("Cast", [g.reshape(mask, [-1, 1, 1, length])], to=BOOL)
    positions = g.op("Range", [g.const(0), g.scalar(length), g.const(1)])
    bias = relative_bias(
        g,
        weights["encoder_bias"],
        "encoder_bias",
        positions,
        positions,
        weights["radius"],
    )
    heads, dim = c["encoder_num_heads"], c["key_value_dim"]
    for layer in weights["encoder_layers"]:

        def key_value(h, layer=layer):
            return tuple(
                _project(g, h, layer, "self", name, heads, dim)
                for name in ("key", "value")
            )

        x, _ = _attention_block(
            g, x, layer, "self", (heads, heads, dim), key_value, bias, keep
        )
        x = _feed_forward(g, x, layer)
    norm = ("encoder/final_norm", weights["encoder_final_norm"])
    x = g.reshape(rms_norm(g, x, norm, g.epsilon), [batch, -1, width])
    g.output(x, "encoder_output", FLOAT, ["batch", "source_length", width])
    return g.model()


def cross_layers(weights):
    return [layer for layer in weights["decoder_layers"] if layer["cross"]]


def cross_key_value_graph(weights):
    c = weights["config"]
    g = GraphBuilder("fido_cross_key_value")
    width = c["encoder_hidden_dim"]
    states = g.input("encoder_output", FLOAT, ["batch", "source_length", width])
    kv_heads, dim = c["decoder_num_key_value_heads"], c["key_value_dim"]
    shape = ["batch", kv_heads, "source_length", dim]
    for j, layer in enumerate(cross_layers(weights)):
        for name in ("key", "value"):
            projected = _project(g, states, layer, "cross", name, kv_heads, dim)
            g.output(projected, f"cross_{name}_{j}", FLOAT, shape)
    return g.model()


def _step_inputs(g, weights):
    """The step graph's inputs: token, mask, past and cross K/V."""
    c = weights["config"]
    kv_heads, dim = c["decoder_num_key_value_heads"], c["key_value_dim"]
    token = g.input("decoder_token_ids", INT64, ["batch", 1])
    mask = g.input(
        "encoder_padding_mask", INT64, ["batch", "passages", "passage_length"]
    )
    past_shape = ["batch", kv_heads, "past_length", dim]
    past = [
        tuple(
            g.input(f"past_{name}_{i}", FLOAT, past_shape)
            for name in ("key", "value")
        )
        for i in range(len(weights["decoder_layers"]))
    ]
    cross_shape = ["batch", kv_heads, "source_length", dim]
    cross = [
        tuple(
            g.input(f"cross_{name}_{j}", FLOAT, cross_shape)
            for name in ("key", "value")
        )
        for j in range(len(cross_layers(weights)))
    ]
    return token, mask, past, cross


def decoder_step_graph(weights):
    c = weights["config"]
    g = GraphBuilder("fido_decoder_step")
    g.epsilon = c["layer_norm_epsilon"]
    kv_heads, dim = c["decoder_num_key_value_heads"], c["key_value_dim"]
    width = c["decoder_hidden_dim"]
    token, mask, past, cross = _step_inputs(g, weights)
    batch = g.dim(token, 0)
    keep = g.op("Cast", [g.reshape(mask, [batch, 1, 1, -1])], to=BOOL)
    # The step index is the past length: the new token's position.
    step = g.dim(past[0][0], 2)
    present_length = g.scalar(g.op("Add", [step, g.const([1])]))
    keys = g.op("Range", [g.const(0), present_length, g.const(1)])
    bias = relative_bias(
        g,
        weights["decoder_bias"],
        "decoder_bias",
        step,
        keys,
        weights["radius"],
    )
    embedding = g.weight("decoder_embedding", weights["decoder_embedding"])
    x = g.op("Gather", [embedding, token])  # [B, 1, d]
    dims = (c["decoder_num_heads"], kv_heads, dim)
    present_shape = ["batch", kv_heads, "present_length", dim]
    cross_inputs = iter(cross)
    for i, layer in enumerate(weights["decoder_layers"]):

        def grow(h, i=i, layer=layer):
            return tuple(
                g.op(
                    "Concat",
                    [
                        past[i][n],
                        _project(g, h, layer, "self", name, kv_heads, dim),
                    ],
                    axis=2,
                )
                for n, name in enumerate(("key", "value"))
            )

        x, present = _attention_block(g, x, layer, "self", dims, grow, bias)
        for name, value in zip(("key", "value"), present):
            g.output(value, f"present_{name}_{i}", FLOAT, present_shape)
        if layer["cross"]:
            x, _ = _attention_block(
                g, x, layer, "cross", dims, next(cross_inputs), mask=keep
            )
        x = _feed_forward(g, x, layer)
    norm = ("decoder/final_norm", weights["decoder_final_norm"])
    x = g.reshape(rms_norm(g, x, norm, g.epsilon), [batch, width])
    if c["tie_embedding_weights"]:
        # T5 v1.0 rescales before reusing the input embedding.
        x = g.op("Mul", [x, g.const(width**-0.5, np.float32)])
        logits = g.op("Gemm", [x, embedding], transB=1)
    else:
        projection = g.weight("output_projection", weights["output_projection"])
        logits = g.op("MatMul", [x, projection])
    g.output(logits, "logits", FLOAT, ["batch", c["vocabulary_size"]])
    next_token = g.op("ArgMax", [logits], axis=-1, keepdims=0)
    g.output(next_token, "next_token", INT64, ["batch"])
    return g.model()
