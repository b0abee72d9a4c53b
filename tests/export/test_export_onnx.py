"""ONNX export: the graphs reproduce the reader, and `OnnxReader`, in a
process where keras and every backend are unimportable, answers as
`generate` does."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from keras import ops

from keras_fido.export.export_onnx import export_onnx
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone

pytest.importorskip("onnxruntime")

READER_FILE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    "keras_fido",
    "export",
    "onnx_reader.py",
)
EXAMPLES = [
    {
        "question": "what is the capital of france",
        "passages": [
            {"title": "France", "text": "The capital of France is Paris."},
            {"title": "", "text": ""},
            {"title": "Lyon", "text": "Lyon is a city by the river. " * 4},
        ],
    },
    {"question": "what is a list", "passages": []},
    {"question": "who wrote it", "passages": [{"text": "A poet wrote it."}]},
]
# Imports of these fail in the serving process.
BLOCKER = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('keras', 'tensorflow', 'jax', 'torch',
                                  'keras_fido', 'keras_hub'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import importlib.util, json
spec = importlib.util.spec_from_file_location('onnx_reader', sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
reader = module.OnnxReader(sys.argv[2])
examples = json.load(open(sys.argv[3]))
print(json.dumps({
    'answers': reader.generate(examples),
    'one': reader.generate(examples[0]),
    'modules': sorted(m for m in sys.modules if m.split('.')[0] in
                      ('keras', 'tensorflow', 'jax', 'torch')),
}))
"""


@pytest.fixture(scope="module", params=["fid", "fido"])
def exported(request, sentencepiece_proto, tmp_path_factory):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=3, passage_length=16, decoder_sequence_length=8
    )
    backbone = tiny_backbone(
        request.param, vocabulary_size=tokenizer.vocabulary_size()
    )
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    directory = tmp_path_factory.mktemp(f"onnx_{request.param}")
    manifest = export_onnx(reader, str(directory))
    return reader, str(directory), manifest


def test_graphs_reproduce_encoder_output_and_logits(exported):
    from keras_fido.export.onnx_reader import OnnxReader

    reader, directory, _ = exported
    served = OnnxReader(directory)
    rng = np.random.default_rng(0)
    ids = rng.integers(3, 800, (2, 3, 7))
    mask = np.ones_like(ids)
    mask[0, 1:] = 0
    mask[1, :, 5:] = 0
    expected = ops.convert_to_numpy(
        reader.encode(ids.astype("int32"), mask.astype(bool))
    )
    np.testing.assert_allclose(served.encode(ids, mask), expected, atol=1e-4)
    tokens = rng.integers(3, 800, (2, 5))
    tokens[:, 0] = 0
    logits = reader.predict_on_batch(
        {
            "encoder_token_ids": ids.astype("int32"),
            "encoder_padding_mask": mask.astype("int32"),
            "decoder_token_ids": tokens.astype("int32"),
            "decoder_padding_mask": np.ones_like(tokens, "int32"),
        }
    )
    np.testing.assert_allclose(
        served.step_logits(ids, mask, tokens),
        ops.convert_to_numpy(logits),
        atol=1e-4,
    )


