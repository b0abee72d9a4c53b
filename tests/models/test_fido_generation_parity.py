"""Cached generation equals uncached decoding and transformers' generate."""

import copy

import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.testing.fido_models import full_forward_logits
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.testing.fido_models import uncached_beam_search
from keras_fido.testing.t5_reference import random_fid_inputs

VOCAB = 128
LENGTH = 11  # decoder length: the start token and 10 generated tokens
ATOL = 1e-4


@pytest.fixture(scope="module")
def t5():
    """A tiny random transformers T5.1.1 with its own output projection."""
    pytest.importorskip("transformers", reason="the reference needs it")
    from keras_fido.testing.t5_reference import tiny_t5
    from keras_fido.testing.t5_reference import untie_output_projection

    return untie_output_projection(tiny_t5(vocab_size=VOCAB))


@pytest.fixture(scope="module")
def t5_reader(t5):
    from keras_fido.convert import from_transformers

    return FiDOSeq2SeqLM(from_transformers(t5))


@pytest.fixture(scope="module", params=["fid", "fido"])
def lm(request):
    """A token-id reader: vanilla FiD (K=1, multi-head; T5.1.1 converted
    from transformers) or FiDO (K=2, one K/V head, decoder wider and
    deeper than the encoder)."""
    if request.param == "fid":
        try:
            lm = request.getfixturevalue("t5_reader")
        except pytest.skip.Exception:
            lm = FiDOSeq2SeqLM(tiny_backbone("fid", vocabulary_size=VOCAB))
        backbone = lm.backbone
        layers = backbone.decoder_num_layers
        assert backbone.cross_attention_layer_indices == list(
            range(1, layers + 1)
        )
        assert backbone.decoder_num_key_value_heads == (
            backbone.decoder_num_heads
        )
        assert backbone.decoder_hidden_dim == backbone.encoder_hidden_dim
        return lm
    backbone = tiny_backbone("fido", vocabulary_size=VOCAB)
    assert backbone.cross_attention_layer_indices == [2, 4]
    assert backbone.decoder_num_key_value_heads == 1
    assert backbone.decoder_hidden_dim > backbone.encoder_hidden_dim
    return FiDOSeq2SeqLM(backbone)


@pytest.fixture(scope="module")
def passages():
    """Ids and mask `[2, 3, 7]`: a short passage and a missing one."""
    x = random_fid_inputs(batch=2, passages=3, length=7, vocab=VOCAB, seed=1)
    return x["encoder_token_ids"], x["encoder_padding_mask"]


def generate_inputs(encoder_token_ids, encoder_padding_mask, length):
    """Token-id `generate` input: the start token (0) as the only prompt."""
    batch = np.shape(encoder_token_ids)[0]
    prompt_mask = np.zeros((batch, length), bool)
    prompt_mask[:, 0] = True
    return {
        "encoder_token_ids": encoder_token_ids,
        "encoder_padding_mask": encoder_padding_mask,
        "decoder_token_ids": np.zeros((batch, length), "int32"),
        "decoder_padding_mask": prompt_mask,
    }


def cached_greedy(lm, encoder_token_ids, encoder_padding_mask, length):
    """Greedy decoding one token at a time through the model's caches.

    Returns the tokens `[B, length]` and the logits of every step
    `[B, length - 1, V]`.
    """
    self_cache, cross_cache = lm.build_cache(
        encoder_token_ids, ops.cast(encoder_padding_mask, "bool"), length
    )
    tokens = np.zeros((np.shape(encoder_token_ids)[0], length), "int32")
    step_logits = []
    for index in range(length - 1):
        logits, _, self_cache = lm.call_decoder_with_cache(
            tokens[:, index : index + 1],
            encoder_padding_mask,
            self_cache,
            index,
            cross_cache,
        )
        logits = ops.convert_to_numpy(logits)[:, 0]
        step_logits.append(logits)
        tokens[:, index + 1] = logits.argmax(-1)
    return tokens, np.stack(step_logits, axis=1)


def assert_generated_equal(output, expected):
    """`output` (keras-hub generate dict) equals reference ids: each row
    equal up to the end of its padding mask, the reference holding only
    padding after that."""
    tokens = np.asarray(output["decoder_token_ids"])
    mask = np.asarray(output["decoder_padding_mask"], bool)
    for row in range(tokens.shape[0]):
        kept = int(mask[row].sum())
        assert mask[row, :kept].all(), mask[row]
        np.testing.assert_array_equal(
            tokens[row, :kept], expected[row, :kept], err_msg=f"row {row}"
        )
        assert not np.any(expected[row, kept:]), expected[row]


def test_cached_greedy_logits_match_full_forward(lm, passages):
    tokens, cached = cached_greedy(lm, *passages, LENGTH)
    # Varied output: a cache bug cannot hide behind a repeated token.
    assert len(np.unique(tokens[:, 1:])) >= 4, tokens
    full = full_forward_logits(lm, *passages, tokens)
    np.testing.assert_allclose(cached, full[:, :-1], atol=ATOL, rtol=0)


