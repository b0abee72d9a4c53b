"""Passage memory (LUMEN): `encoder_live_layers` splits the encoder into
a memory part over each passage alone and a live part per query."""

import numpy as np
import pytest
from keras import ops

from keras_fido.layers import FiDOEncoder
from keras_fido.models import FiDOBackbone
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.models.fido_presets import backbone_presets
from keras_fido.models.passage_memory import encode_passage_memory
from keras_fido.models.passage_memory import encode_with_memory
from keras_fido.models.passage_memory import freeze_memory_encoder
from keras_fido.models.passage_memory import memory_variables

QUESTION, LENGTH, PASSAGES, WIDTH = 4, 10, 3, 16

EXAMPLES = [
    {
        "question": "what is the capital of france",
        "passages": [
            {"title": "France", "text": "The capital of France is Paris."},
            {"title": "Paris", "text": "Paris is a city on a river."},
        ],
        "target": "Paris",
    },
    {
        "question": "who wrote the play",
        "passages": [{"title": "Play", "text": "A play written long ago."}],
        "target": "someone",
    },
]


def encoder(live_layers=None, question_length=None, seed=0):
    layer = FiDOEncoder(
        num_layers=3,
        hidden_dim=WIDTH,
        intermediate_dim=32,
        num_heads=2,
        key_value_dim=8,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        live_layers=live_layers,
        question_length=question_length,
    )
    layer.build((None, None, LENGTH, WIDTH))
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(size=w.shape, scale=0.3) for w in layer.get_weights()]
    )
    return layer


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(2, PASSAGES, LENGTH, WIDTH)).astype("float32")
    x[:, 1:, :QUESTION] = x[:, :1, :QUESTION]  # One question per sample.
    mask = np.ones((2, PASSAGES, LENGTH), "int32")
    mask[0, :, 2:QUESTION] = 0  # A short question.
    mask[0, 1, -3:] = 0  # A short passage.
    mask[1, 2] = 0  # A missing passage.
    return x, mask


def numpy(x):
    return ops.convert_to_numpy(x)


def test_every_layer_live_is_the_fid_encoder_on_the_same_sequences():
    fid, lumen = encoder(), encoder(live_layers=3, question_length=QUESTION)
    x, mask = inputs()
    np.testing.assert_array_equal(numpy(fid(x, mask)), numpy(lumen(x, mask)))


def test_memory_of_a_passage_ignores_the_question_and_the_other_passages():
    layer = encoder(live_layers=1, question_length=QUESTION)
    x, mask = inputs()
    y = x.copy()
    y[:, :, :QUESTION] += 1.0  # Another question.
    y[:, 1:, QUESTION:] += 1.0  # Other passages beside passage 0.
    passage = (slice(None), slice(0, 1), slice(QUESTION, None))
    first = numpy(layer.encode_memory(x[passage], mask[passage]))
    second = numpy(layer.encode_memory(y[passage], mask[passage]))
    np.testing.assert_array_equal(first, second)
    # The live layer mixes the question in.
    fused_x = numpy(layer(x, mask))[:, QUESTION:LENGTH]
    fused_y = numpy(layer(y, mask))[:, QUESTION:LENGTH]
    assert np.abs(fused_x - fused_y).max() > 1e-3


def test_split_encoder_equals_memory_then_live_layers():
    """Closed form: the first two blocks over each part alone, the last
    over the question of slot 0 joined to each passage."""
    layer = encoder(live_layers=1, question_length=QUESTION)
    x, mask = inputs()
    q = slice(None, QUESTION)
    p = slice(QUESTION, None)
    question = layer.encode_memory(x[:, :1, q], mask[:, :1, q])
    memory = layer.encode_memory(x[:, :, p], mask[:, :, p])
    expected = layer.encode_live(question, memory, mask)
    np.testing.assert_allclose(
        numpy(layer(x, mask)), numpy(expected), atol=1e-6
    )
    # The question's memory is not the passage slot's own question block
    # run through the whole sequence: slots 1 and 2 reuse slot 0's.
    assert numpy(memory).shape == (2, PASSAGES, LENGTH - QUESTION, WIDTH)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(live_layers=0, question_length=4), r"int in \[1, 3\]"),
        (dict(live_layers=4, question_length=4), r"live_layers=4"),
        (dict(live_layers=1), "question_length"),
        (dict(question_length=4), "needs `live_layers`"),
        (dict(live_layers=1, question_length=0), "positive int"),
    ],
)
def test_bad_split_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        encoder(**kwargs)


