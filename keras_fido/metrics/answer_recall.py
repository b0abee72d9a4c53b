"""Whether retrieved passages contain a gold answer (retriever recall)."""

from keras_fido.metrics.answer_normalization import normalize_answer


def has_answer(answers, text):
    """Whether a passage contains one of the gold answers.

    The passage and each answer are normalized with `normalize_answer`; an
    answer is found when its normalized words occur as a contiguous run of
    whole words in the passage (so "Niger" is not found in "Nigeria").
    Answers that normalize to an empty string are never found.

    Args:
        answers: str or list of str. The gold answers.
        text: str. The passage text (e.g. `title + " " + text`).

    Returns:
        bool.

    Examples:
    ```python
    has_answer(["Paris"], "Paris is the capital of France.")  # True
    has_answer(["Niger"], "Abuja is the capital of Nigeria.")  # False
    ```
    """
    if isinstance(answers, str):
        answers = [answers]
    padded_text = f" {normalize_answer(text)} "
    for answer in answers:
        answer = normalize_answer(answer)
        if answer and f" {answer} " in padded_text:
            return True
    return False
