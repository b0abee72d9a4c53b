"""Pretraining documents: text files by line or paragraph, C4's message."""

import pytest

from keras_fido.training.pretraining_documents import documents_dataset
from keras_fido.training.pretraining_documents import how_to_prepare_c4
from keras_fido.training.pretraining_documents import text_documents

TEXT = "  First line. \n\nSecond\nparagraph.\n\n\nThird.\n"


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "documents.txt"
    path.write_text(TEXT, encoding="utf-8")
    return str(path)


def test_text_documents_are_the_non_empty_lines(text_file):
    assert list(text_documents([text_file])) == [
        "First line.",
        "Second",
        "paragraph.",
        "Third.",
    ]


def test_text_documents_can_be_paragraphs(text_file):
    assert list(text_documents([text_file], paragraphs=True)) == [
        "First line.",
        "Second paragraph.",
        "Third.",
    ]


def test_documents_dataset_repeats_the_shuffled_documents(text_file):
    dataset = documents_dataset(("text", [text_file]), seed=0)
    documents = [d.decode() for d in dataset.take(8).as_numpy_iterator()]
    assert sorted(documents[:4]) == sorted(text_documents([text_file]))
    assert sorted(documents[4:]) == sorted(documents[:4])


def test_documents_dataset_refuses_an_unknown_source():
    with pytest.raises(ValueError, match="Received: source=\\('web'"):
        documents_dataset(("web", None), seed=0)


def test_missing_c4_says_how_to_build_it(tmp_path):
    message = how_to_prepare_c4(str(tmp_path))
    assert f"tfds build c4/en --data_dir {tmp_path}" in message
    assert "--text FILE" in message
