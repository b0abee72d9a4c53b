"""How many answers a reader can copy, piece for piece, from its passages."""

import collections

import numpy as np


def _ids(tokenizer, text):
    return [int(i) for i in np.asarray(tokenizer(text)).reshape(-1)]


def _contains(sequence, part):
    n = len(part)
    return any(
        sequence[i : i + n] == part for i in range(len(sequence) - n + 1)
    )


def copyable_answers(examples, tokenizer, preprocessor=None, group_key=None):
    """The fraction of targets whose pieces stand in a passage, by group.

    A copy head (`FiDOBackbone(copy_attention=True)`) writes an answer by
    attending to its pieces in the passages; it can only copy a target
    whose token ids appear, in order and contiguous, in the tokenized
    input of one of the example's passages. A tokenizer that cuts the
    same word differently in context and alone (`"+1268."` as one piece,
    `"+1268"` as two) leaves such answers uncopyable: see
    `train_sentencepiece(split_punctuation=True)`.

    Args:
        examples: list of FiD example dicts with `"ctxs"` (or
            `"passages"`) and `"target"` (or `"answers"`).
        tokenizer: a `FiDOTokenizer`.
        preprocessor: optional `FiDOSeq2SeqLMPreprocessor`; when given, the
            passage input is its FiD string (`question: ... title: ...
            context: ...`, before the cut to `passage_length`), else the
            passage text alone.
        group_key: optional example field to group by (e.g. `"fact"`).

    Returns:
        dict from group (or `"all"`) to the fraction in [0, 1]; examples
        without a target are skipped.
    """
    counts = collections.defaultdict(lambda: [0, 0])
    for example in examples:
        target = example.get("target") or (example.get("answers") or [None])[0]
        if target is None:
            continue
        passages = example.get("ctxs", example.get("passages")) or []
        if preprocessor is not None:
            texts = [t for t in preprocessor.encoder_strings(example) if t]
        else:
            texts = [p["text"] for p in passages]
        answer = _ids(tokenizer, target)
        hit = any(_contains(_ids(tokenizer, t), answer) for t in texts)
        group = example.get(group_key, "all") if group_key else "all"
        counts[group][0] += int(hit)
        counts[group][1] += 1
    return {k: hit / total for k, (hit, total) in counts.items()}
