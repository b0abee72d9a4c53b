"""FiDOSeq2SeqLM: caches, samplers, text in and out, training, presets,
passage scores and bad input."""

import math
import re
import warnings

import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from keras_fido.analysis import cross_attention_cache_bytes_per_sample
from keras_fido.analysis.cache_memory import (
    self_attention_cache_bytes_per_sample,
)
from keras_fido.layers import FiDODecoder
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.testing.fido_models import TINY_FIDO_CONFIG
from keras_fido.testing.fido_models import decoder_kwargs
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.testing.model_checks import assert_restored
from keras_fido.testing.model_checks import run_preset_check
from keras_fido.testing.t5_reference import random_fid_inputs

PASSAGES = 3
PASSAGE_LENGTH = 32
DECODER_LENGTH = 8

EXAMPLE = {
    "question": "what is the capital of france",
    "passages": [
        {"title": "France", "text": "The capital of France is Paris."},
        {"title": "Paris", "text": "Paris is a city on a river."},
        {"title": "Lyon", "text": "Lyon is a city too."},
    ],
}
OTHER_EXAMPLE = {
    "question": "who wrote the play",
    "passages": [{"title": "Play", "text": "A play written long ago."}],
}


def make_preprocessor(tokenizer):
    return FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=PASSAGES,
        passage_length=PASSAGE_LENGTH,
        decoder_sequence_length=DECODER_LENGTH,
    )


def make_reader(tokenizer, seed=0):
    """A tiny FiDO reader (K=2, one K/V head, wide decoder) on the test
    tokenizer's 800-token vocabulary."""
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size(), seed=seed
    )
    return FiDOSeq2SeqLM(backbone, make_preprocessor(tokenizer))


@pytest.fixture(scope="module")
def tokenizer(sentencepiece_proto):
    return FiDOTokenizer(proto=sentencepiece_proto)


@pytest.fixture(scope="module")
def reader(tokenizer):
    """Shared; tests that train it or change its weights use their own."""
    return make_reader(tokenizer)


@pytest.fixture(scope="module")
def token_reader(reader):
    """The shared reader's backbone without a preprocessor: ids in and out."""
    return FiDOSeq2SeqLM(reader.backbone)


@pytest.fixture(scope="module")
def token_inputs(tokenizer):
    """Packed ids `[2, 3, 32]` with a short and a missing passage, and the
    start-token prompt `[2, 8]`."""
    x = random_fid_inputs(
        batch=2,
        passages=PASSAGES,
        length=PASSAGE_LENGTH,
        target=DECODER_LENGTH,
        vocab=tokenizer.vocabulary_size(),
    )
    x["decoder_token_ids"] = np.zeros_like(x["decoder_token_ids"])
    x["decoder_padding_mask"] = np.zeros((2, DECODER_LENGTH), bool)
    x["decoder_padding_mask"][:, 0] = True
    return x


def tensor_form(examples, targets=None):
    """The `fit()` form of a list of examples: string arrays, padded."""
    width = max(len(e["passages"]) for e in examples)

    def column(key):
        return [
            [p[key] for p in e["passages"]]
            + [""] * (width - len(e["passages"]))
            for e in examples
        ]

    data = {
        "question": np.array([e["question"] for e in examples]),
        "titles": np.array(column("title")),
        "texts": np.array(column("text")),
    }
    if targets is not None:
        data["target"] = np.array(targets)
    return data


# --- Decoding caches ---------------------------------------------------------


