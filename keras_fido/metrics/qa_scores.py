"""Exact match and token F1, the FiD / SQuAD answer metrics."""

import collections

from keras_fido.metrics.answer_normalization import normalize_answer


def _check_answers(answers, field="answers"):
    """Returns `answers` as a non-empty list of strings."""
    if isinstance(answers, str):
        return [answers]
    if not isinstance(answers, (list, tuple)) or not answers:
        raise ValueError(
            f"`{field}` must be a string or a non-empty list of strings. "
            f"Received: {field}={answers!r}"
        )
    for i, answer in enumerate(answers):
        if not isinstance(answer, str):
            raise ValueError(
                f"`{field}[{i}]` must be a python string. Received: "
                f"{answer!r} of type {type(answer).__name__}"
            )
    return list(answers)


def _check_prediction(prediction, field="prediction"):
    if not isinstance(prediction, str):
        raise ValueError(
            f"`{field}` must be a python string. Received: "
            f"{prediction!r} of type {type(prediction).__name__}"
        )
    return prediction


def _token_f1(prediction_tokens, answer_tokens):
    if not prediction_tokens or not answer_tokens:
        # Both empty is a match; one empty is not.
        return float(prediction_tokens == answer_tokens)
    common = collections.Counter(prediction_tokens) & collections.Counter(
        answer_tokens
    )
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(answer_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction, answers):
    """Whether a prediction matches any gold answer after normalization.

    Both sides go through `normalize_answer` (lowercase, no punctuation, no
    articles, single spaces) before comparing.

    Args:
        prediction: str. The predicted answer.
        answers: str or non-empty list of str. The gold answers.

    Returns:
        `1.0` if the normalized prediction equals a normalized gold answer,
        else `0.0`.

    Examples:
    ```python
    exact_match("the Euro", ["euro", "EUR"])  # 1.0
    exact_match("Paris, France", "Paris")  # 0.0
    ```
    """
    prediction = normalize_answer(_check_prediction(prediction))
    answers = _check_answers(answers)
    return float(any(prediction == normalize_answer(a) for a in answers))


def f1_score(prediction, answers):
    """Token-level F1 between a prediction and its best gold answer.

    Tokens are the whitespace-separated words of the normalized strings
    (`normalize_answer`); overlap counts repeated tokens at most as often as
    they occur on both sides. The score is the maximum over the gold
    answers. When the normalized prediction or answer is empty, the score is
    `1.0` if both are empty and `0.0` otherwise, so an exact match always
    has F1 `1.0`.

    Args:
        prediction: str. The predicted answer.
        answers: str or non-empty list of str. The gold answers.

    Returns:
        A float in `[0, 1]`.

    Examples:
    ```python
    f1_score("Paris, France", ["Paris"])  # 0.666...
    f1_score("euro", ["the euro", "EUR"])  # 1.0
    ```
    """
    prediction_tokens = normalize_answer(_check_prediction(prediction)).split()
    answers = _check_answers(answers)
    return max(
        _token_f1(prediction_tokens, normalize_answer(a).split())
        for a in answers
    )


def evaluate_predictions(predictions, answers_list):
    """Mean exact match and F1 of predictions against gold answers.

    Args:
        predictions: list of str, one prediction per example.
        answers_list: list with, for each example, a str or a non-empty list
            of str (its gold answers). Same length as `predictions`.

    Returns:
        A dict `{"exact_match": float, "f1": float, "count": int}` with the
        means scaled to `[0, 100]`.

    Examples:
    ```python
    evaluate_predictions(["Paris", "Rome"], [["Paris"], ["Milan"]])
    # {"exact_match": 50.0, "f1": 50.0, "count": 2}
    ```
    """
    predictions = list(predictions)
    answers_list = list(answers_list)
    if len(predictions) != len(answers_list):
        raise ValueError(
            "`predictions` and `answers_list` must have the same length. "
            f"Received: {len(predictions)} predictions and "
            f"{len(answers_list)} answer lists"
        )
    if not predictions:
        raise ValueError(
            "`predictions` must hold at least one prediction. Received: []"
        )
    em_total, f1_total = 0.0, 0.0
    for i, (prediction, answers) in enumerate(zip(predictions, answers_list)):
        _check_prediction(prediction, f"predictions[{i}]")
        answers = _check_answers(answers, f"answers_list[{i}]")
        em_total += exact_match(prediction, answers)
        f1_total += f1_score(prediction, answers)
    count = len(predictions)
    return {
        "exact_match": 100.0 * em_total / count,
        "f1": 100.0 * f1_total / count,
        "count": count,
    }
