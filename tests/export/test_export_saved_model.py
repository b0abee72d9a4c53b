"""SavedModel export for TF Serving: a reader exported here answers, in a
bare TensorFlow process, exactly as `generate` does."""

import json
import os
import re
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from keras_fido.export import export_saved_model
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import full_forward_logits
from keras_fido.testing.fido_models import tiny_backbone

CLIENT = os.path.join(os.path.dirname(__file__), "bare_tensorflow_client.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))

needs_tensorflow = pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="export builds a TensorFlow graph: runs under "
    "KERAS_BACKEND=tensorflow (test_export_preset.py covers the others)",
)

SERVER_THREADS = 4
CALLS_PER_THREAD = 50
RSS_GROWTH_BOUND_MIB = 50  # generous: allocator noise is a few MiB
PASSAGES = 3
PASSAGE_LENGTH = 32
DECODER_LENGTH = 8

TRAIN = [
    {
        "question": "what is the capital of france",
        "passages": [
            {"title": "France", "text": "The capital of France is Paris."},
            {"title": "Lyon", "text": "Lyon is a city."},
        ],
        "target": "paris",
    },
    {
        "question": "who wrote the play",
        "passages": [{"title": "Play", "text": "It was written by a poet."}],
        "target": "a poet",
    },
    {"question": "what is a list", "passages": [], "target": "a sequence"},
    {
        "question": "how many sides has a square",
        "passages": [
            {"title": "Square", "text": "A square has four sides."},
            {"title": "", "text": ""},
            {"title": "Shape", "text": "Shapes have sides."},
        ],
        "target": "four",
    },
]
LONG_TEXT = " ".join(["The tower stands in the middle of the old town."] * 30)
# Two requests of different batch sizes and passage counts: 3 x 3, then
# 2 x 5 (an example with no passages at all; one with more passages than
# the reader reads, and one passage far over `passage_length`).
BATCHES = [
    [{k: v for k, v in TRAIN[i].items() if k != "target"} for i in (0, 1, 3)],
    [
        {"question": "what is a list", "passages": []},
        {
            "question": "where is the tower",
            "passages": [
                {"title": "Tower", "text": LONG_TEXT},
                {"title": "Town", "text": "The town is old."},
                {"title": "", "text": "No title here."},
                {"title": "River", "text": "A river runs by."},
                {"title": "Hill", "text": "Past the fourth passage."},
            ],
        },
    ],
]


def tensor_form(examples):
    """The signature's inputs for a list of examples, padded with ''."""
    width = max(len(e["passages"]) for e in examples)

    def column(key):
        return [
            [p[key] for p in e["passages"]]
            + [""] * (width - len(e["passages"]))
            for e in examples
        ]

    return {
        "question": [e["question"] for e in examples],
        "titles": column("title"),
        "texts": column("text"),
    }


def string_inputs(inputs):
    return {k: {"value": v, "dtype": "string"} for k, v in inputs.items()}


def run_client(saved_model_dir, requests, tmp_path):
    requests_path = tmp_path / "requests.json"
    out_path = tmp_path / "responses.json"
    requests_path.write_text(json.dumps(requests))
    result = subprocess.run(
        [sys.executable, CLIENT, saved_model_dir, requests_path, out_path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out_path.read_text())


def make_preprocessor(sentencepiece_proto):
    return FiDOSeq2SeqLMPreprocessor(
        FiDOTokenizer(proto=sentencepiece_proto),
        num_passages=PASSAGES,
        passage_length=PASSAGE_LENGTH,
        decoder_sequence_length=DECODER_LENGTH,
    )


@pytest.fixture(scope="module")
def reader(sentencepiece_proto):
    """A tiny FiDO reader after two training steps: its answers differ
    from example to example and end after different numbers of tokens
    (a random one repeats one token)."""
    preprocessor = make_preprocessor(sentencepiece_proto)
    tokenizer = preprocessor.tokenizer
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size()
    )
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    if keras.config.backend() == "tensorflow":
        keras.utils.set_random_seed(0)
        reader.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
        with pytest.warns(UserWarning, match="cut"):
            x, y, sample_weight = preprocessor(TRAIN)
        for _ in range(2):
            reader.train_on_batch(x, y, sample_weight=sample_weight)
    return reader