def test_build_cache_holds_kv_only_for_cross_attending_layers(
    token_reader, token_inputs
):
    backbone = token_reader.backbone
    config = backbone.get_config()
    self_cache, cross_cache = token_reader.build_cache(
        token_inputs["encoder_token_ids"],
        ops.cast(token_inputs["encoder_padding_mask"], "bool"),
        DECODER_LENGTH,
    )
    source = PASSAGES * PASSAGE_LENGTH
    kv_shape = (2, 1, source, TINY_FIDO_CONFIG["key_value_dim"])
    assert backbone.cross_attention_layer_indices == [2, 4]
    # One (key, value) pair per cross-attending layer.
    pairs = [tuple(tuple(ops.shape(t)) for t in pair) for pair in cross_cache]
    assert pairs == [(kv_shape, kv_shape)] * 2
    assert backbone.decoder.cross_attention_cache_shapes(2, source) == pairs
    cross_bytes = sum(
        math.prod(ops.shape(c)) * ops.convert_to_numpy(c).itemsize
        for c in keras.tree.flatten(cross_cache)
    )
    assert cross_bytes // 2 == cross_attention_cache_bytes_per_sample(
        config, PASSAGES, PASSAGE_LENGTH
    )
    # Self-attention: one cache per decoder layer, with the K/V heads.
    assert len(self_cache) == TINY_FIDO_CONFIG["decoder_num_layers"]
    for cache in self_cache:
        assert tuple(ops.shape(cache)) == (2, 2, 1, DECODER_LENGTH, 8)
    self_bytes = sum(
        math.prod(ops.shape(c)) * ops.convert_to_numpy(c).itemsize
        for c in self_cache
    )
    assert self_bytes // 2 == self_attention_cache_bytes_per_sample(
        config, DECODER_LENGTH
    )


def unbuilt_decoder(preset):
    return FiDODecoder(**decoder_kwargs(backbone_presets[preset]["config"]))


@pytest.mark.parametrize("preset", sorted(backbone_presets))
def test_preset_cross_attention_cache_matches_the_cost_model(preset):
    decoder = unbuilt_decoder(preset)
    shapes = decoder.cross_attention_cache_shapes(1, 40 * 256)
    # Sizing the cache allocates nothing, even for FiD-XXL.
    assert not decoder.built
    assert decoder.weights == []
    config = backbone_presets[preset]["config"]
    assert sum(4 * math.prod(s) for pair in shapes for s in pair) == (
        cross_attention_cache_bytes_per_sample(config, 40, 256)
    )


def test_fido_base_xl_caches_4_layers_of_1_head_fid_base_12_of_12():
    fido = unbuilt_decoder("fido_base_xl").cross_attention_cache_shapes(1, 8)
    fid = unbuilt_decoder("fid_base").cross_attention_cache_shapes(1, 8)
    assert fido == [((1, 1, 8, 64), (1, 1, 8, 64))] * 4
    assert fid == [((1, 12, 8, 64), (1, 12, 8, 64))] * 12


# --- Samplers ----------------------------------------------------------------


def test_greedy_is_the_default_sampler(reader):
    lm = FiDOSeq2SeqLM(reader.backbone)
    assert isinstance(lm.sampler, keras_hub.samplers.GreedySampler)
    lm.compile()
    assert isinstance(lm.sampler, keras_hub.samplers.GreedySampler)


@pytest.mark.parametrize("sampler", ["beam", "top_k", "top_p"])
def test_sampler_runs_the_encoder_once_and_returns_valid_ids(
    token_reader, token_inputs, sampler, monkeypatch
):
    encoder = token_reader.backbone.encoder
    calls = []

    def counting_call(*args, **kwargs):
        calls.append(1)
        return type(encoder).call(encoder, *args, **kwargs)

    token_reader.compile(sampler=sampler)
    monkeypatch.setattr(encoder, "call", counting_call)
    try:
        output = token_reader.generate(token_inputs, stop_token_ids=None)
    finally:
        monkeypatch.undo()
        token_reader.compile(sampler="greedy")
    # Once per generate() call: beams and steps reuse the cached K/V.
    assert len(calls) == 1
    ids = np.asarray(output["decoder_token_ids"])
    assert ids.shape == (2, DECODER_LENGTH)
    assert ids.dtype.kind == "i"
    assert (ids[:, 0] == 0).all()  # the start token is kept
    assert ((ids >= 0) & (ids < token_reader.backbone.vocabulary_size)).all()


# --- Text in, text out; training ---------------------------------------------


def test_generate_on_one_example_returns_a_string(reader):
    answer = reader.generate(EXAMPLE)
    assert isinstance(answer, str)


