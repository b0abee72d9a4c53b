"""MemoryReader: the reader's answers from stored passage memory, its
inputs the preprocessor's, missing ids and bad examples."""

import types
import warnings

import numpy as np
import pytest
from keras import ops

from keras_fido.memory import MemoryReader
from keras_fido.models import FiDOSeq2SeqLMPreprocessor

EXAMPLES = [
    {
        "question": "what is the capital of italy",
        "passage_ids": ["rome", "paris", "lyon", "bern"],  # one too many
    },
    {"question": "where is oslo", "passage_ids": [5]},
    {"question": "who is there", "passage_ids": []},
    {"question": "what runs on", "passage_ids": ["empty", "long"]},
]


@pytest.fixture(scope="module")
def texts(case):
    return [
        case.text_example(e["question"], e["passage_ids"]) for e in EXAMPLES
    ]


def quietly(function, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return function(*args)


def numpy(inputs):
    return {k: ops.convert_to_numpy(v) for k, v in inputs.items()}


def test_inputs_are_the_preprocessors(reader, store, texts):
    expected = numpy(quietly(reader.preprocessor.generate_preprocess, texts))
    got = numpy(quietly(MemoryReader(reader, store).inputs, EXAMPLES))
    for key, value in expected.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)


@pytest.fixture(scope="module")
def encoded(reader, texts):
    """The reader's encoder output from the passages' text."""
    x = quietly(reader.preprocessor.generate_preprocess, texts)
    encoded = reader.encode(x["encoder_token_ids"], x["encoder_padding_mask"])
    return ops.convert_to_numpy(encoded)


@pytest.mark.parametrize("dtype, atol", [("float16", 1e-2), ("int8", 0.1)])
def test_encoder_output_is_the_readers(
    reader, build_store, encoded, dtype, atol
):
    inputs = quietly(MemoryReader(reader, build_store(dtype)).inputs, EXAMPLES)
    got = reader.encode(
        inputs["encoder_token_ids"],
        inputs["encoder_padding_mask"],
        inputs["passage_memory"],
    )
    np.testing.assert_allclose(ops.convert_to_numpy(got), encoded, atol=atol)


def test_answers_are_the_readers(reader, store, texts):
    expected = quietly(reader.generate, texts)
    memory_reader = MemoryReader(reader, store)
    assert quietly(memory_reader.generate, EXAMPLES) == expected
    # One example in, one answer string out.
    assert quietly(memory_reader.generate, EXAMPLES[1]) == expected[1]


def test_missing_id_raises_or_is_skipped_with_a_count(reader, store, case):
    example = {"question": "where is oslo", "passage_ids": ["nowhere", 5]}
    with pytest.raises(KeyError, match="'nowhere'"):
        MemoryReader(reader, store).generate(example)
    skipping = MemoryReader(reader, store, on_missing="skip")
    with pytest.warns(UserWarning) as caught:
        inputs = numpy(skipping.inputs(example))
    assert any("1 passage id(s) not in the store" in str(w) for w in caught)
    # The skipped passage's slot is empty, as a passage without text.
    text = case.text_example("where is oslo", ["empty", 5])
    expected = numpy(reader.preprocessor.generate_preprocess([text]))
    for key in ("encoder_token_ids", "encoder_padding_mask"):
        np.testing.assert_array_equal(inputs[key], expected[key])


def test_dropped_ids_are_counted_once(reader, store):
    memory_reader = MemoryReader(reader, store)
    with pytest.warns(UserWarning) as caught:
        memory_reader.inputs(EXAMPLES[0])
    assert any("1 passage id(s) past" in str(w) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        memory_reader.inputs(EXAMPLES[0])


@pytest.mark.parametrize(
    "examples, match",
    [
        ([], "at least one example"),
        ([{"passage_ids": []}], r"examples\[0\]\['question'\]"),
        ([{"question": "q", "passage_ids": "paris"}], "'passage_ids'"),
        (["q"], r"`examples\[0\]` must be a dict"),
    ],
)
def test_bad_examples_are_named(reader, store, examples, match):
    with pytest.raises(ValueError, match=match):
        MemoryReader(reader, store).inputs(examples)


def test_store_of_another_reader_is_refused(reader, store):
    config = reader.preprocessor.get_config()
    config.pop("tokenizer")
    config["context_prefix"] = "text:"
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        reader.preprocessor.tokenizer, **config
    )
    other = types.SimpleNamespace(
        backbone=reader.backbone, preprocessor=preprocessor
    )
    with pytest.raises(ValueError, match="context_prefix: store 'context:'"):
        MemoryReader(other, store)


def test_reader_without_memory_is_refused(reader, store):
    no_preprocessor = types.SimpleNamespace(
        backbone=reader.backbone, preprocessor=None
    )
    with pytest.raises(ValueError, match="`reader.preprocessor` set"):
        MemoryReader(no_preprocessor, store)
    fid = types.SimpleNamespace(
        backbone=types.SimpleNamespace(encoder_live_layers=None),
        preprocessor=reader.preprocessor,
    )
    with pytest.raises(ValueError, match="encoder_live_layers=None"):
        MemoryReader(fid, store)
