import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_fido.models.fido_seq_2_seq_lm_preprocessor import (
    FiDOSeq2SeqLMPreprocessor,
)
from keras_fido.testing.model_checks import run_preprocessor_check

PAD = 0
EOS = 1


def to_numpy(value):
    if isinstance(value, (tf.Tensor, tf.RaggedTensor)):
        return value.numpy()
    return keras.ops.convert_to_numpy(value)


def token_ids(tokenizer, text):
    return [int(i) for i in to_numpy(tokenizer(text))]


def packed_row(tokenizer, text, length):
    """Expected `(ids, mask)` of one passage: `tokens[:L - 1] + [eos]`."""
    ids = token_ids(tokenizer, text)[: length - 1] + [EOS]
    mask = [True] * len(ids) + [False] * (length - len(ids))
    return ids + [PAD] * (length - len(ids)), mask


def make_preprocessor(tokenizer, **kwargs):
    config = dict(num_passages=3, passage_length=64, decoder_sequence_length=8)
    config.update(kwargs)
    return FiDOSeq2SeqLMPreprocessor(tokenizer, **config)


EXAMPLE = {
    "question": "What is the capital of France?",
    "passages": [
        {"title": "Paris", "text": "Paris is the capital of France."},
        {"title": "Lyon", "text": "Lyon is a city in France."},
    ],
    "target": "Paris",
}


