"""parameter_count: the closed-form weight count of a FiDO backbone."""

import pytest

from keras_fido.analysis import parameter_count
from keras_fido.models import FiDOBackbone
from keras_fido.models.fido_presets import backbone_presets

# T5.1.1 sizes as published with the google/t5-v1_1-* checkpoints:
# d_model, d_ff, layers (per stack), heads; d_kv is 64 and the vocabulary
# 32128 for all of them.
T5_1_1 = {
    "small": (512, 1024, 8, 6),
    "base": (768, 2048, 12, 12),
    "large": (1024, 2816, 24, 16),
    "xl": (2048, 5120, 24, 32),
    "xxl": (4096, 10240, 24, 64),
}

# A small config for the cases the tiny presets leave out: a tied output
# projection, grouped K/V heads (2 of 4), 8 position buckets. fid_tiny
# covers the shared embedding and fido_tiny the asymmetric, multi-query,
# layer-sparse case.
TINY = {
    "vocabulary_size": 50,
    "encoder_num_layers": 2,
    "encoder_hidden_dim": 12,
    "encoder_intermediate_dim": 32,
    "encoder_num_heads": 4,
    "decoder_num_layers": 4,
    "decoder_hidden_dim": 16,
    "decoder_intermediate_dim": 32,
    "decoder_num_heads": 4,
    "decoder_num_key_value_heads": 2,
    "key_value_dim": 8,
    "cross_attention_interval": 2,
    "relative_attention_num_buckets": 8,
    "relative_attention_max_distance": 20,
    "tie_embedding_weights": True,
}


@pytest.fixture(scope="module")
def t5_1_1_counts():
    """transformers' own count of each T5.1.1 size, built on no memory."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    counts = {}
    for size, (d_model, d_ff, num_layers, num_heads) in T5_1_1.items():
        config = transformers.T5Config(
            vocab_size=32128,
            d_model=d_model,
            d_kv=64,
            d_ff=d_ff,
            num_layers=num_layers,
            num_heads=num_heads,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
        )
        with torch.device("meta"):
            model = transformers.T5ForConditionalGeneration(config)
        count = sum(p.numel() for p in model.parameters())
        # T5.1.1 checkpoints have an lm_head separate from the input
        # embedding, but transformers 5 ties lm_head to `shared` in memory
        # even for such configs, and `parameters()` counts a shared tensor
        # once: add the separate V x d head back when that happened.
        if model.lm_head.weight is model.shared.weight:
            count += 32128 * d_model
        counts[size] = count
    return counts


def test_t5_1_1_small_reference_is_the_published_77m(t5_1_1_counts):
    # google/t5-v1_1-small: 76,961,152 weights. Checks the reference itself.
    assert t5_1_1_counts["small"] == 76_961_152


@pytest.mark.parametrize("size", list(T5_1_1))
def test_vanilla_fid_presets_count_like_transformers_t5_1_1(
    size, t5_1_1_counts
):
    config = backbone_presets[f"fid_{size}"]["config"]
    assert parameter_count(config) == t5_1_1_counts[size]


@pytest.mark.parametrize("preset", ["fid_tiny", "fido_tiny", "fid_small"])
def test_equals_count_params_of_built_preset(preset):
    backbone = FiDOBackbone.from_preset(preset)
    assert parameter_count(backbone.get_config()) == backbone.count_params()


def test_equals_count_params_of_built_tied_grouped_config():
    backbone = FiDOBackbone(**TINY)
    assert parameter_count(TINY) == backbone.count_params()


def test_untying_adds_one_output_projection():
    untied = {**TINY, "tie_embedding_weights": False}
    assert parameter_count(untied) - parameter_count(TINY) == 16 * 50


def test_layer_sparse_multi_query_saves_exactly_the_dropped_weights():
    dense = {
        **TINY,
        "cross_attention_interval": 1,
        "decoder_num_key_value_heads": 4,
    }
    sparse = {**dense, "cross_attention_interval": 2}
    multi_query = {**sparse, "decoder_num_key_value_heads": 1}
    d, d_enc, heads, d_kv = 16, 12, 4, 8
    # Layers 1 and 3 lose a norm, Q and O from the decoder width, and K and
    # V (all 4 heads) from the encoder width.
    cross = d + 2 * d * heads * d_kv + 2 * d_enc * heads * d_kv
    assert parameter_count(dense) - parameter_count(sparse) == 2 * cross
    # Multi-query: K/V of the 4 self-attentions and 2 cross-attentions
    # shrink from 4 heads to 1.
    saving = 4 * 2 * d * 3 * d_kv + 2 * 2 * d_enc * 3 * d_kv
    assert parameter_count(sparse) - parameter_count(multi_query) == saving


def test_missing_size_key_is_refused_naming_it():
    config = dict(TINY)
    del config["decoder_num_key_value_heads"]
    with pytest.raises(ValueError, match="decoder_num_key_value_heads"):
        parameter_count(config)
