"""The embedded open-domain QA task: questions about the world's countries.

Everything comes from the data bundled with the `countryinfo` package, so
the task needs no download. For each country with enough facts, eight
short passages are written (government, currency, communications,
geography, area, borders, people, languages; see `country_passages`) and
questions are asked about its facts in several
phrasings (see `country_questions`). Every question is then answered by
retrieval: BM25 (`bm25s`) ranks the whole passage collection, all countries
and all splits, and the top `num_passages` passages become the example's
`"ctxs"`, so the reader has to find the answer among distractors (other
themes of the same country, neighbours, similarly named countries). The
splits are disjoint by country.
"""

import bisect
import json
import math
import os
import random

from keras_fido.data.bm25_retriever import BM25Retriever
from keras_fido.data.country_facts import load_country_facts
from keras_fido.data.country_passages import FACT_THEMES
from keras_fido.data.country_passages import country_passages
from keras_fido.data.country_questions import country_questions
from keras_fido.data.fid_json import write_fid_json
from keras_fido.metrics.answer_normalization import normalize_answer
from keras_fido.metrics.answer_recall import has_answer
from keras_fido.utils.checks import check_positive_int

SPLITS = ("train", "validation", "test")


def country_qa_passages(min_facts=6):
    """The task's whole passage collection.

    Args:
        min_facts: int. Countries need a capital and this many known facts.
            Defaults to `6`.

    Returns:
        A list of `{"id", "title", "text", "theme"}` dicts, countries sorted
        by name, themes in a fixed order. It does not depend on any seed.
    """
    return [
        passage
        for facts in load_country_facts(min_facts)
        for passage in country_passages(facts)
    ]


def corpus_lines(include_questions=False, min_facts=6):
    """The task's own text, e.g. to train a SentencePiece tokenizer on it.

    Args:
        include_questions: bool. Also return every question, in all
            phrasings, so question words ("what", "which") get their own
            pieces. Defaults to `False`: passage texts only.
        min_facts: int. As in `country_qa_passages`. Defaults to `6`.

    Returns:
        A list of str: every passage text (which names its country), then
        the questions if asked for.

    Examples:
    ```python
    proto = train_sentencepiece(corpus_lines(include_questions=True),
                                vocab_size=1000)
    ```
    """
    facts_list = load_country_facts(min_facts)
    lines = [
        passage["text"]
        for facts in facts_list
        for passage in country_passages(facts)
    ]
    if include_questions:
        rng = random.Random(0)
        lines += [
            q["question"]
            for facts in facts_list
            for q in country_questions(facts, rng, phrasings_per_fact=3)
        ]
    return lines


def _split_groups(groups, seed, split_fractions):
    """Assigns each country group to a split, deterministically."""
    if (
        not isinstance(split_fractions, (list, tuple))
        or len(split_fractions) != 3
        or any(
            isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0
            for x in split_fractions
        )
        or not math.isclose(sum(split_fractions), 1.0, abs_tol=1e-6)
    ):
        raise ValueError(
            "`split_fractions` must be 3 non-negative numbers (train, "
            "validation, test) summing to 1. "
            f"Received: split_fractions={split_fractions!r}"
        )
    groups = sorted(groups)
    random.Random(f"split:{seed}").shuffle(groups)
    num_validation = round(split_fractions[1] * len(groups))
    num_test = round(split_fractions[2] * len(groups))
    num_train = len(groups) - num_validation - num_test
    assignment = {}
    for i, group in enumerate(groups):
        if i < num_train:
            assignment[group] = "train"
        elif i < num_train + num_validation:
            assignment[group] = "validation"
        else:
            assignment[group] = "test"
    return assignment


