import json

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_fido.data import load_fid_json
from keras_fido.data import read_fid_examples
from keras_fido.data import write_fid_json


def _example(question="q", answers=("a",), ctxs=None, **extra):
    if ctxs is None:
        ctxs = [
            {"title": "t1", "text": "low", "score": "1.5"},
            {"title": "t2", "text": "high", "score": 9},
            {"title": "t3", "text": "mid", "score": 4.0},
        ]
    return {
        "question": question,
        "answers": list(answers),
        "ctxs": ctxs,
        **extra,
    }


def _decode(values):
    return [v.decode("utf-8") for v in np.asarray(values).tolist()]


@pytest.mark.parametrize("name", ["data.json", "data.jsonl", "data.jsonl.gz"])
def test_write_then_load(tmp_path, name):
    path = str(tmp_path / name)
    examples = [
        _example(id=17),
        _example("q2", ["x", "y"], ctxs=[{"text": "only"}], target="tgt"),
    ]
    assert write_fid_json(path, iter(examples)) == 2
    elements = list(load_fid_json(path, num_passages=2).as_numpy_iterator())
    first, second = elements
    assert first["question"] == b"q"
    assert _decode(first["texts"]) == ["high", "mid"]  # Sorted, then cut.
    assert _decode(first["titles"]) == ["t2", "t3"]
    np.testing.assert_array_equal(first["scores"], [9.0, 4.0])
    assert first["target"] == b"a"
    assert first["id"] == b"17"
    # Padded to num_passages; no score means 0.
    assert _decode(second["texts"]) == ["only", ""]
    assert _decode(second["titles"]) == ["", ""]
    np.testing.assert_array_equal(second["scores"], [0.0, 0.0])
    assert _decode(second["answers"]) == ["x", "y"]
    assert second["target"] == b"tgt"  # "target" wins over answers.
    assert second["id"] == b""


def test_element_spec_and_batching(tmp_path):
    path = str(tmp_path / "d.jsonl")
    write_fid_json(path, [_example(), _example(answers=["a", "b", "c"])])
    ds = load_fid_json(path, num_passages=4)
    spec = ds.element_spec
    assert spec["titles"].shape == [4] and spec["texts"].shape == [4]
    assert spec["scores"].dtype == tf.float32
    assert spec["answers"].shape.as_list() == [None]
    assert spec["question"].shape == [] and spec["target"].shape == []
    batch = next(iter(ds.ragged_batch(2)))
    assert batch["texts"].shape == [2, 4]
    assert batch["answers"].row_lengths().numpy().tolist() == [1, 3]
    # Without num_passages the passage count varies per element.
    assert load_fid_json(path).element_spec["texts"].shape.as_list() == [None]


def test_unscored_passages_keep_file_order(tmp_path):
    path = str(tmp_path / "d.json")
    ctxs = [
        {"title": "a", "text": "1", "score": 1},
        {"title": "b", "text": "2"},
        {"title": "c", "text": "3", "score": 5},
    ]
    write_fid_json(path, [_example(ctxs=ctxs)])
    element = next(load_fid_json(path).as_numpy_iterator())
    assert _decode(element["titles"]) == ["a", "b", "c"]
    np.testing.assert_array_equal(element["scores"], [1.0, 0.0, 5.0])


def test_equal_scores_keep_file_order(tmp_path):
    path = str(tmp_path / "d.json")
    ctxs = [{"title": str(i), "text": "x", "score": 1.0} for i in range(5)]
    ctxs.append({"title": "top", "text": "x", "score": 2.0})
    write_fid_json(path, [_example(ctxs=ctxs)])
    (example,) = list(read_fid_examples(path))
    titles = [c["title"] for c in example["ctxs"]]
    assert titles == ["top", "0", "1", "2", "3", "4"]


def test_target_choice(tmp_path):
    path = str(tmp_path / "d.jsonl")
    answers = [f"answer {i}" for i in range(20)]
    write_fid_json(path, [_example(answers=answers)] * 30)

    def targets(ds):
        return [e["target"] for e in ds.as_numpy_iterator()]

    first = load_fid_json(path)
    assert set(targets(first)) == {b"answer 0"}
    ds = load_fid_json(path, target_choice="random", seed=3)
    epoch_0, epoch_1 = targets(ds), targets(ds)
    assert len(set(epoch_0)) > 5  # Samples, not always the first.
    assert epoch_0 != epoch_1  # A new draw each pass over the data.
    again = load_fid_json(path, target_choice="random", seed=3)
    assert targets(again) == epoch_0  # Reproducible from the seed.
    other = load_fid_json(path, target_choice="random", seed=4)
    assert targets(other) != epoch_0


def test_read_fid_examples_streams_normalized_dicts(tmp_path):
    path = str(tmp_path / "d.json")
    write_fid_json(path, [_example(id="x", extra=1)])
    examples = read_fid_examples(path, num_passages=2)
    assert not isinstance(examples, list)
    (example,) = list(examples)
    assert example["id"] == "x" and example["extra"] == 1
    assert example["ctxs"] == [
        {"title": "t2", "text": "high", "score": 9.0},
        {"title": "t3", "text": "mid", "score": 4.0},
    ]


