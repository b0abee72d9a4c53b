"""Bad input at every public entry point: a clear error naming the field,
or the documented graceful behaviour; never a traceback from a backend.

What is covered elsewhere and not repeated here: the backbone's input
names, ranks and mask shapes (`tests/models/test_fido_backbone.py`),
malformed FiD examples given to the preprocessor, `generate` and `fit`
(`tests/models/test_fido_seq_2_seq_lm*.py`), extra passages, over-long
passages and targets (warned and reported, same files), the FiD json
reader's malformed lines, missing keys, non-UTF-8 bytes and its property
tests (`tests/data/test_fid_json_bad_input.py`), the exported serving
signature (`tests/export/test_export_saved_model.py`, TensorFlow only),
unknown preset names and incomplete preset directories
(`tests/models/test_fido_backbone.py`), damaged weights files
(`tests/reliability/test_training_faults.py`).
"""

import re

import numpy as np
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone
from keras_fido.testing.t5_reference import random_fid_inputs

VOCAB = 128


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone("fido", vocabulary_size=VOCAB)


@pytest.fixture(scope="module")
def token_reader(backbone):
    return FiDOSeq2SeqLM(backbone)


def token_inputs(**replace):
    inputs = random_fid_inputs(
        batch=2, passages=3, length=7, target=5, vocab=VOCAB
    )
    inputs.update(replace)
    return inputs


# --- Token ids: backbone call, predict, generate ----------------------------

TOKEN_CASES = {
    "out_of_vocabulary_encoder_ids": (
        dict(encoder_token_ids=np.full((2, 3, 7), VOCAB, "int32")),
        r"`encoder_token_ids` must hold token ids in \[0, 128\).*"
        r"from 128 to 128",
    ),
    "negative_decoder_ids": (
        dict(decoder_token_ids=np.full((2, 5), -3, "int32")),
        r"`decoder_token_ids` must hold token ids in \[0, 128\).*from -3",
    ),
    "float_encoder_ids": (
        dict(encoder_token_ids=np.ones((2, 3, 7), "float32")),
        "`encoder_token_ids` must hold integer token ids.*float32",
    ),
    "string_decoder_ids": (
        dict(decoder_token_ids=np.full((2, 5), "a")),
        "`decoder_token_ids` must hold integer token ids",
    ),
    "encoder_mask_of_the_wrong_shape": (
        dict(encoder_padding_mask=np.ones((2, 3, 6), "int32")),
        r"`encoder_padding_mask` must have the shape of `encoder_token_ids`",
    ),
    "decoder_batch_differs": (
        dict(
            decoder_token_ids=np.zeros((3, 5), "int32"),
            decoder_padding_mask=np.ones((3, 5), "int32"),
        ),
        "same batch size.*'decoder_token_ids': 3",
    ),
}


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_backbone_call_names_the_bad_field(backbone, case):
    replace, message = TOKEN_CASES[case]
    with pytest.raises(ValueError, match=message):
        backbone(token_inputs(**replace))


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_predict_names_the_bad_field(token_reader, case):
    replace, message = TOKEN_CASES[case]
    with pytest.raises(ValueError, match=message):
        token_reader.predict(token_inputs(**replace), verbose=0)


@pytest.mark.parametrize("case", sorted(TOKEN_CASES))
def test_generate_names_the_bad_field(token_reader, case):
    replace, message = TOKEN_CASES[case]
    with pytest.raises(ValueError, match=message):
        token_reader.generate(token_inputs(**replace), stop_token_ids=None)


def test_generate_without_preprocessor_needs_stop_token_ids(token_reader):
    with pytest.raises(ValueError, match="stop_token_ids"):
        token_reader.generate(token_inputs())


def test_valid_ids_at_the_vocabulary_edges_are_accepted(token_reader):
    inputs = token_inputs()
    inputs["encoder_token_ids"][0, 0, :2] = [0, VOCAB - 1]
    logits = token_reader.predict(inputs, verbose=0)
    assert logits.shape == (2, 5, VOCAB)


# --- The preprocessor ---------------------------------------------------------


@pytest.fixture(scope="module")
def preprocessor(sentencepiece_proto):
    return FiDOSeq2SeqLMPreprocessor(
        FiDOTokenizer(proto=sentencepiece_proto),
        num_passages=2,
        passage_length=8,
        decoder_sequence_length=4,
    )


@pytest.mark.parametrize(
    "x, message",
    [
        ({"question": b"\xff\xfe", "passages": []}, r"x\['question'\].*bytes"),
        (
            {"question": "q", "passages": [["a passage"]]},
            r"x\['passages'\]\[0\]` must be a dict with a 'text' key",
        ),
    ],
    ids=["non_utf8_bytes_question", "passage_not_a_dict"],
)
def test_preprocessor_names_the_bad_field(preprocessor, x, message):
    with pytest.raises(ValueError, match=message):
        preprocessor(x)


def test_empty_question_is_encoded_with_its_passages(preprocessor):
    x = preprocessor(
        {"question": "", "passages": [{"title": "t", "text": "Paris."}]}
    )
    assert x["encoder_token_ids"].shape == (2, 8)
    assert np.asarray(x["encoder_padding_mask"])[0].any()