def build_country_qa(
    num_passages=10,
    seed=0,
    phrasings_per_fact=1,
    split_fractions=(0.8, 0.1, 0.1),
    min_facts=6,
):
    """Builds the country QA task in FiD format, with BM25-retrieved passages.

    Countries (entries sharing an ISO alpha-3 code, like "Burma" and
    "Myanmar", count as one) are shuffled with `seed` and split by
    `split_fractions`; all questions about a country land in the same
    split. For each fact of a country, `phrasings_per_fact` phrasings are
    picked at random (with `seed`). Retrieval ranks the whole collection
    (`country_qa_passages()`) with `BM25Retriever` and keeps the top
    `num_passages`. The same arguments always give the same examples.

    Args:
        num_passages: int. Retrieved passages per question, `P`. Defaults
            to `10`.
        seed: int. Seeds the split and the choice of phrasings. Defaults to
            `0`.
        phrasings_per_fact: int. Questions per fact and country, each in a
            different phrasing; at most 3. Defaults to `1`.
        split_fractions: 3 floats. Fractions of countries in train,
            validation and test. Defaults to `(0.8, 0.1, 0.1)`.
        min_facts: int. Keep countries with a capital and at least this many
            of the 11 facts. Defaults to `6`.

    Returns:
        A dict `{"train": [...], "validation": [...], "test": [...]}` of
        FiD example dicts: `"id"`, `"question"`, `"answers"` (non-empty list
        of str, most natural first, with obvious aliases such as the
        currency code), `"target"` (`answers[0]`), `"ctxs"` (`P` dicts
        `{"id", "title", "text", "score"}`, best BM25 score first) and,
        for analysis, `"country"`, `"fact"`, `"has_answer"` (whether any
        retrieved passage contains a gold answer, FiD's answer recall) and
        `"gold_retrieved"` (whether the passage the question was written
        from was retrieved). Use `country_qa_stats()` for recall@P.

    Examples:
    ```python
    splits = build_country_qa(num_passages=10)
    splits["train"][0]["question"]  # e.g. "What is the capital of ...?"
    country_qa_stats(splits)["splits"]["test"]["answer_recall"]
    ```
    """
    check_positive_int("num_passages", num_passages)
    check_positive_int("phrasings_per_fact", phrasings_per_fact)
    facts_list = load_country_facts(min_facts)
    assignment = _split_groups(
        {facts["group"] for facts in facts_list}, seed, split_fractions
    )
    passages = [p for facts in facts_list for p in country_passages(facts)]
    retriever = BM25Retriever(passages)

    rng = random.Random(f"questions:{seed}")
    records = []
    for facts in facts_list:
        for question in country_questions(facts, rng, phrasings_per_fact):
            records.append((assignment[facts["group"]], facts, question))
    results = retriever.retrieve(
        [question["question"] for _, _, question in records], k=num_passages
    )

    splits = {split: [] for split in SPLITS}
    for (split, facts, question), retrieved in zip(records, results):
        ctxs = [
            {
                "id": passages[i]["id"],
                "title": passages[i]["title"],
                "text": passages[i]["text"],
                "score": round(score, 4),
            }
            for i, score in retrieved
        ]
        answers = question["answers"]
        gold_id = f"{facts['name']}/{FACT_THEMES[question['fact']]}"
        examples = splits[split]
        examples.append(
            {
                "id": f"{split}-{len(examples):05d}",
                "question": question["question"],
                "answers": answers,
                "target": answers[0],
                "ctxs": ctxs,
                "country": facts["name"],
                "fact": question["fact"],
                "has_answer": any(
                    has_answer(answers, f"{c['title']} {c['text']}")
                    for c in ctxs
                ),
                "gold_retrieved": any(c["id"] == gold_id for c in ctxs),
            }
        )
    return splits


def chance_answer_recall(examples, passages, num_passages):
    """Answer recall that `num_passages` random passages would reach.

    For a question whose answer occurs in `m` of the `N` passages, a random
    draw of `P` passages without replacement contains one with probability
    `1 - C(N - m, P) / C(N, P)`; this averages that over `examples`.

    Args:
        examples: list of FiD example dicts with `"answers"`.
        passages: list of `{"title", "text"}` dicts, the whole collection.
        num_passages: int. `P`.

    Returns:
        A float in `[0, 1]`.
    """
    if not examples:
        return 0.0
    # One string with every normalized passage; each answer is searched in
    # it once, and a hit is mapped back to its passage by offset.
    texts = [
        f" {normalize_answer(p.get('title', '') + ' ' + p['text'])} "
        for p in passages
    ]
    starts = [0]
    for text in texts:
        starts.append(starts[-1] + len(text) + 1)
    joined = "\n".join(texts)
    total = len(texts)
    draws = min(num_passages, total)

    def passages_with(answer):
        found, pattern, pos = set(), f" {answer} ", 0
        while True:
            pos = joined.find(pattern, pos)
            if pos < 0:
                return found
            index = bisect.bisect_right(starts, pos) - 1
            found.add(index)
            pos = starts[index + 1]

    cache = {}
    recall = 0.0
    for example in examples:
        key = tuple(example["answers"])
        if key not in cache:
            hits = set()
            for answer in key:
                answer = normalize_answer(answer)
                if answer:
                    hits |= passages_with(answer)
            cache[key] = 1.0 - math.comb(total - len(hits), draws) / (
                math.comb(total, draws)
            )
        recall += cache[key]
    return recall / len(examples)


