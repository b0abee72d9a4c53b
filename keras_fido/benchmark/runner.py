"""Times the encoder and the cached decoder of each FiDO variant.

Everything runs through the library's own code: the backbone's encoder
layer, and `FiDOSeq2SeqLM.generate` (the compiled decode loop) fed with the
encoder's output.
"""

import keras
import numpy as np

from keras_fido import analysis
from keras_fido.benchmark.machine import machine_info
from keras_fido.benchmark.memory_store_timing import time_memory_store
from keras_fido.benchmark.quantized import int8_weight_fraction
from keras_fido.benchmark.quantized import next_token_model
from keras_fido.benchmark.quantized import quantize_reader
from keras_fido.benchmark.quantized import token_agreement
from keras_fido.benchmark.quantized import weight_bytes
from keras_fido.benchmark.timing import time_calls
from keras_fido.benchmark.variants import variant_config
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM
from keras_fido.models.passage_memory import encode_with_memory


def build_reader(config, dtype, jit_compile="auto"):
    """A greedy reader of `config`; `jit_compile=True` compiles each
    decoding step on torch and the decoding loop with XLA on TensorFlow
    (keras' "auto" leaves XLA off on CPU-only machines; JAX compiles the
    loop anyway)."""
    backbone = FiDOBackbone(**config, dtype=dtype)
    reader = FiDOSeq2SeqLM(backbone)
    reader.compile(sampler="greedy", jit_compile=jit_compile)
    return reader


def encoder_model(backbone):
    """A functional model of the backbone's own encoder layers."""
    ids = keras.Input((None, None), dtype="int32", name="encoder_token_ids")
    mask = keras.Input((None, None), dtype="int32", name="encoder_padding_mask")
    output = backbone.encoder(backbone.encoder_token_embedding(ids), mask)
    return keras.Model(
        {"encoder_token_ids": ids, "encoder_padding_mask": mask}, output
    )


class _EncoderFromMemory(keras.layers.Layer):
    """The per-query encoder of a backbone with passage memory: question
    block and live layers, the passages' memory given."""

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, token_ids, padding_mask, passage_memory):
        return encode_with_memory(
            self.backbone, token_ids, padding_mask, passage_memory
        )

    def compute_output_shape(
        self, token_ids_shape, padding_mask_shape, passage_memory_shape
    ):
        width = self.backbone.encoder_hidden_dim
        return (token_ids_shape[0], None, width)


def memory_encoder_model(backbone):
    """A functional model of the encoder run from stored passage memory."""
    ids = keras.Input((None, None), dtype="int32", name="encoder_token_ids")
    mask = keras.Input((None, None), dtype="int32", name="encoder_padding_mask")
    memory = keras.Input(
        (None, None, backbone.encoder_hidden_dim), name="passage_memory"
    )
    output = _EncoderFromMemory(backbone)(ids, mask, memory)
    return keras.Model(
        {
            "encoder_token_ids": ids,
            "encoder_padding_mask": mask,
            "passage_memory": memory,
        },
        output,
    )


def random_memory(config, inputs):
    """Random passage memory `[B, P, L - question block, d]` for `inputs`
    (the encoder's cost does not depend on its values)."""
    batch_size, passages, length = inputs["encoder_token_ids"].shape
    rng = np.random.default_rng(2)
    shape = (
        batch_size,
        passages,
        length - config["encoder_question_length"],
        config["encoder_hidden_dim"],
    )
    return rng.standard_normal(shape, dtype="float32")


def random_inputs(
    config, batch_size, passages, passage_length, output_length, seed=0
):
    rng = np.random.default_rng(seed)
    ids = rng.integers(
        3, config["vocabulary_size"], (batch_size, passages, passage_length)
    ).astype("int32")
    mask = np.ones_like(ids)
    decoder_ids = np.zeros((batch_size, output_length + 1), "int32")
    decoder_mask = np.zeros_like(decoder_ids, dtype=bool)
    decoder_mask[:, 0] = True
    return ids, mask, decoder_ids, decoder_mask


def cross_attention_cache_bytes(reader, passages, passage_length):
    """Bytes of the cross-attention cache that `generate` allocates for one
    sample (built for real, from a zero encoder output)."""
    config = reader.backbone.get_config()
    encoder_output = keras.ops.zeros(
        (1, passages * passage_length, config["encoder_hidden_dim"]),
        reader.backbone.decoder.compute_dtype,
    )
    cache = reader.backbone.decoder.compute_cross_attention_cache(
        encoder_output
    )
    return int(
        sum(
            keras.ops.convert_to_numpy(t).nbytes
            for t in keras.tree.flatten(cache)
        )
    )


