"""Checks the analytic cost model against counts worked out by hand.

Expected values are written as arithmetic on the model sizes, term by term,
so a reader can follow each one back to Eq. (1)-(5) of the FiDO paper
without trusting the code under test.
"""

import json

import pytest

from keras_fido.analysis import cross_attention_cache_bytes_per_sample
from keras_fido.analysis import decoding_step_costs
from keras_fido.analysis import encoder_flops_per_query
from keras_fido.analysis import flops_per_sample
from keras_fido.analysis import inverse_operational_intensity
from keras_fido.analysis import paper_flops_approximation
from keras_fido.analysis import self_attention_cache_bytes_per_sample
from keras_fido.analysis import summary

# T5.1.1 Base on both sides, cross-attention in all 12 decoder layers.
FID_BASE = {
    "vocabulary_size": 32128,
    "encoder_hidden_dim": 768,
    "encoder_num_layers": 12,
    "encoder_num_heads": 12,
    "encoder_intermediate_dim": 2048,
    "decoder_hidden_dim": 768,
    "decoder_num_layers": 12,
    "decoder_num_heads": 12,
    "decoder_num_key_value_heads": 12,
    "decoder_intermediate_dim": 2048,
    "key_value_dim": 64,
    "cross_attention_interval": 1,
    # get_config() carries keys the cost model does not use.
    "name": "fido_backbone",
    "dropout": 0.1,
}
FID_BASE_LSA = {**FID_BASE, "cross_attention_interval": 6}
FID_BASE_LSA_MQ = {**FID_BASE_LSA, "decoder_num_key_value_heads": 1}
# Base encoder, T5.1.1 XL decoder with LSA-6 and multi-query attention.
FIDO_BASE_XL = {
    **FID_BASE,
    "decoder_hidden_dim": 2048,
    "decoder_num_layers": 24,
    "decoder_num_heads": 32,
    "decoder_num_key_value_heads": 1,
    "decoder_intermediate_dim": 5120,
    "cross_attention_interval": 6,
}

# The paper's inference setting.
PASSAGES, N_P, N_T, BATCH = 40, 256, 32, 24
N_S = 40 * 256  # 10240 source tokens

# Base encoder: 12 layers; gated FF = 3 matmuls, QKVO = 4 matmuls of 768 x 768
# (12 heads * 64), attention = scores + values within each 256-token passage.
BASE_ENCODER = {
    "encoder_mlp": 12 * 3 * 10240 * 768 * 2048,
    "encoder_qkvo_projections": 12 * 4 * 10240 * 768 * 768,
    "encoder_attention": 12 * 2 * 10240 * 256 * 768,
}


def test_fid_base_flops_match_hand_count():
    expected = {
        **BASE_ENCODER,
        "decoder_mlp": 12 * 3 * 32 * 768 * 2048,
        # Q, O, K, V (all 768 x 768) + 32 x 32 scores and values.
        "decoder_self_attention": 12 * (4 * 32 * 768 * 768 + 2 * 32 * 32 * 768),
        "decoder_cross_attention_qo_projections": 12 * 2 * 32 * 768 * 768,
        "decoder_cross_attention_kv_projections": 12 * 2 * 10240 * 768 * 768,
        "decoder_cross_attention": 12 * 2 * 32 * 10240 * 768,
    }
    flops = flops_per_sample(FID_BASE, PASSAGES, N_P, N_T)
    for name, value in expected.items():
        assert flops[name] == value, name
    assert flops["encoder_mlp"] == 579_820_584_960
    assert flops["encoder_total"] == 918_049_259_520
    assert flops["decoder_total"] == 154_184_712_192
    assert flops["total"] == 918_049_259_520 + 154_184_712_192


