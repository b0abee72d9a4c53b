"""`load_tfds_qa` on tiny tfds datasets prepared here, never downloaded."""

import logging

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_fido.data import load_fid_json
from keras_fido.data import load_tfds_qa
from keras_fido.data import write_fid_json

LOGGER = "keras_fido.data.tfds_qa"

NQ_ROWS = [
    ("who wrote dune", ["Frank Herbert"]),
    ("capital of peru", ["Lima", "Lima", "lima"]),
    ("what is the sol", ["currency of Peru"]),
]


class FakeNaturalQuestionsOpen(
    tfds.builder_cls("natural_questions_open"), skip_registration=True
):
    """The real builder's name, version and features; our examples."""

    name = "natural_questions_open"
    code_path = None  # Not a tfds package module: no checksums to find.

    def _split_generators(self, dl_manager):
        return {"validation": self._generate_examples(NQ_ROWS)}

    def _generate_examples(self, rows):
        for key, (question, answers) in enumerate(rows):
            yield key, {"question": question, "answer": answers}


def _trivia_example(question, question_id, value, aliases):
    empty = np.zeros([0], dtype=object)
    return {
        "question": question,
        "question_id": question_id,
        "question_source": "",
        "entity_pages": {
            k: empty
            for k in ("doc_source", "filename", "title", "wiki_context")
        },
        "search_results": {
            "description": empty,
            "filename": empty,
            "rank": np.zeros([0], dtype=np.int32),
            "title": empty,
            "url": empty,
            "search_context": empty,
        },
        "answer": {
            "aliases": aliases,
            "normalized_aliases": [a.lower() for a in aliases],
            "matched_wiki_entity_name": "",
            "normalized_matched_wiki_entity_name": "",
            "normalized_value": value.lower(),
            "type": "WikipediaEntity",
            "value": value,
        },
    }


class FakeTriviaQA(tfds.builder_cls("trivia_qa"), skip_registration=True):
    name = "trivia_qa"
    code_path = None

    def _split_generators(self, dl_manager):
        return {"validation": self._generate_examples()}

    def _generate_examples(self):
        yield 0, _trivia_example("Who wrote Dune?", "tc_1", "Herbert", [])
        yield (
            1,
            _trivia_example(
                "Which river flows through Lima?", "tc_2", "Rimac", ["Rímac"]
            ),
        )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("tfds"))
    FakeNaturalQuestionsOpen(data_dir=path).download_and_prepare()
    FakeTriviaQA(config="rc.nocontext", data_dir=path).download_and_prepare()
    return path


def _ctxs(*texts):
    return [
        {"title": f"t{i}", "text": text, "score": float(i)}
        for i, text in enumerate(texts)
    ]


def _decode(values):
    return [v.decode("utf-8") for v in np.asarray(values).tolist()]


def _messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def _retrieval_file(tmp_path, records):
    path = str(tmp_path / "retrieved.jsonl")
    write_fid_json(path, records)
    return path


def test_nq_open_joined_by_normalized_question(tmp_path, data_dir):
    path = _retrieval_file(
        tmp_path,
        [
            {"question": "Unrelated?", "ctxs": _ctxs("no")},
            {"id": 11, "question": "What is  the Sol?", "ctxs": _ctxs("s")},
            {"question": "capital of peru ?", "ctxs": _ctxs("a", "b", "c")},
            {"question": "Who wrote Dune?", "ctxs": _ctxs("dune")},
        ],
    )
    ds = load_tfds_qa(
        "natural_questions_open",
        "validation",
        retrieval=path,
        data_dir=data_dir,
        num_passages=2,
    )
    reference_path = str(tmp_path / "reference.jsonl")
    write_fid_json(
        reference_path, [{"question": "q", "answers": [], "ctxs": []}]
    )
    reference = load_fid_json(reference_path, num_passages=2)
    assert ds.element_spec == reference.element_spec
    elements = {e["question"]: e for e in ds.as_numpy_iterator()}
    assert sorted(elements) == sorted(q.encode() for q, _ in NQ_ROWS)
    peru = elements[b"capital of peru"]
    assert _decode(peru["answers"]) == ["Lima", "lima"]  # Deduplicated.
    assert peru["target"] == b"Lima"
    assert _decode(peru["texts"]) == ["c", "b"]  # By score, then cut.
    assert _decode(elements[b"who wrote dune"]["texts"]) == ["dune", ""]
    assert elements[b"what is the sol"]["id"] == b"11"


