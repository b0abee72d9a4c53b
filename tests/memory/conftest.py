"""A tiny LUMEN reader, a passage collection and stores built from it,
shared by the memory store tests."""

import pytest

from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.testing.fido_models import reseed_weights

NUM_PASSAGES = 3
PASSAGE_LENGTH = 44
QUESTION_LENGTH = 12
DECODER_LENGTH = 6
SHARD_SIZE = 4

PASSAGES = [
    {"id": "paris", "title": "Paris", "text": "Paris is the capital city."},
    {"id": "lyon", "title": "Lyon", "text": "Lyon is a city on a river."},
    {"id": "rome", "title": "Rome", "text": "Rome is the capital of Italy."},
    {"id": "long", "title": "Long", "text": "A passage that runs on. " * 6},
    {"id": 5, "title": "Oslo", "text": "Oslo is in the north."},
    {"id": "untitled", "text": "A passage without a title."},
    {"id": "berlin", "title": "Berlin", "text": "Berlin has many museums."},
    {"id": "bern", "title": "Bern", "text": "Bern is a small capital."},
    {"id": "empty", "title": "", "text": ""},
]


def make_reader(proto, seed=0, question_length=QUESTION_LENGTH):
    """A tiny reader with passage memory: a 3-layer encoder whose last
    layer is live, fido_tiny's decoder cut to its first block of 3
    layers (cross-attention in the third)."""
    tokenizer = FiDOTokenizer(proto=proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=NUM_PASSAGES,
        passage_length=PASSAGE_LENGTH,
        decoder_sequence_length=DECODER_LENGTH,
        question_length=question_length,
    )
    config = dict(
        backbone_presets["fido_tiny"]["config"],
        encoder_num_layers=3,
        encoder_live_layers=1,
        encoder_question_length=question_length,
        decoder_num_layers=3,
        vocabulary_size=tokenizer.vocabulary_size(),
    )
    backbone = reseed_weights(FiDOBackbone(**config), seed)
    return FiDOSeq2SeqLM(backbone, preprocessor)


def text_example(question, passage_ids):
    """The text form of a `MemoryReader` example, for `reader.generate`."""
    by_id = {str(p["id"]): p for p in PASSAGES}
    return {
        "question": question,
        "passages": [
            {"title": by_id[i].get("title", ""), "text": by_id[i]["text"]}
            for i in map(str, passage_ids)
        ],
    }


@pytest.fixture(scope="session")
def reader(sentencepiece_proto):
    return make_reader(sentencepiece_proto)


@pytest.fixture(scope="session")
def build_store(reader, tmp_path_factory):
    """`build_store(dtype)`: a store of `PASSAGES` in `dtype`, built once
    per session (tests that damage a store copy it first)."""
    import warnings

    from keras_fido.memory import build_memory_store

    stores = {}

    def build(dtype="float16"):
        if dtype not in stores:
            directory = tmp_path_factory.mktemp(f"store_{dtype}") / "store"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                stores[dtype] = build_memory_store(
                    reader,
                    PASSAGES,
                    directory,
                    batch_size=3,
                    dtype=dtype,
                    shard_size=SHARD_SIZE,
                    progress=False,
                )
        return stores[dtype]

    return build


@pytest.fixture(scope="session")
def store(build_store):
    return build_store("float16")


@pytest.fixture(scope="session")
def case():
    """The constants and helpers above, for the test modules (test
    directories are not packages, so they cannot import this file)."""
    import types

    return types.SimpleNamespace(
        passages=PASSAGES,
        ids=[str(p["id"]) for p in PASSAGES],
        num_passages=NUM_PASSAGES,
        passage_length=PASSAGE_LENGTH,
        question_length=QUESTION_LENGTH,
        decoder_length=DECODER_LENGTH,
        shard_size=SHARD_SIZE,
        make_reader=make_reader,
        text_example=text_example,
    )
