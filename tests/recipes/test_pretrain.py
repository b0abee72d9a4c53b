"""recipes/pretrain.py: span-corruption pretraining of fido_tiny, resumed."""

import json
import math

import pytest

from keras_fido.data import corpus_lines


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text("\n".join(corpus_lines()[:300]), encoding="utf-8")
    return path


def arguments(text_file, output, *extra):
    return [
        "--preset",
        "fido_tiny",
        "--data",
        "text",
        "--text",
        str(text_file),
        "--train-tokenizer",
        "400",
        "--extra-ids",
        "20",
        "--input-length",
        "32",
        "--batch-size",
        "2",
        "--steps",
        "4",
        "--save-every",
        "2",
        "--output",
        str(output),
        *extra,
    ]


def test_pretraining_resumes_after_an_interruption_and_writes_a_preset(
    text_file, tmp_path, capsys, load_recipe
):
    from keras_fido.models import FiDOSeq2SeqLM

    output = tmp_path / "run"
    pretrain = load_recipe("pretrain")
    first = pretrain.main(arguments(text_file, output, "--stop-after", "2"))
    assert first["step"] == 2 and first["preset"] is None
    assert math.isfinite(first["loss"])
    assert (output / "backup").is_dir()

    with pytest.raises(SystemExit, match="different architecture"):
        pretrain.main(
            arguments(text_file, output)[2:] + ["--preset", "fid_tiny"]
        )

    # The same command again continues: two more steps, not four anew.
    second = pretrain.main(arguments(text_file, output))
    assert second["start_step"] == 2 and second["step"] == 4
    assert "Resuming at step 2 of 4" in capsys.readouterr().out
    assert math.isfinite(second["loss"])

    model = FiDOSeq2SeqLM.from_preset(second["preset"])
    tokenizer = model.preprocessor.tokenizer
    assert len(tokenizer.sentinel_token_ids) == 20
    assert model.backbone.vocabulary_size == tokenizer.vocabulary_size()
    config = json.loads((output / "run_config.json").read_text())
    assert config["backbone.cross_attention_interval"] == 3


def test_without_c4_or_text_says_how_to_prepare_c4(tmp_path, load_recipe):
    pretrain = load_recipe("pretrain")
    with pytest.raises(SystemExit, match="tfds build c4/en"):
        pretrain.main(
            [
                "--preset",
                "fido_tiny",
                "--tfds-data-dir",
                str(tmp_path / "tfds"),
                "--output",
                str(tmp_path / "run"),
            ]
        )