def test_fido_base_xl_flops_match_hand_count():
    # XL decoder: 24 layers, d=2048, 32 query heads of 64 (= 2048), one K/V
    # head of 64; cross-attention only in layers 6, 12, 18, 24.
    expected = {
        **BASE_ENCODER,
        "decoder_mlp": 24 * 3 * 32 * 2048 * 5120,
        "decoder_self_attention": 24
        * (
            2 * 32 * 2048 * 2048  # Q and O
            + 2 * 32 * 2048 * 64  # K and V, one head
            + 2 * 32 * 32 * 2048  # scores and values, 32 query heads
        ),
        "decoder_cross_attention_qo_projections": 4 * 2 * 32 * 2048 * 2048,
        # K/V read the 768-wide encoder output.
        "decoder_cross_attention_kv_projections": 4 * 2 * 10240 * 768 * 64,
        "decoder_cross_attention": 4 * 2 * 32 * 10240 * 2048,
    }
    flops = flops_per_sample(FIDO_BASE_XL, PASSAGES, N_P, N_T)
    for name, value in expected.items():
        assert flops[name] == value, name
    assert flops["decoder_total"] == sum(
        value for name, value in expected.items() if name.startswith("dec")
    )
    assert flops["decoder_total"] == 41_372_614_656


def test_totals_add_up_components():
    flops = flops_per_sample(FIDO_BASE_XL, PASSAGES, N_P, N_T)
    encoder = sum(v for k, v in flops.items() if k.startswith("encoder_"))
    decoder = sum(v for k, v in flops.items() if k.startswith("decoder_"))
    # The *_total keys themselves are in those sums once each.
    assert encoder == 2 * flops["encoder_total"]
    assert decoder == 2 * flops["decoder_total"]
    assert flops["total"] == flops["encoder_total"] + flops["decoder_total"]


def test_include_logits_adds_output_projection():
    without = flops_per_sample(FIDO_BASE_XL, PASSAGES, N_P, N_T)
    with_logits = flops_per_sample(
        FIDO_BASE_XL, PASSAGES, N_P, N_T, include_logits=True
    )
    assert "decoder_logits" not in without
    assert with_logits["decoder_logits"] == 32 * 2048 * 32128
    assert with_logits["total"] - without["total"] == 32 * 2048 * 32128


def test_paper_approximation_values():
    approx = paper_flops_approximation(FID_BASE, PASSAGES, N_P)
    assert approx["encoder"] == 12 * 10240 * 768 * 768 * 12
    assert approx["decoder"] == 2 * 10240 * 768 * 768 * 12
    assert approx["total"] == 14 * 10240 * 768 * 768 * 12


def test_exact_encoder_count_is_eq1_plus_attention_term():
    # At T5.1.1 Base the gated FF costs 3 * 2048 = 8 * 768 per d, exactly the
    # paper's 4d ReLU MLP, so the only gap to Eq. (1) is the attention term
    # 2 n_s n_p d: exact / approx = 1 + n_p / (6 d).
    for passage_length in (16, 64, 256):
        exact = flops_per_sample(FID_BASE, PASSAGES, passage_length, N_T)
        approx = paper_flops_approximation(FID_BASE, PASSAGES, passage_length)
        ratio = exact["encoder_total"] / approx["encoder"]
        assert ratio == pytest.approx(1 + passage_length / (6 * 768))
    # 256-token passages: within 6% of Eq. (1).
    assert ratio < 1.06


def test_exact_decoder_count_is_close_to_eq2_for_vanilla_fid():
    exact = flops_per_sample(FID_BASE, PASSAGES, N_P, N_T)
    approx = paper_flops_approximation(FID_BASE, PASSAGES, N_P)
    # Eq. (2) keeps only the cross-attention K/V projections.
    assert exact["decoder_cross_attention_kv_projections"] == approx["decoder"]
    assert 1.0 < exact["decoder_total"] / approx["decoder"] < 1.07


