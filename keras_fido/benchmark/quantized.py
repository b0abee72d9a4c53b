"""`keras.Model.quantize` for the benchmark, and what it changed."""

import gc
import warnings

import keras
import numpy as np


def quantize_reader(reader, mode):
    """Quantizes `reader` in place with `keras.Model.quantize(mode)`.

    Every `Dense` and `EinsumDense` (all attention and feed-forward
    projections) and a separate encoder `Embedding` are quantized; keras-hub
    0.32's `ReversibleEmbedding` (the shared token embedding and output
    projection) has no `quantize` and stays in float, as do norms and
    position biases. Keras' warnings about those layers are silenced;
    `int8_weight_fraction` in the record says how much was quantized. The
    compiled `generate` function is dropped so that the next call traces
    the quantized layers.
    """
    if mode != "int8":
        raise ValueError(
            f"`quantize` must be None or 'int8'. Received: quantize={mode!r}"
        )
    # Keras runs a full garbage collection for every replaced kernel; with
    # three backends' objects on the heap that takes most of a second each.
    # Frozen objects are skipped by those collections.
    gc.freeze()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message=".*does not have a `quantize` method.*"
            )
            reader.quantize(mode)
    finally:
        gc.unfreeze()
    reader.generate_function = None
    return reader


def next_token_model(backbone):
    """A functional model: decoder tokens, encoder states and mask in,
    the argmax next token at every position out (one pass, no cache)."""
    ids = keras.Input((None,), dtype="int32", name="decoder_token_ids")
    states = keras.Input(
        (None, backbone.encoder_hidden_dim), name="encoder_sequence_output"
    )
    mask = keras.Input((None, None), dtype="int32", name="encoder_padding_mask")
    hidden = backbone.decoder(
        backbone.token_embedding(ids), states, encoder_padding_mask=mask
    )
    tokens = keras.ops.argmax(backbone.token_logits(hidden), axis=-1)
    return keras.Model([ids, states, mask], tokens)


def token_agreement(reference, other):
    """Fraction of generated positions (after the start token) that agree."""
    reference = np.asarray(reference)[:, 1:]
    other = np.asarray(other)[:, 1:]
    return float(np.mean(reference == other))


def _nbytes(variable):
    return int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize


def int8_weight_fraction(model):
    """Share of `model`'s weight elements stored as int8."""
    sizes = [(int(np.prod(w.shape)), str(w.dtype)) for w in model.weights]
    total = sum(size for size, _ in sizes)
    return sum(size for size, dtype in sizes if dtype == "int8") / total


def weight_bytes(model):
    """Bytes of all of `model`'s weights, as stored (int8 after quantize)."""
    return int(sum(_nbytes(w) for w in model.weights))
