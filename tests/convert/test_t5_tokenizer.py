"""T5's spiece.model and sentinels <-> FiDOTokenizer."""

import numpy as np
import pytest

from keras_fido.convert import spiece_from_tokenizer
from keras_fido.convert import tokenizer_from_spiece
from keras_fido.convert.t5_tokenizer import add_extra_ids
from keras_fido.convert.t5_tokenizer import strip_extra_ids
from keras_fido.testing.t5_checkpoints import tiny_spiece_model

TEXT = "The return statement leaves the current function call."


@pytest.fixture(scope="module")
def spiece():
    return tiny_spiece_model()


def test_sentinels_are_numbered_as_transformers_does(spiece):
    tokenizer = tokenizer_from_spiece(spiece, extra_ids=20)
    assert tokenizer.vocabulary_size() == 220
    ids = [tokenizer.token_to_id(f"<extra_id_{i}>") for i in range(20)]
    assert ids == list(range(219, 199, -1))
    # A sentinel in text is one token; the rest tokenizes as without it.
    with_sentinel = list(np.asarray(tokenizer("call <extra_id_3> now")))
    assert 216 in with_sentinel


def test_strip_gives_back_the_original_bytes(spiece):
    with_ids = add_extra_ids(spiece, 20)
    assert with_ids != spiece
    assert strip_extra_ids(with_ids) == (spiece, 20)
    assert strip_extra_ids(spiece) == (spiece, 0)
    tokenizer = tokenizer_from_spiece(spiece, extra_ids=20)
    assert spiece_from_tokenizer(tokenizer) == (spiece, 20)


def test_plain_text_ids_are_unchanged_by_sentinels(spiece):
    plain = tokenizer_from_spiece(spiece, extra_ids=0)
    with_ids = tokenizer_from_spiece(spiece, extra_ids=20)
    np.testing.assert_array_equal(plain(TEXT), with_ids(TEXT))


def test_tokenizer_larger_than_the_model_is_refused(spiece):
    with pytest.raises(ValueError, match="more than the model's vocab_size"):
        tokenizer_from_spiece(spiece, extra_ids=20, vocabulary_size=210)


def test_transformers_tokenizer_gives_the_same_ids(spiece, tmp_path):
    transformers = pytest.importorskip("transformers")
    (tmp_path / "spiece.model").write_bytes(spiece)
    reference = transformers.T5Tokenizer.from_pretrained(tmp_path, extra_ids=20)
    tokenizer = tokenizer_from_spiece(spiece, extra_ids=20)
    assert len(reference) == tokenizer.vocabulary_size()
    expected = reference(TEXT).input_ids
    assert expected[-1] == 1  # transformers appends the end token
    assert list(np.asarray(tokenizer(TEXT))) == expected[:-1]
    assert reference.convert_tokens_to_ids("<extra_id_0>") == 219