@pytest.fixture(scope="module")
def exported(reader, tmp_path_factory):
    """The reader exported with the defaults (XLA), as version 1."""
    base = tmp_path_factory.mktemp("serving") / "fido"
    return export_saved_model(reader, str(base))


@pytest.fixture(scope="module")
def served(reader, exported, tmp_path_factory):
    """Requests answered by the bare TensorFlow process, with what
    `generate` and the preprocessor say about the same inputs."""
    with pytest.warns(UserWarning, match="dropped"):
        packed = reader.preprocessor.generate_preprocess(BATCHES[1])
    token_inputs = {
        "encoder_token_ids": {
            "value": keras.ops.convert_to_numpy(
                packed["encoder_token_ids"]
            ).tolist(),
            "dtype": "int32",
        },
        "encoder_padding_mask": {
            "value": keras.ops.convert_to_numpy(packed["encoder_padding_mask"])
            .astype("int32")
            .tolist(),
            "dtype": "int32",
        },
    }
    one = tensor_form(BATCHES[1][1:])
    bad = {
        "int_question": {**string_inputs(one), "question": _int([7])},
        "scalar_question": {
            **string_inputs(one),
            "question": {"value": "where", "dtype": "string"},
        },
        "rank_1_titles": {
            **string_inputs(one),
            "titles": {"value": ["Tower"], "dtype": "string"},
        },
        "texts_shape": {
            **string_inputs(one),
            "texts": {"value": [["a", "b"]], "dtype": "string"},
        },
        "batch_mismatch": {
            **string_inputs(one),
            "question": {"value": ["a", "b"], "dtype": "string"},
        },
        "mask_shape": {
            **token_inputs,
            "encoder_padding_mask": _int([[[1, 1]]]),
        },
    }
    requests = [
        {"signature": "serving_default", "inputs": string_inputs(inputs)}
        for inputs in map(tensor_form, BATCHES)
    ]
    # The first request is also sent from several threads, as a server
    # sends it.
    requests[0].update(threads=SERVER_THREADS, calls=CALLS_PER_THREAD)
    requests.append({"signature": "serving_tokens", "inputs": token_inputs})
    requests += [
        {
            "signature": (
                "serving_tokens" if name == "mask_shape" else "serving_default"
            ),
            "inputs": inputs,
        }
        for name, inputs in bad.items()
    ]
    out = run_client(exported, requests, tmp_path_factory.mktemp("client"))
    responses = out["responses"]
    return {
        "text": responses[:2],
        "tokens": responses[2],
        "bad": dict(zip(bad, responses[3:])),
        "inputs": out["inputs"],
        "modules": out["modules"],
    }


def _int(value):
    return {"value": value, "dtype": "int32"}


@needs_tensorflow
def test_export_without_preprocessor_says_what_is_missing(reader, tmp_path):
    with pytest.raises(ValueError, match="preprocessor=None"):
        export_saved_model(FiDOSeq2SeqLM(reader.backbone), str(tmp_path))
    assert os.listdir(tmp_path) == []


@needs_tensorflow
def test_backbone_keras_export_still_gives_encoder_and_decoder_states(
    reader, tmp_path
):
    import tensorflow as tf

    backbone = reader.backbone
    path = str(tmp_path / "backbone")
    backbone.export(path, format="tf_saved_model", verbose=False)
    inputs = {
        "encoder_token_ids": np.full((2, 3, 5), 7, "int32"),
        "encoder_padding_mask": np.ones((2, 3, 5), "int32"),
        "decoder_token_ids": np.zeros((2, 4), "int32"),
        "decoder_padding_mask": np.ones((2, 4), "int32"),
    }
    restored = tf.saved_model.load(path)
    outputs = restored.serve(inputs)
    expected = backbone(inputs)
    for name in ("encoder_sequence_output", "decoder_sequence_output"):
        np.testing.assert_allclose(
            outputs[name], np.asarray(expected[name]), atol=1e-5
        )