def country_qa_stats(splits, passages=None):
    """Counts and retrieval recall of a built country QA task.

    Args:
        splits: dict split -> examples, from `build_country_qa`.
        passages: list or `None`. The passage collection, to compute the
            chance level; defaults to `country_qa_passages()`.

    Returns:
        A dict with `"num_passages"` (`P`), `"corpus_passages"` (`N`) and,
        under `"splits"`, for each split: `"countries"`, `"questions"`,
        `"answer_recall"` (fraction of questions with a gold answer in their
        top `P` passages, FiD's recall@P), `"top1_answer_recall"` (the
        same for the first passage alone), `"gold_passage_recall"`
        (fraction whose source passage is in the top `P`) and
        `"chance_answer_recall"` (the answer recall of `P` random
        passages). Recalls are fractions in `[0, 1]`. `"all"` pools the
        splits.
    """
    if passages is None:
        passages = country_qa_passages()
    num_passages = max(
        (len(e["ctxs"]) for examples in splits.values() for e in examples),
        default=0,
    )
    pooled = [e for examples in splits.values() for e in examples]

    def summary(examples):
        count = max(len(examples), 1)
        return {
            "countries": len({e["country"] for e in examples}),
            "questions": len(examples),
            "answer_recall": sum(e["has_answer"] for e in examples) / count,
            "top1_answer_recall": sum(
                bool(e["ctxs"])
                and has_answer(
                    e["answers"],
                    f"{e['ctxs'][0]['title']} {e['ctxs'][0]['text']}",
                )
                for e in examples
            )
            / count,
            "gold_passage_recall": sum(e["gold_retrieved"] for e in examples)
            / count,
            "chance_answer_recall": chance_answer_recall(
                examples, passages, num_passages
            ),
        }

    stats = {split: summary(examples) for split, examples in splits.items()}
    stats["all"] = summary(pooled)
    return {
        "num_passages": num_passages,
        "corpus_passages": len(passages),
        "splits": stats,
    }


def write_country_qa(directory, num_passages=10, seed=0, **kwargs):
    """Builds the country QA task and writes it as FiD json files.

    Writes `train.json`, `validation.json` and `test.json` (json arrays of
    FiD examples, readable by `load_fid_json` and the FiD reference code)
    and `stats.json` (`country_qa_stats` plus the build arguments).

    Args:
        directory: str or path-like. Created if missing.
        num_passages: int. Retrieved passages per question. Defaults to
            `10`.
        seed: int. Split and phrasing seed. Defaults to `0`.
        **kwargs: More `build_country_qa` arguments (`phrasings_per_fact`,
            `split_fractions`, `min_facts`).

    Returns:
        The stats dict written to `stats.json`.

    Examples:
    ```python
    stats = write_country_qa("country_qa", num_passages=10)
    train = load_fid_json("country_qa/train.json", num_passages=10)
    ```
    """
    os.makedirs(directory, exist_ok=True)
    splits = build_country_qa(num_passages=num_passages, seed=seed, **kwargs)
    for split, examples in splits.items():
        write_fid_json(os.path.join(directory, f"{split}.json"), examples)
    passages = country_qa_passages(kwargs.get("min_facts", 6))
    stats = country_qa_stats(splits, passages)
    stats["arguments"] = {"num_passages": num_passages, "seed": seed, **kwargs}
    with open(
        os.path.join(directory, "stats.json"), "w", encoding="utf-8"
    ) as f:
        json.dump(stats, f, indent=2, sort_keys=True)
        f.write("\n")
    return stats
