"""The text a reader trains on, e.g. to train its tokenizer on."""


def example_text_lines(examples):
    """Every question, title and passage text of FiD examples, once each.

    A SentencePiece model trained on these lines has no piece that the
    reader never reads in training: a piece seen only in held-out text
    would keep its embedding at initialization, and a copy pointer's key
    for it would be noise. Held-out words are then cut into smaller
    pieces the reader knows.

    Args:
        examples: list of FiD example dicts (`question`, and `ctxs` of
            `{"title", "text"}` dicts).

    Returns:
        A list of str, in first-seen order, without repeats or empties.

    Examples:
    ```python
    lines = keras_fido.data.example_text_lines(train_examples)
    proto = keras_fido.data.train_sentencepiece(lines, vocab_size=6000,
                                                hard_vocab_limit=False)
    ```
    """
    seen, lines = set(), []

    def add(text, where):
        if text is None:
            return
        if not isinstance(text, str):
            raise ValueError(
                f"`{where}` must be a string. Received: {text!r} of type "
                f"{type(text).__name__}"
            )
        if text and text not in seen:
            seen.add(text)
            lines.append(text)

    for i, example in enumerate(examples):
        if not isinstance(example, dict) or "question" not in example:
            raise ValueError(
                f"`examples[{i}]` must be a FiD example dict with a "
                f"'question'. Received: {example!r:.80}"
            )
        add(example["question"], f"examples[{i}]['question']")
        for j, passage in enumerate(example.get("ctxs") or []):
            for field in ("title", "text"):
                add(
                    passage.get(field),
                    f"examples[{i}]['ctxs'][{j}]['{field}']",
                )
    return lines
