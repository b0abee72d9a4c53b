"""SQuAD-style answer normalization."""

import re
import string

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text):
    """Normalizes an answer string the way SQuAD and FiD evaluate answers.

    The steps, in order: lowercase, drop ASCII punctuation, drop the articles
    "a", "an" and "the" (as whole words), then collapse runs of whitespace
    into single spaces and strip the ends. The function is idempotent:
    `normalize_answer(normalize_answer(s)) == normalize_answer(s)`.

    Args:
        text: str. A predicted or gold answer.

    Returns:
        The normalized string (possibly empty).

    Examples:
    ```python
    normalize_answer("The  Eiffel Tower!")  # "eiffel tower"
    normalize_answer("U.S.A.")  # "usa"
    ```
    """
    if not isinstance(text, str):
        raise ValueError(
            "`text` must be a python string. "
            f"Received: text={text!r} of type {type(text).__name__}"
        )
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())