def test_paper_flops_claims_for_fid_base():
    flops = flops_per_sample(FID_BASE, PASSAGES, N_P, N_T)
    # Decoder about 1/6 of the encoder.
    ratio = flops["decoder_total"] / flops["encoder_total"]
    assert ratio == pytest.approx(1 / 6, rel=0.03)
    # Cross-attention about 1/7 of everything, so LSA-6 saves about 12%.
    cross = (
        flops["decoder_cross_attention_qo_projections"]
        + flops["decoder_cross_attention_kv_projections"]
        + flops["decoder_cross_attention"]
    )
    assert cross / flops["total"] == pytest.approx(1 / 7, rel=0.02)
    lsa = flops_per_sample(FID_BASE_LSA, PASSAGES, N_P, N_T)
    saving = 1 - lsa["total"] / flops["total"]
    assert saving == pytest.approx(0.12, abs=0.005)


def test_cross_attention_cache_bytes():
    fid = cross_attention_cache_bytes_per_sample(FID_BASE, PASSAGES, N_P)
    assert fid == 12 * 2 * 10240 * 12 * 64 * 4
    assert fid == 754_974_720
    fido = cross_attention_cache_bytes_per_sample(FIDO_BASE_XL, PASSAGES, N_P)
    assert fido == 4 * 2 * 10240 * 1 * 64 * 4
    half = cross_attention_cache_bytes_per_sample(
        FID_BASE, PASSAGES, N_P, dtype="bfloat16"
    )
    assert half == 12 * 2 * 10240 * 12 * 64 * 2


def test_lsa_and_multi_query_shrink_cross_cache():
    fid = cross_attention_cache_bytes_per_sample(FID_BASE, PASSAGES, N_P)
    lsa = cross_attention_cache_bytes_per_sample(FID_BASE_LSA, PASSAGES, N_P)
    lsa_mq = cross_attention_cache_bytes_per_sample(
        FID_BASE_LSA_MQ, PASSAGES, N_P
    )
    assert fid == 6 * lsa  # 12 cross layers -> 2
    assert lsa == 12 * lsa_mq  # 12 K/V heads -> 1
    assert fid == 72 * lsa_mq


def test_self_attention_cache_bytes():
    fid = self_attention_cache_bytes_per_sample(FID_BASE, N_T)
    assert fid == 12 * 2 * 32 * 12 * 64 * 4
    fido = self_attention_cache_bytes_per_sample(FIDO_BASE_XL, N_T)
    # LSA does not touch self-attention: all 24 layers keep a cache.
    assert fido == 24 * 2 * 32 * 1 * 64 * 4


def test_inverse_intensity_multi_head_is_eq3_and_eq4():
    r = inverse_operational_intensity(FID_BASE, PASSAGES, N_P, N_T, BATCH)
    assert r["mlp"] == pytest.approx(1 / 24 + 1 / 768)
    assert r["self_attention"] == pytest.approx(1 / 24 + 32 / 768)
    assert r["cross_attention"] == pytest.approx(1 / 24 + 10240 / 768)
    # FiD cross-attention is far from compute bound: R > 13.
    assert r["cross_attention"] > 13


def test_inverse_intensity_multi_query_is_eq5():
    r = inverse_operational_intensity(
        FID_BASE_LSA_MQ, PASSAGES, N_P, N_T, BATCH
    )
    assert r["cross_attention"] == pytest.approx(
        1 / 24 + 1 / 768 + 10240 / (768 * 12)
    )
    assert r["self_attention"] == pytest.approx(
        1 / 24 + 1 / 768 + 32 / (768 * 12)
    )
    # The MLP does not depend on the attention heads.
    assert r["mlp"] == pytest.approx(1 / 24 + 1 / 768)


def test_eq5_divides_eq4_source_term_by_heads():
    mha = inverse_operational_intensity(FID_BASE, PASSAGES, N_P, N_T, BATCH)
    mqa = inverse_operational_intensity(
        FID_BASE_LSA_MQ, PASSAGES, N_P, N_T, BATCH
    )
    eq4_term = mha["cross_attention"] - 1 / 24
    eq5_term = mqa["cross_attention"] - 1 / 24 - 1 / 768
    assert eq4_term == pytest.approx(12 * eq5_term)
    assert mha["cross_attention"] / mqa["cross_attention"] > 10


