"""`example_text_lines`: the text a reader trains on, once each."""

import pytest

from keras_fido.data import example_text_lines


def test_questions_titles_and_texts_once_each_in_order():
    examples = [
        {
            "question": "q1",
            "ctxs": [
                {"title": "A", "text": "a text"},
                {"title": "B", "text": "b text"},
            ],
        },
        {"question": "q2", "ctxs": [{"title": "A", "text": "a text"}]},
        {"question": "q1", "ctxs": []},
        {"question": "q3"},
    ]
    assert example_text_lines(examples) == [
        "q1",
        "A",
        "a text",
        "B",
        "b text",
        "q2",
        "q3",
    ]


def test_bad_examples_are_named():
    with pytest.raises(ValueError, match=r"examples\[1\]"):
        example_text_lines([{"question": "q"}, {"text": "no question"}])
    with pytest.raises(
        ValueError, match=r"examples\[0\]\['ctxs'\]\[0\]\['text'\]"
    ):
        example_text_lines([{"question": "q", "ctxs": [{"text": 3}]}])
