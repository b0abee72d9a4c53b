import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_fido.metrics import normalize_answer


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The  Eiffel Tower!", "eiffel tower"),
        ("U.S.A.", "usa"),
        ("an apple a day", "apple day"),
        ("Theatre", "theatre"),  # Articles only as whole words.
        ("  Paris,\tFrance \n", "paris france"),
        ("The", ""),
        ("", ""),
        ("Brasília", "brasília"),
        ("+33", "33"),
    ],
)
def test_normalize_answer_examples(text, expected):
    assert normalize_answer(text) == expected


def test_normalize_answer_rejects_non_strings():
    with pytest.raises(ValueError, match="`text` must be a python string"):
        normalize_answer(b"bytes")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_answer_is_idempotent(text):
    once = normalize_answer(text)
    assert normalize_answer(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalized_answer_has_no_articles_or_extra_spaces(text):
    tokens = normalize_answer(text).split(" ")
    if tokens != [""]:
        assert all(tokens)
        assert not {"a", "an", "the"} & set(tokens)