def test_grouped_query_attention_divides_by_group_size():
    gqa = {**FID_BASE, "decoder_num_key_value_heads": 4}  # g = 3
    r = inverse_operational_intensity(gqa, PASSAGES, N_P, N_T, BATCH)
    assert r["cross_attention"] == pytest.approx(
        1 / 24 + 1 / 768 + 10240 / (768 * 3)
    )


def test_large_batch_does_not_fix_multi_head_cross_attention():
    r = inverse_operational_intensity(FID_BASE, PASSAGES, N_P, N_T, 10**6)
    assert r["mlp"] < 0.01
    assert r["cross_attention"] > 10240 / 768


def test_decoding_step_fid_base_hand_count():
    step = decoding_step_costs(FID_BASE, PASSAGES, N_P, N_T, BATCH)
    # Each matmul: b * in * out multiplies; moves in * out weights plus
    # b * (in + out) activations. 4 bytes per float32 element.
    mlp_flops = 12 * 3 * 24 * 768 * 2048
    mlp_elements = 12 * 3 * (768 * 2048 + 24 * (768 + 2048))
    assert step["mlp"]["flops"] == mlp_flops
    assert step["mlp"]["bytes"] == 4 * mlp_elements
    # Cross: Q and O projections, then 24 x 10240 cached K and V per layer.
    cross_flops = 12 * (2 * 24 * 768 * 768 + 2 * 24 * 10240 * 768)
    cross_elements = 12 * (
        2 * (768 * 768 + 24 * (768 + 768)) + 2 * 24 * 10240 * 768
    )
    assert step["cross_attention"]["flops"] == cross_flops
    assert step["cross_attention"]["bytes"] == 4 * cross_elements
    assert step["cross_attention"]["bytes_per_flop"] == pytest.approx(
        4 * cross_elements / cross_flops
    )
    self_flops = 12 * (4 * 24 * 768 * 768 + 2 * 24 * 32 * 768)
    self_elements = 12 * (
        4 * (768 * 768 + 24 * (768 + 768)) + 2 * 24 * 32 * 768
    )
    assert step["self_attention"]["flops"] == self_flops
    assert step["self_attention"]["bytes"] == 4 * self_elements
    assert step["total"]["flops"] == mlp_flops + cross_flops + self_flops


def test_decoding_step_multi_query_moves_far_fewer_bytes_per_flop():
    mha = decoding_step_costs(FID_BASE_LSA, PASSAGES, N_P, N_T, BATCH)
    mqa = decoding_step_costs(FID_BASE_LSA_MQ, PASSAGES, N_P, N_T, BATCH)
    # Multi-head cross-attention reads ~4 bytes (one float32) per multiply;
    # sharing one K/V head over 12 query heads cuts that towards 4 / 12.
    assert 3.5 < mha["cross_attention"]["bytes_per_flop"] < 4
    ratio = (
        mha["cross_attention"]["bytes_per_flop"]
        / mqa["cross_attention"]["bytes_per_flop"]
    )
    assert 9 < ratio < 12
    assert mqa["mlp"] == mha["mlp"]


def test_decoding_step_logits_component():
    step = decoding_step_costs(
        FIDO_BASE_XL, PASSAGES, N_P, N_T, BATCH, include_logits=True
    )
    assert step["logits"]["flops"] == 24 * 2048 * 32128
    assert step["logits"]["bytes"] == 4 * (2048 * 32128 + 24 * (2048 + 32128))