def test_backbone_names_its_own_arguments():
    config = dict(backbone_presets["lumen_tiny"]["config"])
    config["encoder_live_layers"] = 9
    with pytest.raises(ValueError, match=r"encoder_live_layers.*\[1, 3\]"):
        FiDOBackbone(**config)


def lumen_backbone(vocabulary_size, seed=0):
    config = dict(
        backbone_presets["lumen_tiny"]["config"],
        vocabulary_size=vocabulary_size,
        encoder_question_length=QUESTION,
        dropout=0.0,
    )
    backbone = FiDOBackbone(**config)
    rng = np.random.default_rng(seed)
    backbone.set_weights(
        [
            rng.normal(size=w.shape, scale=0.3).astype("float32")
            for w in backbone.get_weights()
        ]
    )
    return backbone


def token_inputs(vocabulary_size=50):
    rng = np.random.default_rng(1)
    ids = rng.integers(2, vocabulary_size, (2, PASSAGES, LENGTH))
    ids[:, 1:, :QUESTION] = ids[:, :1, :QUESTION]
    _, mask = inputs()
    return ids.astype("int32") * mask, mask


def test_encoder_output_from_stored_memory_equals_the_full_run():
    backbone = lumen_backbone(50)
    ids, mask = token_inputs()
    full = backbone.encoder(backbone.encoder_token_embedding(ids), mask)
    memory = encode_passage_memory(
        backbone, ids[:, :, QUESTION:], mask[:, :, QUESTION:]
    )
    np.testing.assert_allclose(
        numpy(encode_with_memory(backbone, ids, mask, memory)),
        numpy(full),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="passage_memory"):
        encode_with_memory(backbone, ids, mask, memory[:, :, :-1])


def test_config_round_trip_and_presets():
    backbone = FiDOBackbone.from_preset("lumen_tiny")
    config = backbone.get_config()
    assert config["encoder_live_layers"] == 1
    assert config["encoder_question_length"] == 8
    again = FiDOBackbone.from_config(config)
    assert len(again.encoder.memory_layers) == 2
    preset = backbone_presets["lumen_base_xl"]["config"]
    assert preset["encoder_num_layers"] == 12
    assert preset["encoder_live_layers"] == 4  # LUMEN-1/3
    assert preset["cross_attention_interval"] == 6
    assert preset["decoder_num_key_value_heads"] == 1


def test_sequences_no_longer_than_the_question_block_are_refused():
    backbone = lumen_backbone(50)
    ids = np.ones((1, 2, QUESTION), "int32")
    with pytest.raises(ValueError, match="length above 4"):
        backbone(
            {
                "encoder_token_ids": ids,
                "encoder_padding_mask": ids,
                "decoder_token_ids": np.zeros((1, 3), "int32"),
                "decoder_padding_mask": np.ones((1, 3), "int32"),
            }
        )


def test_freezing_keeps_memory_fixed_while_the_rest_trains():
    backbone = lumen_backbone(50)
    frozen = freeze_memory_encoder(backbone)
    assert frozen == sum(
        int(np.prod(v.shape)) for v in memory_variables(backbone)
    )
    trainable = {id(v) for v in backbone.trainable_variables}
    assert not any(id(v) in trainable for v in memory_variables(backbone))
    live = backbone.encoder.transformer_layers[-1].weights
    assert all(id(v) in trainable for v in live)
    reader = FiDOSeq2SeqLM(backbone)
    reader.compile(optimizer="adam")
    ids, mask = token_inputs()
    before = [numpy(v).copy() for v in memory_variables(backbone)]
    memory_before = numpy(
        encode_passage_memory(
            backbone, ids[:, :, QUESTION:], mask[:, :, QUESTION:]
        )
    )
    live_before = numpy(live[0]).copy()
    x = {
        "encoder_token_ids": ids,
        "encoder_padding_mask": mask,
        "decoder_token_ids": np.zeros((2, 3), "int32"),
        "decoder_padding_mask": np.ones((2, 3), "int32"),
    }
    reader.fit(x, np.ones((2, 3), "int32"), epochs=1, verbose=0)
    for old, variable in zip(before, memory_variables(backbone)):
        np.testing.assert_array_equal(old, numpy(variable))
    np.testing.assert_array_equal(
        memory_before,
        numpy(
            encode_passage_memory(
                backbone, ids[:, :, QUESTION:], mask[:, :, QUESTION:]
            )
        ),
    )
    assert np.abs(live_before - numpy(live[0])).max() > 0


@pytest.fixture(scope="module")
def tokenizer(sentencepiece_proto):
    return FiDOTokenizer(proto=sentencepiece_proto)