def test_prefill_then_single_steps_match_full_forward(lm, passages):
    rng = np.random.default_rng(0)
    tokens = rng.integers(2, VOCAB, size=(2, LENGTH)).astype("int32")
    tokens[:, 0] = 0
    self_cache, cross_cache = lm.build_cache(
        passages[0], ops.cast(passages[1], "bool"), LENGTH
    )
    # Four tokens written into the cache at once, then one at a time.
    chunks = [(0, 4)] + [(i, i + 1) for i in range(4, LENGTH)]
    cached = []
    for start, end in chunks:
        logits, _, self_cache = lm.call_decoder_with_cache(
            tokens[:, start:end], passages[1], self_cache, start, cross_cache
        )
        cached.append(ops.convert_to_numpy(logits))
    full = full_forward_logits(lm, *passages, tokens)
    np.testing.assert_allclose(
        np.concatenate(cached, axis=1), full, atol=ATOL, rtol=0
    )


def test_generate_equals_the_cached_greedy_loop(lm, passages):
    expected, _ = cached_greedy(lm, *passages, LENGTH)
    output = lm.generate(
        generate_inputs(*passages, LENGTH), stop_token_ids=None
    )
    np.testing.assert_array_equal(output["decoder_token_ids"], expected)
    assert np.asarray(output["decoder_padding_mask"]).all()


def first_new_token(greedy):
    """Position and id of row 0's first token that row 1 never generates
    and row 0 has not generated before."""
    for index in range(1, greedy.shape[1]):
        token = int(greedy[0, index])
        if token not in greedy[0, 1:index] and token not in greedy[1, 1:]:
            return index, token
    raise AssertionError(f"Rows too alike to test stopping: {greedy}")


def test_generate_masks_everything_after_the_stop_token(lm, passages):
    greedy, _ = cached_greedy(lm, *passages, LENGTH)
    index, stop = first_new_token(greedy)
    output = lm.generate(
        generate_inputs(*passages, LENGTH), stop_token_ids=[stop]
    )
    mask = np.asarray(output["decoder_padding_mask"], bool)
    np.testing.assert_array_equal(mask[0], np.arange(LENGTH) <= index)
    assert mask[1].all()
    expected = greedy.copy()
    expected[0, index + 1 :] = 0
    assert_generated_equal(output, expected)


def test_beam_search_matches_uncached_beam_search(lm, passages):
    """The beam sampler expands and reorders the self-attention cache, and
    every beam attends to its sample's one cross-attention cache."""
    lm.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=3))
    try:
        output = lm.generate(
            generate_inputs(*passages, LENGTH), stop_token_ids=None
        )
    finally:
        lm.compile(sampler="greedy")
    expected = uncached_beam_search(lm, *passages, LENGTH, num_beams=3)
    np.testing.assert_array_equal(output["decoder_token_ids"], expected)


# --- transformers' own generate on the converted T5.1.1 ---------------------


def test_generate_matches_transformers_greedy(t5, t5_reader, passages):
    from keras_fido.testing.t5_reference import fid_greedy_generate

    expected = fid_greedy_generate(t5, *passages, LENGTH - 1)
    assert expected.shape == (2, LENGTH)  # no end token: all steps run
    assert len(np.unique(expected[:, 1:])) >= 6, expected
    output = t5_reader.generate(
        generate_inputs(*passages, LENGTH), stop_token_ids=None
    )
    np.testing.assert_array_equal(output["decoder_token_ids"], expected)
    assert np.asarray(output["decoder_padding_mask"]).all()


def test_generate_with_end_token_matches_transformers_greedy(
    t5, t5_reader, passages
):
    import torch

    from keras_fido.testing.t5_reference import fid_greedy_generate

    greedy = fid_greedy_generate(t5, *passages, LENGTH - 1)
    # Make the end token (1) win wherever a token of row 0 that row 1 never
    # generates would: row 0 then ends early while row 1 runs every step.
    index, token = first_new_token(greedy)
    stopping = copy.deepcopy(t5)
    with torch.no_grad():
        head = stopping.lm_head.weight
        head[1] = 1.01 * head[token]
    expected = fid_greedy_generate(stopping, *passages, LENGTH - 1)
    assert expected[0, : index + 1].tolist() == [*greedy[0, :index], 1]
    assert not expected[0, index + 1 :].any()
    np.testing.assert_array_equal(expected[1], greedy[1])

    # The same change on the converted model: [d, V] output projection.
    projection = t5_reader.backbone.token_embedding.reverse_embeddings
    original = ops.convert_to_numpy(projection)
    changed = original.copy()
    changed[:, 1] = 1.01 * original[:, token]
    projection.assign(changed)
    try:
        output = t5_reader.generate(
            generate_inputs(*passages, LENGTH), stop_token_ids=[1]
        )
    finally:
        projection.assign(original)
    mask = np.asarray(output["decoder_padding_mask"], bool)
    np.testing.assert_array_equal(mask[0], np.arange(LENGTH) <= index)
    assert mask[1].all()
    assert_generated_equal(output, expected)
