"""The copy head: a distribution, its copy part, and the reader around it."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import CopyAttentionHead
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.testing.fido_models import full_forward_logits
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.testing.layer_checks import run_layer_serialization_check
from keras_fido.testing.t5_reference import random_fid_inputs

VOCAB = 64


def pointer_head(length):
    """A head whose pointer reads the first key coordinate: with the
    decoder state `e_0`, token j gets attention proportional to
    `exp(keys[j, 0] / 2)`."""
    head = CopyAttentionHead(
        vocabulary_size=10, encoder_hidden_dim=4, key_dim=4
    )
    head.build((1, length, 10), (1, length, 4))
    head.query.kernel.assign(np.eye(4, dtype="float32"))
    hidden = np.zeros((1, length, 4), "float32")
    hidden[..., 0] = 1.0
    return head, hidden


def keys_for(probabilities):
    """Pointer keys `[1, S, 4]` that give these attention probabilities."""
    p = np.asarray(probabilities, "float32")
    keys = np.zeros((1, len(p), 4), "float32")
    keys[0, :, 0] = 2.0 * np.log(np.maximum(p, 1e-30))
    return keys


def head_inputs(gate_bias):
    """Logits favouring id 3, attention on ids 7 and 9 of one passage."""
    head, hidden = pointer_head(length=1)
    logits = np.zeros((1, 1, 10), "float32")
    logits[0, 0, 3] = 50.0
    # 3/4 on id 7, 1/4 on id 9; the last token is padding.
    keys = keys_for([0.5, 0.25, 0.25, 1.0])
    mask = np.array([[[1, 1, 1, 0]]], "int32")
    ids = np.array([[[7, 9, 7, 0]]], "int32")
    previous = np.zeros((1, 1), "int32")
    head.gate.bias.assign(np.array([gate_bias], "float32"))
    return head, (logits, hidden, keys, mask, ids, previous)


def test_closed_gate_is_the_copy_distribution():
    head, inputs = head_inputs(gate_bias=-40.0)
    p = np.exp(ops.convert_to_numpy(head(*inputs)))[0, 0]
    np.testing.assert_allclose(p[[7, 9]], [0.75, 0.25], atol=1e-6)
    assert p[3] < 1e-6


def test_open_gate_is_the_vocabulary_softmax():
    head, inputs = head_inputs(gate_bias=40.0)
    p = np.exp(ops.convert_to_numpy(head(*inputs)))[0, 0]
    np.testing.assert_allclose(p[3], 1.0, atol=1e-6)


def test_output_is_a_log_distribution():
    rng = np.random.default_rng(0)
    head = CopyAttentionHead(vocabulary_size=VOCAB, encoder_hidden_dim=6)
    head.build((2, 3, VOCAB), (2, 3, 8))
    states = rng.normal(size=(2, 10, 6)).astype("float32")
    log_p = head(
        rng.normal(size=(2, 3, VOCAB)).astype("float32"),
        rng.normal(size=(2, 3, 8)).astype("float32"),
        head.encoder_keys(states),
        np.ones((2, 2, 5), "bool"),
        rng.integers(0, VOCAB, (2, 2, 5)).astype("int32"),
        rng.integers(0, VOCAB, (2, 3)).astype("int32"),
    )
    np.testing.assert_allclose(
        np.exp(ops.convert_to_numpy(log_p)).sum(-1), 1.0, atol=1e-5
    )


def test_padding_gets_no_copy_mass():
    head, (logits, hidden, keys, mask, ids, previous) = head_inputs(-40.0)
    ids = np.array([[[7, 9, 7, 5]]], "int32")  # id 5 only on padding
    p = np.exp(
        ops.convert_to_numpy(head(logits, hidden, keys, mask, ids, previous))
    )
    assert p[0, 0, 5] < 1e-6


def span_head(follow_bias):
    """Gate closed (copy only); attention always on the passage's start."""
    head, hidden = pointer_head(length=3)
    head.gate.bias.assign(np.array([-40.0], "float32"))
    head.follow_gate.bias.assign(np.array([follow_bias], "float32"))
    # Passage "5 6 7 6 8"; fresh attention points at its first token at
    # every step, so only the continuation can spell "5 6 7".
    ids = np.array([[[5, 6, 7, 6, 8]]], "int32")
    inputs = (
        np.zeros((1, 3, 10), "float32"),
        hidden,
        keys_for([1.0, 0.0, 0.0, 0.0, 0.0]),
        np.ones_like(ids),
        ids,
        np.array([[0, 5, 6]], "int32"),  # start, then the span so far
    )
    return head, inputs


def test_open_follow_gate_continues_the_span():
    head, inputs = span_head(follow_bias=40.0)
    p = np.exp(ops.convert_to_numpy(head(*inputs)))[0]
    np.testing.assert_array_equal(p.argmax(-1), [5, 6, 7])
    np.testing.assert_allclose(p[[0, 1, 2], [5, 6, 7]], 1.0, atol=1e-5)