def test_encoder_string_format_is_exact(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    strings = preprocessor.encoder_strings(EXAMPLE)
    assert strings == [
        "question: What is the capital of France? title: Paris context: "
        "Paris is the capital of France.",
        "question: What is the capital of France? title: Lyon context: "
        "Lyon is a city in France.",
        "",
    ]


def test_encoder_string_format_custom_prefixes(fido_tokenizer):
    preprocessor = make_preprocessor(
        fido_tokenizer,
        question_prefix="Q:",
        title_prefix="T:",
        context_prefix="",
    )
    strings = preprocessor.encoder_strings(EXAMPLE)
    assert strings[0] == (
        "Q: What is the capital of France? T: Paris "
        "Paris is the capital of France."
    )


def test_encoder_ids_are_the_tokenized_format_strings(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, passage_length=128)
    x, _, _ = preprocessor(EXAMPLE)
    ids = to_numpy(x["encoder_token_ids"])
    mask = to_numpy(x["encoder_padding_mask"])
    for slot, text in enumerate(preprocessor.encoder_strings(EXAMPLE)[:2]):
        expected_ids, expected_mask = packed_row(fido_tokenizer, text, 128)
        assert ids[slot].tolist() == expected_ids
        assert mask[slot].tolist() == expected_mask


def test_shapes_and_dtypes_batched(fido_tokenizer, sentencepiece_proto):
    preprocessor = make_preprocessor(fido_tokenizer)
    # Names, [2, 3, 64] / [2, 8] shapes, int32 ids and bool masks.
    run_preprocessor_check(
        preprocessor, [EXAMPLE, EXAMPLE], sentencepiece_proto
    )


def test_single_example_has_no_batch_axis(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    x, y, sample_weight = preprocessor(EXAMPLE)
    assert tuple(x["encoder_token_ids"].shape) == (3, 64)
    assert tuple(x["decoder_token_ids"].shape) == (8,)
    assert tuple(y.shape) == (8,)


def test_eos_placement_and_truncation_at_passage_length(fido_tokenizer):
    long_text = " ".join(["the capital of France is Paris"] * 10)
    example = {
        "question": "capital?",
        "passages": [
            {"title": "Long", "text": long_text},
            {"title": "Short", "text": "Paris"},
        ],
    }
    length = 40
    preprocessor = make_preprocessor(fido_tokenizer, passage_length=length)
    strings = preprocessor.encoder_strings(example)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = preprocessor(example)
    ids = to_numpy(x["encoder_token_ids"])
    mask = to_numpy(x["encoder_padding_mask"])

    # Long passage: the first L - 1 tokens, then EOS in the last position.
    full = token_ids(fido_tokenizer, strings[0])
    assert len(full) > length
    assert ids[0].tolist() == full[: length - 1] + [EOS]
    assert mask[0].all()

    # Short passage: EOS right after its tokens, then pad and mask False.
    short = token_ids(fido_tokenizer, strings[1])
    assert len(short) < length - 1
    assert ids[1, len(short)] == EOS
    assert ids[1, : len(short)].tolist() == short
    assert (ids[1, len(short) + 1 :] == PAD).all()
    assert mask[1].tolist() == [True] * (len(short) + 1) + [False] * (
        length - len(short) - 1
    )

    report = preprocessor.truncation_report(example)
    assert report["passages_truncated"] == 1
    assert report["passage_tokens_cut"] == len(full) - (length - 1)


def test_passage_cut_warns_once(fido_tokenizer):
    example = {
        "question": "capital?",
        "passages": [{"title": "", "text": "Paris is big. " * 20}],
    }
    preprocessor = make_preprocessor(fido_tokenizer, passage_length=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        preprocessor(example)
        preprocessor(example)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "passage_length=8" in messages[0]


def test_missing_passages_are_fully_padded_and_masked(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, num_passages=4)
    example = {
        "question": "capital?",
        "passages": [{"title": "Paris", "text": "The capital."}],
    }
    x = preprocessor(example)
    ids = to_numpy(x["encoder_token_ids"])
    mask = to_numpy(x["encoder_padding_mask"])
    assert mask[0].any()
    assert (ids[1:] == PAD).all()
    assert not mask[1:].any()


def test_empty_title_and_text_slot_is_masked_in_tensor_form(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    x = preprocessor(
        {
            "question": ["capital?"],
            "titles": [["Paris", "", "Lyon"]],
            "texts": [["The capital.", "", "A city."]],
        }
    )
    mask = to_numpy(x["encoder_padding_mask"])
    ids = to_numpy(x["encoder_token_ids"])
    assert mask[0, 0].any() and mask[0, 2].any()
    assert not mask[0, 1].any()
    assert (ids[0, 1] == PAD).all()


@pytest.mark.parametrize("passages_key", ["passages", "ctxs", None])
def test_no_passages_encodes_question_alone(fido_tokenizer, passages_key):
    preprocessor = make_preprocessor(fido_tokenizer)
    example = {"question": "Who wrote Hamlet?"}
    if passages_key is not None:
        example[passages_key] = []
    assert preprocessor.encoder_strings(example) == [
        "question: Who wrote Hamlet?",
        "",
        "",
    ]
    x = preprocessor(example)
    ids = to_numpy(x["encoder_token_ids"])
    mask = to_numpy(x["encoder_padding_mask"])
    expected_ids, expected_mask = packed_row(
        fido_tokenizer, "question: Who wrote Hamlet?", 64
    )
    assert ids[0].tolist() == expected_ids
    assert mask[0].tolist() == expected_mask
    assert not mask[1:].any()


def test_ctxs_is_an_alias_of_passages(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    alias = {"question": EXAMPLE["question"], "ctxs": EXAMPLE["passages"]}
    assert preprocessor.encoder_strings(alias) == (
        preprocessor.encoder_strings(EXAMPLE)
    )


def test_more_passages_than_num_passages_keeps_first_and_warns(
    fido_tokenizer,
):
    passages = [
        {"title": f"Title {i}", "text": f"Passage number {i}."}
        for i in range(5)
    ]
    example = {"question": "Which one?", "passages": passages}
    preprocessor = make_preprocessor(fido_tokenizer, num_passages=2)
    first_two = make_preprocessor(fido_tokenizer, num_passages=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = preprocessor(example)
        preprocessor(example)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "3 non-empty passage(s)" in messages[0]
    assert "num_passages=2" in messages[0]

    expected = first_two({"question": "Which one?", "passages": passages[:2]})
    np.testing.assert_array_equal(
        to_numpy(x["encoder_token_ids"]),
        to_numpy(expected["encoder_token_ids"]),
    )
    assert preprocessor.encoder_strings(example)[1].endswith(
        "title: Title 1 context: Passage number 1."
    )
    report = preprocessor.truncation_report(example)
    assert report == {
        "passages_dropped": 3,
        "passage_tokens_cut": 0,
        "passages_truncated": 0,
        "target_tokens_cut": 0,
    }


def test_target_shifting(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, decoder_sequence_length=8)
    target = token_ids(fido_tokenizer, "Paris")
    assert len(target) <= 6
    x, y, sample_weight = preprocessor(EXAMPLE)
    # Full decoder sequence: [start=pad] + target + [eos], padded to T + 1.
    ids = [PAD] + target + [EOS]
    mask = [True] * len(ids) + [False] * (9 - len(ids))
    ids = ids + [PAD] * (9 - len(ids))
    assert to_numpy(x["decoder_token_ids"]).tolist() == ids[:-1]
    assert to_numpy(x["decoder_padding_mask"]).tolist() == mask[:-1]
    assert to_numpy(y).tolist() == ids[1:]
    assert to_numpy(sample_weight).tolist() == mask[1:]


def test_first_answer_is_the_target_when_target_missing(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    with_answers = {
        "question": EXAMPLE["question"],
        "passages": EXAMPLE["passages"],
        "answers": ["Paris", "Lyon"],
    }
    _, y_answers, _ = preprocessor(with_answers)
    _, y_target, _ = preprocessor(EXAMPLE)  # target "Paris"
    np.testing.assert_array_equal(to_numpy(y_answers), to_numpy(y_target))


def test_target_truncation_keeps_eos_reports_and_warns(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, decoder_sequence_length=4)
    target = "the capital of France is Paris"
    target_ids = token_ids(fido_tokenizer, target)
    example = {"question": "capital?", "passages": [], "target": target}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x, y, sample_weight = preprocessor(example)
    assert len(caught) == 1
    assert "target token(s)" in str(caught[0].message)
    assert to_numpy(x["decoder_token_ids"]).tolist() == [PAD] + target_ids[:3]
    assert to_numpy(y).tolist() == target_ids[:3] + [EOS]
    assert to_numpy(sample_weight).all()
    report = preprocessor.truncation_report(example)
    assert report["target_tokens_cut"] == len(target_ids) - 3


def test_no_target_returns_x_only(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    example = {"question": "capital?", "passages": EXAMPLE["passages"]}
    output = preprocessor(example)
    assert isinstance(output, dict)
    assert set(output.keys()) == {
        "encoder_token_ids",
        "encoder_padding_mask",
    }


def test_generate_preprocess(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    x = preprocessor.generate_preprocess([EXAMPLE])
    assert tuple(x["encoder_token_ids"].shape) == (1, 3, 64)
    assert to_numpy(x["decoder_token_ids"]).tolist() == [[0] * 8]
    assert to_numpy(x["decoder_padding_mask"]).tolist() == [
        [True] + [False] * 7
    ]
    packed, _, _ = preprocessor([EXAMPLE])
    np.testing.assert_array_equal(
        to_numpy(x["encoder_token_ids"]),
        to_numpy(packed["encoder_token_ids"]),
    )
    x = preprocessor.generate_preprocess(EXAMPLE, sequence_length=5)
    assert to_numpy(x["decoder_token_ids"]).tolist() == [0] * 5
    assert to_numpy(x["decoder_padding_mask"]).tolist() == [True] + [False] * 4


def test_generate_postprocess_round_trip(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    text = "Paris is the capital of France"
    ids = token_ids(fido_tokenizer, text)
    # Tokens after the first EOS, and masked tokens, are ignored.
    generated = [0] + ids + [EOS, 0, 0]
    mask = [True] * (len(ids) + 2) + [False, False]
    output = preprocessor.generate_postprocess(
        {"decoder_token_ids": generated, "decoder_padding_mask": mask}
    )
    assert output == text
    other = token_ids(fido_tokenizer, "Lyon")
    batch = np.zeros((2, len(generated)), "int32")
    batch[0] = generated
    batch[1, : len(other) + 3] = [0] + other + [EOS, 5]
    batch_mask = np.ones_like(batch, dtype=bool)
    output = preprocessor.generate_postprocess(
        {
            "decoder_token_ids": keras.ops.convert_to_tensor(batch),
            "decoder_padding_mask": keras.ops.convert_to_tensor(batch_mask),
        }
    )
    assert output == [text, "Lyon"]


def test_tf_data_map_on_batched_tensors(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, decoder_sequence_length=16)
    features = {
        "question": ["capital of France?", "Who wrote Hamlet?"],
        "titles": [["Paris", "Lyon"], ["", ""]],
        "texts": [["The capital.", "A city."], ["", ""]],
        "target": ["Paris", "Shakespeare"],
    }
    ds = tf.data.Dataset.from_tensor_slices(features).batch(2)
    x, y, sample_weight = next(iter(ds.map(preprocessor)))
    assert isinstance(x["encoder_token_ids"], tf.Tensor)
    assert x["encoder_token_ids"].shape == (2, 3, 64)
    assert y.shape == (2, 16)
    eager_x, eager_y, eager_sample_weight = preprocessor(features)
    for key in x:
        np.testing.assert_array_equal(x[key].numpy(), to_numpy(eager_x[key]))
    np.testing.assert_array_equal(y.numpy(), to_numpy(eager_y))
    np.testing.assert_array_equal(
        sample_weight.numpy(), to_numpy(eager_sample_weight)
    )
    # The example without passages got its question in slot 0.
    assert x["encoder_padding_mask"].numpy()[1, 0].any()


def test_tf_data_map_truncation_report(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, num_passages=1)
    features = {
        "question": ["q1", "q2"],
        "titles": [["a", "b"], ["c", ""]],
        "texts": [["x", "y"], ["z", ""]],
    }
    ds = tf.data.Dataset.from_tensor_slices(features).batch(2)
    report = next(iter(ds.map(preprocessor.truncation_report)))
    assert int(report["passages_dropped"]) == 1


def test_tf_data_map_unbatched_then_batch(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, decoder_sequence_length=16)
    features = {
        "question": ["capital?", "author?"],
        "titles": [["Paris"], ["Hamlet"]],
        "texts": [["The capital."], ["A play."]],
        "target": ["Paris", "Shakespeare"],
    }
    ds = tf.data.Dataset.from_tensor_slices(features)
    x, y, _ = next(iter(ds.map(preprocessor).batch(2)))
    assert x["encoder_token_ids"].shape == (2, 3, 64)
    assert y.shape == (2, 16)


@pytest.mark.parametrize(
    "x, field",
    [
        ({"passages": []}, "'question'"),
        ({"question": 3, "passages": []}, r"x\['question'\]"),
        (
            {"question": "q", "passages": [{"title": "t"}]},
            r"x\['passages'\]\[0\]",
        ),
        (
            {"question": "q", "passages": [{"title": 1, "text": "t"}]},
            r"x\['passages'\]\[0\]\['title'\]",
        ),
        (
            {"question": "q", "passages": [{"text": None}]},
            r"x\['passages'\]\[0\]\['text'\]",
        ),
        ({"question": "q", "passages": "text"}, r"x\['passages'\]"),
        ({"question": "q", "target": 7}, r"x\['target'\]"),
        ({"question": "q", "answers": "Paris"}, r"x\['answers'\]"),
        ([{"question": "q"}, {"text": "t"}], r"x\[1\]"),
        ([], "at least one example"),
        ("just a string", "Received: x of type str"),
        (
            {"question": [["q"]], "titles": [["t"]], "texts": [["c"]]},
            r"x\['question'\].*rank 1",
        ),
        (
            {"question": ["q"], "titles": ["t"], "texts": ["c"]},
            r"x\['titles'\].*rank 2",
        ),
        (
            {"question": ["q"], "titles": [["t", "u"]], "texts": [["c"]]},
            "same shape",
        ),
        (
            {"question": ["q", "r"], "titles": [["t"]], "texts": [["c"]]},
            "batch size",
        ),
        (
            {"question": ["q"], "titles": [[1]], "texts": [["c"]]},
            r"x\['titles'\].*strings",
        ),
        ({"question": ["q"], "texts": [["c"]]}, "'titles'"),
        (
            {
                "question": ["q"],
                "titles": [["t"]],
                "texts": [["c"]],
                "target": [["a"]],
            },
            r"x\['target'\]",
        ),
    ],
)
def test_bad_inputs_name_the_field(fido_tokenizer, x, field):
    preprocessor = make_preprocessor(fido_tokenizer)
    with pytest.raises(ValueError, match=field):
        preprocessor(x)


def test_mixed_targets_in_a_batch_raise(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    with pytest.raises(ValueError, match=r"x\[1\]"):
        preprocessor([EXAMPLE, {"question": "q", "passages": []}])


def test_labels_passed_to_call_raise(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer)
    with pytest.raises(ValueError, match="`y`"):
        preprocessor(EXAMPLE, y=np.zeros((8,)))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_passages": 0}, "num_passages"),
        ({"passage_length": 2.5}, "passage_length"),
        ({"decoder_sequence_length": -1}, "decoder_sequence_length"),
        ({"title_prefix": None}, "title_prefix"),
    ],
)
def test_bad_constructor_arguments(fido_tokenizer, kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_preprocessor(fido_tokenizer, **kwargs)


def test_config_round_trip(fido_tokenizer, sentencepiece_proto):
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        fido_tokenizer,
        num_passages=5,
        passage_length=96,
        decoder_sequence_length=7,
        question_prefix="Q:",
        title_prefix="T:",
        context_prefix="C:",
        name="fido_preprocessor",
    )
    config = preprocessor.get_config()
    for key, value in {
        "num_passages": 5,
        "passage_length": 96,
        "decoder_sequence_length": 7,
        "question_prefix": "Q:",
        "title_prefix": "T:",
        "context_prefix": "C:",
    }.items():
        assert config[key] == value
    # The vocabulary is an asset; once set, outputs match the original.
    restored = run_preprocessor_check(
        preprocessor, EXAMPLE, sentencepiece_proto
    )
    assert restored.tokenizer.start_token_id == 0


def test_serialize_with_registered_name(fido_tokenizer):
    preprocessor = make_preprocessor(fido_tokenizer, question_prefix="Q:")
    config = keras.saving.serialize_keras_object(preprocessor)
    assert config["registered_name"] == "keras_fido>FiDOSeq2SeqLMPreprocessor"
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, FiDOSeq2SeqLMPreprocessor)
    assert restored.question_prefix == "Q:"
