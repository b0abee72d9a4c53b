"""Answer-swapped copies keep one consistent answer, written in the text."""

import copy

import pytest

from keras_fido.data.counterfactual_examples import counterfactual_examples


def example(country, currency, code, fact="currency"):
    return {
        "question": f"What currency is used in {country}?",
        "answers": [currency, code],
        "target": currency,
        "fact": fact,
        "ctxs": [
            {
                "title": country,
                "text": f"{country} uses the {currency} ({code}).",
            },
            {"title": country, "text": f"{country} is a country."},
        ],
    }


EXAMPLES = [
    example("France", "euro", "EUR"),
    example("Japan", "Japanese yen", "JPY"),
    example("Peru", "Peruvian sol", "PEN"),
]


def test_answers_and_aliases_are_swapped_in_text_and_target():
    copies = counterfactual_examples(EXAMPLES, seed=3)
    assert len(copies) == len(EXAMPLES)
    for original, swapped in zip(EXAMPLES, copies):
        name, code = swapped["answers"]
        assert swapped["target"] == name != original["target"]
        text = swapped["ctxs"][0]["text"]
        assert f"the {name} ({code})." in text
        assert original["target"] not in text
        assert swapped["question"] == original["question"]
        assert swapped["ctxs"][0]["title"] == original["ctxs"][0]["title"]
        assert swapped["counterfactual"] is True


def test_input_is_not_modified_and_seed_fixes_the_donors():
    before = copy.deepcopy(EXAMPLES)
    first = counterfactual_examples(EXAMPLES, copies=2, seed=1)
    assert EXAMPLES == before
    assert first == counterfactual_examples(EXAMPLES, copies=2, seed=1)
    assert len(first) == 2 * len(EXAMPLES)


def test_only_whole_words_are_replaced():
    rows = [
        {
            "answers": ["Asia"],
            "target": "Asia",
            "fact": "region",
            "ctxs": [{"title": "Laos", "text": "Laos is in Asia. Asian food."}],
        },
        {
            "answers": ["Europe"],
            "target": "Europe",
            "fact": "region",
            "ctxs": [{"title": "Peru", "text": "Spain is in Europe."}],
        },
    ]
    swapped = counterfactual_examples(rows)[0]
    assert swapped["ctxs"][0]["text"] == "Laos is in Europe. Asian food."


def test_examples_without_their_answer_in_the_text_or_a_donor_give_none():
    unanswerable = dict(EXAMPLES[0], target="franc", answers=["franc"])
    alone = example("Chad", "CFA franc", "XAF", fact="only one")
    assert counterfactual_examples([unanswerable, alone]) == []
    assert counterfactual_examples(EXAMPLES, copies=0) == []


def test_missing_group_field_and_bad_copies_are_refused():
    with pytest.raises(ValueError, match="no 'kind' field"):
        counterfactual_examples(EXAMPLES, group_key="kind")
    with pytest.raises(ValueError, match="copies"):
        counterfactual_examples(EXAMPLES, copies=-1)


def test_scrambled_answers_keep_their_shape_and_aliases_follow():
    rows = [
        example("France", "euro", "EUR"),
        {
            "answers": ["+1268", "1268"],
            "target": "+1268",
            "fact": "calling_code",
            "ctxs": [{"title": "Antigua", "text": "Its code is +1268."}],
        },
    ]
    euro, code = counterfactual_examples(rows, answers="scrambled", seed=5)
    name, alias = euro["answers"]
    assert len(name) == 4 and name.islower() and name != "euro"
    assert alias.isupper() and alias[:2] == name[:2].upper()
    assert euro["ctxs"][0]["text"] == f"France uses the {name} ({alias})."
    assert code["target"][0] == "+" and code["target"][1:].isdigit()
    assert code["answers"][1] == code["target"][1:]
    assert code["ctxs"][0]["text"] == f"Its code is {code['target']}."


def test_unknown_answer_source_is_refused():
    with pytest.raises(ValueError, match="answers"):
        counterfactual_examples(EXAMPLES, answers="random")
