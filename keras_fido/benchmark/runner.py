"""Times the encoder and the cached decoder of each FiDO variant.

Everything runs through the library's own code: the backbone's encoder
layer, and `FiDOSeq2SeqLM.generate` (the compiled decode loop) fed with the
encoder's output.
"""

import os
import platform

import keras
import numpy as np

from keras_fido import analysis
from keras_fido.benchmark.timing import time_calls
from keras_fido.benchmark.variants import variant_config
from keras_fido.models.fido_backbone import FiDOBackbone
from keras_fido.models.fido_seq_2_seq_lm import FiDOSeq2SeqLM


def machine_info():
    """Where the figures come from."""
    info = {
        "backend": keras.config.backend(),
        "keras": keras.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        import jax

        info["devices"] = [str(d) for d in jax.devices()]
    except Exception:  # jax is optional for the torch/tf backends
        pass
    return info


def build_reader(config, dtype):
    backbone = FiDOBackbone(**config, dtype=dtype)
    reader = FiDOSeq2SeqLM(backbone)
    reader.compile(sampler="greedy")
    return reader


def encoder_model(backbone):
    """A functional model of the backbone's own encoder layers."""
    ids = keras.Input((None, None), dtype="int32", name="encoder_token_ids")
    mask = keras.Input((None, None), dtype="int32", name="encoder_padding_mask")
    output = backbone.encoder(backbone.encoder_token_embedding(ids), mask)
    return keras.Model(
        {"encoder_token_ids": ids, "encoder_padding_mask": mask}, output
    )


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
    return int(sum(keras.ops.convert_to_numpy(t).nbytes for t in cache))


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
):
    """Measures one variant; returns a JSON-ready record."""
    config = variant_config(size, variant)
    keras.utils.set_random_seed(0)
    reader = build_reader(config, dtype)
    backbone = reader.backbone
    ids, mask, decoder_ids, decoder_mask = random_inputs(
        config, batch_size, passages, passage_length, output_length
    )
    encoder = encoder_model(backbone)

    if decoder_only:
        # Random states of the right shape: the decoder's cost does not
        # depend on their values.
        rng = np.random.default_rng(1)
        encoder_output = rng.standard_normal(
            (
                batch_size,
                passages * passage_length,
                config["encoder_hidden_dim"],
            )
        ).astype("float32")
        encoder_timing = None
    else:
        inputs = {"encoder_token_ids": ids, "encoder_padding_mask": mask}
        encoder_output = np.asarray(encoder.predict_on_batch(inputs))
        encoder_timing = time_calls(
            lambda: encoder.predict_on_batch(inputs), repeats=repeats
        )

    decode_inputs = {
        "encoder_sequence_output": encoder_output,
        "encoder_padding_mask": mask,
        "decoder_token_ids": decoder_ids,
        "decoder_padding_mask": decoder_mask,
    }
    generated = {}

    def decode():
        generated["out"] = reader.generate(decode_inputs, stop_token_ids=None)

    decoder_timing = time_calls(decode, repeats=repeats)
    steps = int(np.sum(generated["out"]["decoder_padding_mask"][0])) - 1
    if steps != output_length:
        raise RuntimeError(
            f"Decoding ran {steps} steps instead of {output_length}."
        )

    def per_sample_ms(timing):
        return None if timing is None else 1e3 * timing["median_s"] / batch_size

    encoder_ms = per_sample_ms(encoder_timing)
    decoder_ms = per_sample_ms(decoder_timing)
    cache_bytes = cross_attention_cache_bytes(reader, passages, passage_length)
    record = {
        "variant": variant,
        "size": size,
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": (
            None if encoder_ms is None else encoder_ms + decoder_ms
        ),
        "decoder_ms_per_step": decoder_ms and decoder_ms / output_length,
        "cross_attention_cache_bytes_per_sample": cache_bytes,
        "analytic_cross_attention_cache_bytes_per_sample": (
            analysis.cross_attention_cache_bytes_per_sample(
                config, passages, passage_length, dtype=_storage(dtype)
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
        "setting": {
            "batch_size": batch_size,
            "passages": passages,
            "passage_length": passage_length,
            "output_length": output_length,
            "dtype": dtype,
            "repeats": repeats,
            "decoder_only": decoder_only,
        },
        "config": config,
        "machine": machine_info(),
    }
    keras.backend.clear_session()
    return record


def _storage(dtype):
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
