"""Bad input in FiD json files: each kind is named, raised or skipped."""

import gzip
import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_fido.data import load_fid_json
from keras_fido.data import read_fid_examples
from keras_fido.data import write_fid_json

LOGGER = "keras_fido.data.fid_json"


def _example(question="q", answers=("a",), ctxs=None):
    if ctxs is None:
        ctxs = [{"title": "t", "text": "x", "score": 1.0}]
    return {"question": question, "answers": list(answers), "ctxs": ctxs}


def _jsonl(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def test_malformed_line_is_skipped_and_logged(tmp_path, caplog):
    good = [json.dumps(_example(f"q{i}")) for i in range(3)]
    path = _jsonl(tmp_path / "d.jsonl", [good[0], "{not json", *good[1:]])
    with caplog.at_level(logging.WARNING, LOGGER):
        read = list(read_fid_examples(path, on_error="skip"))
    assert [e["question"] for e in read] == ["q0", "q1", "q2"]
    first, total = _warnings(caplog)
    assert f"line 2 of {path}" in first and "Malformed json" in first
    assert "Skipped 1 bad record(s)" in total and "read 3" in total


def test_skip_details_the_first_ten_then_counts(tmp_path, caplog):
    lines = [json.dumps(_example())] + ["oops"] * 15
    path = _jsonl(tmp_path / "d.jsonl", lines)
    with caplog.at_level(logging.WARNING, LOGGER):
        assert len(list(read_fid_examples(path, on_error="skip"))) == 1
    messages = _warnings(caplog)
    assert len(messages) == 10 + 2
    assert "line 11 of" in messages[9]
    assert "the rest are skipped without being listed" in messages[10]
    assert "Skipped 15 bad record(s)" in messages[11]


def test_skip_names_the_missing_field(tmp_path, caplog):
    bad = json.dumps({"question": "q", "ctxs": []})
    path = _jsonl(tmp_path / "d.jsonl", [json.dumps(_example()), bad])
    with caplog.at_level(logging.WARNING, LOGGER):
        assert len(list(read_fid_examples(path, on_error="skip"))) == 1
    assert "record 1 (line 2)" in _warnings(caplog)[0]
    assert "'answers'" in _warnings(caplog)[0]


def test_load_fid_json_skips_on_every_pass(tmp_path, caplog):
    lines = [json.dumps(_example("q0")), "]", json.dumps(_example("q1"))]
    path = _jsonl(tmp_path / "d.jsonl", lines)
    ds = load_fid_json(path, on_error="skip")
    caplog.clear()
    with caplog.at_level(logging.WARNING, LOGGER):
        for _ in range(2):
            questions = [e["question"] for e in ds.as_numpy_iterator()]
            assert questions == [b"q0", b"q1"]
    totals = [m for m in _warnings(caplog) if m.startswith("Skipped 1")]
    assert len(totals) == 2


def test_malformed_json_in_an_array_cannot_be_skipped(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('[{"question": "q",\n "answers": [}]', encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2 .*cannot be skipped"):
        list(read_fid_examples(str(path), on_error="skip"))


def test_test_time_file_with_empty_answers(tmp_path):
    path = str(tmp_path / "test.jsonl")
    write_fid_json(path, [_example(answers=[])])
    (element,) = list(load_fid_json(path).as_numpy_iterator())
    assert element["answers"].shape == (0,) and element["target"] == b""


def test_null_answers_name_the_field(tmp_path):
    path = str(tmp_path / "test.jsonl")
    write_fid_json(path, [{"question": "q", "answers": None, "ctxs": []}])
    with pytest.raises(ValueError, match=r"record 0 .*\['answers'\] must be"):
        list(read_fid_examples(path))


def test_no_passages_warns_once_then_counts(tmp_path, caplog):
    empty = [{"title": "", "text": ""}]
    examples = [_example(ctxs=[]), _example(), _example(ctxs=empty)]
    path = str(tmp_path / "d.jsonl")
    write_fid_json(path, examples)
    with caplog.at_level(logging.WARNING, LOGGER):
        elements = list(load_fid_json(path, num_passages=2, validate=True))
    assert len(elements) == 3
    assert elements[0]["texts"].numpy().tolist() == [b"", b""]
    messages = _warnings(caplog)
    # Once while validating, once in the pass above: a detail and a count.
    assert len(messages) == 4
    assert "record 0 (line 1)" in messages[0] and "no passages" in messages[0]
    assert messages[1].startswith("2 record(s)")


def test_no_passages_can_be_an_error(tmp_path):
    path = str(tmp_path / "d.jsonl")
    write_fid_json(path, [_example(), _example(ctxs=[])])
    with pytest.raises(ValueError, match=r"record 1 \(line 2\).*no passages"):
        list(read_fid_examples(path, on_empty_ctxs="raise"))
    skipped = read_fid_examples(path, on_error="skip", on_empty_ctxs="raise")
    assert len(list(skipped)) == 1


@pytest.mark.parametrize("name", ["d.jsonl", "d.json", "d.jsonl.gz"])
def test_non_utf8_names_the_file_offset_and_line(tmp_path, name):
    path = str(tmp_path / name)
    write_fid_json(path, [_example(), _example("caf\u00e9")])
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    offset = data.index("\u00e9".encode("utf-8"))
    with opener(path, "wb") as f:  # A Latin-1 "é" in a UTF-8 file.
        f.write(data.replace("\u00e9".encode("utf-8"), b"\xe9"))
    line = data[:offset].count(b"\n") + 1
    match = rf"{path} is not valid UTF-8: byte 0xe9 at byte offset {offset} "
    match += rf"\(line {line}"
    with pytest.raises(ValueError, match=match):
        list(read_fid_examples(path))


def test_non_utf8_line_can_be_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    line = json.dumps(_example()).encode("utf-8")
    path.write_bytes(line + b"\n" + line.replace(b'"q"', b'"\xff"') + b"\n")
    assert len(list(read_fid_examples(str(path), on_error="skip"))) == 1


def test_damaged_gzip_names_the_file(tmp_path):
    path = str(tmp_path / "d.jsonl.gz")
    write_fid_json(path, [_example()] * 50)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(ValueError, match=rf"Could not read {path}"):
        list(read_fid_examples(path))


@pytest.mark.parametrize(
    "kwargs", [{"on_error": "ignore"}, {"on_empty_ctxs": "skip"}]
)
def test_bad_choices_fail_at_call_time(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        read_fid_examples(str(tmp_path / "never_read.jsonl"), **kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load_fid_json(str(tmp_path / "never_read.jsonl"), **kwargs)


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
record_strategy = st.fixed_dictionaries(
    {
        "question": text,
        "answers": st.lists(text, max_size=2),
        "ctxs": st.lists(
            st.fixed_dictionaries(
                {"title": text, "text": text, "score": st.floats(-9, 9)}
            ),
            max_size=3,
        ),
    }
)
corruption_strategy = st.lists(
    st.tuples(
        st.sampled_from(["replace", "delete", "insert", "truncate"]),
        st.floats(0, 1),
        st.binary(min_size=1, max_size=4),
    ),
    min_size=1,
    max_size=3,
)


def _corrupt(data, corruptions):
    for kind, where, chunk in corruptions:
        i = int(where * len(data))
        if kind == "replace":
            data = data[:i] + chunk + data[i + len(chunk) :]
        elif kind == "delete":
            data = data[:i] + data[i + len(chunk) :]
        elif kind == "insert":
            data = data[:i] + chunk + data[i:]
        else:
            data = data[:i]
    return data


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(record_strategy, min_size=1, max_size=3),
    st.sampled_from(["d.json", "d.jsonl", "d.jsonl.gz"]),
    corruption_strategy,
    st.sampled_from(["raise", "skip"]),
)
def test_corruption_gives_value_error_only(
    tmp_path, records, name, corruptions, on_error
):
    path = str(tmp_path / name)
    write_fid_json(path, records)
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(_corrupt(data, corruptions))
    try:
        examples = list(read_fid_examples(path, on_error=on_error))
    except ValueError:
        return
    for example in examples:
        assert isinstance(example["question"], str)
        assert all(isinstance(a, str) for a in example["answers"])
        scores = [c.get("score", 0.0) for c in example["ctxs"]]
        assert np.asarray(scores, dtype=np.float64).shape == (len(scores),)


@settings(max_examples=50, deadline=None)
@given(st.lists(record_strategy, min_size=1, max_size=5), corruption_strategy)
def test_skipping_never_raises_on_json_lines(tmp_path_factory, records, bad):
    path = tmp_path_factory.mktemp("skip") / "d.jsonl"
    write_fid_json(str(path), records)
    data = _corrupt(path.read_bytes(), bad)
    path.write_bytes(data)
    examples = list(read_fid_examples(str(path), on_error="skip"))
    assert len(examples) <= data.count(b"\n") + 1
