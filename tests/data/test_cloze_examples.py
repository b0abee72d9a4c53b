"""cloze_examples: blanked spans that are written in a passage."""

import pytest

from keras_fido.data import cloze_examples
from keras_fido.metrics.answer_recall import has_answer

EXAMPLES = [
    {
        "question": "What is the capital of Chile?",
        "answers": ["Santiago"],
        "target": "Santiago",
        "fact": "capital",
        "ctxs": [
            {"title": "Chile", "text": "The capital of Chile is Santiago."},
            {
                "title": "Peru",
                "text": "Lima is the capital of Peru. It lies on the coast.",
            },
        ],
    },
    {
        "question": "Which currency does Japan use?",
        "answers": ["yen"],
        "target": "yen",
        "fact": "currency",
        "ctxs": [{"title": "Japan", "text": "Japan uses the yen (JPY)."}],
    },
]


def test_span_is_blanked_in_question_and_written_in_a_passage():
    clozes = cloze_examples(EXAMPLES, copies=3, seed=1)
    assert len(clozes) == 6
    for cloze in clozes:
        assert cloze["cloze"] and cloze["fact"] == "cloze"
        assert cloze["answers"] == [cloze["target"]]
        assert "____" in cloze["question"]
        assert cloze["target"] not in cloze["question"].split("____")
        filled = cloze["question"].replace("____", cloze["target"])
        assert any(filled in ctx["text"] for ctx in cloze["ctxs"])
        assert has_answer(cloze["answers"], filled)
        assert 1 <= len(cloze["target"].split()) <= 4
        assert cloze["target"] == cloze["target"].strip(".,;:!?()\"'")


def test_input_is_left_alone_and_seed_repeats():
    before = repr(EXAMPLES)
    first = cloze_examples(EXAMPLES, copies=2, seed=3)
    assert repr(EXAMPLES) == before
    assert first == cloze_examples(EXAMPLES, copies=2, seed=3)
    assert first != cloze_examples(EXAMPLES, copies=2, seed=4)


def test_passage_filter_keeps_spans_out_of_excluded_passages():
    clozes = cloze_examples(
        EXAMPLES[:1],
        copies=20,
        passage_filter=lambda ctx: ctx["title"] == "Peru",
    )
    assert len(clozes) == 20
    for cloze in clozes:
        filled = cloze["question"].replace("____", cloze["target"])
        assert filled in EXAMPLES[0]["ctxs"][1]["text"]
    assert cloze_examples(EXAMPLES, passage_filter=lambda ctx: False) == []


def test_scrambled_answers_are_rewritten_in_the_source_passage():
    clozes = cloze_examples(
        EXAMPLES, copies=5, answers="scrambled", source_only=True, seed=2
    )
    assert len(clozes) == 10
    originals = [c["text"] for e in EXAMPLES for c in e["ctxs"]]
    rewritten = 0
    for cloze in clozes:
        (ctx,) = cloze["ctxs"]
        filled = cloze["question"].replace("____", cloze["target"])
        assert filled in ctx["text"]
        # The span's letters were substituted, its length kept.
        assert len(ctx["text"]) in {len(t) for t in originals}
        rewritten += ctx["text"] not in originals
    assert rewritten >= 8


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"copies": -1}, "copies"),
        ({"copies": 1.5}, "copies"),
        ({"max_span_words": 0}, "max_span_words"),
        ({"min_chars": True}, "min_chars"),
        ({"blank": " "}, "blank"),
        ({"passage_filter": "Peru"}, "passage_filter"),
        ({"answers": "donor"}, "answers"),
    ],
)
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        cloze_examples(EXAMPLES, **kwargs)


def test_example_without_passage_list_is_named():
    with pytest.raises(ValueError, match="Example 1 .*ctxs"):
        cloze_examples([EXAMPLES[0], {"question": "q", "ctxs": None}])
