"""Punctuation pieces, and how many answers a copy head can copy."""

import pytest

from keras_fido.data import copyable_answers
from keras_fido.data import train_sentencepiece
from keras_fido.models import FiDOTokenizer

TEXT = [
    "The calling code of Aland is +1268. Its domain is .ax.",
    "The calling code of Bolo is +4421. Its domain is .bo.",
    "Numbers such as +1268 and +4421 are calling codes, and .ax a domain.",
] * 40

EXAMPLES = [
    {
        "question": "What is the calling code of Aland?",
        "ctxs": [{"title": "Aland", "text": TEXT[0]}],
        "target": "+1268",
        "fact": "calling_code",
    },
    {
        "question": "Which domain does Bolo use?",
        "ctxs": [{"title": "Bolo", "text": TEXT[1]}],
        "target": ".bo",
        "fact": "tld",
    },
    {"question": "No target here", "ctxs": [{"title": "", "text": "x"}]},
]


@pytest.fixture(scope="module", params=[False, True])
def tokenizer(request):
    proto = train_sentencepiece(
        TEXT,
        vocab_size=120,
        model_type="bpe",
        hard_vocab_limit=False,
        split_punctuation=request.param,
    )
    return request.param, FiDOTokenizer(proto=proto)


def test_punctuation_pieces_stand_alone(tokenizer):
    split, tok = tokenizer
    pieces = [tok.id_to_token(int(i)) for i in tok("is +1268.")]
    if split:
        assert pieces[-1] == "."
        assert not any("." in p for p in pieces[:-1])


def test_split_punctuation_makes_every_answer_copyable(tokenizer):
    split, tok = tokenizer
    fractions = copyable_answers(EXAMPLES, tok, group_key="fact")
    assert set(fractions) == {"calling_code", "tld"}
    if split:
        assert fractions == {"calling_code": 1.0, "tld": 1.0}
    else:
        assert all(0.0 <= f <= 1.0 for f in fractions.values())


def test_preprocessor_strings_are_searched(tokenizer):
    from keras_fido.models import FiDOSeq2SeqLMPreprocessor

    split, tok = tokenizer
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tok, num_passages=1, passage_length=32, decoder_sequence_length=6
    )
    fractions = copyable_answers(EXAMPLES[:1], tok, preprocessor)
    assert list(fractions) == ["all"]
    if split:
        assert fractions["all"] == 1.0
