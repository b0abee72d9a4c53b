"""All cost-model numbers for one config, as JSON-ready data."""

from keras_fido.analysis._config import model_dims
from keras_fido.analysis.cache_memory import (
    cross_attention_cache_bytes_per_sample,
)
from keras_fido.analysis.cache_memory import (
    self_attention_cache_bytes_per_sample,
)
from keras_fido.analysis.flops import flops_per_sample
from keras_fido.analysis.flops import paper_flops_approximation
from keras_fido.analysis.operational_intensity import decoding_step_costs
from keras_fido.analysis.operational_intensity import (
    inverse_operational_intensity,
)


def summary(
    config,
    num_passages=40,
    passage_length=256,
    target_length=32,
    batch_size=24,
    dtype="float32",
):
    """Collect the FLOPs, intensity and cache estimates for one config.

    The defaults are the paper's inference setting: 40 passages of 256
    tokens, 32 target tokens and batch size 24.

    Args:
        config: dict. Model config with the `FiDOBackbone.get_config()` size
            keys; other keys are ignored.
        num_passages: int. Retrieved passages per sample. Defaults to `40`.
        passage_length: int. Tokens per passage. Defaults to `256`.
        target_length: int. Decoder tokens. Defaults to `32`.
        batch_size: int. Samples decoded together. Defaults to `24`.
        dtype: str. Dtype of caches, weights and activations for the byte
            counts. Defaults to `"float32"`.

    Returns:
        A dict of plain ints, floats, strings, lists and dicts (so
        `json.dumps` accepts it) with keys `setting`,
        `cross_attention_layers`, `flops_per_sample`,
        `paper_flops_approximation`, `decoder_flops_fraction`,
        `inverse_operational_intensity`, `decoding_step` and
        `cache_bytes_per_sample`.
    """
    dims = model_dims(config)
    flops = flops_per_sample(
        config, num_passages, passage_length, target_length
    )
    return {
        "setting": {
            "num_passages": num_passages,
            "passage_length": passage_length,
            "target_length": target_length,
            "batch_size": batch_size,
            "dtype": dtype,
        },
        "cross_attention_layers": dims.cross_attention_layers,
        "flops_per_sample": flops,
        "paper_flops_approximation": paper_flops_approximation(
            config, num_passages, passage_length
        ),
        "decoder_flops_fraction": flops["decoder_total"] / flops["total"],
        "inverse_operational_intensity": inverse_operational_intensity(
            config, num_passages, passage_length, target_length, batch_size
        ),
        "decoding_step": decoding_step_costs(
            config,
            num_passages,
            passage_length,
            target_length,
            batch_size,
            dtype=dtype,
        ),
        "cache_bytes_per_sample": {
            "cross_attention": cross_attention_cache_bytes_per_sample(
                config, num_passages, passage_length, dtype=dtype
            ),
            "self_attention": self_attention_cache_bytes_per_sample(
                config, target_length, dtype=dtype
            ),
        },
    }
