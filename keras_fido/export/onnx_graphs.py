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

With passage memory (`encoder_live_layers`, question block `q`), the
`encoder` graph runs the split encoder (the memory layers over the
question block of slot 0 and over each passage block alone, the live
layers over both joined), and one more graph serves a memory store:

- `live_encoder`: `question_token_ids` int64 `[B, q]`,
  `encoder_padding_mask` int64 `[B, P, L]` and `passage_memory` float32
  `[B, P, L - q, d_enc]` -> `encoder_output` `[B, P*L, d_enc]`; the
  question's mask is the question block of slot 0, as
  `keras_fido.models.passage_memory.encode_with_memory` reads it.

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
    if c.get("encoder_live_layers") is not None:
        return _split_encoder_graph(g, weights, ids, mask)
    width = c["encoder_hidden_dim"]
    batch, length = g.dim(ids, 0), g.dim(ids, 2)
    table = g.weight("encoder_embedding", weights["encoder_embedding"])
    x = g.reshape(g.op("Gather", [table, ids]), [-1, length, width])
    x = _encoder_blocks(g, weights, x, mask, length, weights["encoder_layers"])
    norm = ("encoder/final_norm", weights["encoder_final_norm"])
    x = g.reshape(rms_norm(g, x, norm, g.epsilon), [batch, -1, width])
    g.output(x, "encoder_output", FLOAT, ["batch", "source_length", width])
    return g.model()


def _encoder_blocks(g, weights, x, mask, length, layers):
    """`x` `[N, length, d]` through encoder `layers`, each row alone;
    `mask` int64, `length` positions per row."""
    c = weights["config"]
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
    for layer in layers:

        def key_value(h, layer=layer):
            return tuple(
                _project(g, h, layer, "self", name, heads, dim)
                for name in ("key", "value")
            )

        x, _ = _attention_block(
            g, x, layer, "self", (heads, heads, dim), key_value, bias, keep
        )
        x = _feed_forward(g, x, layer)
    return x


def _split_layers(weights):
    """(memory layers, live layers) of a passage-memory encoder."""
    layers = weights["encoder_layers"]
    split = len(layers) - weights["config"]["encoder_live_layers"]
    return layers[:split], layers[split:]


def _slice(g, value, starts, ends, axes):
    return g.op("Slice", [value, g.const(starts), g.const(ends), g.const(axes)])


def _memory(g, weights, ids, mask, axis):
    """The memory layers over `[..., S]` ids, each sequence alone (`S`
    along `axis`) -> `[N, S, d_enc]` states."""
    width = weights["config"]["encoder_hidden_dim"]
    length = g.dim(ids, axis)
    table = g.weight("encoder_embedding", weights["encoder_embedding"])
    x = g.reshape(g.op("Gather", [table, ids]), [-1, length, width])
    layers = _split_layers(weights)[0]
    return _encoder_blocks(g, weights, x, mask, length, layers)


def _question_memory(g, weights, question_ids, mask):
    """The memory of the question block: `question_ids` `[B, 1, q]` (or
    `[B, q]`), its mask the question block of slot 0 of `mask`."""
    q = weights["config"]["encoder_question_length"]
    question_mask = _slice(g, mask, [0, 0], [1, q], [1, 2])
    return _memory(g, weights, question_ids, question_mask, -1)


def _live(g, weights, question, memory, mask):
    """The live layers over the question's memory `[B, q, d]` (as `[B, q,
    d]` or `[B*1, q, d]`) joined to each passage's, `memory`
    `[B, P, N, d]`; writes the `encoder_output` `[B, P*L, d]`."""
    c = weights["config"]
    width, q = c["encoder_hidden_dim"], c["encoder_question_length"]
    batch, passages = g.dim(memory, 0), g.dim(memory, 1)
    question = g.reshape(question, [batch, 1, q, width])
    question = g.op(
        "Expand", [question, g.concat_ints([batch, passages, q, width])]
    )
    x = g.op("Concat", [question, memory], axis=2)
    length = g.dim(mask, 2)
    x = g.reshape(x, [-1, length, width])
    x = _encoder_blocks(g, weights, x, mask, length, _split_layers(weights)[1])
    norm = ("encoder/final_norm", weights["encoder_final_norm"])
    x = g.reshape(rms_norm(g, x, norm, g.epsilon), [batch, -1, width])
    g.output(x, "encoder_output", FLOAT, ["batch", "source_length", width])
    return g.model()


def _split_encoder_graph(g, weights, ids, mask):
    """The encoder of a backbone with passage memory, from token ids."""
    c = weights["config"]
    q, width = c["encoder_question_length"], c["encoder_hidden_dim"]
    question_ids = _slice(g, ids, [0, 0], [1, q], [1, 2])
    question = _question_memory(g, weights, question_ids, mask)
    end = np.iinfo(np.int64).max
    passage_ids = _slice(g, ids, [q], [end], [2])
    passage_mask = _slice(g, mask, [q], [end], [2])
    memory = _memory(g, weights, passage_ids, passage_mask, 2)
    shape = [g.dim(ids, 0), g.dim(ids, 1), g.dim(passage_ids, 2), width]
    return _live(g, weights, question, g.reshape(memory, shape), mask)


def live_encoder_graph(weights):
    """The encoder from stored passage memory (see the module's doc)."""
    c = weights["config"]
    q, width = c["encoder_question_length"], c["encoder_hidden_dim"]
    g = GraphBuilder("fido_live_encoder")
    g.epsilon = c["layer_norm_epsilon"]
    question_ids = g.input("question_token_ids", INT64, ["batch", q])
    mask = g.input(
        "encoder_padding_mask", INT64, ["batch", "passages", "passage_length"]
    )
    memory = g.input(
        "passage_memory",
        FLOAT,
        ["batch", "passages", "passage_block_length", width],
    )
    question = _question_memory(g, weights, question_ids, mask)
    return _live(g, weights, question, memory, mask)


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
