"""Times a FiDO variant exported to ONNX and run by ONNX Runtime.

The reader is built as `runner.run_variant` builds it, exported with
`keras_fido.export.export_onnx` and served by `OnnxReader`: the encoder
graph, then the cross K/V graph once and `output_length` cached decoder
steps (no early stop), all through IO binding. Records have the keras
engine's keys; `quantize="int8"` adds the int8 graphs' figures in
`record["quantized"]`.
"""

import os
import tempfile

import keras
import numpy as np

from keras_fido import analysis
from keras_fido.benchmark.machine import machine_info
from keras_fido.benchmark.runner import _spread
from keras_fido.benchmark.runner import _total
from keras_fido.benchmark.runner import build_reader
from keras_fido.benchmark.runner import random_inputs
from keras_fido.benchmark.timing import time_calls
from keras_fido.benchmark.variants import variant_config


def time_onnx_reader(served, ids, mask, output_length, repeats, decoder_only):
    """(encoder timing or None, decoder timing, tokens) of one export."""
    ids, mask = ids.astype(np.int64), mask.astype(np.int64)
    encoder_timing = None

    def encode():
        return served._encode(ids, mask)

    split = served.question_length
    if split is not None:
        # Passage memory: a query runs the live encoder on stored memory.
        width = served.manifest["config"]["encoder_hidden_dim"]
        memory = np.random.default_rng(2).standard_normal(
            mask.shape[:2] + (mask.shape[2] - split, width),
            dtype="float32",
        )
        question = np.ascontiguousarray(ids[:, 0, :split])

        def encode():
            return served._encode_from_memory(question, mask, memory)

    states = encode()
    if not decoder_only:
        encoder_timing = time_calls(encode, repeats=repeats)
    out = {}

    def decode():
        state = served._start(ids, mask, encoder_output=states)
        token = np.zeros((ids.shape[0], 1), np.int64)
        tokens = [token[:, 0]]
        for _ in range(output_length):
            next_token, _ = served._step(state, token)
            token = next_token[:, None]
            tokens.append(next_token)
        out["tokens"] = np.stack(tokens, axis=1)

    decoder_timing = time_calls(decode, repeats=repeats)
    return encoder_timing, decoder_timing, out["tokens"]


def run_onnx_variant(
    variant,
    size="base",
    batch_size=8,
    passages=40,
    passage_length=256,
    output_length=32,
    dtype="float32",
    repeats=3,
    decoder_only=False,
    quantize=None,
    beam=None,
):
    """`runner.run_variant` through ONNX Runtime; float32 graphs only."""
    _check_setting(dtype, beam)
    config = variant_config(size, variant)
    ids, mask, _, _ = random_inputs(
        config, batch_size, passages, passage_length, output_length
    )
    parameters, layers, encoder, decoder, tokens = _time_export(
        config, ids, mask, output_length, repeats, decoder_only
    )
    record = _record(encoder, decoder, batch_size, output_length)
    record.update(
        variant=variant,
        size=size,
        engine="onnxruntime",
        parameters=parameters,
        cross_attention_layers=layers,
        setting=dict(
            batch_size=batch_size,
            passages=passages,
            passage_length=passage_length,
            output_length=output_length,
            dtype=dtype,
            repeats=repeats,
            decoder_only=decoder_only,
        ),
        config=config,
        machine=machine_info(),
    )
    record["cross_attention_cache_bytes_per_sample"] = (
        analysis.cross_attention_cache_bytes_per_sample(
            config, passages, passage_length
        )
    )
    if quantize:
        record["quantized"] = _quantized(
            config,
            dtype,
            quantize,
            ids,
            mask,
            tokens,
            output_length,
            repeats,
            decoder_only,
        )
    return record


def _check_setting(dtype, beam):
    if dtype != "float32" or beam:
        raise ValueError(
            "--engine onnxruntime times float32 greedy decoding: expected "
            f"--dtype float32 and no --beam. Received: dtype={dtype!r}, "
            f"beam={beam!r}"
        )


def _time_export(config, ids, mask, output_length, repeats, decoder_only):
    """Builds the float32 reader, exports it, frees it and times its
    graphs: (parameters, cross-attention layers, encoder and decoder
    timings, generated tokens)."""
    from keras_fido.export.export_onnx import export_onnx
    from keras_fido.export.onnx_reader import OnnxReader

    keras.utils.set_random_seed(0)
    reader = build_reader(config, "float32")
    parameters = int(reader.backbone.count_params())
    layers = reader.backbone.cross_attention_layer_indices
    with tempfile.TemporaryDirectory() as directory:
        export_onnx(reader, directory, max_length=output_length + 1)
        del reader
        keras.backend.clear_session()
        encoder, decoder, tokens = time_onnx_reader(
            OnnxReader(directory),
            ids,
            mask,
            output_length,
            repeats,
            decoder_only,
        )
    return parameters, layers, encoder, decoder, tokens


def _record(encoder, decoder, batch_size, output_length):
    def per_sample(timing):
        return None if timing is None else 1e3 * timing["median_s"] / batch_size

    encoder_ms, decoder_ms = per_sample(encoder), per_sample(decoder)
    return {
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": _total(encoder_ms, decoder_ms),
        "decoder_ms_per_step": decoder_ms / output_length,
        "compile_s": {
            "encoder": encoder and encoder["compile_s"],
            "decoder": decoder["compile_s"],
        },
        "spread_ms_per_sample": {
            "encoder": _spread(encoder, batch_size),
            "decoder": _spread(decoder, batch_size),
        },
    }


def _quantized(
    config,
    dtype,
    mode,
    ids,
    mask,
    float_tokens,
    output_length,
    repeats,
    decoder_only,
):
    from keras_fido.export.export_onnx import export_onnx
    from keras_fido.export.onnx_reader import OnnxReader

    keras.utils.set_random_seed(0)
    reader = build_reader(config, dtype)
    with tempfile.TemporaryDirectory() as directory:
        manifest = export_onnx(
            reader,
            directory,
            quantize=mode,
            max_length=output_length + 1,
            agreement_examples={
                "encoder_token_ids": ids,
                "encoder_padding_mask": mask,
            },
            agreement_threshold=0.0,
        )
        del reader
        served = OnnxReader(directory)
        encoder, decoder, tokens = time_onnx_reader(
            served, ids, mask, output_length, repeats, decoder_only
        )
        forced = served.teacher_forced_next_tokens(ids, mask, float_tokens)
        weights = graph_weight_sizes(directory)
    batch_size = ids.shape[0]
    record = _record(encoder, decoder, batch_size, output_length)
    record.update(
        mode=mode,
        weight_bytes=weights["bytes"],
        int8_weight_fraction=weights["int8_fraction"],
        generated_token_agreement=float(
            np.mean(tokens[:, 1:] == float_tokens[:, 1:])
        ),
        next_token_agreement=float(np.mean(forced == float_tokens[:, 1:])),
        export_next_token_agreement=manifest["quantization"][
            "next_token_agreement"
        ],
    )
    return record


def graph_weight_sizes(directory):
    """Bytes of the graphs' weights (shared ones counted per graph) and
    the share of weight elements stored as int8."""
    import onnx
    from onnx import numpy_helper

    total_bytes = elements = int8 = 0
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".onnx"):
            continue
        model = onnx.load(os.path.join(directory, name))
        for tensor in model.graph.initializer:
            array = numpy_helper.to_array(tensor)
            total_bytes += array.nbytes
            elements += array.size
            int8 += array.size if array.dtype == np.int8 else 0
    return {"bytes": int(total_bytes), "int8_fraction": int8 / max(elements, 1)}
