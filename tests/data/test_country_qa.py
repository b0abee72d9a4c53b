import json
import os

import pytest

from keras_fido.data import build_country_qa
from keras_fido.data import corpus_lines
from keras_fido.data import country_qa_passages
from keras_fido.data import country_qa_stats
from keras_fido.data import load_fid_json
from keras_fido.data import write_country_qa
from keras_fido.data.country_facts import FACT_NAMES
from keras_fido.data.country_facts import load_country_facts
from keras_fido.data.country_passages import country_passages
from keras_fido.metrics import has_answer
from keras_fido.metrics import normalize_answer


@pytest.fixture(scope="module")
def splits():
    return build_country_qa(num_passages=10, seed=0)


@pytest.fixture(scope="module")
def stats(splits):
    return country_qa_stats(splits)


def _all(splits):
    return [e for examples in splits.values() for e in examples]


def test_split_sizes(splits, stats):
    assert set(splits) == {"train", "validation", "test"}
    countries = {s: stats["splits"][s]["countries"] for s in splits}
    total = sum(countries.values())
    assert total >= 200
    assert countries["validation"] == countries["test"] == round(total / 10)
    assert all(len(examples) > 100 for examples in splits.values())


def test_splits_are_disjoint_by_country(splits):
    facts = {f["name"]: f["group"] for f in load_country_facts()}
    owners = {}
    for split, examples in splits.items():
        for example in examples:
            group = facts[example["country"]]
            assert owners.setdefault(group, split) == split
    # "Burma" and "Myanmar" share ISO code MMR, hence a split.
    assert owners["MMR"] in splits


def test_split_depends_on_seed(splits):
    other = build_country_qa(num_passages=10, seed=1)
    assert {e["country"] for e in other["test"]} != {
        e["country"] for e in splits["test"]
    }


def test_examples_are_well_formed(splits):
    ids = set()
    for example in _all(splits):
        assert example["question"].endswith(("?", "."))
        assert example["country"] in example["question"]
        assert example["fact"] in FACT_NAMES
        answers = example["answers"]
        assert answers and all(isinstance(a, str) for a in answers)
        assert all(normalize_answer(a) for a in answers)
        assert example["target"] == answers[0]
        assert len(example["ctxs"]) == 10
        scores = [c["score"] for c in example["ctxs"]]
        assert scores == sorted(scores, reverse=True)
        assert example["id"] not in ids
        ids.add(example["id"])


def test_known_facts(splits):
    by_question = {e["question"]: e for e in _all(splits)}
    capital = [
        e
        for q, e in by_question.items()
        if e["country"] == "France" and e["fact"] == "capital"
    ]
    assert capital and capital[0]["answers"] == ["Paris"]
    currency = [
        e
        for e in by_question.values()
        if e["country"] == "Japan" and e["fact"] == "currency"
    ]
    assert currency[0]["answers"] == ["Japanese yen", "JPY"]


def test_every_passage_mentions_its_country():
    passages = country_qa_passages()
    assert len(passages) > 800
    assert len({p["id"] for p in passages}) == len(passages)
    for passage in passages:
        assert passage["text"]
        assert passage["title"] in passage["text"]


def test_every_fact_is_stated_in_its_countrys_passages(splits):
    facts = {f["name"]: f for f in load_country_facts()}
    for example in _all(splits):
        text = " ".join(
            p["text"] for p in country_passages(facts[example["country"]])
        )
        assert has_answer(example["answers"], text), example["question"]


def test_retrieval_is_deterministic(splits):
    again = build_country_qa(num_passages=10, seed=0)
    assert again == splits


def test_recall_is_reported_and_well_above_chance(stats):
    assert stats["num_passages"] == 10
    for split in ("train", "validation", "test", "all"):
        summary = stats["splits"][split]
        # Measured: answer recall@10 = 1.0 overall (0.977 @4 on test),
        # chance 0.08.
        assert summary["answer_recall"] >= 0.95
        assert summary["chance_answer_recall"] < 0.25
        assert summary["gold_passage_recall"] >= 0.95
        # The first passage alone is often wrong: readers must look further.
        assert summary["top1_answer_recall"] < summary["answer_recall"]


def test_has_answer_flags_match_the_passages(splits):
    for example in splits["validation"]:
        found = any(
            has_answer(example["answers"], f"{c['title']} {c['text']}")
            for c in example["ctxs"]
        )
        assert example["has_answer"] == found


def test_more_phrasings_and_fewer_passages():
    small = build_country_qa(num_passages=3, phrasings_per_fact=2)
    questions = {}
    for example in _all(small):
        assert len(example["ctxs"]) == 3
        key = (example["country"], example["fact"])
        questions.setdefault(key, set()).add(example["question"])
    assert all(len(q) == 2 for q in questions.values())


def test_write_country_qa(tmp_path):
    directory = str(tmp_path / "country_qa")
    stats = write_country_qa(directory, num_passages=4, seed=2)
    names = sorted(os.listdir(directory))
    assert names == ["stats.json", "test.json", "train.json", "validation.json"]
    with open(os.path.join(directory, "stats.json")) as f:
        assert json.load(f) == json.loads(json.dumps(stats))
    assert stats["arguments"] == {"num_passages": 4, "seed": 2}
    ds = load_fid_json(os.path.join(directory, "test.json"), num_passages=4)
    count = sum(1 for _ in ds)
    assert count == stats["splits"]["test"]["questions"]


def test_corpus_lines():
    lines = corpus_lines()
    assert len(lines) == len(country_qa_passages())
    with_questions = corpus_lines(include_questions=True)
    assert len(with_questions) > len(lines)
    assert "What is the capital of France?" in with_questions


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_passages": 0}, "num_passages"),
        ({"phrasings_per_fact": 0}, "phrasings_per_fact"),
        ({"split_fractions": (0.5, 0.5)}, "split_fractions"),
        ({"split_fractions": (0.8, 0.3, -0.1)}, "split_fractions"),
    ],
)
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_country_qa(**kwargs)