def test_closed_follow_gate_is_the_fresh_attention():
    head, inputs = span_head(follow_bias=-40.0)
    p = np.exp(ops.convert_to_numpy(head(*inputs)))[0]
    np.testing.assert_allclose(p[:, 5], 1.0, atol=1e-5)


def test_the_next_piece_can_stop_a_span():
    """A learned embedding of piece 7 opens the vocabulary gate (</s>)."""
    head, (logits, *inputs) = span_head(follow_bias=40.0)
    logits = logits.copy()
    logits[..., 1] = 50.0
    embedding = np.zeros((10, head.candidate_kernel.shape[0]), "float32")
    embedding[7, 0] = 1.0
    kernel = np.zeros(head.candidate_kernel.shape, "float32")
    kernel[0, 1] = 80.0
    head.candidate_embedding.assign(embedding)
    head.candidate_kernel.assign(kernel)
    p = np.exp(ops.convert_to_numpy(head(logits, *inputs)))[0]
    np.testing.assert_array_equal(p.argmax(-1), [5, 6, 1])


def test_stepwise_decode_equals_the_scan():
    head, inputs = span_head(follow_bias=0.3)
    full = ops.convert_to_numpy(head(*inputs))
    logits, hidden, keys, mask, ids, previous = inputs
    state = np.zeros((1, 5), "float32")
    for t in range(3):
        log_p, state = head.decode(
            logits[:, t : t + 1],
            hidden[:, t : t + 1],
            keys,
            mask,
            ids,
            previous[:, t : t + 1],
            copy_state=state,
        )
        np.testing.assert_allclose(
            ops.convert_to_numpy(log_p)[:, 0], full[:, t], atol=1e-5
        )


def test_serialization():
    run_layer_serialization_check(
        CopyAttentionHead(vocabulary_size=10, encoder_hidden_dim=4, key_dim=4),
        head_inputs(0.0)[1],
    )
    run_layer_serialization_check(
        CopyAttentionHead(
            vocabulary_size=10,
            encoder_hidden_dim=4,
            key_dim=4,
            key_offsets=(-2, 1),
        ),
        head_inputs(0.0)[1],
    )


def test_keys_read_the_neighbours_at_their_offsets():
    head = CopyAttentionHead(
        vocabulary_size=10, encoder_hidden_dim=3, key_dim=3, key_offsets=(-2, 1)
    )
    head.build((1, 1, 10), (1, 1, 3))
    assert [k.name for k in head.neighbour_keys] == ["key_before_2", "next_key"]
    head.key.kernel.assign(np.zeros((3, 3), "float32"))
    head.neighbour_keys[0].kernel.assign(np.eye(3, dtype="float32"))
    head.neighbour_keys[1].kernel.assign(10.0 * np.eye(3, dtype="float32"))
    states = np.arange(1, 16, dtype="float32").reshape(1, 5, 3)
    keys = ops.convert_to_numpy(head.encoder_keys(states))[0]
    # Token i: the state of i - 2 plus ten times that of i + 1 (zeros past
    # either end).
    expected = np.zeros((5, 3), "float32")
    expected[2:] += states[0, :3]
    expected[:4] += 10.0 * states[0, 1:]
    np.testing.assert_allclose(keys, expected)


def test_keys_of_the_token_alone_have_no_neighbour_weights():
    head = CopyAttentionHead(
        vocabulary_size=10, encoder_hidden_dim=4, key_offsets=()
    )
    head.build((1, 1, 10), (1, 1, 4))
    assert not [w for w in head.weights if "key_" in w.path]
    assert head.get_config()["key_offsets"] == []


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="vocabulary_size"):
        CopyAttentionHead(vocabulary_size=0, encoder_hidden_dim=4)
    with pytest.raises(ValueError, match="key_dim"):
        CopyAttentionHead(vocabulary_size=4, encoder_hidden_dim=4, key_dim=0)
    for offsets in [(0,), (1, 1), (1.5,), (True,)]:
        with pytest.raises(ValueError, match="key_offsets"):
            CopyAttentionHead(
                vocabulary_size=4, encoder_hidden_dim=4, key_offsets=offsets
            )
    with pytest.raises(ValueError, match="(?i)did you mean `vocabulary_size`"):
        CopyAttentionHead(vocabulary_size=4, encoder_hidden_dim=4, vocab_size=4)


@pytest.fixture(scope="module", params=["fid", "fido"])
def copy_reader(request):
    return FiDOSeq2SeqLM(
        tiny_backbone(request.param, vocabulary_size=VOCAB, copy_attention=True)
    )


@pytest.fixture(scope="module")
def passages():
    x = random_fid_inputs(batch=2, passages=3, length=7, vocab=VOCAB, seed=1)
    return x["encoder_token_ids"], x["encoder_padding_mask"]