def test_generate_on_a_list_returns_a_list_of_strings(reader):
    answers = reader.generate([EXAMPLE, OTHER_EXAMPLE])
    assert isinstance(answers, list) and len(answers) == 2
    assert all(isinstance(a, str) for a in answers)
    # Batching does not change an example's answer.
    assert answers[0] == reader.generate([EXAMPLE])[0]


def test_generate_on_one_example_in_tensor_form_returns_a_string(reader):
    example = {
        "question": EXAMPLE["question"],
        "titles": [p["title"] for p in EXAMPLE["passages"]],
        "texts": [p["text"] for p in EXAMPLE["passages"]],
    }
    assert reader.generate(example) == reader.generate(EXAMPLE)


@pytest.mark.parametrize(
    "example",
    [
        {"question": "what is the capital of france", "passages": []},
        {"question": "what is the capital of france"},
    ],
    ids=["empty_list", "no_key"],
)
def test_example_without_passages_still_answers(reader, example):
    assert isinstance(reader.generate(example), str)


TRAIN_EXAMPLES = [
    EXAMPLE,
    OTHER_EXAMPLE,
    {"question": "what is two plus two", "passages": []},
    {
        "question": "where is rome",
        "passages": [{"title": "Rome", "text": "Rome is in Italy."}],
    },
]
TRAIN_TARGETS = ["paris", "a poet", "four", "italy"]


@pytest.fixture(scope="module")
def fit_reader(tokenizer):
    """A reader of its own for training; every `fit` in this module uses
    batches of 4 so that its train step is compiled once."""
    lm = make_reader(tokenizer, seed=1)
    lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    return lm