def test_malformed_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps(_example())
    path.write_text(f"{good}\n{good}\n{{not json}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3"):
        list(read_fid_examples(str(path)))
    with pytest.raises(ValueError, match=r"line 3"):
        load_fid_json(str(path), validate=True)
    # Without validation the error surfaces while iterating, same message.
    ds = load_fid_json(str(path))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"line 3"):
        list(ds)


@pytest.mark.parametrize(
    "record, match",
    [
        ({"answers": ["a"], "ctxs": []}, r"record 1 \(line 2\).*'question'"),
        ({"question": "q", "ctxs": []}, r"record 1 \(line 2\).*'answers'"),
        ({"question": "q", "answers": ["a"]}, r"record 1 .*'ctxs'"),
        (
            {"question": "q", "answers": ["a"], "ctxs": {"text": "x"}},
            r"\['ctxs'\] must be a list .*Received: type dict",
        ),
        (
            {"question": "q", "answers": "a", "ctxs": []},
            r"\['answers'\] must be a list of strings",
        ),
        (
            {"question": 3, "answers": ["a"], "ctxs": []},
            r"\['question'\] must be a string",
        ),
        (
            {"question": "q", "answers": ["a"], "ctxs": [{"title": "t"}]},
            r"\['ctxs'\]\[0\] is missing the required key 'text'",
        ),
        (
            {
                "question": "q",
                "answers": ["a"],
                "ctxs": [{"text": "t", "score": "high"}],
            },
            r"\['ctxs'\]\[0\]\['score'\] must be a number",
        ),
        ([1, 2], r"record 1 .*must be a json object"),
    ],
)
def test_bad_records(tmp_path, record, match):
    path = str(tmp_path / "bad.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(_example()) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(ValueError, match=match):
        list(read_fid_examples(path))
    with pytest.raises(ValueError, match=match):
        load_fid_json(path, validate=True)


def test_bad_first_record_fails_at_load_time(tmp_path):
    path = str(tmp_path / "bad.json")
    write_fid_json(path, [{"answers": [], "ctxs": []}])
    with pytest.raises(ValueError, match=r"record 0 \(line 2\).*'question'"):
        load_fid_json(path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_passages": 0}, "num_passages"),
        ({"num_passages": 2.0}, "num_passages"),
        ({"target_choice": "last"}, "target_choice"),
        ({"seed": "0"}, "seed"),
        ({"format": "xml"}, "format"),
    ],
)
def test_argument_errors(tmp_path, kwargs, match):
    path = str(tmp_path / "d.json")
    write_fid_json(path, [_example()])
    with pytest.raises(ValueError, match=match):
        load_fid_json(path, **kwargs)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_fid_json(str(tmp_path / "missing.json"))


# Any unicode except lone surrogates, which UTF-8 cannot encode.
unicode_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
ctx_strategy = st.fixed_dictionaries(
    {
        "title": unicode_text,
        "text": unicode_text,
        # TensorFlow flushes float32 subnormals to zero.
        "score": st.floats(
            -1e6, 1e6, allow_nan=False, allow_subnormal=False, width=32
        ),
    }
)
example_strategy = st.fixed_dictionaries(
    {
        "question": unicode_text,
        "answers": st.lists(unicode_text, max_size=3),
        "ctxs": st.lists(ctx_strategy, max_size=5),
    }
)


def _sorted_ctxs(ctxs):
    return sorted(ctxs, key=lambda c: -c["score"])


@settings(max_examples=25, deadline=None)
@given(
    st.lists(example_strategy, min_size=1, max_size=4),
    st.sampled_from(["json", "jsonl"]),
)
def test_round_trip_through_dataset(tmp_path_factory, examples, format):
    path = str(tmp_path_factory.mktemp("rt") / f"data.{format}")
    write_fid_json(path, examples)
    elements = list(load_fid_json(path).as_numpy_iterator())
    assert len(elements) == len(examples)
    for example, element in zip(examples, elements):
        ctxs = _sorted_ctxs(example["ctxs"])
        assert element["question"].decode("utf-8") == example["question"]
        assert _decode(element["answers"]) == example["answers"]
        assert _decode(element["titles"]) == [c["title"] for c in ctxs]
        assert _decode(element["texts"]) == [c["text"] for c in ctxs]
        np.testing.assert_array_equal(
            element["scores"], np.float32([c["score"] for c in ctxs])
        )
        expected_target = example["answers"][0] if example["answers"] else ""
        assert element["target"].decode("utf-8") == expected_target


@settings(max_examples=100, deadline=None)
@given(
    st.lists(example_strategy, max_size=6),
    st.sampled_from(["json", "jsonl"]),
    st.one_of(st.none(), st.integers(1, 6)),
)
def test_round_trip_through_reader(tmp_path_factory, examples, format, num):
    path = str(tmp_path_factory.mktemp("rt") / f"data.{format}")
    write_fid_json(path, examples)
    read = list(read_fid_examples(path, num_passages=num))
    assert len(read) == len(examples)
    for example, got in zip(examples, read):
        assert got["question"] == example["question"]
        assert got["answers"] == example["answers"]
        assert got["ctxs"] == _sorted_ctxs(example["ctxs"])[:num]
