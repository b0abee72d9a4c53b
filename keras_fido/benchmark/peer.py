"""The same vanilla FiD timed through HuggingFace transformers (PyTorch).

FiD-style, as `keras_fido.testing.t5_reference` runs it: the T5 encoder
encodes each passage on its own (`[B*P, L]`), the outputs are laid end to
end (`[B, P*L, d]`), and `generate` decodes greedily with its key/value
cache, forced to run every step (`min_new_tokens = max_new_tokens`). The
weights are random, from a `T5Config` of the same size as keras_fido's
`fid` variant. Runs under `torch.inference_mode()` with as many torch
threads as the machine has cores; the first call (warm-up) is excluded and
the median of the repeats is kept, as for keras_fido.
"""

import os
import warnings

import numpy as np

from keras_fido.benchmark.timing import time_calls
from keras_fido.convert.t5_config import check_vanilla_fid
from keras_fido.convert.t5_config import t5_config_from_backbone


def t5_config(config):
    """A `transformers.T5Config` (T5.1.1) of the size of a vanilla FiD config.

    Raises a `ValueError` for FiDO configs (layer-sparse, multi-query or
    asymmetric), which transformers' T5 cannot express.
    """
    import transformers

    check_vanilla_fid(config, purpose="timed by the transformers peer")
    fields = t5_config_from_backbone(
        dict(config), pad_token_id=0, eos_token_id=1
    )
    # Untied head and no dropout, whatever the variant says: the peer
    # times inference of a T5.1.1-shaped model.
    fields.update(
        dropout_rate=0.0,
        tie_word_embeddings=False,
        scale_decoder_outputs=False,
    )
    return transformers.T5Config(**fields)


def _cache_argument():
    """`generate`'s keyword for a caller-made cache (renamed in 5.x)."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return "cache" if major >= 5 else "past_key_values"


def run_transformers_fid(
    config,
    batch_size,
    passages,
    passage_length,
    output_length,
    repeats=3,
    decoder_only=False,
    threads=None,
):
    """Times transformers' T5 run FiD-style; returns a JSON-ready dict.

    Args:
        config: dict. A vanilla FiD `FiDOBackbone` config.
        batch_size, passages, passage_length, output_length: ints, as for
            `runner.run_variant`.
        repeats: int. Timed runs after the warm-up.
        decoder_only: bool. Feed random encoder states; no encoder timing.
        threads: int. Torch threads; defaults to `os.cpu_count()`.

    Returns:
        A dict with `library`, versions, `threads`,
        `encoder_ms_per_sample` (None if `decoder_only`),
        `decoder_ms_per_sample`, `total_ms_per_sample` and `compile_s`.
    """
    import torch

    threads = threads or os.cpu_count()
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _run(
            config,
            batch_size,
            passages,
            passage_length,
            output_length,
            repeats,
            decoder_only,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _run(
    config,
    batch_size,
    passages,
    passage_length,
    output_length,
    repeats,
    decoder_only,
):
    import torch
    import transformers
    from transformers.cache_utils import DynamicCache
    from transformers.cache_utils import EncoderDecoderCache
    from transformers.modeling_outputs import BaseModelOutput

    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(t5_config(config)).eval()
    ids, mask, fused_mask = _token_inputs(
        config, batch_size, passages, passage_length
    )
    cache_argument = _cache_argument()
    out = {}

    def encode():
        return model.encoder(input_ids=ids, attention_mask=mask)[0]

    def decode():
        # A cache grown layer by layer: transformers' default one is sized
        # by the encoder depth, which fails for a deeper decoder.
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        out["tokens"] = model.generate(
            encoder_outputs=BaseModelOutput(last_hidden_state=states),
            attention_mask=fused_mask,
            max_new_tokens=output_length,
            min_new_tokens=output_length,
            do_sample=False,
            num_beams=1,
            **{cache_argument: cache},
        )

    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if decoder_only:
            states = torch.randn(
                (
                    batch_size,
                    passages * passage_length,
                    config["encoder_hidden_dim"],
                )
            )
            encoder_timing = None
        else:
            states = encode().reshape(batch_size, passages * passage_length, -1)
            encoder_timing = time_calls(encode, repeats=repeats)
        decoder_timing = time_calls(decode, repeats=repeats)
    generated = tuple(out["tokens"].shape)
    if generated != (batch_size, output_length + 1):
        raise RuntimeError(
            "transformers generated tokens of shape "
            f"{generated} instead of {(batch_size, output_length + 1)}."
        )
    return _record(batch_size, encoder_timing, decoder_timing)


def _token_inputs(config, batch_size, passages, passage_length):
    """Random passage ids `[B * P, L]`, their mask, and the mask of the
    fused encoder states `[B, P * L]`."""
    import torch

    rng = np.random.default_rng(0)
    ids = torch.as_tensor(
        rng.integers(
            3,
            config["vocabulary_size"],
            (batch_size * passages, passage_length),
        )
    )
    mask = torch.ones_like(ids)
    fused_mask = torch.ones(
        (batch_size, passages * passage_length), dtype=torch.long
    )
    return ids, mask, fused_mask


def _record(batch_size, encoder_timing, decoder_timing):
    """The peer's JSON record: versions, threads, time per sample."""
    import torch
    import transformers

    encoder_ms = encoder_timing and (
        1e3 * encoder_timing["median_s"] / batch_size
    )
    decoder_ms = 1e3 * decoder_timing["median_s"] / batch_size
    return {
        "library": "transformers",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "encoder_ms_per_sample": encoder_ms,
        "decoder_ms_per_sample": decoder_ms,
        "total_ms_per_sample": (
            None if encoder_ms is None else encoder_ms + decoder_ms
        ),
        "compile_s": {
            "encoder": encoder_timing and encoder_timing["compile_s"],
            "decoder": decoder_timing["compile_s"],
        },
    }


def peer_ratios(record, peer):
    """keras_fido / peer time per sample for each component.

    Above 1 keras_fido is slower. A component either side did not time
    (decoder-only runs) gives None.

    Returns:
        A dict with `encoder`, `decoder` and `total`.
    """
    ratios = {}
    for component in ("encoder", "decoder", "total"):
        key = f"{component}_ms_per_sample"
        ours, theirs = record.get(key), peer.get(key)
        ratios[component] = None if not ours or not theirs else ours / theirs
    return ratios