def test_fit_lowers_the_loss_and_predict_gives_logits(fit_reader, tokenizer):
    data = tensor_form(TRAIN_EXAMPLES, TRAIN_TARGETS)
    history = fit_reader.fit(data, batch_size=4, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.7 * losses[0], losses

    logits = fit_reader.predict(data, batch_size=4, verbose=0)
    vocabulary = tokenizer.vocabulary_size()
    assert np.shape(logits) == (4, DECODER_LENGTH, vocabulary)
    assert np.isfinite(logits).all()


# --- Saving and loading ------------------------------------------------------


def answered_batch(reader):
    batch = [EXAMPLE, OTHER_EXAMPLE]
    assert any(reader.generate(batch)), (
        "an all-empty answer would prove nothing"
    )
    return batch


def test_keras_hub_seq2seqlm_from_preset_restores_the_reader(reader, tmp_path):
    run_preset_check(
        reader,
        answered_batch(reader),
        tmp_path,
        loader=keras_hub.models.Seq2SeqLM.from_preset,
    )


def test_fido_from_preset_restores_the_reader(reader, tmp_path):
    run_preset_check(reader, answered_batch(reader), tmp_path)


def test_keras_file_round_trip_restores_the_reader(reader, tmp_path):
    path = str(tmp_path / "reader.keras")
    reader.save(path)
    with warnings.catch_warnings():
        # Keras notes that `compile()` is not restored; it defaults again.
        warnings.simplefilter("ignore", UserWarning)
        loaded = keras.saving.load_model(path)
    assert_restored(loaded, reader, answered_batch(reader))


# --- Passage scores ----------------------------------------------------------


def real_tokens(token_inputs):
    return np.asarray(token_inputs["encoder_padding_mask"]).sum(-1)


def test_score_passages_shape_and_padded_passage_scores_zero(
    token_reader, token_inputs
):
    scores = token_reader.score_passages(token_inputs)
    assert scores.shape == (2, PASSAGES)
    assert scores.dtype == np.float32
    assert scores[1, 2] == 0.0  # passage 2 of example 1 is all padding
    assert (np.delete(scores.ravel(), 5) > 0).all()


def test_passage_scores_are_attention_mass_per_real_token(
    token_reader, token_inputs
):
    scores = token_reader.score_passages(token_inputs)
    # All attention lands on real tokens: mass per token x tokens sums to 1.
    np.testing.assert_allclose(
        (scores * real_tokens(token_inputs)).sum(-1), 1.0, atol=1e-5
    )


def test_permuting_passages_permutes_their_scores(token_reader, token_inputs):
    scores = token_reader.score_passages(token_inputs)
    order = [2, 0, 1]
    permuted = {
        key: token_inputs[key][:, order]
        for key in ("encoder_token_ids", "encoder_padding_mask")
    }
    np.testing.assert_allclose(
        token_reader.score_passages(permuted), scores[:, order], atol=1e-6
    )


def test_identical_passages_score_the_same(token_reader, token_inputs):
    x = {
        key: token_inputs[key].copy()
        for key in ("encoder_token_ids", "encoder_padding_mask")
    }
    for key in x:
        x[key][:, 2] = x[key][:, 0]
    scores = token_reader.score_passages(x)
    np.testing.assert_allclose(scores[:, 2], scores[:, 0], rtol=1e-5)
    assert (abs(scores[:, 1] - scores[:, 0]) > 1e-4).all()


def test_uniform_cross_attention_scores_every_token_alike(
    tokenizer, token_inputs
):
    """With zero cross-attention keys every real token gets the same
    attention, so every non-empty passage scores 1 / (real tokens in the
    row), whatever its length."""
    lm = FiDOSeq2SeqLM(
        tiny_backbone("fido", vocabulary_size=tokenizer.vocabulary_size())
    )
    for layer in lm.backbone.decoder.cross_attention_layers:
        kernel = layer.cross_attention_layer.key_dense.kernel
        kernel.assign(np.zeros(kernel.shape, "float32"))
    scores = lm.score_passages(token_inputs)
    tokens = real_tokens(token_inputs)
    expected = np.where(tokens > 0, 1.0 / tokens.sum(-1, keepdims=True), 0.0)
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_score_passages_on_raw_examples(reader):
    scores = reader.score_passages([OTHER_EXAMPLE, EXAMPLE])
    assert scores.shape == (2, PASSAGES)
    # OTHER_EXAMPLE has one passage of three; EXAMPLE fills all three.
    assert scores[0, 0] > 0 and (scores[0, 1:] == 0).all()
    assert (scores[1] > 0).all()
    # One example in, one row out.
    np.testing.assert_allclose(
        reader.score_passages(OTHER_EXAMPLE), scores[:1], rtol=1e-5
    )


# --- The README example ------------------------------------------------------


def test_readme_example(sentencepiece_proto, tmp_path):
    import keras_hub

    import keras_fido

    # A tiny FiDO reader on a SentencePiece vocabulary.
    tokenizer = keras_fido.models.FiDOTokenizer(proto=sentencepiece_proto)
    preprocessor = keras_fido.models.FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=3, passage_length=32, decoder_sequence_length=8
    )
    backbone = keras_fido.models.FiDOBackbone(
        vocabulary_size=tokenizer.vocabulary_size(),
        encoder_num_layers=2,
        encoder_hidden_dim=16,
        encoder_intermediate_dim=32,
        encoder_num_heads=2,
        decoder_num_layers=4,
        decoder_hidden_dim=32,
        decoder_intermediate_dim=64,
        decoder_num_heads=4,
        decoder_num_key_value_heads=1,  # multi-query attention
        key_value_dim=8,
        cross_attention_interval=2,  # cross-attention in layers 2 and 4
    )
    reader = keras_fido.models.FiDOSeq2SeqLM(backbone, preprocessor)
    reader.save_to_preset(str(tmp_path / "tiny_fido"))

    # Load it back through keras-hub and answer a question.
    reader = keras_hub.models.Seq2SeqLM.from_preset(str(tmp_path / "tiny_fido"))
    answer = reader.generate(
        {
            "question": "where is the eiffel tower",
            "passages": [
                {"title": "Eiffel Tower", "text": "The tower is in Paris."},
                {"title": "Paris", "text": "Paris is the capital of France."},
                {"title": "France", "text": "France is in Europe."},
            ],
        }
    )

    assert isinstance(reader, keras_fido.models.FiDOSeq2SeqLM)
    assert reader.backbone.cross_attention_layer_indices == [2, 4]
    assert isinstance(answer, str)


