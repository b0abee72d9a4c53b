import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_fido.data import FiDJson
from keras_fido.data import FiDJsonConfig
from keras_fido.data import write_fid_json

EXAMPLES = [
    {
        "id": 7,
        "question": "Capital of Peru?",
        "answers": ["Lima", "lima"],
        "ctxs": [
            {"title": "Chile", "text": "Santiago.", "score": 1.5},
            {"title": "Peru", "text": "Lima is the capital.", "score": 9},
            {"title": "Peru", "text": "The sol.", "score": "3"},
        ],
    },
    {
        "question": "Capital of Chile?",
        "answers": [],
        "target": "Santiago",
        "ctxs": [{"text": "Santiago is the capital."}],
    },
]


def _by_question(dataset):
    examples = list(tfds.as_numpy(dataset))
    return {e["question"].decode("utf-8"): e for e in examples}


def test_prepare_from_config_files_then_tfds_load(tmp_path):
    write_fid_json(tmp_path / "train.jsonl", EXAMPLES)
    write_fid_json(tmp_path / "dev.json", EXAMPLES[:1])
    config = FiDJsonConfig(
        name="tiny",
        train=tmp_path / "train.jsonl",
        validation=str(tmp_path / "dev.json"),
        num_passages=2,
    )
    data_dir = str(tmp_path / "tfds")
    builder = FiDJson(config=config, data_dir=data_dir)
    builder.download_and_prepare()
    assert set(builder.info.splits) == {"train", "validation"}
    assert builder.info.splits["train"].num_examples == 2

    # Read back through tfds alone, from the prepared files.
    train = _by_question(
        tfds.load("fid_json/tiny", split="train", data_dir=data_dir)
    )
    peru, chile = train["Capital of Peru?"], train["Capital of Chile?"]
    assert peru["id"] == b"7" and peru["target"] == b"Lima"
    assert peru["answers"].tolist() == [b"Lima", b"lima"]
    # Sorted by score, then cut to num_passages.
    assert peru["ctxs"]["text"].tolist() == [
        b"Lima is the capital.",
        b"The sol.",
    ]
    np.testing.assert_array_equal(peru["ctxs"]["score"], [9.0, 3.0])
    assert chile["id"] == b"" and chile["target"] == b"Santiago"
    assert chile["ctxs"]["title"].tolist() == [b""]
    np.testing.assert_array_equal(chile["ctxs"]["score"], [0.0])
    validation = tfds.load(
        "fid_json/tiny", split="validation", data_dir=data_dir
    )
    assert list(_by_question(validation)) == ["Capital of Peru?"]


def test_prepare_from_manual_dir(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    write_fid_json(manual_dir / "test.jsonl.gz", EXAMPLES)
    builder = FiDJson(data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    test = _by_question(builder.as_dataset(split="test"))
    assert sorted(test) == ["Capital of Chile?", "Capital of Peru?"]
    assert len(test["Capital of Peru?"]["ctxs"]["text"]) == 3


def test_manual_dir_without_fid_files_names_the_expected_files(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    (manual_dir / "dev.csv").write_text("x", encoding="utf-8")
    builder = FiDJson(data_dir=str(tmp_path / "tfds"))
    config = tfds.download.DownloadConfig(manual_dir=manual_dir)
    with pytest.raises(
        ValueError, match=r"train\.jsonl.*Received files: \['dev\.csv'\]"
    ):
        builder.download_and_prepare(download_config=config)


def test_config_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_passages"):
        FiDJsonConfig(name="x", train="t.jsonl", num_passages=0)
    with pytest.raises(ValueError, match="on_error"):
        FiDJsonConfig(name="x", train="t.jsonl", on_error="ignore")
