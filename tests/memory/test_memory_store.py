"""MemoryStore: lookups by id, missing ids, the reader check naming
both fingerprints, damaged shards refused by name."""

import os
import shutil
import types

import numpy as np
import pytest
from keras import ops

from keras_fido.data.sentencepiece_trainer import train_sentencepiece
from keras_fido.memory import MemoryStore
from keras_fido.memory import bytes_per_passage
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.passage_memory import memory_variables


def test_lookup_returns_rows_in_the_order_asked(store, case):
    both = store.lookup(["rome", "paris"])
    paris = store.lookup(["paris"])
    assert both["passage_memory"].shape == (
        2,
        case.passage_length - case.question_length,
        store.hidden_dim,
    )
    assert both["passage_ids"] == ["rome", "paris"] and both["skipped"] == 0
    np.testing.assert_array_equal(
        both["passage_memory"][1], paris["passage_memory"][0]
    )
    np.testing.assert_array_equal(
        store.lookup([5])["passage_token_ids"],  # int ids read as strings
        store.lookup(["5"])["passage_token_ids"],
    )


def test_missing_id_raises_naming_it(store):
    with pytest.raises(KeyError, match=r"1 passage id\(s\).*'nowhere'"):
        store.lookup(["paris", "nowhere"])


def test_missing_ids_are_skipped_with_a_count(store):
    out = store.lookup(["paris", "nowhere", "lyon", "gone"], on_missing="skip")
    assert out["skipped"] == 2
    assert out["passage_ids"] == ["paris", "lyon"]
    assert out["passage_memory"].shape[0] == 2


def test_bad_on_missing_is_named(store):
    with pytest.raises(ValueError, match="`on_missing` must be one of"):
        store.lookup(["paris"], on_missing="ignore")


def test_bytes_per_passage_is_the_files_per_row(store):
    positions, width = store.passage_positions, store.hidden_dim
    assert store.bytes_per_passage == bytes_per_passage(
        positions, width, "float16"
    )
    on_disk = sum(
        os.path.getsize(os.path.join(store.directory, f["name"]))
        for shard in store.manifest["shards"]
        for f in shard["files"].values()
    )
    headers = 128 * 3 * len(store.manifest["shards"])  # one per .npy
    assert on_disk == len(store) * store.bytes_per_passage + headers


def test_reader_of_the_store_is_accepted(reader, store):
    store.check_reader(reader)


def other_reader(reader, **changes):
    """`reader`'s backbone with another preprocessor (what the
    fingerprint reads), e.g. another tokenizer or prefix."""
    config = reader.preprocessor.get_config()
    config.pop("tokenizer")
    config.update(changes)
    tokenizer = changes.pop("tokenizer", reader.preprocessor.tokenizer)
    config.pop("tokenizer", None)
    preprocessor = FiDOSeq2SeqLMPreprocessor(tokenizer, **config)
    return types.SimpleNamespace(
        backbone=reader.backbone, preprocessor=preprocessor
    )


def refusal(store, reader):
    with pytest.raises(ValueError, match="another memory encoder") as error:
        store.check_reader(reader)
    message = str(error.value)
    assert store.fingerprint in message  # The store's and the reader's.
    return message


def test_store_of_another_tokenizer_is_refused(reader, store):
    lines = [f"word{i} and more words number {i}" for i in range(200)]
    tokenizer = FiDOTokenizer(proto=train_sentencepiece(lines, vocab_size=60))
    message = refusal(store, other_reader(reader, tokenizer=tokenizer))
    assert "tokenizer" in message and "weights" not in message


def test_store_of_another_config_is_refused(reader, store):
    message = refusal(
        store, other_reader(reader, passage_length=40, title_prefix="t:")
    )
    assert "config passage_length: store 44, reader 40" in message
    assert "title_prefix: store 'title:', reader 't:'" in message


def test_store_of_other_weights_is_refused(reader, store):
    variable = memory_variables(reader.backbone)[-1]
    value = ops.convert_to_numpy(variable)
    variable.assign(value + 1.0)
    try:
        message = refusal(store, reader)
    finally:
        variable.assign(value)
    assert "weights of the memory encoder" in message
    assert "config" not in message.split("Differences:")[1]


@pytest.fixture
def copied(store, tmp_path):
    """A copy of the float16 store, to damage."""
    directory = tmp_path / "store"
    shutil.copytree(store.directory, directory)
    return directory


def test_truncated_shard_is_refused_on_open(copied):
    path = copied / "shard-00001.memory.npy"
    with open(path, "r+b") as file:
        file.truncate(os.path.getsize(path) - 10)
    with pytest.raises(ValueError, match="shard-00001.memory.npy"):
        MemoryStore(copied)


def test_grown_shard_is_refused_on_open(copied):
    with open(copied / "shard-00000.lengths.npy", "ab") as file:
        file.write(b"\0" * 4)
    with pytest.raises(ValueError, match="shard-00000.lengths.npy is .* bytes"):
        MemoryStore(copied)


def test_missing_shard_is_refused_on_open(copied):
    os.remove(copied / "shard-00002.token_ids.npy")
    with pytest.raises(ValueError, match="shard-00002.token_ids.npy"):
        MemoryStore(copied)


def flip_last_byte(path):
    with open(path, "r+b") as file:
        file.seek(-1, os.SEEK_END)
        byte = file.read(1)
        file.seek(-1, os.SEEK_END)
        file.write(bytes([byte[0] ^ 0xFF]))


def test_flipped_bytes_are_refused_on_first_read(copied):
    flip_last_byte(copied / "shard-00001.memory.npy")
    store = MemoryStore(copied)  # Sizes and headers are intact.
    store.lookup(["paris"])  # Shard 0 is fine.
    for _ in range(2):  # Refused every time, nothing returned.
        with pytest.raises(ValueError, match="shard-00001.memory.npy.*sha256"):
            store.lookup(["paris", "untitled"])
    with pytest.raises(ValueError, match="shard-00001.memory.npy"):
        MemoryStore(copied).verify()


def test_damaged_header_is_refused_on_open(copied):
    path = copied / "shard-00000.token_ids.npy"
    data = path.read_bytes().replace(b"'<i4'", b"'<f4'", 1)
    path.write_bytes(data)
    with pytest.raises(ValueError, match="shard-00000.token_ids.npy holds"):
        MemoryStore(copied)


def test_not_a_store_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        MemoryStore(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        MemoryStore(tmp_path)