def run_variant(
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
    jit_compile="auto",
):
    """Measures one variant; returns a JSON-ready record.

    Args:
        variant: str. A rung of the ladder, see `variants.VARIANTS`.
        size: str. `"tiny"` or a T5.1.1 size name.
        batch_size: int. Samples per `generate` call.
        passages: int. Passages per sample.
        passage_length: int. Tokens per passage.
        output_length: int. Decoding steps, all run (no early stop).
        dtype: str. The backbone's dtype policy.
        repeats: int. Timed runs after the warm-up; the median is kept.
        decoder_only: bool. Feed random encoder states instead of running
            (and timing) the encoder.
        quantize: `None` or `"int8"`. Also quantize the model in place
            with `keras.Model.quantize` after the float timing, time it
            again and compare its tokens with the float model's
            (`record["quantized"]`).
        beam: `None` or int. Also time greedy and beam search with this
            many beams at batch size 1 (`record["beam_search"]`).
        jit_compile: the reader's `compile(jit_compile=...)`; `True` runs
            each decoding step compiled on torch (`torch_generation`) and
            the decoding loop under XLA on TensorFlow.
    """
    config = variant_config(size, variant)
    keras.utils.set_random_seed(0)
    reader = build_reader(config, dtype, jit_compile)
    backbone = reader.backbone
    ids, mask, decoder_ids, decoder_mask = random_inputs(
        config, batch_size, passages, passage_length, output_length
    )
    inputs = {"encoder_token_ids": ids, "encoder_padding_mask": mask}

    encoder_output, encoder_timing = _encoder_states(
        config, backbone, inputs, decoder_only, repeats
    )

    decode_inputs = {
        "encoder_sequence_output": encoder_output,
        "encoder_padding_mask": mask,
        "decoder_token_ids": decoder_ids,
        "decoder_padding_mask": decoder_mask,
    }
    tokens, decoder_timing = _time_decoder(reader, decode_inputs, repeats)

    setting = {
        "batch_size": batch_size,
        "passages": passages,
        "passage_length": passage_length,
        "output_length": output_length,
        "dtype": dtype,
        "repeats": repeats,
        "decoder_only": decoder_only,
        "jit_compile": jit_compile,
    }
    record = _timing_record(
        variant, size, config, reader, setting, encoder_timing, decoder_timing
    )
    if config.get("encoder_live_layers") is not None and not decoder_only:
        # The query's encoder time above starts from memory in RAM; the
        # store's read and its one-off build are timed apart.
        record["memory_store"] = time_memory_store(
            reader, batch_size, passages, passage_length, repeats
        )
    if beam:
        record["beam_search"] = _time_beam_search(
            reader, decode_inputs, beam, repeats
        )
    if quantize:
        record["quantized"] = _time_quantized(
            reader,
            quantize,
            inputs,
            decode_inputs,
            tokens,
            repeats,
            decoder_only,
        )
    keras.backend.clear_session()
    return record


def _encoder_states(config, backbone, inputs, decoder_only, repeats):
    """(encoder output, its timing or `None` when `decoder_only`)."""
    if not decoder_only:
        if config.get("encoder_live_layers") is not None:
            inputs = dict(inputs, passage_memory=random_memory(config, inputs))
            return _time_encoder(
                memory_encoder_model(backbone), inputs, repeats
            )
        return _time_encoder(encoder_model(backbone), inputs, repeats)
    # Random states of the right shape: the decoder's cost does not
    # depend on their values.
    batch_size, passages, passage_length = inputs["encoder_token_ids"].shape
    rng = np.random.default_rng(1)
    encoder_output = rng.standard_normal(
        (
            batch_size,
            passages * passage_length,
            config["encoder_hidden_dim"],
        ),
        dtype="float32",
    )
    return encoder_output, None


def _timing_record(
    variant, size, config, reader, setting, encoder_timing, decoder_timing
):
    """The JSON record of one variant's float timing."""
    backbone = reader.backbone
    batch_size = setting["batch_size"]
    passages = setting["passages"]
    passage_length = setting["passage_length"]

    def per_sample_ms(timing):
        return None if timing is None else 1e3 * timing["median_s"] / batch_size

    encoder_ms = per_sample_ms(encoder_timing)
    decoder_ms = per_sample_ms(decoder_timing)
    cache_bytes = cross_attention_cache_bytes(reader, passages, passage_length)
    return {
        "variant": variant,
        "size": size,
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": _total(encoder_ms, decoder_ms),
        "decoder_ms_per_step": decoder_ms
        and decoder_ms / setting["output_length"],
        "cross_attention_cache_bytes_per_sample": cache_bytes,
        "analytic_cross_attention_cache_bytes_per_sample": (
            analysis.cross_attention_cache_bytes_per_sample(
                config,
                passages,
                passage_length,
                dtype=storage_dtype(setting["dtype"]),
            )
        ),
        "compile_s": {
            "encoder": encoder_timing and encoder_timing["compile_s"],
            "decoder": decoder_timing["compile_s"],
        },
        "spread_ms_per_sample": {
            "encoder": _spread(encoder_timing, batch_size),
            "decoder": _spread(decoder_timing, batch_size),
        },
        "parameters": int(backbone.count_params()),
        "cross_attention_layers": backbone.cross_attention_layer_indices,
        # Per query; with passage memory, the passages' memory layers run
        # once per passage, offline (`stored_per_passage`).
        "encoder_flops_per_query": analysis.encoder_flops_per_query(
            config, passages, passage_length
        ),
        "setting": setting,
        "config": config,
        "machine": machine_info(),
    }


