import pytest
import sentencepiece

from keras_fido.data import corpus_lines
from keras_fido.data import train_sentencepiece


@pytest.fixture(scope="module")
def lines():
    return corpus_lines(include_questions=True)


def test_t5_special_tokens(lines):
    proto = train_sentencepiece(lines, vocab_size=600)
    assert isinstance(proto, bytes)
    sp = sentencepiece.SentencePieceProcessor(model_proto=proto)
    assert sp.get_piece_size() == 600
    assert [sp.id_to_piece(i) for i in range(3)] == ["<pad>", "</s>", "<unk>"]
    assert sp.pad_id() == 0 and sp.eos_id() == 1 and sp.unk_id() == 2
    assert sp.bos_id() == -1
    # Full character coverage: the task's own text has no unknowns.
    for line in lines:
        assert 2 not in sp.encode(line)
        assert sp.decode(sp.encode(line)) == line


def test_deterministic_with_one_thread(lines):
    first = train_sentencepiece(lines, vocab_size=500, num_threads=1)
    again = train_sentencepiece(lines, vocab_size=500, num_threads=1)
    assert first == again


def test_works_with_the_fido_tokenizer(lines):
    from keras_fido.models.fido_tokenizer import FiDOTokenizer

    tokenizer = FiDOTokenizer(
        proto=train_sentencepiece(lines, vocab_size=500, model_type="bpe")
    )
    assert tokenizer.pad_token_id == 0 and tokenizer.end_token_id == 1
    ids = tokenizer("What is the capital of France?")
    assert tokenizer.detokenize(ids) == "What is the capital of France?"


def test_errors():
    with pytest.raises(ValueError, match="at least one non-empty"):
        train_sentencepiece(["", "  \n"], vocab_size=10)
    with pytest.raises(ValueError, match="not a single string"):
        train_sentencepiece("some text", vocab_size=10)
    with pytest.raises(ValueError, match=r"lines\[1\]"):
        train_sentencepiece(["a", 3], vocab_size=10)
    with pytest.raises(ValueError, match="vocab_size"):
        train_sentencepiece(["a"], vocab_size=0)
    with pytest.raises(ValueError, match="lower `vocab_size`"):
        train_sentencepiece(["tiny text"], vocab_size=5000)
    proto = train_sentencepiece(
        ["tiny text"], vocab_size=5000, hard_vocab_limit=False
    )
    assert (
        sentencepiece.SentencePieceProcessor(model_proto=proto).get_piece_size()
        < 5000
    )
