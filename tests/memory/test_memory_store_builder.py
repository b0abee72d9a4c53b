"""build_memory_store: the shards, the manifest, what each passage's
memory is, truncation warnings, dtypes and bad passages."""

import json
import os

import numpy as np
import pytest
from keras import ops

from keras_fido.memory import MemoryStore
from keras_fido.memory import build_memory_store
from keras_fido.memory import memory_fingerprint
from keras_fido.models.passage_memory import encode_passage_memory


def preprocessor_blocks(reader, case, passage_ids):
    """The passage blocks the preprocessor packs (positions after the
    question block) for passages in these slots, `[P, positions]`."""
    x = reader.preprocessor.generate_preprocess(
        case.text_example("q", passage_ids)
    )
    split = case.question_length
    ids = ops.convert_to_numpy(x["encoder_token_ids"])[:, split:]
    return ids, ops.convert_to_numpy(x["encoder_padding_mask"])[:, split:]


def test_manifest_lists_shards_ids_and_fingerprint(reader, store, case):
    with open(os.path.join(store.directory, "manifest.json")) as file:
        manifest = json.load(file)
    assert manifest["fingerprint"] == memory_fingerprint(reader)["fingerprint"]
    assert manifest["dtype"] == "float16"
    assert manifest["num_passages"] == len(case.passages) == len(store)
    rows = [shard["rows"] for shard in manifest["shards"]]
    assert rows == [[0, 4], [4, 8], [8, 9]]  # shard_size=4, the last short
    for shard in manifest["shards"]:
        memory = shard["files"]["memory"]
        assert memory["shape"] == [
            shard["rows"][1] - shard["rows"][0],
            store.passage_positions,
            reader.backbone.encoder_hidden_dim,
        ]
        assert sorted(shard["files"]) == ["lengths", "memory", "token_ids"]
    assert store.passage_ids == case.ids  # ints stored as strings, in order
    assert manifest["passages_truncated"] == 1
    assert case.shard_size == 4


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_stored_blocks_and_memory_are_the_preprocessors(reader, store, case):
    slots = ["paris", "long", "untitled"]
    ids, mask = preprocessor_blocks(reader, case, slots)
    stored = store.lookup(slots)
    np.testing.assert_array_equal(stored["passage_token_ids"], ids)
    np.testing.assert_array_equal(stored["passage_padding_mask"], mask)
    expected = encode_passage_memory(reader.backbone, ids, mask)
    np.testing.assert_allclose(
        stored["passage_memory"], ops.convert_to_numpy(expected), atol=1e-2
    )
    assert stored["passage_memory"].dtype == np.float32


def test_empty_passage_is_an_empty_slot(store):
    empty = store.lookup(["empty"])
    assert not empty["passage_padding_mask"].any()
    blank = store.gather(np.array([-1]))
    np.testing.assert_array_equal(
        empty["passage_memory"], blank["passage_memory"]
    )


def test_long_passages_are_counted_in_one_warning(reader, case, tmp_path):
    with pytest.warns(UserWarning, match=r"1 passage\(s\) were longer"):
        build_memory_store(
            reader, case.passages[2:5], tmp_path / "s", progress=False
        )


def test_a_generator_of_passages_builds_with_a_progress_bar(
    reader, case, tmp_path, capsys
):
    passages = (p for p in case.passages[:3])
    built = build_memory_store(reader, passages, tmp_path / "s", batch_size=2)
    assert built.passage_ids == case.ids[:3]
    assert "3/" in capsys.readouterr().out.split("\r")[-1]


@pytest.mark.parametrize("dtype, atol", [("bfloat16", 0.05), ("int8", 0.05)])
def test_other_dtypes_read_back_close(build_store, store, case, dtype, atol):
    other = build_store(dtype)
    assert other.dtype == dtype
    expected = store.lookup(case.ids)["passage_memory"]
    got = other.lookup(case.ids)["passage_memory"]
    scale = np.abs(expected).max(axis=-1, keepdims=True)
    assert np.all(np.abs(got - expected) <= atol * scale + 1e-2)


def test_int8_stores_one_scale_per_vector(build_store):
    int8 = build_store("int8")
    files = int8.manifest["shards"][0]["files"]
    assert files["memory"]["dtype"] == "int8"
    assert files["scale"]["shape"] == [4, int8.passage_positions]


@pytest.mark.filterwarnings("ignore:build_memory_store:UserWarning")
def test_country_passages_are_accepted(reader, tmp_path):
    pytest.importorskip("countryinfo")
    from keras_fido.data import country_qa_passages

    passages = country_qa_passages()[:4]
    built = build_memory_store(reader, passages, tmp_path / "s", progress=False)
    assert built.passage_ids == [p["id"] for p in passages]


@pytest.mark.parametrize(
    "passage, match",
    [
        ({"id": "a", "title": "T"}, r"passages\[1\]\['text'\]"),
        ({"id": "a", "title": 3, "text": "x"}, r"passages\[1\]\['title'\]"),
        ({"title": "T", "text": "x"}, r"passages\[1\]\['id'\]"),
        ({"id": "a\nb", "text": "x"}, "line breaks"),
        ({"id": "paris", "text": "x"}, "unique.*'paris'"),
        ("text", r"`passages\[1\]` must be a dict"),
    ],
)
def test_bad_passages_are_named(reader, case, tmp_path, passage, match):
    with pytest.raises(ValueError, match=match):
        build_memory_store(
            reader, [case.passages[0], passage], tmp_path / "s", progress=False
        )


def test_failed_build_keeps_the_previous_store(reader, case, tmp_path):
    directory = tmp_path / "s"
    first = case.passages[:2]
    build_memory_store(reader, first, directory, progress=False)
    with pytest.raises(ValueError, match="unique"):
        build_memory_store(
            reader, first * 2, directory, batch_size=1, progress=False
        )
    assert MemoryStore(directory).passage_ids == ["paris", "lyon"]


def test_bad_arguments_are_named(reader, case, tmp_path):
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        build_memory_store(reader, case.passages, tmp_path, dtype="float32")
    with pytest.raises(ValueError, match="`batch_size` must be"):
        build_memory_store(reader, case.passages, tmp_path, batch_size=0)
