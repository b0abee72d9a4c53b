"""Shared pytest fixtures for keras_fido."""

import importlib.util
import os

import pytest


def _corpus_lines():
    """English prose shipped with CPython: the pydoc help topics."""
    from pydoc_data import topics

    text = "\n".join(topics.topics[key] for key in sorted(topics.topics))
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if len(line) >= 20]


@pytest.fixture(scope="session")
def sentencepiece_proto():
    """A small T5-style SentencePiece model, as serialized proto bytes.

    Trained in memory (well under a second) on CPython's bundled pydoc text,
    so no download is needed. Ids follow T5: `<pad>`=0, `</s>`=1, `<unk>`=2,
    no BOS. Full character coverage keeps ASCII words, digits and
    punctuation free of unknowns (rare words split into characters).
    """
    from keras_fido.data.sentencepiece_trainer import train_sentencepiece

    return train_sentencepiece(_corpus_lines(), vocab_size=800)


@pytest.fixture
def fido_tokenizer(sentencepiece_proto):
    """A `FiDOTokenizer` built on the session's SentencePiece model."""
    from keras_fido.models.fido_tokenizer import FiDOTokenizer

    return FiDOTokenizer(proto=sentencepiece_proto)


RECIPES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "recipes")


def _load_recipe(name):
    """The module `recipes/<name>.py` of this checkout (recipes are
    scripts, not part of the installed package)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(RECIPES, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def load_recipe():
    """`load_recipe(name)`: the module of `recipes/<name>.py`."""
    return _load_recipe