def test_non_utf8_bytes_in_tensor_form_are_tokenized_not_fatal(
    preprocessor,
):
    """String tensors hold bytes; SentencePiece tokenizes invalid UTF-8
    (as unknown pieces) rather than failing."""
    x = preprocessor.generate_preprocess(
        {"question": [b"\xff\xfe q"], "titles": [[b"t"]], "texts": [[b"\xfe"]]}
    )
    assert tuple(x["encoder_token_ids"].shape) == (1, 2, 8)


passage_strategy = st.fixed_dictionaries(
    {"title": st.text(max_size=30), "text": st.text(max_size=80)}
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    questions=st.lists(st.text(max_size=40), min_size=1, max_size=3),
    passages=st.lists(passage_strategy, min_size=0, max_size=4),
)
def test_preprocessor_never_crashes_and_masks_match_ids(
    preprocessor, questions, passages
):
    """Random unicode, 0 to P+2 passages: always `[B, P, L]`, padding
    where the mask is off, and every cut reported."""
    examples = [{"question": q, "passages": passages} for q in questions]
    x = preprocessor.generate_preprocess(examples)
    ids = np.asarray(x["encoder_token_ids"])
    mask = np.asarray(x["encoder_padding_mask"]).astype(bool)
    assert ids.shape == mask.shape == (len(questions), 2, 8)
    assert (ids[~mask] == 0).all()
    assert ((ids != 0) <= mask).all()
    report = preprocessor.truncation_report(examples)
    extra = max(0, len(passages) - 2) * len(questions)
    assert 0 <= report["passages_dropped"] <= extra
    assert (report["passage_tokens_cut"] > 0) == (
        report["passages_truncated"] > 0
    )


# --- Recipes' command lines -------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    (root / "text.txt").write_text("a line of text\n", encoding="utf-8")
    (root / "data.jsonl").write_text("", encoding="utf-8")
    (root / "not_a_preset").mkdir()
    return root


RECIPE_CASES = {
    "pretrain_without_flags": (
        "pretrain",
        [],
        "the following arguments are required: --preset, --output",
    ),
    "pretrain_zero_steps": (
        "pretrain",
        ["--preset", "fido_tiny", "--output", "{out}", "--steps", "0"],
        "--steps must be positive",
    ),
    "pretrain_missing_text_file": (
        "pretrain",
        ["--preset", "fido_tiny", "--output", "{out}", "--data", "text"]
        + ["--text", "{root}/missing.txt"],
        "--text: no such file: '.*missing.txt'",
    ),
    "pretrain_unknown_preset": (
        "pretrain",
        ["--preset", "fido_huge", "--output", "{out}", "--data", "text"]
        + ["--text", "{root}/text.txt"],
        "--preset 'fido_huge' is neither a directory nor one of",
    ),
    "pretrain_directory_not_a_preset": (
        "pretrain",
        ["--preset", "{root}/not_a_preset", "--output", "{out}"]
        + ["--data", "text", "--text", "{root}/text.txt"],
        "--preset: Preset directory .*not_a_preset' has no `config.json`",
    ),
    "evaluate_without_flags": (
        "evaluate_qa",
        [],
        "the following arguments are required: --preset, --data",
    ),
    "evaluate_missing_data_file": (
        "evaluate_qa",
        ["--preset", "{root}/not_a_preset", "--data", "{root}/missing.json"],
        "--data: no such file: '.*missing.json'",
    ),
    "evaluate_unknown_preset": (
        "evaluate_qa",
        ["--preset", "fido_huge", "--data", "{root}/data.jsonl"],
        "--preset: Unknown preset 'fido_huge'",
    ),
    "evaluate_directory_not_a_preset": (
        "evaluate_qa",
        ["--preset", "{root}/not_a_preset", "--data", "{root}/data.jsonl"],
        "--preset: Preset directory .*not_a_preset' has no `config.json`",
    ),
    "finetune_without_flags": (
        "finetune_qa",
        [],
        "the following arguments are required: --train, --validation, "
        "--preset, --output",
    ),
    "finetune_unknown_preset": (
        "finetune_qa",
        ["--train", "{root}/data.jsonl", "--validation", "{root}/data.jsonl"]
        + ["--preset", "fido_huge", "--output", "{out}"],
        "--preset 'fido_huge' is neither a directory nor one of",
    ),
}


@pytest.mark.parametrize("case", sorted(RECIPE_CASES))
def test_recipe_command_line_exits_with_a_clear_message(
    files, tmp_path, capsys, case, load_recipe
):
    name, argv, message = RECIPE_CASES[case]
    argv = [a.format(root=files, out=tmp_path / "out") for a in argv]
    with pytest.raises(SystemExit) as exit:
        load_recipe(name).main(argv)
    said = capsys.readouterr().err if exit.value.code == 2 else ""
    said += "" if isinstance(exit.value.code, int) else exit.value.code
    assert re.search(message, said), said
