"""Answer-swapped copies of training examples, so a reader has to read."""

import collections
import random
import re


def _whole_words(strings):
    """One regex matching any of `strings` as whole words, longest first."""
    alternatives = sorted(set(strings), key=len, reverse=True)
    return re.compile(
        r"(?<!\w)(" + "|".join(re.escape(s) for s in alternatives) + r")(?!\w)"
    )


_VOWELS = "aeiou"
_CONSONANTS = "bcdfghjklmnpqrstvwxyz"
_DIGITS = "0123456789"


def letter_scrambler(rng):
    """A random letter and digit substitution that keeps the string's shape.

    Vowels map to vowels and consonants to consonants (so the result stays
    pronounceable and tokenizes like a name), case is kept, and digits map
    to digits; spaces, punctuation and other characters are unchanged. One
    mapping is used for all answers of an example, so aliases stay aliases
    ("euro" and "EUR" both change the same way).
    """
    table = {}
    for alphabet in (_VOWELS, _CONSONANTS, _DIGITS):
        shuffled = list(alphabet)
        rng.shuffle(shuffled)
        table.update(zip(alphabet, shuffled))
        table.update((a.upper(), b.upper()) for a, b in zip(alphabet, shuffled))
    return lambda text: "".join(table.get(c, c) for c in text)


def counterfactual_examples(
    examples, group_key="fact", copies=1, seed=0, answers="donor"
):
    """Copies of FiD examples whose answer is swapped for another's.

    A small reader trained from scratch on a few thousand questions can
    lower its loss by memorising which answer goes with which question
    ("the capital of France is Paris") instead of learning to find the
    answer in the passages, and then fails on questions about unseen
    entities. Counterfactual copies remove that shortcut: in each copy the
    gold answers are replaced, wherever they occur in the passage texts,
    by the answers of another example of the same group (for the embedded
    country task, the same kind of fact), and the target follows. The only
    way to get such a copy right is to read it.

    With `answers="scrambled"`, the new answers are instead the gold ones
    with their letters and digits substituted at random (vowels for vowels,
    consonants for consonants, digits for digits; one substitution per
    copy, so aliases stay consistent): "Saint John's" may become "Beonk
    Tuvh's" and "+1268" "+7403". Every copy then has an answer never seen
    before, so even recognising a memorised answer in the passages does
    not help: the reader must learn to copy, which is what transfers to
    unseen entities. `group_key` is not used then.

    An example yields a copy only when its target occurs in a passage text
    as a whole word; the donor is drawn from the same group among examples
    with a different target, none of whose answers already occur in the
    passages (so the copy has one consistent answer). The i-th gold answer
    is replaced by the donor's i-th (aliases such as a currency code
    follow their name); gold answers beyond the donor's count are not
    replaced and are dropped from the copy's answers. Titles are left
    as they are. Held-out data must never be augmented.

    Args:
        examples: list of FiD example dicts with `"answers"`, `"target"`,
            `"ctxs"` (`{"title", "text", ...}`) and the `group_key` field.
        group_key: str. The field whose value groups interchangeable
            answers. Defaults to `"fact"` (the country task's fact name).
        copies: int. Copies made of each example (each with its own
            donor). Defaults to `1`.
        seed: int. Seeds the choice of donors and substitutions. Defaults
            to `0`.
        answers: `"donor"` or `"scrambled"`. Where the new answers come
            from: another example of the same group, or the example's own
            answers with letters and digits substituted. Defaults to
            `"donor"`.

    Returns:
        A new list of example dicts (the input is not modified), in input
        order, each copy with `"counterfactual": True` and the donor's
        answers; examples without a usable target or donor give none. Its
        length is reported by the caller; it is at most
        `copies * len(examples)`.

    Examples:
    ```python
    splits = build_country_qa(num_passages=4)
    train = splits["train"] + counterfactual_examples(splits["train"])
    ```
    """
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 0:
        raise ValueError(
            f"`copies` must be a non-negative int. Received: copies={copies!r}"
        )
    if answers not in ("donor", "scrambled"):
        raise ValueError(
            "`answers` must be 'donor' or 'scrambled'. "
            f"Received: answers={answers!r}"
        )
    groups = collections.defaultdict(list)
    for index, example in enumerate(examples):
        if answers == "donor" and group_key not in example:
            raise ValueError(
                f"Example {index} has no {group_key!r} field to group "
                f"answers by; its keys are {sorted(example)}."
            )
        if answers == "donor":
            groups[example[group_key]].append(example)
    rng = random.Random(f"counterfactual:{seed}")
    result = []
    for _ in range(copies):
        for example in examples:
            if answers == "donor":
                group = groups[example[group_key]]
                new_answers = lambda: rng.choice(group)["answers"]  # noqa: E731
            else:
                new_answers = _scrambled_answers(example, rng)
            copy = _swap(example, new_answers)
            if copy is not None:
                result.append(copy)
    return result


def _scrambled_answers(example, rng):
    """A function drawing scrambled answers for `example`.

    An alias that contains the target ("640,679 square kilometres" for
    "640,679") keeps its other words; other aliases are scrambled with the
    same substitution as the target.
    """
    target = example["target"]

    def draw():
        scramble = letter_scrambler(rng)
        new_target = scramble(target)
        return [
            a.replace(target, new_target) if target in a else scramble(a)
            for a in example["answers"]
        ]

    return draw


def _swap(example, new_answers, tries=8):
    answers, target = list(example["answers"]), example["target"]
    texts = [ctx["text"] for ctx in example["ctxs"]]
    if target not in answers or not any(
        _whole_words([target]).search(t) for t in texts
    ):
        return None
    for _ in range(tries):
        pairs = list(zip(answers, new_answers()))
        new = dict(pairs)
        if target not in new or new[target] == target:
            continue
        # The new answers must not already be written in the passages.
        if any(_whole_words(new.values()).search(t) for t in texts):
            continue
        pattern = _whole_words(new)
        ctxs = [
            dict(ctx, text=pattern.sub(lambda m: new[m.group(1)], ctx["text"]))
            for ctx in example["ctxs"]
        ]
        return dict(
            example,
            answers=[d for _, d in pairs],
            target=new[target],
            ctxs=ctxs,
            counterfactual=True,
        )
    return None