@needs_tensorflow
def test_versions_follow_the_tf_serving_layout(reader, exported):
    base = os.path.dirname(exported)
    assert os.path.basename(exported) == "1"
    assert os.path.isfile(os.path.join(exported, "saved_model.pb"))
    assert os.path.isdir(os.path.join(exported, "variables"))
    with pytest.raises(ValueError, match="Version 1 already exists"):
        export_saved_model(reader, base, version=1)
    second = export_saved_model(reader, base, jit_compile=False)
    assert second == os.path.join(base, "2")
    assert sorted(os.listdir(base)) == ["1", "2"]  # no staging leftovers


@needs_tensorflow
def test_saved_model_cli_lists_the_signatures(exported):
    import tensorflow as tf

    result = subprocess.run(
        ["saved_model_cli", "show", "--dir", exported, "--all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = result.stdout
    expected = {
        "serving_default": [
            ("inputs", "question", "DT_STRING", "(-1)"),
            ("inputs", "titles", "DT_STRING", "(-1, -1)"),
            ("inputs", "texts", "DT_STRING", "(-1, -1)"),
        ],
        "serving_tokens": [
            ("inputs", "encoder_token_ids", "DT_INT32", "(-1, -1, -1)"),
            ("inputs", "encoder_padding_mask", "DT_INT32", "(-1, -1, -1)"),
        ],
    }
    outputs = [
        ("outputs", "answers", "DT_STRING", "(-1)"),
        ("outputs", "token_ids", "DT_INT32", f"(-1, {DECODER_LENGTH - 1})"),
        ("outputs", "token_scores", "DT_FLOAT", f"(-1, {DECODER_LENGTH - 1})"),
        ("outputs", "scores", "DT_FLOAT", "(-1)"),
    ]
    for signature, tensors in expected.items():
        block = text.split(f"signature_def['{signature}']:")[1]
        block = block.split("signature_def[")[0]
        assert "Method name is: tensorflow/serving/predict" in block
        for kind, name, dtype, shape in tensors + outputs:
            assert re.search(
                rf"{kind}\['{name}'\] tensor_info:\s+dtype: {dtype}\s+"
                rf"shape: {re.escape(shape)}\s",
                block,
            ), (signature, name)
    # Every op is core TensorFlow or tensorflow-text's SentencePiece.
    ops = re.search(r"contains the following ops: \{(.*)\}", text).group(1)
    ops = {op.strip().strip("'") for op in ops.split(",")}
    custom = {op for op in ops if not hasattr(tf.raw_ops, op)}
    assert custom == {
        "SentencepieceOp",
        "SentencepieceTokenizeOp",
        "SentencepieceDetokenizeOp",
    }


@needs_tensorflow
def test_bare_tensorflow_answers_equal_generate(reader, served):
    for batch, response in zip(BATCHES, served["text"]):
        assert response["outputs"]["answers"] == reader.generate(batch)
    # The reader is trained enough for its answers to differ.
    answers = [a for r in served["text"] for a in r["outputs"]["answers"]]
    assert len(set(answers)) >= 3


@needs_tensorflow
def test_threads_get_the_sequential_answers_in_flat_memory(served):
    concurrent = served["text"][0]["concurrent"]
    assert concurrent["errors"] == []
    assert concurrent["mismatches"] == 0
    warm, end = concurrent["rss_mib"]
    assert end - warm < RSS_GROWTH_BOUND_MIB, concurrent["rss_mib"]


@needs_tensorflow
def test_token_ids_equal_generate_tokens(reader, served):
    generate = reader.make_generate_function()
    end = reader.preprocessor.tokenizer.end_token_id
    for batch, response in zip(BATCHES, served["text"]):
        x = reader.preprocessor.generate_preprocess(batch)
        out = generate(x, stop_token_ids=(end,))
        ids = np.asarray(out["decoder_token_ids"])
        mask = np.asarray(out["decoder_padding_mask"])
        expected = np.where(mask, ids, 0)[:, 1:]
        np.testing.assert_array_equal(
            response["outputs"]["token_ids"], expected
        )


@needs_tensorflow
def test_scores_are_the_log_probabilities_of_the_tokens(reader, served):
    token_reader = FiDOSeq2SeqLM(reader.backbone)
    for batch, response in zip(BATCHES, served["text"]):
        x = reader.preprocessor.generate_preprocess(batch)
        token_ids = np.asarray(response["outputs"]["token_ids"])
        decoder_ids = np.pad(token_ids, [[0, 0], [1, 0]])  # start token 0
        logits = full_forward_logits(
            token_reader,
            x["encoder_token_ids"],
            x["encoder_padding_mask"],
            decoder_ids,
        )[:, :-1].astype("float64")
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        expected = np.take_along_axis(log_probs, token_ids[..., None], -1)
        # Through the first end token; 0 after it.
        is_end = token_ids == reader.preprocessor.tokenizer.end_token_id
        ended = np.cumsum(is_end, axis=1) - is_end
        expected = np.where(ended > 0, 0.0, expected[..., 0])
        scores = np.asarray(response["outputs"]["token_scores"])
        np.testing.assert_allclose(scores, expected, atol=1e-4)
        np.testing.assert_allclose(
            response["outputs"]["scores"], scores.sum(1), atol=1e-5
        )


@needs_tensorflow
def test_pre_tokenized_signature_answers_as_the_text_signature(served):
    assert served["tokens"]["outputs"] == served["text"][1]["outputs"]


@needs_tensorflow
def test_server_process_had_no_keras_and_no_keras_fido(served):
    assert served["modules"] == []


@needs_tensorflow
@pytest.mark.parametrize(
    "case, message",
    [
        ("int_question", "expected to be a string tensor but is a int32"),
        ("scalar_question", "tensor question [] is not compatible"),
        ("rank_1_titles", "tensor titles [1] is not compatible"),
        ("texts_shape", "`titles` and `texts` must have the same shape"),
        ("batch_mismatch", "one row per `question`"),
        ("mask_shape", "`encoder_padding_mask` must have the shape"),
    ],
)
def test_bad_input_is_rejected_with_a_message(served, case, message):
    error = served["bad"][case]["error"]
    assert message in error["message"], error


@needs_tensorflow
def test_wrong_dtype_error_points_at_the_input(served):
    # TensorFlow numbers a signature's inputs in sorted order: the error's
    # "input #0" is `question` (over REST, TF Serving names it).
    assert served["inputs"]["serving_default"] == [
        "question",
        "texts",
        "titles",
    ]
    error = served["bad"]["int_question"]["error"]["message"]
    assert "input #0(zero-based) was expected to be a string tensor" in error


@needs_tensorflow
def test_copy_head_reader_serves_the_answers_of_generate(
    sentencepiece_proto, tmp_path
):
    preprocessor = make_preprocessor(sentencepiece_proto)
    backbone = tiny_backbone(
        "fido",
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        copy_attention=True,
    )
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    exported = export_saved_model(reader, str(tmp_path / "copy"))
    batch = BATCHES[0]
    requests = [
        {
            "signature": "serving_default",
            "inputs": string_inputs(tensor_form(batch)),
        }
    ]
    out = run_client(exported, requests, tmp_path)
    answers = out["responses"][0]["outputs"]["answers"]
    assert answers == reader.generate(batch)


QUESTION_LENGTH = 6
MEMORY_BATCH = [
    {k: v for k, v in TRAIN[i].items() if k != "target"} for i in (0, 3, 2)
]


@pytest.fixture(scope="module")
def memory_served(sentencepiece_proto, tmp_path_factory):
    """A tiny random reader with passage memory (2 memory layers, 1 live),
    exported, and the bare TensorFlow process's answers to the same batch
    through its four signatures; the memory is the backbone's own."""
    from keras_fido.models.passage_memory import encode_passage_memory

    preprocessor = FiDOSeq2SeqLMPreprocessor(
        FiDOTokenizer(proto=sentencepiece_proto),
        num_passages=PASSAGES,
        passage_length=PASSAGE_LENGTH,
        decoder_sequence_length=DECODER_LENGTH,
        question_length=QUESTION_LENGTH,
    )
    backbone = tiny_backbone(
        "fido",
        vocabulary_size=preprocessor.tokenizer.vocabulary_size(),
        encoder_num_layers=3,
        encoder_live_layers=1,
        encoder_question_length=QUESTION_LENGTH,
    )
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    exported = export_saved_model(
        reader, str(tmp_path_factory.mktemp("memory") / "lumen")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cut passages and questions
        x = preprocessor.generate_preprocess(MEMORY_BATCH)
        expected = reader.generate(MEMORY_BATCH)
    ids = keras.ops.convert_to_numpy(x["encoder_token_ids"])
    mask = keras.ops.convert_to_numpy(x["encoder_padding_mask"])
    memory = keras.ops.convert_to_numpy(
        encode_passage_memory(
            backbone, ids[:, :, QUESTION_LENGTH:], mask[:, :, QUESTION_LENGTH:]
        )
    )
    tokens = {
        "encoder_token_ids": _int(ids.tolist()),
        "encoder_padding_mask": _int(mask.astype("int32").tolist()),
    }
    stored = {"value": memory.tolist(), "dtype": "float32"}
    passages = {
        "question": {
            "value": [e["question"] for e in MEMORY_BATCH],
            "dtype": "string",
        },
        "passage_token_ids": _int(ids[:, :, QUESTION_LENGTH:].tolist()),
        "passage_padding_mask": _int(
            mask[:, :, QUESTION_LENGTH:].astype("int32").tolist()
        ),
        "passage_memory": stored,
    }
    short = {"value": memory[:, :, 1:].tolist(), "dtype": "float32"}
    requests = [
        {
            "signature": "serving_default",
            "inputs": string_inputs(tensor_form(MEMORY_BATCH)),
        },
        {"signature": "serving_tokens", "inputs": tokens},
        {"signature": "serving_memory", "inputs": passages},
        {
            "signature": "serving_memory_tokens",
            "inputs": {**tokens, "passage_memory": stored},
        },
        {
            "signature": "serving_memory_tokens",
            "inputs": {**tokens, "passage_memory": short},
        },
        {
            "signature": "serving_memory",
            "inputs": {**passages, "passage_memory": short},
        },
    ]
    out = run_client(exported, requests, tmp_path_factory.mktemp("client"))
    return {
        "expected": expected,
        "responses": out["responses"],
        "signatures": sorted(out["inputs"]),
    }


@needs_tensorflow
def test_memory_signatures_answer_as_the_text_signature(memory_served):
    responses = memory_served["responses"]
    assert memory_served["signatures"] == [
        "serving_default",
        "serving_memory",
        "serving_memory_tokens",
        "serving_tokens",
    ]
    text = responses[0]["outputs"]
    assert text["answers"] == memory_served["expected"]
    for response in responses[1:4]:
        outputs = response["outputs"]
        assert outputs["answers"] == text["answers"]
        assert outputs["token_ids"] == text["token_ids"]
        np.testing.assert_allclose(
            outputs["token_scores"], text["token_scores"], atol=1e-5
        )


@needs_tensorflow
@pytest.mark.parametrize(
    "index, message",
    [
        (4, "`passage_memory` must be [batch, passages, length - 6"),
        (5, "`passage_memory` must be [batch, passages, passage positions"),
    ],
)
def test_memory_of_the_wrong_length_is_rejected(memory_served, index, message):
    error = memory_served["responses"][index]["error"]
    assert message in error["message"], error


@needs_tensorflow
def test_a_reader_without_memory_keeps_its_two_signatures(served):
    assert sorted(served["inputs"]) == ["serving_default", "serving_tokens"]
