import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_fido.metrics import evaluate_predictions
from keras_fido.metrics import exact_match
from keras_fido.metrics import f1_score


def test_exact_match_uses_normalization_and_any_answer():
    assert exact_match("the Euro", ["EUR", "euro"]) == 1.0
    assert exact_match("Paris.", "paris") == 1.0
    assert exact_match("Paris, France", ["Paris"]) == 0.0


def test_f1_is_token_overlap_max_over_answers():
    # precision 1/2, recall 1 -> 2/3.
    assert f1_score("Paris France", ["Paris"]) == pytest.approx(2 / 3)
    assert f1_score("Paris France", ["Lyon", "Paris"]) == pytest.approx(2 / 3)
    assert f1_score("New York City", ["York"]) == pytest.approx(0.5)
    assert f1_score("Rome", ["Paris"]) == 0.0


def test_f1_counts_repeated_tokens_once_per_occurrence():
    # Overlap is min(count): one "paris" of two -> p = 1/2, r = 1.
    assert f1_score("paris paris", ["paris"]) == pytest.approx(2 / 3)


def test_empty_normalized_strings():
    assert f1_score("the", ["a"]) == 1.0
    assert exact_match("the", ["a"]) == 1.0
    assert f1_score("", ["Paris"]) == 0.0
    assert f1_score("Paris", ["the"]) == 0.0


def test_evaluate_predictions():
    result = evaluate_predictions(
        ["Paris", "Rome", "New York City"],
        [["Paris"], ["Milan"], "York"],
    )
    assert result["count"] == 3
    assert result["exact_match"] == pytest.approx(100 / 3)
    assert result["f1"] == pytest.approx(100 * (1 + 0 + 0.5) / 3)


@pytest.mark.parametrize(
    "predictions, answers_list, match",
    [
        (["a"], [["a"], ["b"]], "same length"),
        ([], [], "at least one"),
        (["a"], [[]], r"answers_list\[0\]"),
        ([3], [["a"]], r"predictions\[0\]"),
        (["a"], [[None]], r"answers_list\[0\]\[0\]"),
    ],
)
def test_evaluate_predictions_errors(predictions, answers_list, match):
    with pytest.raises(ValueError, match=match):
        evaluate_predictions(predictions, answers_list)


def test_exact_match_errors():
    with pytest.raises(ValueError, match="`answers` must be a string"):
        exact_match("a", [])
    with pytest.raises(ValueError, match="`prediction` must be"):
        f1_score(None, ["a"])


answers_strategy = st.lists(st.text(max_size=20), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30), answers_strategy)
def test_exact_match_implies_full_f1(prediction, answers):
    f1 = f1_score(prediction, answers)
    assert 0.0 <= f1 <= 1.0
    if exact_match(prediction, answers):
        assert f1 == 1.0
        result = evaluate_predictions([prediction], [answers])
        assert result["exact_match"] == result["f1"] == 100.0


@settings(max_examples=200, deadline=None)
@given(answers_strategy, st.data())
def test_a_gold_answer_is_an_exact_match(answers, data):
    prediction = data.draw(st.sampled_from(answers))
    assert exact_match(prediction, answers) == 1.0
    assert f1_score(prediction, answers) == 1.0
