import pytest

from keras_fido.data import BM25Retriever

PASSAGES = [
    {"title": "France", "text": "Paris is the capital of France."},
    {"title": "Italy", "text": "Rome is the capital of Italy."},
    {"title": "Italy", "text": "The currency of Italy is the euro."},
    {"text": "Unrelated text about rivers."},
]


def test_ranks_the_matching_passage_first():
    retriever = BM25Retriever(PASSAGES)
    (top,) = retriever.retrieve(["What is the capital of Italy?"], k=2)
    assert [i for i, _ in top] == [1, 2] or [i for i, _ in top] == [1, 0]
    assert top[0][0] == 1
    assert top[0][1] > top[1][1]
    (top,) = retriever.retrieve(["Which currency does Italy use?"], k=1)
    assert top[0][0] == 2


def test_stopwords_and_case_are_ignored():
    retriever = BM25Retriever(PASSAGES)
    assert retriever.tokenize(["What is THE Capital of Italy?"]) == [
        ["capital", "italy"]
    ]


def test_ties_are_broken_by_index():
    passages = [{"text": "same words"}] * 3 + [{"text": "other"}]
    retriever = BM25Retriever(passages)
    (top,) = retriever.retrieve(["same"], k=4)
    assert [i for i, _ in top] == [0, 1, 2, 3]
    # A question of stopwords only scores every passage 0.
    (top,) = retriever.retrieve(["what is the"], k=10)
    assert [i for i, _ in top] == [0, 1, 2, 3]
    assert all(score == 0.0 for _, score in top)


def test_errors():
    with pytest.raises(ValueError, match="non-empty list"):
        BM25Retriever([])
    with pytest.raises(ValueError, match=r"passages\[1\]"):
        BM25Retriever([{"text": "a"}, {"title": "no text"}])
    with pytest.raises(ValueError, match="`k`"):
        BM25Retriever(PASSAGES).retrieve(["x"], k=0)
