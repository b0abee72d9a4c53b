"""Exporting a preset: from JAX or PyTorch through a TensorFlow subprocess,
and from the command line."""

import json
import os
import subprocess
import sys

import keras
import pytest

from keras_fido.export import export_preset
from keras_fido.export import export_saved_model
from keras_fido.export.__main__ import main
from keras_fido.models import FiDOSeq2SeqLM
from keras_fido.models import FiDOSeq2SeqLMPreprocessor
from keras_fido.models import FiDOTokenizer
from keras_fido.testing.fido_models import tiny_backbone

CLIENT = os.path.join(os.path.dirname(__file__), "bare_tensorflow_client.py")

EXAMPLES = [
    {
        "question": "what is the capital of france",
        "passages": [
            {"title": "France", "text": "The capital of France is Paris."},
            {"title": "Lyon", "text": "Lyon is a city."},
        ],
    },
    {"question": "what is a list", "passages": []},
]
TEXT_INPUTS = {
    "question": [e["question"] for e in EXAMPLES],
    "titles": [["France", "Lyon"], ["", ""]],
    "texts": [["The capital of France is Paris.", "Lyon is a city."], ["", ""]],
}

on_tensorflow = keras.config.backend() == "tensorflow"


@pytest.fixture(scope="module")
def reader(sentencepiece_proto):
    tokenizer = FiDOTokenizer(proto=sentencepiece_proto)
    preprocessor = FiDOSeq2SeqLMPreprocessor(
        tokenizer, num_passages=2, passage_length=24, decoder_sequence_length=6
    )
    backbone = tiny_backbone(
        "fido", vocabulary_size=tokenizer.vocabulary_size()
    )
    return FiDOSeq2SeqLM(backbone, preprocessor)


@pytest.mark.skipif(
    on_tensorflow, reason="checks the error shown under jax and torch"
)
def test_export_saved_model_under_another_backend_says_to_use_tensorflow(
    reader, tmp_path
):
    with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
        export_saved_model(reader, str(tmp_path))


@pytest.mark.skipif(
    on_tensorflow,
    reason="tests the TensorFlow subprocess started from jax and torch "
    "(under tensorflow the export runs in-process)",
)
def test_preset_saved_under_another_backend_serves_generate_answers(
    reader, tmp_path
):
    preset = str(tmp_path / "preset")
    reader.save_to_preset(preset)
    out = tmp_path / "serving"
    path = export_preset(preset, str(out), version=3, jit_compile=False)
    assert path == str(out / "3")
    assert sorted(os.listdir(out)) == ["3"]
    assert (out / "3" / "saved_model.pb").is_file()

    # Served from a bare TensorFlow process, as generated here.
    requests = [
        {
            "signature": "serving_default",
            "inputs": {
                k: {"value": v, "dtype": "string"}
                for k, v in TEXT_INPUTS.items()
            },
        }
    ]
    (tmp_path / "requests.json").write_text(json.dumps(requests))
    client = subprocess.run(
        [
            sys.executable,
            CLIENT,
            path,
            str(tmp_path / "requests.json"),
            str(tmp_path / "responses.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert client.returncode == 0, client.stderr[-3000:]
    response = json.loads((tmp_path / "responses.json").read_text())
    answers = response["responses"][0]["outputs"]["answers"]
    assert answers == reader.generate(EXAMPLES)


@pytest.mark.skipif(
    not on_tensorflow,
    reason="the command line exports in-process under tensorflow; from "
    "jax and torch the subprocess test above covers the same export",
)
def test_command_line_writes_the_requested_version(reader, tmp_path, capsys):
    preset = str(tmp_path / "preset")
    reader.save_to_preset(preset)
    out = tmp_path / "serving"
    status = main(
        [preset, str(out), "--version", "7", "--max-length", "4"]
        + ["--no-jit-compile"]
    )
    assert status == 0
    assert capsys.readouterr().out.strip() == str(out / "7")
    assert (out / "7" / "saved_model.pb").is_file()


def test_command_line_reports_a_missing_preset(tmp_path, capsys):
    status = main([str(tmp_path / "missing"), str(tmp_path / "out")])
    assert status == 1
    error = capsys.readouterr().err
    assert "`preset` must be a directory written by" in error
    assert not (tmp_path / "out").exists()