# --- Bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "x, field",
    [
        ({"passages": []}, "'question'"),
        ({"question": "q", "passages": [{"title": "t"}]}, "x['passages'][0]"),
        ({"question": 3, "passages": []}, "x['question']"),
        (
            {"question": "q", "passages": [{"text": 5}]},
            "x['passages'][0]['text']",
        ),
        ({"question": "q", "passages": "a passage"}, "x['passages']"),
        ([EXAMPLE, {"question": ["q"], "passages": []}], "x[1]['question']"),
        (["a question"], "x[0]"),
        (42, "`x`"),
    ],
    ids=[
        "missing_question",
        "passage_without_text",
        "non_string_question",
        "non_string_text",
        "passages_not_a_list",
        "bad_example_in_batch",
        "string_not_example",
        "not_a_dict",
    ],
)
def test_generate_rejects_bad_input_naming_the_field(reader, x, field):
    with pytest.raises(ValueError, match=re.escape(field)):
        reader.generate(x)


def test_extra_passages_are_dropped_with_one_warning(
    reader, tokenizer, monkeypatch
):
    # A fresh preprocessor: warnings are once per preprocessor instance.
    monkeypatch.setattr(reader, "preprocessor", make_preprocessor(tokenizer))
    extra = [{"title": "Other", "text": f"Passage {i}."} for i in range(2)]
    example = dict(EXAMPLE, passages=EXAMPLE["passages"] + extra)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answers = [reader.generate(example) for _ in range(2)]
    dropped = [w for w in caught if "were dropped" in str(w.message)]
    assert len(dropped) == 1
    assert "2 non-empty passage(s)" in str(dropped[0].message)
    assert answers == [reader.generate(EXAMPLE)] * 2


def test_fit_on_example_dicts_warns_about_a_cut_target(tokenizer):
    """A list of FiD dicts is preprocessed eagerly by `fit`, so a target
    longer than the decoder is cut with a warning, and training runs."""
    lm = make_reader(tokenizer, seed=2)
    lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    long_target = "a very long answer with many more words than eight tokens"
    examples = [
        dict(e, target=t)
        for e, t in zip(TRAIN_EXAMPLES, [long_target] + TRAIN_TARGETS[1:])
    ]
    with pytest.warns(UserWarning, match="target token"):
        history = lm.fit(examples, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    with pytest.raises(ValueError, match="`y` and `sample_weight`"):
        lm.fit(examples, np.zeros((4, DECODER_LENGTH)), verbose=0)


def test_fit_accepts_a_target_longer_than_the_decoder(fit_reader):
    """The target is cut to the decoder length (the preprocessor's tests
    check how); `truncation_report` counts the cut. Inside `fit()`'s
    `tf.data` pipeline no warning can be raised."""
    targets = [
        "a very long answer with many more words than fit in eight tokens"
    ] + TRAIN_TARGETS[1:]
    examples = [dict(e, target=t) for e, t in zip(TRAIN_EXAMPLES, targets)]
    report = fit_reader.preprocessor.truncation_report(examples)
    assert report["target_tokens_cut"] > 0
    data = tensor_form(TRAIN_EXAMPLES, targets)
    history = fit_reader.fit(data, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize(
    "drop, replace, field",
    [
        ("titles", None, "'titles'"),
        (None, ("question", np.array([3])), "x['question']"),
        (None, ("texts", np.array([[1.0, 2.0]])), "x['texts']"),
    ],
    ids=["missing_titles", "non_string_question", "non_string_texts"],
)
def test_fit_rejects_bad_input_naming_the_field(
    fit_reader, drop, replace, field
):
    data = tensor_form([OTHER_EXAMPLE], ["an answer"])
    if drop:
        del data[drop]
    if replace:
        data[replace[0]] = replace[1]
    with pytest.raises(ValueError, match=re.escape(field)):
        fit_reader.fit(data, batch_size=1, epochs=1, verbose=0)


def test_docstring_example_runs_as_written():
    import textwrap

    code = re.search(r"```python\n(.*?)```", FiDOSeq2SeqLM.__doc__, re.S).group(
        1
    )
    namespace = {}
    exec(textwrap.dedent(code), namespace)
    answer = namespace["reader"].generate(
        {
            "question": "what is the capital of france",
            "passages": [{"title": "France", "text": "Its capital is Paris."}],
        }
    )
    assert isinstance(answer, str)