def preprocessor(tokenizer, question_length=QUESTION + 12):
    return FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=PASSAGES,
        passage_length=64,
        decoder_sequence_length=6,
        question_length=question_length,
    )


def test_preprocessor_packs_a_question_block_then_the_passage(tokenizer):
    split = QUESTION + 12
    layer = preprocessor(tokenizer)
    assert layer.truncation_report(EXAMPLES)["passage_tokens_cut"] == 0
    x, _, _ = layer(EXAMPLES)
    ids = numpy(x["encoder_token_ids"])
    mask = numpy(x["encoder_padding_mask"]).astype(bool)
    question = tokenizer("question: what is the capital of france")
    question = list(numpy(question))[:split]
    passage = list(
        numpy(tokenizer("title: Paris context: Paris is a city on a river."))
    )
    # Slots with a passage repeat the question block.
    for slot in (0, 1):
        assert list(ids[0, slot, : len(question)]) == question
        assert mask[0, slot, : len(question)].all()
        assert not mask[0, slot, len(question) : split].any()
    assert list(ids[0, 1, split : split + len(passage)]) == passage
    assert ids[0, 1, split + len(passage)] == tokenizer.end_token_id
    # A missing slot holds nothing, its question block included.
    assert not mask[0, 2].any() and not mask[1, 1:].any()


def test_question_cut_is_reported(tokenizer):
    layer = preprocessor(tokenizer, question_length=3)
    report = layer.truncation_report(EXAMPLES)
    assert report["question_tokens_cut"] > 0
    with pytest.warns(UserWarning, match="question token"):
        layer(EXAMPLES)


def test_preprocessor_question_block_must_match_the_backbone(tokenizer):
    backbone = lumen_backbone(tokenizer.vocabulary_size())
    with pytest.raises(ValueError, match="question_length=5.*=4"):
        FiDOSeq2SeqLM(backbone, preprocessor(tokenizer, question_length=5))
    with pytest.raises(ValueError, match="question_length=None"):
        FiDOSeq2SeqLM(
            backbone, FiDOSeq2SeqLMPreprocessor(tokenizer, passage_length=24)
        )
    with pytest.raises(ValueError, match="less than 64"):
        preprocessor(tokenizer, question_length=64)


def test_generate_from_memory_equals_generate_from_text(tokenizer):
    backbone = lumen_backbone(tokenizer.vocabulary_size())
    reader = FiDOSeq2SeqLM(backbone, preprocessor(tokenizer, QUESTION))
    inputs = reader.preprocessor.generate_preprocess(EXAMPLES)
    ids = numpy(inputs["encoder_token_ids"])
    mask = numpy(inputs["encoder_padding_mask"])
    reader.make_generate_function()
    plain = reader.generate_function(dict(inputs), stop_token_ids=None)
    memory = encode_passage_memory(
        backbone, ids[:, :, QUESTION:], mask[:, :, QUESTION:]
    )
    stored = reader.generate_function(
        dict(inputs, passage_memory=memory), stop_token_ids=None
    )
    np.testing.assert_array_equal(
        numpy(plain["decoder_token_ids"]), numpy(stored["decoder_token_ids"])
    )


def test_with_passage_memory_carries_every_weight_and_repacks(tokenizer):
    from keras_fido.training import with_passage_memory

    config = dict(
        backbone_presets["lumen_tiny"]["config"],
        vocabulary_size=tokenizer.vocabulary_size(),
        encoder_live_layers=None,
        encoder_question_length=None,
        dropout=0.0,
    )
    fid_preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=PASSAGES, passage_length=40
    )
    reader = FiDOSeq2SeqLM(FiDOBackbone(**config), fid_preprocessor)
    lumen = with_passage_memory(reader, live_layers=1, question_length=16)
    assert lumen.backbone.encoder_live_layers == 1
    assert lumen.preprocessor.passage_length == 56
    assert lumen.preprocessor.question_length == 16
    for old, new in zip(reader.backbone.weights, lumen.backbone.weights):
        assert old.path == new.path
        np.testing.assert_array_equal(numpy(old), numpy(new))
    trainable = {id(v) for v in lumen.backbone.trainable_variables}
    assert not any(id(v) in trainable for v in memory_variables(lumen.backbone))
    assert isinstance(lumen.generate(EXAMPLES[0]), str)
    with pytest.raises(ValueError, match="passage memory already"):
        with_passage_memory(lumen, live_layers=1)
    with pytest.raises(ValueError, match=r"encoder_live_layers.*\[1, 3\]"):
        with_passage_memory(reader, live_layers=4)