def test_trivia_qa_joined_by_question_id(tmp_path, data_dir, caplog):
    path = _retrieval_file(
        tmp_path,
        [
            {"id": "tc_2", "question": "River of Lima", "ctxs": _ctxs("r")},
            {"id": "tc_9", "question": "Who wrote Dune", "ctxs": _ctxs("d")},
        ],
    )
    with caplog.at_level(logging.WARNING, LOGGER):
        ds = load_tfds_qa(
            "trivia_qa/rc.nocontext", "validation", path, data_dir
        )
    elements = {e["id"]: e for e in ds.as_numpy_iterator()}
    river, dune = elements[b"tc_2"], elements[b"tc_1"]
    assert river["question"] == b"Which river flows through Lima?"
    assert _decode(river["answers"]) == ["Rimac", "R\u00edmac"]
    assert _decode(river["texts"]) == ["r"]
    assert _decode(dune["texts"]) == ["d"]  # Its id differs: by text.
    (message,) = _messages(caplog)
    assert "1 question(s)" in message and "joined by id" in message


def test_questions_without_retrieval_raise_with_a_count(tmp_path, data_dir):
    path = _retrieval_file(
        tmp_path, [{"question": "who wrote dune", "ctxs": _ctxs("x")}]
    )
    match = r"2 of the 3 questions .* 'capital of peru'.*on_missing='skip'"
    with pytest.raises(ValueError, match=match):
        load_tfds_qa("natural_questions_open", "validation", path, data_dir)


def test_questions_without_retrieval_can_be_skipped(data_dir, caplog):
    retrieval = {"Who wrote Dune?": _ctxs("x"), "other": _ctxs("y")}
    with caplog.at_level(logging.WARNING, LOGGER):
        ds = load_tfds_qa(
            "natural_questions_open",
            "validation",
            retrieval,
            data_dir,
            on_missing="skip",
        )
    (element,) = list(ds.as_numpy_iterator())
    assert element["question"] == b"who wrote dune"
    assert _decode(element["texts"]) == ["x"]
    (message,) = _messages(caplog)
    assert message.startswith("2 of the 3 questions") and "skipped" in message


def test_no_question_matched_is_an_error_even_when_skipping(data_dir):
    with pytest.raises(ValueError, match="None matched"):
        load_tfds_qa(
            "natural_questions_open",
            "validation",
            {"unrelated": _ctxs("x")},
            data_dir,
            on_missing="skip",
        )


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
    data_dir = str(tmp_path / "empty")
    match = (
        rf"'web_questions' is not prepared in {data_dir}.*never downloads.*"
        rf"tfds build web_questions --data_dir={data_dir}.*"
        r"download_and_prepare\(\)"
    )
    with pytest.raises(FileNotFoundError, match=match):
        load_tfds_qa("web_questions", "test", {"q": []}, data_dir=data_dir)


def test_unknown_split_lists_the_splits(data_dir):
    with pytest.raises(ValueError, match=r"\['validation'\].*split='dev'"):
        load_tfds_qa("natural_questions_open", "dev", {"q": []}, data_dir)


def test_unknown_feature_lists_the_features(data_dir):
    with pytest.raises(ValueError, match=r"no feature 'query'.*'question'"):
        load_tfds_qa(
            "natural_questions_open",
            "validation",
            {"q": []},
            data_dir,
            question_key="query",
        )


def test_question_without_passages_can_be_an_error(data_dir):
    retrieval = {"who wrote dune": [], "capital of peru": _ctxs("x")}
    with pytest.raises(ValueError, match=r"1 question\(s\) .*no passages"):
        load_tfds_qa(
            "natural_questions_open",
            "validation",
            retrieval,
            data_dir,
            on_missing="skip",
            on_empty_ctxs="raise",
        )
