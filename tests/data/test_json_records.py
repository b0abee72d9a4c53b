import gzip
import json

import pytest

from keras_fido.data import json_records
from keras_fido.data.json_records import iter_json_records

RECORDS = [
    {"question": "q0", "answers": ["a"], "ctxs": []},
    {"question": "ünïcödé \u2028 line", "answers": ["b", "c"], "n": 1.5e-3},
    {"question": "q2", "answers": [], "flag": True, "none": None},
]


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("chunk_chars", [1, 7, 1 << 20])
def test_array_parses_across_read_boundaries(
    tmp_path, monkeypatch, chunk_chars
):
    monkeypatch.setattr(json_records, "_CHUNK_CHARS", chunk_chars)
    text = "[\n" + ",\n".join(json.dumps(r) for r in RECORDS) + "\n]\n"
    path = _write(tmp_path / "a.json", text)
    got = list(iter_json_records(path))
    assert [r for _, _, r in got] == RECORDS
    assert [i for i, _, _ in got] == [0, 1, 2]
    assert [line for _, line, _ in got] == [2, 3, 4]


def test_array_and_lines_are_detected(tmp_path):
    lines = "\n".join(json.dumps(r) for r in RECORDS) + "\n"
    array = json.dumps(RECORDS, indent=2)
    for name, text in [("x.jsonl", lines), ("x.json", array), ("y", lines)]:
        path = _write(tmp_path / name, text)
        assert [r for _, _, r in iter_json_records(path)] == RECORDS


def test_gzip_files(tmp_path):
    path = str(tmp_path / "x.jsonl.gz")
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for r in RECORDS:
            f.write(json.dumps(r) + "\n")
    assert [r for _, _, r in iter_json_records(path)] == RECORDS


def test_empty_inputs(tmp_path):
    assert list(iter_json_records(_write(tmp_path / "e.json", " [ ] "))) == []
    assert list(iter_json_records(_write(tmp_path / "e.jsonl", "\n\n"))) == []
    assert list(iter_json_records(_write(tmp_path / "f", ""))) == []


def test_reading_is_lazy(tmp_path, monkeypatch):
    """The first record comes back after reading a small part of the file."""
    monkeypatch.setattr(json_records, "_CHUNK_CHARS", 4096)
    record = {"question": "q", "answers": ["a"], "ctxs": ["x" * 100] * 10}
    text = "[" + ",".join([json.dumps(record)] * 2000) + "]"
    path = _write(tmp_path / "big.json", text)
    read = []
    original = json_records._open_text

    class Counting:
        def __init__(self, f):
            self.f = f

        def read(self, n):
            chunk = self.f.read(n)
            read.append(len(chunk))
            return chunk

        def __enter__(self):
            return self

        def __exit__(self, *args):
            self.f.close()

    monkeypatch.setattr(
        json_records, "_open_text", lambda p: Counting(original(p))
    )
    records = iter_json_records(path, format="json")
    assert next(records)[2] == record
    assert sum(read) < len(text) / 50
    records.close()


@pytest.mark.parametrize(
    "text, match",
    [
        ('[{"a": 1},\n {"a": 2]\n', r"line 2 .*record 1"),
        ('[{"a": 1}\n {"a": 2}]', r"line 2 .*expected ',' or ']'"),
        ('[{"a": 1},\n]', r"trailing ','"),
        ('[{"a": 1},\n{"a": 2}', r"not closed"),
        ('[{"a": 1}] x', r"after the closing"),
        ('[{"a": "unterminated}]', r"record 0"),
        ('{"a": 1} {', r"line 1"),
    ],
)
def test_malformed_array(tmp_path, monkeypatch, text, match):
    monkeypatch.setattr(json_records, "_CHUNK_CHARS", 3)
    path = _write(tmp_path / "bad.json", text)
    with pytest.raises(ValueError, match=match):
        list(iter_json_records(path, format="json"))


def test_malformed_line_names_the_line(tmp_path):
    text = '{"a": 1}\n\n{"a": 2}\n{"a": 3,}\n{"a": 4}\n'
    path = _write(tmp_path / "bad.jsonl", text)
    records = iter_json_records(path)
    assert next(records)[2] == {"a": 1}
    assert next(records)[:2] == (1, 3)
    with pytest.raises(ValueError, match=r"line 4 .*\(record 2\)"):
        next(records)


def test_unknown_format(tmp_path):
    path = _write(tmp_path / "x.json", "[]")
    with pytest.raises(ValueError, match="`format` must be one of"):
        list(iter_json_records(path, format="csv"))