def _total(encoder_ms, decoder_ms):
    return None if encoder_ms is None else encoder_ms + decoder_ms


def _time_encoder(encoder, inputs, repeats):
    """(encoder output as numpy, timing) of a functional encoder model."""
    encoder_output = np.asarray(encoder.predict_on_batch(inputs))
    timing = time_calls(
        lambda: encoder.predict_on_batch(inputs), repeats=repeats
    )
    return encoder_output, timing


def _time_decoder(reader, decode_inputs, repeats):
    """(generated token ids, timing) of `generate` with every step run."""
    generated = {}

    def decode():
        generated["out"] = reader.generate(decode_inputs, stop_token_ids=None)

    timing = time_calls(decode, repeats=repeats)
    out = generated["out"]
    tokens = np.asarray(out["decoder_token_ids"])
    expected = np.shape(decode_inputs["decoder_token_ids"])[1] - 1
    steps = int(np.sum(out["decoder_padding_mask"][0])) - 1
    if steps != expected:
        raise RuntimeError(f"Decoding ran {steps} steps instead of {expected}.")
    return tokens, timing


def _first_sample(decode_inputs):
    return {key: value[:1] for key, value in decode_inputs.items()}


def _time_beam_search(reader, decode_inputs, num_beams, repeats):
    """Greedy and beam search decoder time at batch size 1.

    The first sample of the batch is decoded alone, greedily and then with
    keras-hub's `BeamSampler(num_beams)`; the reader is left greedy.
    """
    import keras_hub

    one = _first_sample(decode_inputs)
    _, greedy = _time_decoder(reader, one, repeats)
    reader.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=num_beams))
    try:
        _, beam = _time_decoder(reader, one, repeats)
    finally:
        reader.compile(sampler="greedy")
    greedy_ms = 1e3 * greedy["median_s"]
    beam_ms = 1e3 * beam["median_s"]
    return {
        "num_beams": num_beams,
        "batch_size": 1,
        "greedy_decoder_ms_per_sample": greedy_ms,
        "beam_decoder_ms_per_sample": beam_ms,
        "beam_over_greedy": beam_ms / greedy_ms,
        "compile_s": {
            "greedy": greedy["compile_s"],
            "beam": beam["compile_s"],
        },
    }


def _time_quantized(
    reader, mode, inputs, decode_inputs, float_tokens, repeats, decoder_only
):
    """Quantizes `reader`, times it and compares its tokens.

    Two agreements are reported: `generated_token_agreement` compares the
    two models' free-running greedy outputs position by position (once
    they differ, later tokens follow different prefixes), and
    `next_token_agreement` feeds the float model's tokens to the quantized
    decoder and compares each next-token choice (no compounding).
    """
    batch_size = np.shape(decode_inputs["decoder_token_ids"])[0]
    quantize_reader(reader, mode)
    decode_inputs = dict(decode_inputs)
    encoder_timing = None
    if not decoder_only:
        # A fresh functional model over the (now quantized) encoder layers.
        encoder_output, encoder_timing = _time_encoder(
            encoder_model(reader.backbone), inputs, repeats
        )
        decode_inputs["encoder_sequence_output"] = encoder_output
    tokens, decoder_timing = _time_decoder(reader, decode_inputs, repeats)
    forced = next_token_model(reader.backbone).predict_on_batch(
        [
            np.asarray(float_tokens)[:, :-1].astype("int32"),
            np.asarray(decode_inputs["encoder_sequence_output"]),
            np.asarray(decode_inputs["encoder_padding_mask"]).astype("int32"),
        ]
    )
    encoder_ms = encoder_timing and 1e3 * encoder_timing["median_s"] / (
        batch_size
    )
    decoder_ms = 1e3 * decoder_timing["median_s"] / batch_size
    return {
        "mode": mode,
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": _total(encoder_ms, decoder_ms),
        "weight_bytes": weight_bytes(reader.backbone),
        "int8_weight_fraction": int8_weight_fraction(reader.backbone),
        "generated_token_agreement": token_agreement(float_tokens, tokens),
        "next_token_agreement": float(
            np.mean(forced == np.asarray(float_tokens)[:, 1:])
        ),
        "compile_s": {
            "encoder": encoder_timing and encoder_timing["compile_s"],
            "decoder": decoder_timing["compile_s"],
        },
    }


def storage_dtype(dtype):
    """The dtype caches and weights are stored in under a dtype policy."""
    return (
        "bfloat16"
        if "bfloat16" in dtype
        else ("float16" if "float16" in dtype else "float32")
    )


def _spread(timing, batch_size):
    if timing is None:
        return None
    return [
        1e3 * timing["min_s"] / batch_size,
        1e3 * timing["max_s"] / batch_size,
    ]
