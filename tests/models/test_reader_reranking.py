"""Reranking passages by the reader's cross-attention scores."""

import numpy as np
import pytest

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models import precision_at_1
from keras_fido.models import reader_passage_scores
from keras_fido.models import rerank_by_reader_scores
from keras_fido.testing.fido_models import tiny_backbone

PASSAGES = [
    {"title": "France", "text": "The capital of France is Paris."},
    {"title": "Paris", "text": "Paris is a city on a river."},
    {"title": "Lyon", "text": "Lyon is a city too, with a long history."},
    {"title": "Nice", "text": "Nice is by the sea."},
]
EXAMPLES = [
    {
        "question": "what is the capital of france",
        "answers": ["Paris"],
        "ctxs": PASSAGES,
    },
    {
        "question": "which city is by the sea",
        "answers": ["Nice"],
        "ctxs": PASSAGES[::-1][:3],
    },
    {"question": "a question with no passages", "answers": ["x"], "ctxs": []},
]


@pytest.fixture(scope="module")
def reader(sentencepiece_proto):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=48, decoder_sequence_length=6
    )
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size(), seed=3
    )
    return FiDOSeq2SeqLM(backbone, preprocessor)


def test_all_passages_are_scored_together_beyond_num_passages(reader):
    scores = reader_passage_scores(reader, EXAMPLES, batch_size=2)
    assert [len(row) for row in scores] == [4, 3, 0]
    assert all(row.dtype == np.float32 for row in scores)
    # The first example alone, with all 4 passages in one pass, scores the
    # same: batching does not change an example's scores.
    (alone,) = reader_passage_scores(reader, EXAMPLES[:1])
    np.testing.assert_allclose(alone, scores[0], rtol=1e-4, atol=1e-7)
    # ... and it equals score_passages on a preprocessor packing 4 slots.
    wide = FiDOSeq2SeqLMPreprocessor(
        reader.preprocessor.tokenizer,
        num_passages=4,
        passage_length=48,
        decoder_sequence_length=6,
    )
    x = wide.generate_preprocess(EXAMPLES[:1])
    direct = reader.score_passages(
        {k: x[k] for k in ("encoder_token_ids", "encoder_padding_mask")}
    )
    np.testing.assert_allclose(direct[0], alone, rtol=1e-4, atol=1e-7)
    assert reader.preprocessor.num_passages == 2


def test_rerank_keeps_the_best_scored_passages_in_order(reader):
    scores = reader_passage_scores(reader, EXAMPLES)
    reranked = rerank_by_reader_scores(reader, EXAMPLES, num_passages=2)
    assert EXAMPLES[0]["ctxs"] is PASSAGES and "reader_score" not in PASSAGES[0]
    for example, new, row in zip(EXAMPLES, reranked, scores):
        expected = np.argsort(-row, kind="stable")[:2]
        assert [c["title"] for c in new["ctxs"]] == [
            example["ctxs"][i]["title"] for i in expected
        ]
        kept = [c["reader_score"] for c in new["ctxs"]]
        assert kept == sorted(kept, reverse=True)
    assert reranked[2]["ctxs"] == []
    # Scores computed once can be passed in: the same reranking.
    assert (
        rerank_by_reader_scores(reader, EXAMPLES, num_passages=2, scores=scores)
        == reranked
    )
    # The reranked examples are read as usual.
    assert len(reader.generate(reranked)) == 3


def test_precision_at_1_against_the_retriever_order():
    # BM25's first passages hold "Paris" and "Nice"; the third has none.
    assert precision_at_1(EXAMPLES) == pytest.approx(2 / 3)
    scores = [np.array([0.0, 1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), []]
    # Now "Paris is a city ..." (a hit) and "Lyon is ..." (a miss).
    assert precision_at_1(EXAMPLES, scores) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="examples"):
        precision_at_1([])


def test_bad_input_is_named(reader):
    with pytest.raises(ValueError, match="num_passages"):
        rerank_by_reader_scores(reader, EXAMPLES, num_passages=0)
    with pytest.raises(ValueError, match="scores"):
        rerank_by_reader_scores(reader, EXAMPLES, 2, scores=[np.ones(4)])
    with pytest.raises(ValueError, match="batch_size"):
        reader_passage_scores(reader, EXAMPLES, batch_size=0)
    with pytest.raises(ValueError, match="preprocessor"):
        reader_passage_scores(FiDOSeq2SeqLM(reader.backbone), EXAMPLES)
