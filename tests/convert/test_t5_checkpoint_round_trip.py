"""T5.1.1 checkpoint -> keras_fido preset -> generate -> checkpoint, exactly."""

import keras_hub
import numpy as np
import pytest
from keras import ops

pytest.importorskip("transformers", reason="the reference needs transformers")

from keras_fido.convert import from_t5_checkpoint  # noqa: E402
from keras_fido.convert import read_t5_checkpoint  # noqa: E402
from keras_fido.convert import to_t5_checkpoint  # noqa: E402
from keras_fido.models import FiDOSeq2SeqLM  # noqa: E402
from keras_fido.testing.fido_models import tiny_backbone  # noqa: E402
from keras_fido.testing.t5_checkpoints import VOCAB_SIZE  # noqa: E402
from keras_fido.testing.t5_checkpoints import tiny_t5_checkpoint  # noqa: E402
from keras_fido.testing.t5_reference import fid_forward  # noqa: E402
from keras_fido.testing.t5_reference import fid_greedy_generate  # noqa: E402
from keras_fido.testing.t5_reference import random_fid_inputs  # noqa: E402

ATOL = 1e-4
STEPS = 10
EXAMPLE = {
    "question": "what does the return statement do",
    "passages": [
        {
            "title": "return",
            "text": "The return statement leaves the function call.",
        },
        {
            "title": "yield",
            "text": "The yield statement is only used "
            "when defining a generator function.",
        },
    ],
}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny random T5.1.1 and its checkpoint directory."""
    return tiny_t5_checkpoint(tmp_path_factory.mktemp("t5"))


@pytest.fixture(scope="module")
def preset(source, tmp_path_factory):
    """The checkpoint converted and saved as a keras_fido preset."""
    reader = from_t5_checkpoint(
        source[1],
        num_passages=2,
        passage_length=96,
        decoder_sequence_length=STEPS,
    )
    path = str(tmp_path_factory.mktemp("preset"))
    reader.save_to_preset(path)
    return path


@pytest.fixture(scope="module")
def reader(preset):
    return keras_hub.models.Seq2SeqLM.from_preset(preset)


def token_generate(backbone, encoder_token_ids, encoder_padding_mask):
    """Greedy ids `[B, 1 + STEPS]` from the start token, no stop token."""
    lm = FiDOSeq2SeqLM(backbone)
    batch = encoder_token_ids.shape[0]
    prompt_mask = np.zeros((batch, STEPS + 1), bool)
    prompt_mask[:, 0] = True
    output = lm.generate(
        {
            "encoder_token_ids": encoder_token_ids,
            "encoder_padding_mask": encoder_padding_mask,
            "decoder_token_ids": np.zeros((batch, STEPS + 1), "int32"),
            "decoder_padding_mask": prompt_mask,
        },
        stop_token_ids=None,
    )
    return np.asarray(output["decoder_token_ids"])


def test_preset_loads_as_a_vanilla_fid_reader_with_t5_tokenizer(reader):
    assert isinstance(reader, FiDOSeq2SeqLM)
    backbone = reader.backbone
    assert backbone.cross_attention_layer_indices == [1, 2, 3]
    assert backbone.decoder_num_key_value_heads == backbone.decoder_num_heads
    tokenizer = reader.preprocessor.tokenizer
    # 200 SentencePiece pieces + 20 sentinels, as transformers numbers them.
    assert tokenizer.vocabulary_size() == 220
    assert tokenizer.token_to_id("<extra_id_0>") == 219
    assert tokenizer.token_to_id("<extra_id_19>") == 200


def test_converted_logits_match_the_checkpoint(source, reader):
    t5, _ = source
    inputs = random_fid_inputs(vocab=VOCAB_SIZE)
    _, _, expected = fid_forward(t5, **inputs)
    backbone = reader.backbone
    hidden = backbone(inputs)["decoder_sequence_output"]
    logits = ops.convert_to_numpy(backbone.token_logits(hidden))
    np.testing.assert_allclose(logits, expected, atol=ATOL, rtol=1e-4)


def test_converted_greedy_generation_matches_the_checkpoint(source, reader):
    t5, _ = source
    inputs = random_fid_inputs(vocab=VOCAB_SIZE, seed=3)
    ids, mask = inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
    expected = fid_greedy_generate(t5, ids, mask, STEPS)
    assert len(np.unique(expected[:, 1:])) >= 5, expected  # varied output
    np.testing.assert_array_equal(
        token_generate(reader.backbone, ids, mask), expected
    )


def test_text_generation_equals_transformers_greedy(source, reader):
    t5, _ = source
    inputs = reader.preprocessor.generate_preprocess(EXAMPLE)
    ids = ops.convert_to_numpy(inputs["encoder_token_ids"])[None]
    mask = ops.convert_to_numpy(inputs["encoder_padding_mask"])[None]
    expected = fid_greedy_generate(t5, ids, mask, STEPS - 1)[0, 1:]
    expected = list(expected)
    if 1 in expected:  # up to the end token
        expected = expected[: expected.index(1)]
    tokenizer = reader.preprocessor.tokenizer
    answer = reader.generate(EXAMPLE)
    assert answer == tokenizer.detokenize([[int(i) for i in expected]])[0]
    assert len(expected) >= 3, expected


def test_export_gives_back_the_checkpoint_bit_for_bit(source, reader, tmp_path):
    t5, directory = source
    exported = to_t5_checkpoint(reader, tmp_path / "t5")
    original = read_t5_checkpoint(directory)
    again = read_t5_checkpoint(exported)
    assert sorted(again.weights) == sorted(original.weights)
    for name, array in original.weights.items():
        assert again.weights[name].dtype == array.dtype, name
        np.testing.assert_array_equal(again.weights[name], array, name)
    assert again.spiece_model == original.spiece_model
    assert again.extra_ids == original.extra_ids == 20
    for field in ("d_model", "d_kv", "d_ff", "num_layers", "num_heads"):
        assert again.config[field] == original.config[field], field
    assert again.config["num_decoder_layers"] == 3


def test_exported_checkpoint_loads_in_transformers_unchanged(
    source, reader, tmp_path
):
    import transformers

    t5, _ = source
    exported = to_t5_checkpoint(reader, tmp_path / "t5")
    reloaded = transformers.T5ForConditionalGeneration.from_pretrained(
        exported
    ).eval()
    inputs = random_fid_inputs(vocab=VOCAB_SIZE)
    for got, expected in zip(
        fid_forward(reloaded, **inputs), fid_forward(t5, **inputs)
    ):
        np.testing.assert_array_equal(got, expected)
    tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    text = "The return statement leaves the current function call."
    assert tokenizer(text).input_ids[:-1] == list(
        np.asarray(reader.preprocessor.tokenizer(text))
    )


def test_export_of_a_preset_directory_equals_export_of_the_model(
    preset, reader, tmp_path
):
    from_dir = read_t5_checkpoint(to_t5_checkpoint(preset, tmp_path / "a"))
    from_model = read_t5_checkpoint(to_t5_checkpoint(reader, tmp_path / "b"))
    assert from_dir.spiece_model == from_model.spiece_model
    for name, array in from_model.weights.items():
        np.testing.assert_array_equal(from_dir.weights[name], array, name)


@pytest.mark.parametrize(
    "override, knob",
    [
        (dict(cross_attention_interval=2), "cross_attention_interval=2"),
        (dict(decoder_num_key_value_heads=1), "decoder_num_key_value_heads=1"),
        (
            dict(decoder_hidden_dim=48, decoder_intermediate_dim=96),
            "encoder_hidden_dim=32 != decoder_hidden_dim=48",
        ),
    ],
)
def test_export_of_fido_is_refused_naming_the_knob(override, knob, tmp_path):
    backbone = tiny_backbone("fid", **override)
    with pytest.raises(ValueError, match=knob):
        to_t5_checkpoint(backbone, tmp_path / "t5")