def test_keras_free_process_answers_as_generate(exported, tmp_path):
    reader, directory, manifest = exported
    path = tmp_path / "examples.json"
    path.write_text(json.dumps(EXAMPLES))
    result = subprocess.run(
        [sys.executable, "-c", BLOCKER, READER_FILE, directory, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["modules"] == []
    expected = reader.generate(EXAMPLES)
    assert out["answers"] == expected
    assert out["one"] == expected[0]
    assert len(set(expected)) >= 2
    assert manifest["limits"] == {
        "max_length": 8,
        "num_passages": 3,
        "passage_length": 16,
    }


def test_bad_input_names_the_field_or_file(exported, tmp_path):
    from keras_fido.export.onnx_reader import OnnxReader

    _, directory, _ = exported
    served = OnnxReader(directory)
    many = {
        "question": "q",
        "passages": [{"title": "t", "text": "x"}] * 4,
    }
    with pytest.raises(ValueError, match=r"x\['passages'\].*num_passages=3"):
        served.generate(many)
    with pytest.raises(ValueError, match="same shape"):
        served.generate(
            {"question": ["q"], "titles": [["a", "b"]], "texts": [["a"]]}
        )
    with pytest.raises(ValueError, match="manifest.json"):
        OnnxReader(str(tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "encoder.onnx", "tokenizer.spm"):
        (broken / name).write_bytes(
            open(os.path.join(directory, name), "rb").read()
        )
    with pytest.raises(ValueError, match="cross_key_value.onnx"):
        OnnxReader(str(broken))


def test_int8_export_reports_agreement_and_token_only_export_says_so(
    exported, tmp_path
):
    reader, _, _ = exported
    manifest = export_onnx(
        reader,
        str(tmp_path / "int8"),
        quantize="int8",
        agreement_examples=EXAMPLES,
        agreement_threshold=0.0,
    )
    quantization = manifest["quantization"]
    assert quantization["mode"] == "int8"
    assert 0.0 <= quantization["next_token_agreement"] <= 1.0
    assert quantization["tokens_compared"] > 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strict = export_onnx(
            reader,
            str(tmp_path / "strict"),
            quantize="int8",
            agreement_examples=EXAMPLES,
            agreement_threshold=1.0,
        )
    warned = any(
        "agree with the float graphs" in str(w.message) for w in caught
    )
    assert warned == (strict["quantization"]["next_token_agreement"] < 1.0)
    with pytest.warns(UserWarning, match="token-id graphs only"):
        bare = export_onnx(FiDOSeq2SeqLM(reader.backbone), str(tmp_path / "t"))
    assert bare["tokenizer"] is None
    assert not os.path.exists(tmp_path / "t" / "tokenizer.spm")


def test_a_copy_head_reader_is_refused_naming_the_knob(tmp_path):
    pytest.importorskip("onnxruntime")
    reader = FiDOSeq2SeqLM(
        tiny_backbone("fid", vocabulary_size=40, copy_attention=True)
    )
    with pytest.raises(ValueError, match="copy_attention=True"):
        export_onnx(reader, str(tmp_path / "onnx"))
    assert not (tmp_path / "onnx").exists()


QUESTION_LENGTH = 6
# Slot 0 empty in the last example: the question block is read from it.
MEMORY_EXAMPLES = EXAMPLES + [
    {
        "question": "where is lyon",
        "passages": [
            {"title": "", "text": ""},
            {"title": "Lyon", "text": "Lyon is in France."},
        ],
    }
]


@pytest.fixture(scope="module")
def memory_exported(sentencepiece_proto, tmp_path_factory):
    """A tiny random reader with passage memory (2 memory layers, 1 live),
    exported; its packing of `MEMORY_EXAMPLES` and the passages' memory."""
    from keras_fido.models.passage_memory import encode_passage_memory

    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer,
        num_passages=3,
        passage_length=16,
        decoder_sequence_length=8,
        question_length=QUESTION_LENGTH,
    )
    backbone = tiny_backbone(
        "fido",
        vocabulary_size=tokenizer.vocabulary_size(),
        encoder_num_layers=3,
        encoder_live_layers=1,
        encoder_question_length=QUESTION_LENGTH,
    )
    reader = FiDOSeq2SeqLM(backbone, preprocessor)
    directory = str(tmp_path_factory.mktemp("onnx_memory"))
    manifest = export_onnx(reader, directory)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cut passages and questions
        x = preprocessor.generate_preprocess(MEMORY_EXAMPLES)
    ids = ops.convert_to_numpy(x["encoder_token_ids"]).astype("int64")
    mask = ops.convert_to_numpy(x["encoder_padding_mask"]).astype("int64")
    split = QUESTION_LENGTH
    memory = ops.convert_to_numpy(
        encode_passage_memory(backbone, ids[:, :, split:], mask[:, :, split:])
    )
    return {
        "reader": reader,
        "directory": directory,
        "manifest": manifest,
        "ids": ids,
        "mask": mask,
        "memory": memory,
    }


def test_memory_export_packs_and_encodes_as_the_reader(memory_exported):
    from keras_fido.export.onnx_reader import OnnxReader

    m = memory_exported
    assert m["manifest"]["graphs"]["live_encoder"] == "live_encoder.onnx"
    assert os.path.isfile(os.path.join(m["directory"], "live_encoder.onnx"))
    served = OnnxReader(m["directory"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ids, mask = served.pack(MEMORY_EXAMPLES)
    np.testing.assert_array_equal(ids, m["ids"])
    np.testing.assert_array_equal(mask, m["mask"])
    expected = ops.convert_to_numpy(
        m["reader"].encode(ids.astype("int32"), mask.astype(bool))
    )
    np.testing.assert_allclose(served.encode(ids, mask), expected, atol=1e-4)
    from_memory = served.encode_from_memory(
        ids[:, 0, :QUESTION_LENGTH], mask, m["memory"]
    )
    np.testing.assert_allclose(from_memory, expected, atol=1e-4)


def test_memory_path_answers_as_the_text_path(memory_exported):
    from keras_fido.export.onnx_reader import OnnxReader

    m = memory_exported
    served = OnnxReader(m["directory"])
    passage_mask = m["mask"][:, :, QUESTION_LENGTH:]
    questions = [e["question"] for e in MEMORY_EXAMPLES]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answers = served.generate_from_memory(
            questions, passage_mask, m["memory"]
        )
        text = served.generate(MEMORY_EXAMPLES)
        expected = m["reader"].generate(MEMORY_EXAMPLES)
    assert answers == text == expected
    one = served.generate_from_memory(
        questions[0], passage_mask[0], m["memory"][0]
    )
    assert one == answers[0]
    with pytest.raises(ValueError, match=r"`passage_memory` must be"):
        served.generate_from_memory(
            questions, passage_mask, m["memory"][:, :, 1:]
        )


def test_a_reader_without_memory_exports_no_live_encoder(exported):
    from keras_fido.export.onnx_reader import OnnxReader

    _, directory, manifest = exported
    assert manifest["graphs"] == {
        "encoder": "encoder.onnx",
        "cross_key_value": "cross_key_value.onnx",
        "decoder_step": "decoder_step.onnx",
    }
    assert not os.path.exists(os.path.join(directory, "live_encoder.onnx"))
    with pytest.raises(ValueError, match="no live encoder graph"):
        OnnxReader(directory).generate_from_memory(
            "q", np.ones((1, 3, 10)), np.zeros((1, 3, 10, 16), "float32")
        )