def test_backbone_carries_the_head_and_its_config(copy_reader):
    backbone = copy_reader.backbone
    paths = [w.path for w in backbone.weights if "copy_head" in w.path]
    assert sorted(paths) == [
        "copy_head/candidate_embedding",
        "copy_head/candidate_kernel",
        "copy_head/follow_gate/bias",
        "copy_head/follow_gate/kernel",
        "copy_head/gate/bias",
        "copy_head/gate/kernel",
        "copy_head/key/kernel",
        "copy_head/next_key/kernel",
        "copy_head/previous_key/kernel",
        "copy_head/query/kernel",
    ]
    assert backbone.get_config()["copy_attention"] is True
    rebuilt = FiDOBackbone.from_config(backbone.get_config())
    assert len(rebuilt.weights) == len(backbone.weights)


def test_token_logits_needs_scores_and_ids(copy_reader):
    states = np.zeros((1, 2, copy_reader.backbone.decoder_hidden_dim))
    with pytest.raises(ValueError, match="decoder_token_ids"):
        copy_reader.backbone.token_logits(states)


def test_cached_greedy_equals_full_forward(copy_reader, passages):
    ids, mask = passages
    length = 6
    output = copy_reader.generate(
        {
            "encoder_token_ids": ids,
            "encoder_padding_mask": mask,
            "decoder_token_ids": np.zeros((2, length), "int32"),
            "decoder_padding_mask": np.eye(1, length, dtype=bool).repeat(2, 0),
        },
        stop_token_ids=None,
    )
    tokens = np.asarray(output["decoder_token_ids"])
    full = full_forward_logits(copy_reader, ids, mask, tokens)
    np.testing.assert_array_equal(tokens[:, 1:], full[:, :-1].argmax(-1))


def test_copy_head_copies_a_piece_never_trained_as_a_target(passages):
    """With its gate closed and one head on the passage's last token, the
    reader answers with that token whatever the vocabulary logits say."""
    backbone = tiny_backbone("fid", vocabulary_size=VOCAB, copy_attention=True)
    reader = FiDOSeq2SeqLM(backbone)
    backbone.copy_head.gate.bias.assign(np.array([-40.0], "float32"))
    ids = np.full((1, 1, 5), 11, "int32")
    ids[0, 0, 2] = 42
    mask = np.ones_like(ids)
    log_p = full_forward_logits(reader, ids, mask, np.zeros((1, 1), "int32"))
    # Only ids 11 and 42 are in the passage: all the mass is on them.
    np.testing.assert_allclose(
        np.exp(log_p[0, 0, [11, 42]]).sum(), 1.0, atol=1e-4
    )


def test_passage_scores_are_where_the_first_piece_is_copied_from(
    copy_reader, passages
):
    ids, mask = passages
    scores = copy_reader.score_passages(
        {"encoder_token_ids": ids, "encoder_padding_mask": mask}
    )
    assert scores.shape == (2, 3)
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    empty = ~np.asarray(mask, bool).any(-1)
    np.testing.assert_array_equal(scores[empty], 0.0)


def test_backbone_and_reader_checks_with_the_head(tmp_path, fido_tokenizer):
    from keras_fido.models import FiDOSeq2SeqLMPreprocessor
    from keras_fido.testing.model_checks import run_backbone_check
    from keras_fido.testing.model_checks import run_task_check

    size = fido_tokenizer.vocabulary_size()
    backbone = tiny_backbone("fido", vocabulary_size=size, copy_attention=True)
    run_backbone_check(
        backbone,
        random_fid_inputs(batch=2, passages=3, length=7, vocab=size, seed=2),
        tmp_path,
    )
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        fido_tokenizer,
        num_passages=2,
        passage_length=16,
        decoder_sequence_length=5,
    )
    example = {
        "question": "what is the capital of france",
        "passages": [{"title": "France", "text": "Its capital is Paris."}],
        "target": "Paris",
    }
    run_task_check(
        FiDOSeq2SeqLM(backbone, preprocessor), [example, example], tmp_path
    )


def test_beam_search_decodes_with_the_head(copy_reader, passages):
    ids, mask = passages
    copy_reader.compile(sampler="beam")
    try:
        output = copy_reader.generate(
            {
                "encoder_token_ids": ids,
                "encoder_padding_mask": mask,
                "decoder_token_ids": np.zeros((2, 5), "int32"),
                "decoder_padding_mask": np.eye(1, 5, dtype=bool).repeat(2, 0),
            },
            stop_token_ids=None,
        )
    finally:
        copy_reader.compile(sampler="greedy")
    tokens = np.asarray(output["decoder_token_ids"])
    assert tokens.shape == (2, 5)
    assert np.all((tokens >= 0) & (tokens < VOCAB))