def test_summary_is_json_and_matches_parts():
    result = summary(FIDO_BASE_XL)
    assert json.loads(json.dumps(result)) == result
    assert result["setting"] == {
        "num_passages": 40,
        "passage_length": 256,
        "target_length": 32,
        "batch_size": 24,
        "dtype": "float32",
    }
    assert result["cross_attention_layers"] == [6, 12, 18, 24]
    assert result["flops_per_sample"] == flops_per_sample(
        FIDO_BASE_XL, 40, 256, 32
    )
    assert result["cache_bytes_per_sample"] == {
        "cross_attention": 4 * 2 * 10240 * 64 * 4,
        "self_attention": 24 * 2 * 32 * 64 * 4,
    }
    assert result["inverse_operational_intensity"] == (
        inverse_operational_intensity(FIDO_BASE_XL, 40, 256, 32, 24)
    )
    assert result["decoder_flops_fraction"] == pytest.approx(
        41_372_614_656 / (918_049_259_520 + 41_372_614_656)
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_passages": -1}, "num_passages=-1"),
        ({"num_passages": 0}, "num_passages=0"),
        ({"num_passages": True}, "num_passages=True"),
        ({"passage_length": 0}, "passage_length=0"),
        ({"target_length": 1.5}, "target_length=1.5"),
        ({"batch_size": 0}, "batch_size=0"),
    ],
)
def test_bad_lengths_raise(kwargs, message):
    args = {
        "num_passages": PASSAGES,
        "passage_length": N_P,
        "target_length": N_T,
        "batch_size": BATCH,
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        inverse_operational_intensity(FID_BASE, **args)


def test_negative_passages_raise_in_every_entry_point():
    with pytest.raises(ValueError, match="num_passages=-3"):
        flops_per_sample(FID_BASE, -3, N_P, N_T)
    with pytest.raises(ValueError, match="num_passages=-3"):
        cross_attention_cache_bytes_per_sample(FID_BASE, -3, N_P)
    with pytest.raises(ValueError, match="num_passages=-3"):
        summary(FID_BASE, num_passages=-3)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cross_attention_interval": 0}, "cross_attention_interval=0"),
        ({"cross_attention_interval": 13}, "cross_attention_interval=13"),
        ({"decoder_num_key_value_heads": 5}, "decoder_num_key_value_heads=5"),
        ({"encoder_hidden_dim": -768}, "encoder_hidden_dim=-768"),
    ],
)
def test_bad_config_raises(changes, message):
    with pytest.raises(ValueError, match=message):
        flops_per_sample({**FID_BASE, **changes}, PASSAGES, N_P, N_T)


def test_missing_config_key_raises():
    config = dict(FID_BASE)
    del config["key_value_dim"]
    with pytest.raises(ValueError, match="key_value_dim"):
        self_attention_cache_bytes_per_sample(config, N_T)


def test_unknown_dtype_raises():
    with pytest.raises(ValueError, match="dtype='float8'"):
        cross_attention_cache_bytes_per_sample(
            FID_BASE, PASSAGES, N_P, dtype="float8"
        )


def test_encoder_per_query_without_memory_is_the_whole_encoder():
    flops = encoder_flops_per_query(FID_BASE, PASSAGES, N_P)
    whole = flops_per_sample(FID_BASE, PASSAGES, N_P, N_T)["encoder_total"]
    assert flops["per_query"] == flops["live"] == whole
    assert flops["question_memory"] == flops["stored_per_passage"] == 0


def test_encoder_per_query_with_memory_by_hand():
    """LUMEN-1/3 of T5-Base: 4 live layers over 40 x 256 tokens, 8 memory
    layers over the 32-token question block; a passage's 224 tokens go
    through the 8 memory layers once, when stored."""
    config = dict(FID_BASE, encoder_live_layers=4, encoder_question_length=32)
    flops = encoder_flops_per_query(config, PASSAGES, N_P)

    def layer(tokens, length):
        return tokens * (3 * 768 * 2048 + 4 * 768 * 768 + 2 * length * 768)

    assert flops["live"] == 4 * layer(PASSAGES * N_P, N_P)
    assert flops["question_memory"] == 8 * layer(32, 32)
    assert flops["stored_per_passage"] == 8 * layer(224, 224)
    whole = encoder_flops_per_query(FID_BASE, PASSAGES, N_P)["per_query"]
    assert 2.9 < whole / flops["per_query"] < 3.0
