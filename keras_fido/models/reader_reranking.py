"""Reranking retrieved passages by a trained reader's own attention."""

import numpy as np

from keras_fido.metrics.answer_recall import has_answer
from keras_fido.utils.checks import check_positive_int


def _scoring_preprocessor(preprocessor, num_passages):
    """A copy of `preprocessor` that packs `num_passages` passages."""
    if preprocessor.num_passages == num_passages:
        return preprocessor
    return type(preprocessor)(
        preprocessor.tokenizer,
        num_passages=num_passages,
        passage_length=preprocessor.passage_length,
        decoder_sequence_length=preprocessor.decoder_sequence_length,
        question_prefix=preprocessor.question_prefix,
        title_prefix=preprocessor.title_prefix,
        context_prefix=preprocessor.context_prefix,
    )


def _passage_key(example):
    """The example's passage list field: `"passages"` or FiD's `"ctxs"`."""
    return "passages" if "passages" in example else "ctxs"


def reader_passage_scores(reader, examples, batch_size=32):
    """The reader's relevance score of every passage of every example.

    All of an example's passages are scored together, in one encoder and
    first-step decoder pass (`FiDOSeq2SeqLM.score_passages`), so a list of
    2P retrieved passages can be ranked by a reader trained on P.

    Args:
        reader: a `FiDOSeq2SeqLM` with a preprocessor attached.
        examples: list of FiD example dicts (`"question"` and `"ctxs"`
            or `"passages"`).
        batch_size: int. Examples scored per call. Defaults to `32`.

    Returns:
        A list of float32 numpy arrays, one per example, with one score per
        passage in `ctxs` order (higher is more relevant; compare within an
        example only). Passages beyond the preprocessor's `passage_length`
        are scored on their first `passage_length` tokens.
    """
    check_positive_int("batch_size", batch_size)
    if reader.preprocessor is None:
        raise ValueError(
            "`reader` needs a preprocessor to score raw examples. Received "
            "a reader with `preprocessor=None`; attach one first."
        )
    scores, preprocessors = [], {}
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        counts = [
            len(example.get(_passage_key(example)) or []) for example in batch
        ]
        slots = max(max(counts), 1)
        if slots not in preprocessors:
            preprocessors[slots] = _scoring_preprocessor(
                reader.preprocessor, slots
            )
        x = preprocessors[slots].generate_preprocess(batch)
        rows = reader.score_passages(
            {
                "encoder_token_ids": x["encoder_token_ids"],
                "encoder_padding_mask": x["encoder_padding_mask"],
            }
        )
        scores.extend(row[:count] for row, count in zip(rows, counts))
    return scores


def rerank_by_reader_scores(
    reader, examples, num_passages, batch_size=32, scores=None
):
    """Keeps each example's `num_passages` passages the reader finds best.

    FiD-KD's premise (Izacard & Grave, https://arxiv.org/abs/2012.04584):
    the reader's cross-attention is a better relevance signal than the
    retriever's score. Retrieve more passages than the reader reads (say
    2P), score them all with `reader_passage_scores`, and read the top P.

    Args:
        reader: a `FiDOSeq2SeqLM` with a preprocessor attached.
        examples: list of FiD example dicts (`"question"` and `"ctxs"`
            or `"passages"`).
        num_passages: int. Passages kept per example, best first.
        batch_size: int. Examples scored per call. Defaults to `32`.
        scores: optional list of per-passage score arrays already computed
            by `reader_passage_scores` for `examples`; `None` computes
            them.

    Returns:
        A new list of example dicts (the input is not modified) whose
        `"ctxs"` are the top `num_passages` by reader score, best first,
        each ctx with its `"reader_score"` added; ties keep the
        retriever's order.
    """
    check_positive_int("num_passages", num_passages)
    if scores is None:
        scores = reader_passage_scores(reader, examples, batch_size)
    if len(scores) != len(examples):
        raise ValueError(
            "`scores` must hold one array per example. Received "
            f"{len(scores)} score arrays for {len(examples)} examples."
        )
    reranked = []
    for example, row in zip(examples, scores):
        key = _passage_key(example)
        order = np.argsort(-row, kind="stable")[:num_passages]
        passages = [
            dict(example[key][i], reader_score=float(row[i])) for i in order
        ]
        reranked.append(dict(example, **{key: passages}))
    return reranked


def precision_at_1(examples, scores=None):
    """How often the top passage contains a gold answer (a fraction).

    Args:
        examples: list of FiD example dicts (`"answers"`, `"ctxs"`).
        scores: optional list of per-passage score arrays (e.g. from
            `reader_passage_scores`); `None` takes each example's first
            passage, i.e. the retriever's own ranking.

    Returns:
        A float in [0, 1]; examples without passages count as misses.
    """
    if not examples:
        raise ValueError("`examples` is empty: there is nothing to rank.")
    hits = 0
    for index, example in enumerate(examples):
        ctxs = example.get(_passage_key(example)) or []
        if not ctxs:
            continue
        top = 0 if scores is None else int(np.argmax(scores[index]))
        hits += bool(has_answer(example["answers"], ctxs[top]["text"]))
    return hits / len(examples)
