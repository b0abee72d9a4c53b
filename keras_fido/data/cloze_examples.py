"""Cloze questions over a reader's own passages, to teach it to copy."""

import random
import re

from keras_fido.data.counterfactual_examples import letter_scrambler

# A sentence ends at ., ! or ? followed by a space and a capital or digit;
# "St. Lucia" and "1.5" stay whole.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
# Punctuation kept out of a span's ends, so targets read like answers.
_EDGE = ".,;:!?()\"'"


def _sentences(text):
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _span_choices(words, max_span_words, min_chars):
    """All (start, end) word spans whose stripped text is long enough."""
    choices = []
    for start in range(len(words)):
        for end in range(
            start + 1, min(start + max_span_words, len(words)) + 1
        ):
            span = " ".join(words[start:end]).strip(_EDGE)
            if len(span) >= min_chars:
                choices.append((start, end))
    return choices


def _cloze(sentence, rng, max_span_words, min_chars, blank, scramble):
    """(question, answer, new sentence) from `sentence`, or None.

    The new sentence is `sentence` with the span rewritten by `scramble`
    (or unchanged when `scramble` is None).
    """
    words = sentence.split()
    choices = _span_choices(words, max_span_words, min_chars)
    if not choices:
        return None
    start, end = rng.choice(choices)
    span = " ".join(words[start:end])
    answer = span.strip(_EDGE)
    # Punctuation stripped from the span's ends stays in the question.
    lead = span[: len(span) - len(span.lstrip(_EDGE))]
    tail = span[len(span.rstrip(_EDGE)) :]
    if scramble is not None:
        answer = scramble(answer)
    question = " ".join(words[:start] + [lead + blank + tail] + words[end:])
    rewritten = " ".join(words[:start] + [lead + answer + tail] + words[end:])
    return question, answer, rewritten


def _check_arguments(
    copies, max_span_words, min_chars, blank, passage_filter, answers
):
    for name, value, least in (
        ("copies", copies, 0),
        ("max_span_words", max_span_words, 1),
        ("min_chars", min_chars, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"`{name}` must be an int. Received: {name}={value!r}"
            )
        if value < least:
            raise ValueError(
                f"`{name}` must be at least {least}. Received: {name}={value}"
            )
    if not isinstance(blank, str) or not blank.strip():
        raise ValueError(
            f"`blank` must be a non-empty str. Received: blank={blank!r}"
        )
    if passage_filter is not None and not callable(passage_filter):
        raise ValueError(
            "`passage_filter` must be a callable taking a ctx dict, or None. "
            f"Received: passage_filter={passage_filter!r}"
        )
    if answers not in ("copied", "scrambled"):
        raise ValueError(
            "`answers` must be 'copied' or 'scrambled'. "
            f"Received: answers={answers!r}"
        )


def _cloze_example(
    example, index, rng, spans, passage_filter, answers, source_only
):
    """One cloze copy of `example`, or None when no sentence of an
    admissible passage has a span to blank. `spans` is
    `(max_span_words, min_chars, blank)`."""
    ctxs = example.get("ctxs")
    if not isinstance(ctxs, (list, tuple)):
        raise ValueError(
            f"Example {index} needs a list of passages in `ctxs`. "
            f"Received: {type(ctxs).__name__}"
        )
    sentences = [
        (position, sentence)
        for position, ctx in enumerate(ctxs)
        if passage_filter is None or passage_filter(ctx)
        for sentence in _sentences(str(ctx.get("text", "")))
    ]
    rng.shuffle(sentences)
    scramble = letter_scrambler(rng) if answers == "scrambled" else None
    for position, sentence in sentences:
        cloze = _cloze(sentence, rng, *spans, scramble)
        if cloze is None:
            continue
        question, answer, rewritten = cloze
        new_ctxs = list(ctxs)
        ctx = ctxs[position]
        new_ctxs[position] = dict(
            ctx, text=ctx["text"].replace(sentence, rewritten, 1)
        )
        return dict(
            example,
            question=question,
            answers=[answer],
            target=answer,
            ctxs=[new_ctxs[position]] if source_only else new_ctxs,
            fact="cloze",
            cloze=True,
        )
    return None


def cloze_examples(
    examples,
    copies=1,
    max_span_words=4,
    min_chars=2,
    blank="____",
    passage_filter=None,
    answers="copied",
    source_only=False,
    seed=0,
):
    """Cloze questions whose answer is written in one of the passages.

    A reader trained from scratch on a few thousand questions learns to
    memorise answers long before it learns to copy them out of its
    passages, and T5.1.1's untied output embedding never learns to emit a
    piece that no training target contains. Cloze copies fix both at the
    cost of no new data: each copy keeps an example's passages, picks one
    sentence of one passage, blanks out a span of a few words and asks for
    it ("The capital of Chile is ____." -> "Santiago"). The span is still
    written in the passage, so the only way to answer is to find that
    sentence among the passages and copy the span token by token; and the
    spans, drawn from all of the passages' text, put every piece of the
    collection into some target. Mixed into fine-tuning, the copies teach
    the copying that the real questions then use.

    Held-out answers must never become targets: when the passages of
    training examples can include held-out text (retrieval over a shared
    collection), pass a `passage_filter` that admits only training
    passages.

    Args:
        examples: list of FiD example dicts with `"ctxs"`
            (`{"title", "text", ...}`), e.g. the training split.
        copies: int. Cloze questions made from each example. Defaults to
            `1`.
        max_span_words: int. Longest blanked span, in whitespace-separated
            words. Defaults to `4`.
        min_chars: int. Shortest answer, in characters after punctuation is
            stripped from its ends. Defaults to `2`.
        blank: str. What replaces the span in the question. Defaults to
            `"____"`.
        passage_filter: callable taking a ctx dict and returning whether
            its text may be blanked, or `None` for every passage. Defaults
            to `None`.
        answers: `"copied"` or `"scrambled"`. With `"scrambled"`, the span
            is also rewritten in its passage with its letters and digits
            substituted at random (as `counterfactual_examples` does), and
            the target follows: no cloze answer can then be recalled from
            an earlier epoch, only copied. Defaults to `"copied"`.
        source_only: bool. Keep only the passage the span comes from, for
            a cheap one-passage copying phase before training on all
            passages. Defaults to `False`: all of the example's passages.
        seed: int. Seeds the choice of passage, sentence and span.
            Defaults to `0`.

    Returns:
        A new list of example dicts (the input is not modified), each with
        the cloze `"question"`, `"answers"` and `"target"` (the span),
        the source example's `"ctxs"` unchanged, `"fact": "cloze"` and
        `"cloze": True`. Examples with no admissible passage give none.

    Examples:
    ```python
    splits = build_country_qa(num_passages=4)
    train = splits["train"] + cloze_examples(splits["train"], copies=2)
    ```
    """
    _check_arguments(
        copies, max_span_words, min_chars, blank, passage_filter, answers
    )
    rng = random.Random(f"cloze:{seed}")
    spans = (max_span_words, min_chars, blank)
    result = []
    for _ in range(copies):
        for index, example in enumerate(examples):
            cloze = _cloze_example(
                example,
                index,
                rng,
                spans,
                passage_filter,
                answers,
                source_only,
            )
            if cloze is not None:
                result.append(cloze)
    return result
