"""Tiny FiD and FiDO models for tests: configs, seeded weights, reference
decoding loops written without caches."""

import zlib

import numpy as np
from keras import ops

from keras_fido.models.fido_backbone import FiDOBackbone

# Vanilla FiD: equal widths, cross-attention in every layer, multi-head.
TINY_FID_CONFIG = dict(
    encoder_num_layers=2,
    encoder_hidden_dim=32,
    encoder_intermediate_dim=64,
    encoder_num_heads=4,
    decoder_num_layers=2,
    decoder_hidden_dim=32,
    decoder_intermediate_dim=64,
    decoder_num_heads=4,
    decoder_num_key_value_heads=4,
    key_value_dim=8,
    cross_attention_interval=1,
    dropout=0.0,
)

# FiDO: a decoder wider and deeper than the encoder, cross-attention in
# layers 2 and 4 only, one K/V head (multi-query).
TINY_FIDO_CONFIG = dict(
    encoder_num_layers=2,
    encoder_hidden_dim=16,
    encoder_intermediate_dim=32,
    encoder_num_heads=2,
    decoder_num_layers=4,
    decoder_hidden_dim=32,
    decoder_intermediate_dim=64,
    decoder_num_heads=4,
    decoder_num_key_value_heads=1,
    key_value_dim=8,
    cross_attention_interval=2,
    dropout=0.0,
)

TINY_CONFIGS = {"fid": TINY_FID_CONFIG, "fido": TINY_FIDO_CONFIG}


def tiny_backbone(kind="fido", vocabulary_size=128, seed=0, **overrides):
    """A tiny `FiDOBackbone` (`kind` "fid" or "fido") with seeded weights."""
    config = {**TINY_CONFIGS[kind], **overrides}
    backbone = FiDOBackbone(vocabulary_size=vocabulary_size, **config)
    reseed_weights(backbone, seed)
    return backbone


def reseed_weights(model, seed):
    """Redraws every weight of `model` from seeded numpy generators.

    Constant weights (the norm scales) are kept; embedding tables (tokens,
    position biases) are drawn from `N(0, 1)` and kernels from
    `N(0, 1 / first_dim)`, each from a generator seeded by `seed` and the
    weight's path. The model is then the same on every run and backend,
    unlike one drawn by keras' initializers (also after
    `keras.utils.set_random_seed`, as `model.weights` is ordered
    differently on each backend).
    """
    for variable in model.weights:
        value = ops.convert_to_numpy(variable)
        if np.all(value == value.flat[0]):
            continue
        key = zlib.crc32(variable.path.encode("utf-8"))
        rng = np.random.default_rng([seed, key])
        noise = rng.standard_normal(value.shape)
        if not variable.path.endswith("/embeddings"):
            noise /= np.sqrt(value.shape[0])  # kernels: by their fan-in
        variable.assign(noise.astype(value.dtype))
    return model


def decoder_kwargs(config):
    """`FiDODecoder` arguments for a `FiDOBackbone` config dict."""
    return dict(
        num_layers=config["decoder_num_layers"],
        hidden_dim=config["decoder_hidden_dim"],
        intermediate_dim=config["decoder_intermediate_dim"],
        num_heads=config["decoder_num_heads"],
        num_key_value_heads=config["decoder_num_key_value_heads"],
        key_value_dim=config["key_value_dim"],
        encoder_hidden_dim=config["encoder_hidden_dim"],
        cross_attention_interval=config["cross_attention_interval"],
    )


def full_forward_logits(
    seq_2_seq_lm, encoder_token_ids, encoder_padding_mask, decoder_token_ids
):
    """Uncached teacher-forced logits `[B, T, V]` as numpy float32.

    The model has no preprocessor. `predict_on_batch` compiles the forward
    pass once per shape, which is much faster than eager JAX.
    """
    decoder_token_ids = np.asarray(decoder_token_ids, "int32")
    logits = seq_2_seq_lm.predict_on_batch(
        {
            "encoder_token_ids": np.asarray(encoder_token_ids, "int32"),
            "encoder_padding_mask": np.asarray(encoder_padding_mask, "int32"),
            "decoder_token_ids": decoder_token_ids,
            "decoder_padding_mask": np.ones_like(decoder_token_ids),
        }
    )
    return ops.convert_to_numpy(ops.cast(logits, "float32"))


def uncached_beam_search(
    seq_2_seq_lm,
    encoder_token_ids,
    encoder_padding_mask,
    length,
    num_beams,
    start_token_id=0,
):
    """Beam search that re-runs the whole model at every step, no caches.

    Follows `keras_hub.samplers.BeamSampler` (log-softmax scores summed
    over steps, only the first beam alive at the start, no stop token) and
    returns the best sequence of each row, int32 `[B, length]`.
    """
    encoder_token_ids = np.asarray(encoder_token_ids)
    encoder_padding_mask = np.asarray(encoder_padding_mask)
    batch = encoder_token_ids.shape[0]
    beams = np.full((batch, num_beams, length), start_token_id, "int32")
    scores = np.full((batch, num_beams), -1e9, "float64")
    scores[:, 0] = 0.0
    repeat = lambda x: np.repeat(x, num_beams, axis=0)  # noqa: E731
    for index in range(1, length):
        logits = full_forward_logits(
            seq_2_seq_lm,
            repeat(encoder_token_ids),
            repeat(encoder_padding_mask),
            beams.reshape(batch * num_beams, length),
        )[:, index - 1].astype("float64")
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        vocab = log_probs.shape[-1]
        candidates = scores[..., None] + log_probs.reshape(batch, num_beams, -1)
        candidates = candidates.reshape(batch, num_beams * vocab)
        best = np.argsort(-candidates, axis=-1, kind="stable")[:, :num_beams]
        scores = np.take_along_axis(candidates, best, axis=-1)
        beams = np.take_along_axis(beams, (best // vocab)[..., None], axis=1)
        beams[:, :, index] = best % vocab
    top = scores.argmax(-1)
    return beams[np.arange(batch), top]
